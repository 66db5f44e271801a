#!/usr/bin/env bash
# gotalk.js end to end in headless Chromium: against the Rust server directly, then
# through nginx as a WebSocket reverse proxy. Needs /usr/bin/chromium and nginx (Debian
# packages chromium, nginx), `npm ci` in gotalk/js, and a release build of the peer:
#   cargo build --release --example conformance_peer && bash gotalk/js/e2e/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- directly"
GOTALK_E2E_PORT=17611 node e2e/browser.js

echo "--- through nginx"
prefix=$(mktemp -d)
mkdir -p "$prefix"/{body,proxy,fastcgi,uwsgi,scgi}
sed -e "s#PREFIX#$prefix#g" -e "s#LISTEN#127.0.0.1:17612#" -e "s#UPSTREAM#127.0.0.1:17613#" \
    e2e/nginx.conf >"$prefix/nginx.conf"
nginx -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true; rm -rf "$prefix"' EXIT
for _ in $(seq 50); do
    (echo >/dev/tcp/127.0.0.1/17612) 2>/dev/null && break
    sleep 0.1
done
GOTALK_E2E_PORT=17613 GOTALK_E2E_URL=http://127.0.0.1:17612 node e2e/browser.js
