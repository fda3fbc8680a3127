# Azurite blob service. Exports TFLOCK_TEST_AZURITE=http://127.0.0.1:PORT (account in
# the URL path), TFLOCK_TEST_AZURE_ACCOUNT and TFLOCK_TEST_AZURE_KEY.
install_azurite() {
  if [ ! -x "$TFLOCK_CACHE/node/node_modules/.bin/azurite-blob" ]; then
    mkdir -p "$TFLOCK_CACHE/node"
    (cd "$TFLOCK_CACHE/node" && [ -f package.json ] || echo '{"private":true}' >package.json)
    npm install --prefix "$TFLOCK_CACHE/node" --no-audit --no-fund --loglevel=error 'azurite@^3.35' >/dev/null
  fi
}
start_azurite() {
  local port; port=$(free_port)
  export TFLOCK_TEST_AZURE_ACCOUNT=tflockacct
  export TFLOCK_TEST_AZURE_KEY
  TFLOCK_TEST_AZURE_KEY=$(printf 'tflock-test-account-key-0123456789' | base64 -w0)
  AZURITE_ACCOUNTS="$TFLOCK_TEST_AZURE_ACCOUNT:$TFLOCK_TEST_AZURE_KEY" start_bg azurite \
    "$TFLOCK_CACHE/node/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --loose --skipApiVersionCheck --disableTelemetry
  wait_http "http://127.0.0.1:$port/" 30 azurite
  export TFLOCK_TEST_AZURITE="http://127.0.0.1:$port"
}
