# moto: S3 + DynamoDB. Exports TFLOCK_TEST_MOTO=http://127.0.0.1:PORT, and
# TFLOCK_MOTO_SERVER (the binary) for tests that start their own moto with auth enforced.
install_moto() {
  [ -x "$TFLOCK_CACHE/venv/bin/moto_server" ] || venv_install 'moto[server]>=5.1,<6'
}
start_moto() {
  local port; port=$(free_port)
  start_bg moto "$TFLOCK_CACHE/venv/bin/moto_server" -H 127.0.0.1 -p "$port"
  wait_http "http://127.0.0.1:$port/moto-api/" 30 moto
  export TFLOCK_TEST_MOTO="http://127.0.0.1:$port"
  export TFLOCK_MOTO_SERVER="$TFLOCK_CACHE/venv/bin/moto_server"
}
