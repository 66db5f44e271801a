#!/usr/bin/env bash
# Server-side instructions per request, counted by callgrind: unlike wall-clock figures
# these repeat to about one part in a million, so a regression shows as a number that
# does not drift. Each server runs under callgrind; a client connects, warms up with
# WARMUP requests, the counters are zeroed, REQUESTS more requests run (one in flight,
# 16-byte payloads unless PAYLOAD/INFLIGHT say otherwise), and the counters are dumped.
#
#   bash examples/peers/instructions.sh            # raw, tarpc and gotalk
#   PEERS=gotalk REQUESTS=20000 bash examples/peers/instructions.sh
#   KEEP=/tmp/cg bash examples/peers/instructions.sh   # keeps /tmp/cg.PEER for callgrind_annotate
set -euo pipefail
cd "$(dirname "$0")/../.."

peers="${PEERS:-raw tarpc gotalk}"
requests="${REQUESTS:-10000}"
warmup="${WARMUP:-1000}"
payload="${PAYLOAD:-16}"
inflight="${INFLIGHT:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/gotalk-rs-target}"
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build -q --release --locked -p gotalk-examples --example conformance_peer --example bench_client
cargo build -q --release --locked -p gotalk-bench-peers

port=17450
for peer in $peers; do
    port=$((port + 1))
    addr="127.0.0.1:$port"
    case "$peer" in
        raw) server=("$bin/raw_server" "$addr"); client="$bin/raw_client" ;;
        tarpc) server=("$bin/tarpc_server" "$addr"); client="$bin/tarpc_client" ;;
        gotalk) server=("$bin/examples/conformance_peer" --tcp "$addr"); client="$bin/examples/bench_client" ;;
        *) echo "unknown peer $peer" >&2; exit 2 ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$work/$peer.%p" "${server[@]}" >/dev/null 2>"$work/$peer.log" &
    server_pid=$!
    for _ in $(seq 300); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    run() {
        "$client" --addr "$addr" --conns 1 --inflight "$inflight" --payload "$payload" --requests "$1" >/dev/null
    }
    run "$warmup"
    callgrind_control --zero "$server_pid" >/dev/null 2>&1
    run "$requests"
    callgrind_control --dump="measured" "$server_pid" >/dev/null 2>&1
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    dump=$(grep -l "^desc: Trigger: .*measured" "$work/$peer".* | head -n1)
    total=$(awk '/^summary:/ { print $2 }' "$dump")
    awk -v peer="$peer" -v total="$total" -v n="$requests" \
        'BEGIN { printf "%-7s %12d instructions for %d requests: %8.0f per request\n", peer, total, n, total / n }'
    if [ -n "${KEEP:-}" ]; then cp "$dump" "$KEEP.$peer"; fi
done
