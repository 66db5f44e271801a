#!/usr/bin/env bash
# Instructions and heap allocations per request, counted by callgrind: unlike wall-clock
# figures these repeat to about one part in a million, so a regression shows as a number
# that does not drift. Allocations are calls to malloc, calloc and realloc.
#
# SIDE=server (the default): each server runs under callgrind; a client connects, warms
# up with WARMUP requests, the counters are zeroed, REQUESTS more requests run, and the
# counters are dumped. SIDE=client: the server runs natively and the client runs under
# callgrind twice, with REQUESTS and with twice as many; the difference, divided by
# REQUESTS, is the cost of a request without the client's start and end.
#
# One connection, INFLIGHT requests outstanding (default 1), PAYLOAD bytes each (default
# 16); PAYLOAD=typed is the typed workload (tarpc and gotalk; raw has none).
#
#   bash examples/peers/instructions.sh            # raw, tarpc and gotalk, server side
#   PEERS=gotalk REQUESTS=20000 bash examples/peers/instructions.sh
#   PAYLOAD=typed PEERS="tarpc gotalk" bash examples/peers/instructions.sh
#   SIDE=client INFLIGHT=64 bash examples/peers/instructions.sh
#   KEEP=/tmp/cg bash examples/peers/instructions.sh   # keeps /tmp/cg.PEER for callgrind_annotate
#   MIDDLEWARE=noop PEERS=gotalk bash examples/peers/instructions.sh  # or observe: the server's middleware
#   PEERS="gotalk ws" INFLIGHT=64 bash examples/peers/instructions.sh  # ws: gotalk over WebSocket
set -euo pipefail
cd "$(dirname "$0")/../.."

peers="${PEERS:-raw tarpc gotalk}"
side="${SIDE:-server}"
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

# "INSTRUCTIONS ALLOCATIONS" of a callgrind dump (callgrind names a function once, then
# refers to it by number).
count() {
    awk '
        /^summary:/ { total = $2 }
        match($0, /^c?fn=\([0-9]+\)/) {
            id = substr($0, RSTART, RLENGTH); sub(/^c?fn=/, "", id)
            name = substr($0, RLENGTH + 2); if (name != "") names[id] = name
            if ($0 ~ /^cfn=/) callee = names[id]
        }
        /^calls=/ { split($0, c, /[= ]/); if (callee ~ /^(malloc|calloc|realloc)$/) allocs += c[2] }
        END { print total + 0, allocs + 0 }' "$1"
}

wait_for() {
    for _ in $(seq 300); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
        sleep 0.1
    done
}

port=17450
for peer in $peers; do
    if [ "$payload" = typed ] && [ "$peer" = raw ]; then continue; fi
    port=$((port + 1))
    addr="127.0.0.1:$port"
    case "$peer" in
        raw) server=("$bin/raw_server" "$addr"); client="$bin/raw_client" ;;
        tarpc) server=("$bin/tarpc_server" "$addr"); client="$bin/tarpc_client" ;;
        gotalk) server=("$bin/examples/conformance_peer" --tcp "$addr" ${MIDDLEWARE:+--middleware "$MIDDLEWARE"}); client="$bin/examples/bench_client" ;;
        ws) server=("$bin/examples/conformance_peer" --ws "$addr" ${MIDDLEWARE:+--middleware "$MIDDLEWARE"}); client="$bin/examples/bench_client" ;;
        *) echo "unknown peer $peer" >&2; exit 2 ;;
    esac
    target=$addr
    if [ "$peer" = ws ]; then target="ws://$addr/gotalk/"; fi
    args=(--addr "$target" --conns 1 --inflight "$inflight" --payload "$payload")
    if [ "$side" = client ]; then
        "${server[@]}" >/dev/null &
        server_pid=$!
        wait_for "$port"
        for n in "$requests" $((2 * requests)); do
            valgrind --tool=callgrind --callgrind-out-file="$work/$peer.$n" \
                "$client" "${args[@]}" --requests "$n" >/dev/null 2>"$work/$peer.log"
        done
        read -r i1 a1 < <(count "$work/$peer.$requests")
        read -r i2 a2 < <(count "$work/$peer.$((2 * requests))")
        total=$((i2 - i1)) allocs=$((a2 - a1)) dump="$work/$peer.$((2 * requests))"
    else
        valgrind --tool=callgrind --callgrind-out-file="$work/$peer.%p" "${server[@]}" >/dev/null 2>"$work/$peer.log" &
        server_pid=$!
        wait_for "$port"
        "$client" "${args[@]}" --requests "$warmup" >/dev/null
        callgrind_control --zero "$server_pid" >/dev/null 2>&1
        "$client" "${args[@]}" --requests "$requests" >/dev/null
        callgrind_control --dump="measured" "$server_pid" >/dev/null 2>&1
        dump=$(grep -l "^desc: Trigger: .*measured" "$work/$peer".* | head -n1)
        read -r total allocs < <(count "$dump")
    fi
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    awk -v peer="$peer" -v side="$side" -v total="$total" -v allocs="$allocs" -v n="$requests" \
        'BEGIN { printf "%-7s %s: %8.0f instructions and %5.2f allocations per request (%d requests)\n", peer, side, total / n, allocs / n, n }'
    if [ -n "${KEEP:-}" ]; then cp "$dump" "$KEEP.$peer"; fi
done
