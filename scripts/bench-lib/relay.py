#!/usr/bin/env python3
"""Recording relay for scripts/bench: an HTTP/1.1 keep-alive forwarder between tflock
and an emulator (Python stdlib, asyncio). Appends one line per request to LOG: how many
requests were in flight when it arrived (itself included), method, path, X-Amz-Target.

With --latency MS each answer is held back until MS milliseconds after its request
arrived, as a network round trip would: a client that overlaps its requests overlaps
the waits. A request counts as in flight until its answer is released.

  relay.py [--latency MS] LISTEN_PORT UPSTREAM_PORT LOG
"""

import argparse
import asyncio

from http1 import Message, read_body, read_head, read_request, serve, with_length

ap = argparse.ArgumentParser()
ap.add_argument("--latency", type=float, default=0.0, help="milliseconds from a request's arrival to its answer")
ap.add_argument("listen_port", type=int)
ap.add_argument("upstream_port", type=int)
ap.add_argument("log")
args = ap.parse_args()

log = open(args.log, "a", buffering=1)
inflight = 0


async def exchange(upstream, request):
    """Sends `request` upstream, returns the response and whether the upstream closes."""
    reader, writer = upstream
    writer.write(request.encode())
    await writer.drain()
    head = await read_head(reader)
    if head is None:
        raise ConnectionResetError("upstream closed the connection")
    rsp = Message(*head)
    status = int(rsp.start.split(" ", 2)[1])
    no_body = request.start.startswith("HEAD ") or status < 200 or status in (204, 304)
    rsp.body, until_close = await read_body(reader, rsp, no_body)
    return rsp, status, until_close or not rsp.keep_alive()


async def connection(client_reader, client_writer):
    global inflight
    upstream = None
    try:
        while True:
            req = await read_request(client_reader, client_writer)
            if req is None:
                return
            arrived = asyncio.get_running_loop().time()
            method, path = req.start.split(" ", 2)[:2]
            inflight += 1
            log.write(f"{inflight} {method} {path} {req.header('X-Amz-Target', '-')}\n")
            try:
                forward = Message(req.start, with_length(req.headers, req.body), req.body)
                for attempt in (0, 1):
                    if upstream is None:
                        upstream = await asyncio.open_connection("127.0.0.1", args.upstream_port, limit=1 << 20)
                    try:
                        rsp, status, close = await exchange(upstream, forward)
                        break
                    except (ConnectionError, asyncio.IncompleteReadError):
                        # The emulator closed an idle keep-alive connection: reconnect once.
                        upstream[1].close()
                        upstream = None
                        if attempt:
                            raise
                if close:
                    upstream[1].close()
                    upstream = None
                if args.latency:
                    await asyncio.sleep(max(0.0, arrived + args.latency / 1000 - asyncio.get_running_loop().time()))
            finally:
                # Done before the answer is sent: a client that waits for it cannot then be
                # seen overlapping its next request.
                inflight -= 1
            head_request = method == "HEAD"
            answer = Message(rsp.start, with_length(rsp.headers, rsp.body, status, head_request), b"" if head_request else rsp.body)
            client_writer.write(answer.encode())
            await client_writer.drain()
            if not req.keep_alive():
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        if upstream is not None:
            upstream[1].close()
        client_writer.close()


serve(args.listen_port, connection)
