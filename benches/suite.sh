#!/usr/bin/env bash
# Runs every overhead bench (budgets B1 to B8 in the README's Overhead section) one after the other and
# prints one report: each budget against the baseline measured in the same bench run. Then
# the end-to-end B2 comparison (benches/end_to_end_throughput.sh, 15 rounds of 3 s) and, where valgrind is
# installed, the server layer's instructions per request (benches/instructions.sh).
#
#   benches/suite.sh                  # run with --warm-up-time 1 --measurement-time 3
#   benches/suite.sh -- ARGS...       # run with these criterion arguments instead
#   benches/suite.sh --no-run         # only print the figures of the last runs
#
# About 13 minutes on 2 cores. Honours CARGO_TARGET_DIR (and CRITERION_HOME); needs cargo
# and python3. Benches on a shared machine move by tens of percent between runs: compare
# ratios within one report, and rerun when the load warning shows.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/options.sh" "$@"
criterion="${CRITERION_HOME:-$target/criterion}"
out="$target/bench-suite"
mkdir -p "$out"

# package, bench target, features: each bench's own table (if it prints one) is kept.
benches=(
    "scalewatch-benches server_layer_vs_peers -"
    "scalewatch-tower client_layer -"
    "scalewatch-sync lock_overhead parking_lot"
    "scalewatch-state keyspace_access -"
    "scalewatch-benches telemetry_off -"
    "scalewatch-benches heap_per_series -"
    "scalewatch-benches recording_during_export -"
)
if [[ $run == 1 ]]; then
    for entry in "${benches[@]}"; do
        read -r package bench features <<<"$entry"
        feature_args=()
        [[ $features != - ]] && feature_args=(--features "$features")
        echo "== $package --bench $bench" >&2
        (cd "$root" && cargo bench -p "$package" "${feature_args[@]}" --bench "$bench" \
            -- "${args[@]}") >"$out/$bench.txt"
    done
    echo "== benches/end_to_end_throughput.sh 15 3" >&2
    bash "$root/benches/end_to_end_throughput.sh" 15 3 >"$out/b2.txt"
    if command -v valgrind >/dev/null; then
        echo "== benches/instructions.sh" >&2
        bash "$root/benches/instructions.sh" >"$out/instructions.txt"
    else
        echo "valgrind is not installed: no instruction counts" >"$out/instructions.txt"
    fi
fi

load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
echo "# Overhead budgets B1 to B8"
echo
echo "Machine: $(nproc) cores${cpu:+, $cpu}. Command: \`benches/suite.sh${*:+ $*}\`" \
    "(criterion: ${args[*]}). Load average at report time: ${load:-unknown}."
echo
echo "## B1 and B8: the server layer against its peers"
echo
bash "$root/benches/server_layer_report.sh" --no-run | tail -n +2
echo
echo "## B1 and B5: the server layer's instructions per request (\`benches/instructions.sh\`)"
echo
cat "$out/instructions.txt" 2>/dev/null || echo "(not run)"
echo
echo "## B2: end to end (\`benches/end_to_end_throughput.sh 15 3\`)"
echo
cat "$out/b2.txt" 2>/dev/null || echo "(not run)"

python3 - "$criterion" <<'PY'
import json, os, sys

base = sys.argv[1]

def ns(path):
    """Criterion's point estimate (slope when sampled linearly, else mean), in ns."""
    try:
        with open(os.path.join(base, path, "new", "estimates.json")) as f:
            e = json.load(f)
    except FileNotFoundError:
        return None
    return (e.get("slope") or e["mean"])["point_estimate"]

def fmt(v):
    return "n/a" if v is None else f"{v:,.1f} ns"

def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")

rows = []

def added(label, subject, anchor, budget_ns=None):
    s, a = ns(subject), ns(anchor)
    d = None if s is None or a is None else s - a
    if budget_ns is None:
        rows.append((label, f"{fmt(s)} − {fmt(a)} = {fmt(d)}", "reference", ""))
        return
    rows.append((label, f"{fmt(s)} − {fmt(a)} = {fmt(d)}", f"≤ {budget_ns:g} ns",
                 verdict(None if d is None else d <= budget_ns)))

