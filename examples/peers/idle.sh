#!/usr/bin/env bash
# Server memory per idle connection: starts conformance_peer, reads its resident set
# (VmRSS in /proc/PID/status) with no connections, opens COUNT idle connections that
# have completed the version handshake, reads it again, and prints the difference.
#
#   bash examples/peers/idle.sh [COUNT] [tcp|ws]   # default 10000 tcp
#
# `ws` opens upgraded WebSocket connections to the server's endpoint instead (each
# trades versions over WebSocket, through tungstenite, a client that is not ours).
#
# The server's default read timeout (30 s) would close idle connections, so the reading
# is taken within a few seconds of the last one opening.
set -euo pipefail
cd "$(dirname "$0")/../.."
count="${1:-10000}"
transport="${2:-tcp}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/gotalk-rs-target}"
cargo build -q --release --locked -p gotalk-examples --example conformance_peer
cargo build -q --release --locked -p gotalk-bench-peers --bin idle_clients
bin="$CARGO_TARGET_DIR/release"
ulimit -n $((count + 1024))
addr=127.0.0.1:17480

case "$transport" in
tcp) "$bin/examples/conformance_peer" --tcp "$addr" >/dev/null & target=$addr ;;
ws) "$bin/examples/conformance_peer" --ws "$addr" >/dev/null & target="ws://$addr/gotalk/" ;;
*) echo "transport is tcp or ws, not $transport" >&2; exit 2 ;;
esac
server=$!
fifo=$(mktemp -u)
mkfifo "$fifo"
trap 'kill $server ${clients:-} 2>/dev/null || true; rm -f "$fifo"' EXIT
for _ in $(seq 100); do
    (echo >"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null && break
    sleep 0.05
done
sleep 1
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$server/status"; }
before=$(rss)
"$bin/idle_clients" "$target" "$count" 15 >"$fifo" &
clients=$!
read -r line <"$fifo"
echo "$line"
sleep 2
after=$(rss)
awk -v b="$before" -v a="$after" -v n="$count" -v t="$transport" 'BEGIN {
    printf "server RSS: %d KiB idle, %d KiB with %d idle " t " connections: +%.1f MB, %.2f KiB per connection\n",
        b, a, n, (a - b) / 1024, (a - b) / n
}'
