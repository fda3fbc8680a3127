#!/usr/bin/env python3
"""Runs one command and prints what it cost, as the kernel accounted it for that child
(wait4): `wall_ms cpu_ms max_rss_kb exit_code`. cpu = user + system of the process and
of any children it waited for; max RSS = its largest resident set. Standard output goes
to OUT, standard error to OUT.err; standard input is empty.

  measure.py OUT CMD [ARG...]
"""

import os
import subprocess
import sys
import time

if len(sys.argv) < 3:
    sys.exit("usage: measure.py OUT CMD [ARG...]")
out = sys.argv[1]
with open(out, "wb") as stdout, open(out + ".err", "wb") as stderr:
    t0 = time.monotonic()
    try:
        child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    except OSError as e:
        sys.exit(f"measure.py: cannot run {sys.argv[2]}: {e}")
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
cpu = usage.ru_utime + usage.ru_stime
print(f"{wall * 1000:.0f} {cpu * 1000:.0f} {usage.ru_maxrss} {child.returncode}")
