#!/usr/bin/env python3
"""From a real stale lock to unlocked, by the two ways an operator has (scripts/bench):

  terraform: in a fresh copy of the configuration, `terraform init` then
             `terraform force-unlock -force ID` (it needs an initialised working directory);
  tflock:    in a fresh copy of the configuration, `tflock break --id ID --yes` (it reads
             the backend block itself).

The stale lock is made by the real terraform, each time anew: an apply on the s3 backend
(moto) whose provisioner sleeps, killed with kill -9 once it holds the lock. Runs
alternate (terraform, tflock, terraform, ...) so drift in the machine's load hits both.
Each run is checked: exit 0, and the lock (lockfile or DynamoDB row) gone. Prints one row
per mode and tool: median and min wall time, median CPU (user + sys, children included)
and peak RSS, then the median of the pairwise terraform/tflock ratios.

  unlock.py --endpoint URL --tflock PATH --dir DIR [--reps N] [--modes lockfile,dynamodb]
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--endpoint", required=True, help="moto (S3 + DynamoDB)")
ap.add_argument("--tflock", required=True)
ap.add_argument("--dir", required=True, help="scratch directory (emptied)")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--modes", default="lockfile,dynamodb")
args = ap.parse_args()

S3_AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
DDB_AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
KEY = "app/terraform.tfstate"


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as rsp:
            return rsp.status, rsp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def dynamodb(op, body):
    status, out = http(
        "POST",
        args.endpoint + "/",
        json.dumps(body).encode(),
        {"X-Amz-Target": f"DynamoDB_20120810.{op}", "Content-Type": "application/x-amz-json-1.0", "Authorization": DDB_AUTH},
    )
    if status != 200:
        sys.exit(f"unlock.py: DynamoDB {op} answered {status}: {out[:300]!r}")
    return json.loads(out)


def backend_block(bucket, table, lockfile):
    e = args.endpoint
    extra = f'    dynamodb_table = "{table}"\n' if table else ""
    extra += "    use_lockfile = true\n" if lockfile else ""
    return f"""terraform {{
  backend "s3" {{
    bucket = "{bucket}"
    key    = "{KEY}"
    region = "us-east-1"
    endpoints = {{
      s3       = "{e}"
      dynamodb = "{e}"
    }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
{extra}  }}
}}

variable "sleep" {{
  type    = number
  default = 0
}}

resource "terraform_data" "hold" {{
  triggers_replace = timestamp()
  provisioner "local-exec" {{
    command = "echo held; sleep ${{var.sleep}}"
  }}
}}
"""


def environment(home):
    cli_config = os.path.join(args.dir, "terraformrc-empty")
    open(cli_config, "w").close()
    return {
        "PATH": os.environ["PATH"],
        "HOME": home,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TF_CLI_CONFIG_FILE": cli_config,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "TFLOCK_AUDIT_LOG": os.path.join(args.dir, "audit.jsonl"),
        "XDG_CONFIG_HOME": os.path.join(args.dir, "xdg-config"),
    }


def measured(cmd, cwd, env):
    """(wall s, cpu s, max RSS KiB, exit code, output) of one command, by wait4."""
    t0 = time.monotonic()
    child = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    reader = threading.Thread(target=lambda: out.append(child.stdout.read()))
    reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, child.returncode, out[0].decode(errors="replace")


def run_ok(cmd, cwd, env):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"unlock.py: {' '.join(cmd)} failed in {cwd}:\n{p.stdout}{p.stderr}")


class Mode:
    def __init__(self, name, n):
        self.name = name
        self.bucket = f"bench-unlock-{os.getpid()}-{n}"
        self.table = f"bench-unlock-{os.getpid()}-{n}" if name == "dynamodb" else None
        self.lockfile = name == "lockfile"
        status, out = http("PUT", f"{args.endpoint}/{self.bucket}", headers={"Authorization": S3_AUTH})
        if status != 200:
            sys.exit(f"unlock.py: creating bucket {self.bucket}: HTTP {status} {out[:200]!r}")
        if self.table:
            dynamodb(
                "CreateTable",
                {
                    "TableName": self.table,
                    "AttributeDefinitions": [{"AttributeName": "LockID", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "LockID", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            )
        self.main_tf = backend_block(self.bucket, self.table, self.lockfile)
        # The working directory that takes the locks: initialised once, one full apply
        # so the state exists (force-unlock on s3 fails when the state object is missing).
        self.maker = self.workdir("maker")
        self.env = environment(self.maker)
        run_ok(["terraform", "init", "-input=false", "-no-color"], self.maker, self.env)
        run_ok(["terraform", "apply", "-auto-approve", "-input=false", "-no-color"], self.maker, self.env)
        self.runs = 0

    def workdir(self, name):
        d = os.path.join(args.dir, f"{self.name}-{name}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        with open(os.path.join(d, "main.tf"), "w") as f:
            f.write(self.main_tf)
        return d

    def lock_id(self):
        """The ID of the lock now in place, read from the backend; None when there is none."""
        if self.lockfile:
            status, out = http("GET", f"{args.endpoint}/{self.bucket}/{KEY}.tflock", headers={"Authorization": S3_AUTH})
            return json.loads(out)["ID"] if status == 200 else None
        item = dynamodb(
            "GetItem", {"TableName": self.table, "Key": {"LockID": {"S": f"{self.bucket}/{KEY}"}}, "ConsistentRead": True}
        ).get("Item")
        return json.loads(item["Info"]["S"])["ID"] if item else None

    def make_stale_lock(self):
        """An apply that holds the lock, killed with kill -9 (its whole process group)."""
        cmd = ["terraform", "apply", "-auto-approve", "-input=false", "-no-color", "-var", "sleep=300"]
        child = subprocess.Popen(
            cmd, cwd=self.maker, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        held = threading.Event()
        seen = []

        def watch():
            for line in child.stdout:
                seen.append(line.decode(errors="replace"))
                if b"(local-exec): held" in line:
                    held.set()

        threading.Thread(target=watch, daemon=True).start()
        ok = held.wait(120)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if not ok:
            sys.exit("unlock.py: terraform apply never held the lock:\n" + "".join(seen))
        lock_id = self.lock_id()
        if lock_id is None:
            sys.exit(f"unlock.py: no {self.name} lock after killing terraform")
        return lock_id

    def unlock(self, tool):
        lock_id = self.make_stale_lock()
        self.runs += 1
        wd = self.workdir(f"{tool}-{self.runs}")
        env = dict(self.env, HOME=wd)
        if tool == "terraform":
            parts = [
                measured(["terraform", "init", "-input=false", "-no-color"], wd, env),
                measured(["terraform", "force-unlock", "-force", "-no-color", lock_id], wd, env),
            ]
            ok = all(p[3] == 0 for p in parts) and "successfully unlocked" in parts[1][4]
        else:
            parts = [measured([args.tflock, "break", "--id", lock_id, "--yes"], wd, env)]
            ok = parts[0][3] == 0
        if not ok or self.lock_id() is not None:
            sys.exit(f"unlock.py: {tool} did not unlock {lock_id} ({self.name}):\n" + "\n".join(p[4] for p in parts))
        shutil.rmtree(wd, ignore_errors=True)
        return sum(p[0] for p in parts), sum(p[1] for p in parts), max(p[2] for p in parts), parts[0][0]


def ms(seconds):
    return f"{seconds * 1000:.0f}"


fmt = "{:<9} {:<10} {:>5} {:>10} {:>7} {:>7} {:>7} {:>8}  {}"
print(fmt.format("mode", "tool", "runs", "median ms", "min ms", "cpu ms", "rss MB", "init ms", "terraform/tflock (median of pairs)"))
os.makedirs(args.dir, exist_ok=True)
for n, name in enumerate(args.modes.split(",")):
    if name not in ("lockfile", "dynamodb"):
        sys.exit(f"unlock.py: unknown mode {name} (lockfile, dynamodb)")
    mode = Mode(name, n)
    results = {"terraform": [], "tflock": []}
    for _ in range(args.reps):
        for tool in ("terraform", "tflock"):
            results[tool].append(mode.unlock(tool))
    pairs = list(zip(results["terraform"], results["tflock"]))
    wall_ratio = statistics.median(t[0] / f[0] for t, f in pairs)
    cpu_ratio = statistics.median(t[1] / max(f[1], 1e-3) for t, f in pairs)
    for tool, rows in results.items():
        note = f"wall {wall_ratio:.1f}x, cpu {cpu_ratio:.1f}x" if tool == "tflock" else ""
        init = ms(statistics.median(r[3] for r in rows)) if tool == "terraform" else "-"
        print(
            fmt.format(
                name,
                "terraform" if tool == "terraform" else "tflock",
                len(rows),
                ms(statistics.median(r[0] for r in rows)),
                ms(min(r[0] for r in rows)),
                ms(statistics.median(r[1] for r in rows)),
                f"{max(r[2] for r in rows) / 1024:.0f}",
                init,
                note,
            ),
            flush=True,
        )
