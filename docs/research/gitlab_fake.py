#!/usr/bin/env python3
"""Research-only fake of GitLab's Terraform state API, for pointing terraform's `http`
backend at it on loopback and recording exactly what terraform sends. Not the test fake
(that one will be written in Rust); stdlib only.

Mirrors lib/api/terraform/state.rb + app/services/terraform/remote_state_handler.rb
(gitlabhq/gitlabhq) as read for docs/research/backends.md:
  GET    /api/v4/projects/:id/terraform/state/:name          200 body | 204 no state
  POST   /api/v4/projects/:id/terraform/state/:name[?ID=]    200 (409 if locked and ID differs)
  DELETE /api/v4/projects/:id/terraform/state/:name          200
  POST   /api/v4/projects/:id/terraform/state/:name/lock     body = LockInfo JSON; 200 or 409,
         both answering {Operation,Info,Version,Path (the REQUESTER's), ID,Who,Created (holder)}
  DELETE /api/v4/projects/:id/terraform/state/:name/lock[?ID=] ID from query or JSON body;
         no ID at all = unconditional unlock (GitLab: "force-unlock does not pass ID");
         an ID that differs from the holder's (or any ID when unlocked) = 409
  POST   /api/graphql   answers project.terraformStates with every state (query not parsed)
The generic http backend's default LOCK / UNLOCK methods are accepted on /lock as well.

Usage: gitlab_fake.py [--port N] [--log FILE] [--token T] [--locked-status 409|423]
Prints "listening on http://127.0.0.1:PORT" once ready. Every request is appended to the
log as one JSON line: method, path, query, headers, body.
"""
import argparse
import base64
import datetime
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATES = {}  # (project, name) -> {"data": bytes|None, "lock": None|{ID, Who, Created}, "id": n}
MU = threading.Lock()
ARGS = None


def rest_time(t):  # ActiveSupport JSON: ISO 8601, milliseconds, Z
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def graphql_time(t):  # Types::TimeType#coerce_result: Time#iso8601, whole seconds
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def _send(self, code, body=b"", ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        if code != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if code != 204:
            self.wfile.write(body)

    def _handle(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with open(ARGS.log, "a") as f:
            f.write(json.dumps({
                "method": self.command, "path": u.path, "query": u.query,
                "headers": {k: v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }) + "\n")
        # Basic auth: any username, password must be the token (a PAT or job token)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            u_, _, p_ = base64.b64decode(auth[6:]).decode().partition(":")
            if p_ == ARGS.token:
                user = u_
        if user is None:
            return self._send(401, {"message": "401 Unauthorized"})
        if u.path == "/api/graphql" and self.command == "POST":
            return self._graphql()
        parts = u.path.strip("/").split("/")
        # api v4 projects :id terraform state :name [lock]
        if len(parts) < 6 or parts[:2] != ["api", "v4"] or parts[2] != "projects" \
                or parts[4:6] != ["terraform", "state"]:
            return self._send(404, {"message": "404 Not Found"})
        project, name = parts[3], "/".join(parts[6:7])
        is_lock = parts[7:] == ["lock"]
        params = {k: v[-1] for k, v in q.items()}
        if body and "json" in (self.headers.get("Content-Type") or ""):
            try:  # Grape merges a JSON body into params (body wins over the query)
                j = json.loads(body)
                if isinstance(j, dict):
                    params.update({k: v for k, v in j.items() if isinstance(v, str)})
            except ValueError:
                pass
        lock_id = params.get("ID")
        with MU:
            key = (project, name)
            st = STATES.get(key)
            if is_lock and self.command in ("POST", "LOCK"):
                if not lock_id:
                    return self._send(400, {"error": "ID is missing"})
                if st is None:  # create_or_find_by: locking creates the state record
                    st = STATES[key] = {"data": None, "lock": None, "id": len(STATES) + 1}
                code = 200
                if st["lock"] is not None:
                    code = ARGS.locked_status
                else:
                    st["lock"] = {"ID": lock_id, "Who": user,
                                  "at": datetime.datetime.now(datetime.timezone.utc)}
                info = {k: params.get(k, "") for k in ("Operation", "Info", "Version", "Path")}
                lk = st["lock"]
                info.update({"ID": lk["ID"], "Who": lk["Who"], "Created": rest_time(lk["at"])})
                return self._send(code, json.dumps(info).encode())
            if is_lock and self.command in ("DELETE", "UNLOCK"):
                if st is None:
                    return self._send(404, {"message": "404 Not Found"})
                held = st["lock"]["ID"] if st["lock"] else None
                if lock_id is not None and (held or "") != lock_id:
                    return self._send(409, b"")
                st["lock"] = None
                return self._send(200, b"")
            if self.command == "GET":
                if st is None:
                    return self._send(404, {"message": "404 Not Found"})
                if not st["data"]:
                    return self._send(204)
                return self._send(200, st["data"], "application/octet-stream")
            if self.command == "POST":
                if not body:
                    return self._send(204)
                if st is None:
                    st = STATES[key] = {"data": None, "lock": None, "id": len(STATES) + 1}
                held = st["lock"]["ID"] if st["lock"] else None
                if not (held is None and lock_id is None) and (held or "") != (lock_id or ""):
                    return self._send(409, b"")  # GitLab: StateLockedError (status not verified)
                st["data"] = body
                return self._send(200, b"")
            if self.command == "DELETE":
                STATES.pop(key, None)
                return self._send(200, b"")
        return self._send(405, {"error": "405 Not Allowed"})

    def _graphql(self):
        nodes = []
        with MU:
            for (project, name), st in sorted(STATES.items()):
                lk = st["lock"]
                nodes.append({
                    "id": "gid://gitlab/Terraform::State/%d" % st["id"],
                    "name": name,
                    "lockedAt": graphql_time(lk["at"]) if lk else None,
                    "lockedByUser": {"username": lk["Who"]} if lk else None,
                    "latestVersion": None if not st["data"] else {
                        "serial": json.loads(st["data"]).get("serial"),
                        "createdAt": None, "createdByUser": None, "job": None},
                })
        return self._send(200, {"data": {"project": {"terraformStates": {
            "count": len(nodes), "nodes": nodes,
            "pageInfo": {"hasNextPage": False, "endCursor": None}}}}})

    do_GET = do_POST = do_DELETE = do_PUT = do_LOCK = do_UNLOCK = _handle


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", default="/dev/stderr")
    p.add_argument("--token", default="glpat-test-token")
    p.add_argument("--locked-status", type=int, default=409, choices=(409, 423))
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), H)
    print("listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