def ratio(label, subject, anchor, budget, at_most=True):
    s, a = ns(subject), ns(anchor)
    r = None if s is None or not a else s / a
    shown = "n/a" if r is None else f"{fmt(s)} ÷ {fmt(a)} = {r:.2f}×"
    ok = None if r is None else (r <= budget if at_most else r >= budget)
    rows.append((label, shown, f"{'≤' if at_most else '≥'} {budget:g}×", verdict(ok)))

def scaling(label, one, two, reference=False):
    a, b = ns(one), ns(two)
    r = None if a is None or not b else a / b
    shown = "n/a" if r is None else f"{r:.2f} of 2 × one thread"
    rows.append((label, shown, "≥ 0.9" if not reference else "reference",
                 "" if reference else verdict(None if r is None else r >= 0.9)))

added("B1 client layer over the SDK floor (wrap, two clock reads, one bound record held by "
      "reference count)", "client/client_layer", "client/floor_sdk_record_owned", 40)
added("B1 reference: client layer over identity", "client/client_layer", "client/identity")
added("B1 reference: a layer that only wraps the future", "client/floor_passthrough",
      "client/identity")
added("B1 reference: wrap, two clock reads, one bound SDK histogram record",
      "client/floor_sdk_record", "client/identity")
added("B1 reference: the same, holding the histogram by reference count",
      "client/floor_sdk_record_owned", "client/identity")
# No floor is subtracted here: within 40 ns of the bare work is within 40 ns of any floor.
added("B1 `Tier::run` over the bare closure", "disabled/run_enabled", "disabled/run_bare", 40)
added("B1 `Tier::instrument` over the bare future", "disabled/instrument_enabled",
      "disabled/instrument_bare", 40)
# The locks of `--bench lock_overhead`'s `uncontended` group: the id prefix of each
# (`uncontended/<prefix>_bare`, `_instrumented`, `_off`) and its name in the report.
locks = [("std", "std `Mutex`"), ("parking_lot", "parking_lot `Mutex`"),
         ("std-rwlock-read", "std `RwLock` read"), ("std-rwlock-write", "std `RwLock` write")]
for prefix, lock in locks:
    ratio(f"B3 {lock}, uncontended", f"uncontended/{prefix}_instrumented",
          f"uncontended/{prefix}_bare", 1.5)
ratio("B4 keyspace access ÷ `HashMap` get", "record_one_access/keyspace_read",
      "record_one_access/hashmap_get", 0.5)
added("B5 `Tier::run`, off", "disabled/run_sdk_disabled", "disabled/run_bare", 1)
added("B5 `Tier::instrument`, off", "disabled/instrument_sdk_disabled",
      "disabled/instrument_bare", 1)
for prefix, lock in locks:
    added(f"B5 {lock}, off", f"uncontended/{prefix}_off", f"uncontended/{prefix}_bare", 1)
added("B5 keyspace access, off", "record_one_access/keyspace_read_off",
      "record_one_access/bare", 1)
added("B5 client layer, off", "client/client_layer_off", "client/identity", 1)
added("B5 server layer, off", "disabled/http_scalewatch_sdk_disabled",
      "disabled/http_identity", 1)
scaling("B8 keyspace, 2 threads", "threads_recording_into_one_keyspace/keyspace/1",
        "threads_recording_into_one_keyspace/keyspace/2")
scaling("B8 reference: read-only `HashMap`, 2 threads",
        "threads_recording_into_one_keyspace/hashmap_get/1",
        "threads_recording_into_one_keyspace/hashmap_get/2", reference=True)
scaling("B8 reference: arithmetic only, 2 threads",
        "threads_recording_into_one_keyspace/mix/1",
        "threads_recording_into_one_keyspace/mix/2", reference=True)

print()
print("## B1, B3, B4, B5 and B8 on the other hot paths")
print()
print("| budget | measured (same bench run) | target | verdict |")
print("|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
PY

for bench in heap_per_series recording_during_export; do
    echo
    echo "## From \`--bench $bench\`"
    echo
    if [[ -f "$out/$bench.txt" ]]; then
        sed -n '/^B[67]/,$p' "$out/$bench.txt"
    else
        echo "(not run)"
    fi
done
