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

# A second Azurite serving HTTPS with a certificate from a CA made here with openssl
# (SAN *.blob.core.windows.net, localhost, 127.0.0.1), for the end-to-end test where the
# real terraform azurerm backend dials https://ACCOUNT.blob.core.windows.net through a
# CONNECT proxy. Same account and key as start_azurite. Exports
# TFLOCK_TEST_AZURITE_HTTPS=https://127.0.0.1:PORT and TFLOCK_TEST_AZURITE_CA=<ca.pem>.
start_azurite_https() {
  local port dir; port=$(free_port); dir="$TFLOCK_CACHE/azurite-tls"
  export TFLOCK_TEST_AZURE_ACCOUNT="${TFLOCK_TEST_AZURE_ACCOUNT:-tflockacct}"
  export TFLOCK_TEST_AZURE_KEY
  TFLOCK_TEST_AZURE_KEY="${TFLOCK_TEST_AZURE_KEY:-$(printf 'tflock-test-account-key-0123456789' | base64 -w0)}"
  rm -rf "$dir" && mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tflock test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$TFLOCK_TEST_AZURE_ACCOUNT.blob.core.windows.net" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:*.blob.core.windows.net,DNS:localhost,IP:127.0.0.1" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  AZURITE_ACCOUNTS="$TFLOCK_TEST_AZURE_ACCOUNT:$TFLOCK_TEST_AZURE_KEY" start_bg azurite-https \
    "$TFLOCK_CACHE/node/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --loose --skipApiVersionCheck --disableTelemetry \
    --cert "$dir/server.pem" --key "$dir/server.key"
  wait_http "https://127.0.0.1:$port/" 30 azurite-https
  export TFLOCK_TEST_AZURITE_HTTPS="https://127.0.0.1:$port"
  export TFLOCK_TEST_AZURITE_CA="$dir/ca.pem"
}
