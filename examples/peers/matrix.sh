#!/usr/bin/env bash
# The benchmark matrix of BENCHMARKS.md: gotalk (conformance_peer + bench_client), tarpc
# and the raw baseline, same workload, same machine, servers pinned to one core and
# clients to the other, each workload run for every peer back to back so that the
# machine's drift hits all of them alike. Prints a markdown table with ratios.
#
#   bash examples/peers/matrix.sh [SECONDS]          # default 3 s per cell
#   PEERS="gotalk raw" WORKLOADS="1x64x16" bash examples/peers/matrix.sh
#   ROUNDS=5 bash examples/peers/matrix.sh 1         # 5 alternating rounds, medians
#   SPIN=1 ROUNDS=5 bash examples/peers/matrix.sh 1  # the same with no idle halts (below)
#   PEERS="gotalk ws" ROUNDS=3 bash examples/peers/matrix.sh   # WebSocket beside TCP
#
# Peer `ws` is gotalk over WebSocket: conformance_peer's endpoint and bench_client with a
# ws:// address; with it in PEERS the table gains a column `ws/tcp` (its req/s over
# gotalk's over TCP, each round's ratio, median) and `ws p99 / tcp`.
#
# With ROUNDS > 1 every workload runs that many times for every peer in turn, and each
# figure in the table is the median of its rounds (ratios too: the median of the
# rounds' ratios), which steadies them on a machine whose speed drifts.
#
# A workload is CONNSxINFLIGHTxPAYLOAD; a PAYLOAD of `typed` is the typed workload (a
# small struct in and out through gotalk's and tarpc's generated clients; raw has none).
# Raw result lines go to $OUT (default target/bench-matrix.txt under CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-3}"
peers="${PEERS:-raw tarpc gotalk}"
workloads="${WORKLOADS:-1x1x16 1x64x16 16x16x16 1x64x1024 1x8x65536 1x4x1048576 1x1xtyped 1x64xtyped}"
server_cpu="${SERVER_CPU:-0}"
client_cpu="${CLIENT_CPU:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/gotalk-rs-target}"
out="${OUT:-$CARGO_TARGET_DIR/bench-matrix.txt}"

cargo build -q --release --locked -p gotalk-examples --example conformance_peer --example bench_client
cargo build -q --release --locked -p gotalk-bench-peers
bin="$CARGO_TARGET_DIR/release"

declare -A port=([raw]=17401 [tarpc]=17402 [gotalk]=17403 [ws]=17404)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start_server() {
    local addr="127.0.0.1:${port[$1]}"
    case "$1" in
        raw) taskset -c "$server_cpu" "$bin/raw_server" "$addr" >/dev/null & ;;
        tarpc) taskset -c "$server_cpu" "$bin/tarpc_server" "$addr" >/dev/null & ;;
        gotalk) taskset -c "$server_cpu" "$bin/examples/conformance_peer" --tcp "$addr" >/dev/null & ;;
        ws) taskset -c "$server_cpu" "$bin/examples/conformance_peer" --ws "$addr" >/dev/null & ;;
    esac
    pids+=($!)
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/${port[$1]}") 2>/dev/null && return
        sleep 0.05
    done
    echo "$1 server did not start" >&2
    exit 1
}
client() {
    case "$1" in
        raw) echo "$bin/raw_client" ;;
        tarpc) echo "$bin/tarpc_client" ;;
        gotalk | ws) echo "$bin/examples/bench_client" ;;
    esac
}
address() {
    case "$1" in
        ws) echo "ws://127.0.0.1:${port[$1]}/gotalk/" ;;
        *) echo "127.0.0.1:${port[$1]}" ;;
    esac
}

for peer in $peers; do start_server "$peer"; done
# SPIN=1: a busy loop at idle priority on both cores, so that neither halts while it waits
# for the other. On a VM, waking a halted vCPU costs tens of µs, and the pipelined
# workloads wait at every turn; with no halts the figures measure CPU per request (the
# loops take a little from workloads that keep both cores busy: see BENCHMARKS.md).
if [ "${SPIN:-0}" = 1 ]; then
    for cpu in "$server_cpu" "$client_cpu"; do
        taskset -c "$cpu" chrt --idle 0 sh -c 'while :; do :; done' &
        pids+=($!)
    done
fi
: >"$out"
for w in $workloads; do
    IFS=x read -r conns inflight payload <<<"$w"
    for round in $(seq "${ROUNDS:-1}"); do
        for peer in $peers; do
            if [ "$payload" = typed ] && [ "$peer" = raw ]; then continue; fi
            line=$(taskset -c "$client_cpu" "$(client "$peer")" --addr "$(address "$peer")" \
                --conns "$conns" --inflight "$inflight" --payload "$payload" --seconds "$seconds")
            # bench_client names itself gotalk: the peer's name is the matrix's.
            line=$(sed "s/^peer=[^ ]*/peer=$peer/" <<<"$line")
            echo "round=$round $line" | tee -a "$out" >&2
        done
    done
