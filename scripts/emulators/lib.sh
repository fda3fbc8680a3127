# Shared helpers for the emulator scripts. Sourced, not run.
# Every install goes under $TFLOCK_CACHE (default: <repo>/.cache, git-ignored) so a second
# run reuses it. Every server binds 127.0.0.1 on a free port and is stopped by its PID.

: "${TFLOCK_CACHE:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cache}"
mkdir -p "$TFLOCK_CACHE/logs"
TFLOCK_PIDS="${TFLOCK_PIDS:-$TFLOCK_CACHE/pids.$$}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS NAME: poll until URL answers (any HTTP status), or fail.
wait_http() {
  local url=$1 secs=$2 name=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if curl -ks -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.1
  done
  echo "error: $name did not answer at $url within ${secs}s; log: $TFLOCK_CACHE/logs/$name.log" >&2
  tail -20 "$TFLOCK_CACHE/logs/$name.log" >&2 || true
  return 1
}

# start_bg NAME CMD...: start a server in the background, remember its PID.
start_bg() {
  local name=$1; shift
  "$@" >"$TFLOCK_CACHE/logs/$name.log" 2>&1 &
  echo $! >>"$TFLOCK_PIDS"
  disown $!  # stopped by PID in stop_all; no job-control noise when it is
}

stop_all() {
  if [ -f "$TFLOCK_PIDS" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$TFLOCK_PIDS"
    local i
    for ((i = 0; i < 20; i++)); do
      alive=0
      while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$TFLOCK_PIDS"
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$TFLOCK_PIDS"
    rm -f "$TFLOCK_PIDS"
  fi
}

venv_install() {
  local venv="$TFLOCK_CACHE/venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@"
}
