#!/usr/bin/env bash
# Server memory per idle connection: starts conformance_peer, reads its resident set
# (VmRSS in /proc/PID/status) with no connections, opens COUNT idle connections that
# have completed the version handshake, reads it again, and prints the difference.
#
#   bash examples/peers/idle.sh [COUNT]      # default 10000
#
# The server's default read timeout (30 s) would close idle connections, so the reading
# is taken within a few seconds of the last one opening.
set -euo pipefail
cd "$(dirname "$0")/../.."
count="${1:-10000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/gotalk-rs-target}"
cargo build -q --release --locked -p gotalk-examples --example conformance_peer
cargo build -q --release --locked -p gotalk-bench-peers --bin idle_clients
bin="$CARGO_TARGET_DIR/release"
ulimit -n $((count + 1024))
addr=127.0.0.1:17480

"$bin/examples/conformance_peer" --tcp "$addr" >/dev/null &
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
"$bin/idle_clients" "$addr" "$count" 15 >"$fifo" &
clients=$!
read -r line <"$fifo"
echo "$line"
sleep 2
after=$(rss)
awk -v b="$before" -v a="$after" -v n="$count" 'BEGIN {
    printf "server RSS: %d KiB idle, %d KiB with %d idle connections: +%.1f MB, %.2f KiB per connection\n",
        b, a, n, (a - b) / 1024, (a - b) / n
}'
