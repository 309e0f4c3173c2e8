#!/usr/bin/env bash
# Budget B2 (README, Overhead): end-to-end throughput of a hello-world axum service with the
# full ServerTierLayer, as a share of the same service bare. The server runs on core 0 with
# one tokio worker, the load generator on core 1; bare, identity-layer and instrumented runs
# alternate (the order turns every round) and the medians are compared. The identity layer
# separates what axum costs for any route layer (it clones and boxes each layered route's
# service and future per request) from what scalewatch's own layer costs.
#
#   benches/end_to_end_throughput.sh [ROUNDS [SECONDS [CONNECTIONS]]]
#       defaults: 7 rounds of 5 s, 32 connections
#
# Needs cargo, taskset (util-linux) and python3; honours CARGO_TARGET_DIR.
set -euo pipefail

rounds="${1:-7}"
seconds="${2:-5}"
connections="${3:-32}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
if (( $(nproc) < 2 )); then
    echo "end_to_end_throughput.sh needs 2 cores: one for the server, one for the load" >&2
    exit 2
fi

(cd "$root" && cargo build --release -q -p scalewatch-benches --bin throughput_server --bin throughput_load)
server="$target/release/throughput_server"
load="$target/release/throughput_load"
port=$((20000 + RANDOM % 20000))

run() { # MODE -> prints requests/s
    local mode="$1" pid rate
    taskset -c 0 "$server" "$mode" "127.0.0.1:$port" >/dev/null &
    pid=$!
    rate="$(taskset -c 1 "$load" "http://127.0.0.1:$port/hello" "$connections" "$seconds")" || {
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; return 1; }
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$rate"
}

bare=(); identity=(); layer=()
modes=(bare identity layer)
for ((i = 1; i <= rounds; i++)); do
    for ((j = 0; j < 3; j++)); do
        mode="${modes[(i + j) % 3]}"
        rate="$(run "$mode")"
        case "$mode" in
            bare) bare+=("$rate") ;;
            identity) identity+=("$rate") ;;
            layer) layer+=("$rate") ;;
        esac
        echo "round $i: $mode $rate req/s" >&2
    done
done

python3 - "${bare[*]}" "${identity[*]}" "${layer[*]}" "$rounds" "$seconds" "$connections" <<'PY'
import statistics, sys
bare = [float(x) for x in sys.argv[1].split()]
identity = [float(x) for x in sys.argv[2].split()]
layer = [float(x) for x in sys.argv[3].split()]
rounds, seconds, connections = sys.argv[4:7]
mb, mi, ml = statistics.median(bare), statistics.median(identity), statistics.median(layer)
print(f"B2: {rounds} interleaved rounds of {seconds} s, {connections} connections, server on core 0 "
      f"(1 worker), load on core 1")
print(f"| run | median req/s | all runs |")
print(f"|---|---:|---|")
print(f"| bare axum | {mb:,.0f} | {', '.join(f'{x:,.0f}' for x in bare)} |")
print(f"| with an identity layer | {mi:,.0f} | {', '.join(f'{x:,.0f}' for x in identity)} |")
print(f"| with ServerTierLayer | {ml:,.0f} | {', '.join(f'{x:,.0f}' for x in layer)} |")
verdict = "met" if ml / mb >= 0.98 else "missed"
print(f"instrumented / bare = {ml / mb:.3f} (budget >= 0.98: {verdict})")
print(f"identity layer / bare = {mi / mb:.3f}; instrumented / identity layer = {ml / mi:.3f}")
PY
