# PostgreSQL for the pg backend: a throwaway cluster per run in $TFLOCK_CACHE/pg/<pid>,
# on 127.0.0.1 and a free port, removed again when it stops. Exports
#   TFLOCK_TEST_PG        postgres://tflock:PW@127.0.0.1:PORT/tflock?sslmode=disable
#                         (login role `tflock`, owner of database `tflock`: what terraform's
#                         pg backend is given as conn_str; it may create its schema there)
#   TFLOCK_TEST_PG_ADMIN  the same cluster as its superuser `postgres`, database `postgres`
#   TFLOCK_PG_BINDIR      the directory holding postgres/initdb (tests may start their own)
#   TFLOCK_TEST_PG_CA     the CA of the server's TLS certificate (made here with openssl; the
#                         certificate names DNS:localhost only, so verify-full works through
#                         `localhost` and verify-ca, not verify-full, through 127.0.0.1).
#                         The server accepts TLS and plain connections alike.
# The server refuses to run as root: as root, initdb and postgres run as user `postgres`
# (created by Debian's package); as any other user, they run as that user.
# Debian's package puts initdb/postgres in /usr/lib/postgresql/<ver>/bin, not on the PATH.

pg_bindir() {
  local i p
  i=$(command -v initdb 2>/dev/null) && p=$(command -v postgres 2>/dev/null) &&
    [ "$(dirname "$(readlink -f "$i")")" = "$(dirname "$(readlink -f "$p")")" ] &&
    { dirname "$(readlink -f "$i")"; return 0; }
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4n -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  return 1
}

install_postgres() {
  pg_bindir >/dev/null && return 0
  echo "postgres/initdb not found: installing Debian's postgresql package" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends postgresql >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends postgresql >/dev/null; } ||
    { echo "error: apt-get install postgresql failed" >&2; return 1; }
  pg_bindir >/dev/null || { echo "error: postgres/initdb still not found after installing postgresql" >&2; return 1; }
}

# as_pg CMD...: run CMD as the cluster's owner (postgres when we are root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- \
      env PATH="$PATH" LC_ALL=C.UTF-8 "$@"
  else
    "$@"
  fi
}

# wait_tcp PORT SECONDS NAME: poll until 127.0.0.1:PORT accepts a connection, or fail.
wait_tcp() {
  local port=$1 secs=$2 name=$3
  if python3 - "$port" "$secs" <<'EOF'; then return 0; fi
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + secs
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
  echo "error: $name did not listen on 127.0.0.1:$port within ${secs}s; log: $TFLOCK_CACHE/logs/$name.log" >&2
  tail -20 "$TFLOCK_CACHE/logs/$name.log" >&2 || true
  return 1
}

start_postgres() {
  local bin port dir sock pw adminpw d
  bin=$(pg_bindir) || { echo "error: postgres is not installed (install_postgres)" >&2; return 1; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "error: running as root but there is no user 'postgres' to run the server as" >&2; return 1
  fi
  mkdir -p "$TFLOCK_CACHE/pg"
  # clusters of earlier runs that were killed before they could clean up
  for d in "$TFLOCK_CACHE"/pg/*; do
    [ -d "$d" ] || continue
    kill -0 "$(basename "$d")" 2>/dev/null || rm -rf "$d"
  done
  dir="$TFLOCK_CACHE/pg/$$"
  rm -rf "$dir" && mkdir -p "$dir"
  sock=$(mktemp -d /tmp/tflock-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$dir" "$sock"
  chmod 700 "$dir" "$sock"
  if ! as_pg test -w "$dir"; then
    echo "error: user postgres cannot write $dir (a parent directory is closed to it); set TFLOCK_CACHE elsewhere" >&2
    return 1
  fi
  pw=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  adminpw=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  printf '%s\n' "$adminpw" >"$dir/.pw" && { [ "$(id -u)" != 0 ] || chown postgres: "$dir/.pw"; }
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/.pw" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --no-instructions >"$TFLOCK_CACHE/logs/postgres-initdb.log" 2>&1 ||
    { echo "error: initdb failed; log: $TFLOCK_CACHE/logs/postgres-initdb.log" >&2; tail -20 "$TFLOCK_CACHE/logs/postgres-initdb.log" >&2; return 1; }
  rm -f "$dir/.pw"
  command -v openssl >/dev/null || { echo "error: openssl is not on PATH (the TLS tests need a certificate)" >&2; return 1; }
  mkdir -p "$dir/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tflock test pg CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" 2>/dev/null &&
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" 2>/dev/null &&
  printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$dir/tls/server.ext" &&
  openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/tls/server.ext" -out "$dir/tls/server.pem" 2>/dev/null ||
    { echo "error: making the test server's TLS certificate failed" >&2; return 1; }
  rm -f "$dir/tls/ca.key"
  chmod 600 "$dir/tls/server.key"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir/tls"
  # Roles and database in single-user mode: needs no client and no network.
  printf '%s\n' \
    "CREATE ROLE tflock LOGIN PASSWORD '$pw';" \
    "CREATE DATABASE tflock OWNER tflock;" |
    as_pg "$bin/postgres" --single -D "$dir/data" postgres >"$TFLOCK_CACHE/logs/postgres-setup.log" 2>&1 ||
    { echo "error: creating role/database failed; log: $TFLOCK_CACHE/logs/postgres-setup.log" >&2; return 1; }
  port=$(free_port)
  # The PID kept for stop_all is a small wrapper: on SIGTERM it asks postgres for a FAST
  # shutdown (SIGINT: ends every session; a plain SIGTERM would wait for clients such as a
  # stopped terraform), then removes the cluster.
  start_bg postgres bash -c '
    bin=$1 dir=$2 sock=$3 port=$4; shift 4
    "$@" "$bin/postgres" -D "$dir/data" -k "$sock" -c listen_addresses=127.0.0.1 -p "$port" \
      -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=100 \
      -c ssl=on -c ssl_cert_file="$dir/tls/server.pem" -c ssl_key_file="$dir/tls/server.key" &
    child=$!
    trap "kill -INT $child 2>/dev/null" TERM INT
    wait $child; wait $child 2>/dev/null
    rm -rf "$dir" "$sock"' postgres-wrapper "$bin" "$dir" "$sock" "$port" \
    $([ "$(id -u)" = 0 ] && echo setpriv --reuid=postgres --regid=postgres --init-groups --)
  wait_tcp "$port" 30 postgres || return 1
  export TFLOCK_PG_BINDIR="$bin"
  export TFLOCK_TEST_PG_CA="$dir/tls/ca.pem"
  export TFLOCK_TEST_PG="postgres://tflock:$pw@127.0.0.1:$port/tflock?sslmode=disable"
  export TFLOCK_TEST_PG_ADMIN="postgres://postgres:$adminpw@127.0.0.1:$port/postgres?sslmode=disable"
}
