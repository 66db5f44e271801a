#!/usr/bin/env bash
# Two builds of the gotalk server side by side: the server binary given (e.g. built from
# an older commit) and this checkout's `conformance_peer`, driven by this checkout's
# `bench_client` (or each by its own build's: BASE_CLIENT), in short alternating rounds so
# that the machine's drift hits both alike. Prints each workload's median req/s for both,
# the ratio of the medians and the median of the rounds' own ratios.
#
#   git worktree add /tmp/base <commit>
#   (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target cargo build --release \
#       -p gotalk-examples --example conformance_peer --example bench_client)
#   bash examples/peers/compare.sh /tmp/base-target/release/examples/conformance_peer
#   BASE_CLIENT=/tmp/base-target/release/examples/bench_client SPIN=1 \
#       bash examples/peers/compare.sh /tmp/base-target/release/examples/conformance_peer
#
# ROUNDS (default 15), SECONDS_PER_RUN (default 1) and WORKLOADS (CONNSxINFLIGHTxPAYLOAD)
# tune it; server on CPU 0, client on CPU 1 as in matrix.sh. A change to the connection
# core changes both peers: BASE_CLIENT compares whole builds. SPIN=1 keeps the cores from
# halting when idle, as in matrix.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

base_server="${1:?usage: compare.sh BASE_CONFORMANCE_PEER}"
rounds="${ROUNDS:-15}"
seconds="${SECONDS_PER_RUN:-1}"
workloads="${WORKLOADS:-1x1x16 1x64x16 16x16x16 1x64x1024 1x8x65536}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/gotalk-rs-target}"
cargo build -q --release --locked -p gotalk-examples --example conformance_peer --example bench_client
bin="$CARGO_TARGET_DIR/release/examples"
base_client="${BASE_CLIENT:-$bin/bench_client}"

taskset -c 0 "$base_server" --tcp 127.0.0.1:17501 >/dev/null & base_pid=$!
taskset -c 0 "$bin/conformance_peer" --tcp 127.0.0.1:17502 >/dev/null & this_pid=$!
pids=("$base_pid" "$this_pid")
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
if [ "${SPIN:-0}" = 1 ]; then
    for cpu in 0 1; do
        taskset -c "$cpu" chrt --idle 0 sh -c 'while :; do :; done' &
        pids+=($!)
    done
fi
for port in 17501 17502; do
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
done

results=$(mktemp)
for round in $(seq "$rounds"); do
    for w in $workloads; do
        IFS=x read -r conns inflight payload <<<"$w"
        for side in base this; do
            port=17501 client="$base_client"
            [ "$side" = this ] && port=17502 client="$bin/bench_client"
            line=$(taskset -c 1 "$client" --addr "127.0.0.1:$port" --conns "$conns" \
                --inflight "$inflight" --payload "$payload" --seconds "$seconds")
            echo "$w $side $(echo "$line" | grep -o 'req/s=[^ ]*' | cut -d= -f2) $round" >>"$results"
        done
    done
done

echo "| workload | base req/s (median of $rounds) | this req/s | this/base | rounds' this/base (median, range) |"
echo "|---|---|---|---|---|"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for w in $workloads; do
    b=$(grep "^$w base " "$results" | cut -d' ' -f3 | median)
    t=$(grep "^$w this " "$results" | cut -d' ' -f3 | median)
    ratios=$(awk -v w="$w" '$1 == w { rps[$2, $4] = $3 }
        END { for (k in rps) { split(k, p, SUBSEP); if (p[1] == "this") printf "%.2f\n", rps["this", p[2]] / rps["base", p[2]] } }' "$results" | sort -n)
    r=$(echo "$ratios" | median)
    echo "| $w | $b | $t | $(awk -v b="$b" -v t="$t" 'BEGIN {printf "%.2f", t / b}') | $r ($(echo "$ratios" | head -n1) to $(echo "$ratios" | tail -n1)) |"
done
rm -f "$results"