done

# One row per workload: each peer's req/s, MB/s and p50, then gotalk's ratios, its p50
# less raw's and its p99 over raw's; each the median over the rounds (of each round's
# ratio or difference: a p50 that jumps between two levels with the machine's wake-up
# latency is compared within its round).
awk -v peers="$peers" '
    function field(line, key) {
        if (match(line, key "=[^ ]+")) return substr(line, RSTART + length(key) + 1, RLENGTH - length(key) - 1)
        return ""
    }
    function add(key, value) { if (value != "") { n_of[key]++; vals[key, n_of[key]] = value + 0 } }
    function median(key,   n, i, j, t, a) {
        n = n_of[key]; if (!n) return ""
        for (i = 1; i <= n; i++) a[i] = vals[key, i]
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        size = field($0, "payload"); if (size ~ /^[0-9]+$/) size = size " B"
        p = field($0, "peer"); w = field($0, "conns") "×" field($0, "inflight") ", " size; r = field($0, "round")
        if (!(w in seen)) { seen[w] = 1; order[++n] = w }
        rps[w, p, r] = field($0, "req/s"); p50[w, p, r] = field($0, "p50") + 0; p99[w, p, r] = field($0, "p99") + 0
        add(w SUBSEP p SUBSEP "rps", field($0, "req/s")); add(w SUBSEP p SUBSEP "mbs", field($0, "MB/s"))
        add(w SUBSEP p SUBSEP "p50", field($0, "p50") + 0)
        if (!((w, r) in round_seen)) { round_seen[w, r] = 1; rounds[w, ++nr[w]] = r }
    }
    END {
        for (k = 1; k <= n; k++) {
            w = order[k]
            for (j = 1; j <= nr[w]; j++) {
                r = rounds[w, j]; g = rps[w, "gotalk", r]
                if (g != "" && rps[w, "raw", r] != "") {
                    add(w SUBSEP "vs raw", g / rps[w, "raw", r])
                    add(w SUBSEP "p50 vs raw", p50[w, "gotalk", r] - p50[w, "raw", r])
                    add(w SUBSEP "p99 vs raw", p99[w, "gotalk", r] / p99[w, "raw", r])
                }
                if (g != "" && rps[w, "tarpc", r] != "") add(w SUBSEP "vs tarpc", g / rps[w, "tarpc", r])
                if (g != "" && rps[w, "ws", r] != "") {
                    add(w SUBSEP "ws vs tcp", rps[w, "ws", r] / g)
                    add(w SUBSEP "ws p99 vs tcp", p99[w, "ws", r] / p99[w, "gotalk", r])
                }
            }
        }
        np = split(peers, list, " ")
        header = "| workload |"; rule = "|---|"
        for (i = 1; i <= np; i++) { header = header " " list[i] " req/s | MB/s | p50 |"; rule = rule "---|---|---|" }
        header = header " gotalk/raw | gotalk/tarpc | p50 − raw | p99 / raw |"; rule = rule "---|---|---|---|"
        with_ws = (" " peers " " ~ / ws /)
        if (with_ws) { header = header " ws/tcp | ws p99 / tcp |"; rule = rule "---|---|" }
        print header; print rule
        for (k = 1; k <= n; k++) {
            w = order[k]; row = "| " w " |"
            for (i = 1; i <= np; i++) {
                q = w SUBSEP list[i]
                rs = median(q SUBSEP "rps"); mb = median(q SUBSEP "mbs"); pp = median(q SUBSEP "p50")
                row = row " " (rs == "" ? "" : sprintf("%.0f", rs)) " | " (mb == "" ? "" : sprintf("%.1f", mb)) " | " (pp == "" ? "" : sprintf("%.0fµs", pp)) " |"
            }
            vr = median(w SUBSEP "vs raw"); vt = median(w SUBSEP "vs tarpc")
            row = row " " (vr == "" ? "-" : sprintf("%.2f", vr)) " | " (vt == "" ? "-" : sprintf("%.2f", vt)) " |"
            d50 = median(w SUBSEP "p50 vs raw"); r99 = median(w SUBSEP "p99 vs raw")
            row = row " " (d50 == "" ? "-" : sprintf("%+.0fµs", d50)) " | " (r99 == "" ? "-" : sprintf("%.2f", r99)) " |"
            if (with_ws) {
                vw = median(w SUBSEP "ws vs tcp"); pw = median(w SUBSEP "ws p99 vs tcp")
                row = row " " (vw == "" ? "-" : sprintf("%.2f", vw)) " | " (pw == "" ? "-" : sprintf("%.2f", pw)) " |"
            }
            print row
        }
    }' "$out"
