#!/usr/bin/env bash
# Runs the server-layer bench (budgets B1 and B8 in the README's Overhead section) and prints its figures,
# all from that one run, as a markdown table.
#
#   benches/server_layer_report.sh                 # run with --warm-up-time 1 --measurement-time 3
#   benches/server_layer_report.sh -- ARGS...      # run with these criterion arguments instead
#   benches/server_layer_report.sh --no-run        # only print the figures of the last run
#
# Honours CARGO_TARGET_DIR (and CRITERION_HOME); needs cargo and python3, nothing else.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/options.sh" "$@"
estimates="${CRITERION_HOME:-$target/criterion}/server_layer"

if [[ $run == 1 ]]; then
    (cd "$root" && cargo bench -p scalewatch-benches --bench server_layer_vs_peers -- "${args[@]}") >&2
fi

load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
echo "Machine: $(nproc) cores${cpu:+, $cpu}. Command: \`benches/server_layer_report.sh${*:+ $*}\`" \
    "(criterion: ${args[*]}). Load average at report time: ${load:-unknown}."
if [[ -n "$load" ]] && awk -v l="${load%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
    echo
    echo "**Warning: the machine was busy (load ${load%% *} on $(nproc) cores); rerun when it is idle.**"
fi
echo

python3 - "$estimates" <<'PY'
import json, os, sys

base = sys.argv[1]

def ns(bench):
    """Criterion's point estimate (slope when sampled linearly, else mean), in ns."""
    path = os.path.join(base, bench, "new", "estimates.json")
    try:
        with open(path) as f:
            e = json.load(f)
    except FileNotFoundError:
        return None
    return (e.get("slope") or e["mean"])["point_estimate"]

def fmt(v, unit=" ns"):
    return "n/a" if v is None else f"{v:,.0f}{unit}"

def ratio(a, b):
    return "n/a" if a is None or not b else f"{a / b:.2f}×"

t = {b: ns(b) for b in [
    "bare", "identity", "scalewatch", "scalewatch_limit", "axum_otel_metrics",
    "otel_instrumentation_tower", "sdk_record_unbound", "sdk_record_bound",
    "mt2_bare", "mt2_scalewatch",
]}
if t["bare"] is None:
    sys.exit(f"no estimates under {base}: run the bench first")

def added(b):
    return None if t[b] is None or t["identity"] is None else t[b] - t["identity"]

peers = ["axum_otel_metrics", "otel_instrumentation_tower"]
print("| subject (per request, in process) | time | over bare | over identity "
      "| ÷ axum-otel-metrics added | ÷ otel-instrumentation-tower added |")
print("|---|---|---|---|---|---|")
labels = {
    "bare": "bare axum router", "identity": "identity layer",
    "scalewatch": "scalewatch `ServerTierLayer`",
    "scalewatch_limit": "scalewatch, `concurrency_limit(1024)`",
    "axum_otel_metrics": "axum-otel-metrics 0.14", "otel_instrumentation_tower":
    "opentelemetry-instrumentation-tower 0.19 (metrics only)",
}
for b, label in labels.items():
    over_bare = None if t[b] is None else t[b] - t["bare"]
    cells = [ratio(added(b), added(p)) if b.startswith("scalewatch") else ""
             for p in peers]
    over_id = "" if b in ("bare", "identity") else fmt(added(b))
    print(f"| {label} | {fmt(t[b])} | {fmt(over_bare) if b != 'bare' else ''} | "
          f"{over_id} | {cells[0]} | {cells[1]} |")

print()
print("| anchor | time |")
print("|---|---|")
print(f"| OTel SDK 0.33 `Histogram<f64>::record`, 5 attributes, unbound | {fmt(t['sdk_record_unbound'], ' ns')} |")
print(f"| same, bound (`histogram.bind(&attrs).record(v)`) | {fmt(t['sdk_record_bound'], ' ns')} |")

print()
print("| budget | measured | target | verdict |")
print("|---|---|---|---|")
def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")
for b in ["scalewatch", "scalewatch_limit"]:
    a = added(b)
    # B1 against the SDK floor is judged in the client bench, which carries the floor.
    print(f"| B1 {b}: added over identity | {fmt(a)} | reference | |")
    for p in peers:
        pa = added(p)
        r = None if a is None or not pa else a / pa
        print(f"| B1 {b} added ÷ {p} added | {ratio(a, pa)} | ≤ 0.3× | "
              f"{verdict(None if r is None else r <= 0.3)} |")
# B8: two threads sharing one service; per-thread time per request against one thread.
for one, two in [("bare", "mt2_bare"), ("scalewatch", "mt2_scalewatch")]:
    if t[one] is None or t[two] is None:
        continue
    eff = t[one] / t[two]
    print(f"| B8 {one}, 2 threads: throughput ÷ (2 × one thread) | {eff:.2f} "
          f"({fmt(t[two])}/request/thread) | ≥ 0.90 | "
          f"{verdict(eff >= 0.9) if one == 'scalewatch' else 'reference'} |")
if t["mt2_bare"] and t["mt2_scalewatch"]:
    print(f"| B8 scalewatch added over bare at 2 threads (1 thread: "
          f"{fmt(t['scalewatch'] - t['bare'])}) | {fmt(t['mt2_scalewatch'] - t['mt2_bare'])} "
          f"| — | reference |")
PY
