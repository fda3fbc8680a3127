# moto: S3 + DynamoDB. Exports TFLOCK_TEST_MOTO=http://127.0.0.1:PORT.
install_moto() {
  [ -x "$TFLOCK_CACHE/venv/bin/moto_server" ] || venv_install 'moto[server]>=5.1,<6'
}
start_moto() {
  local port; port=$(free_port)
  start_bg moto "$TFLOCK_CACHE/venv/bin/moto_server" -H 127.0.0.1 -p "$port"
  wait_http "http://127.0.0.1:$port/moto-api/" 30 moto
  export TFLOCK_TEST_MOTO="http://127.0.0.1:$port"
}
