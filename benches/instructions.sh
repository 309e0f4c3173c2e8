#!/usr/bin/env bash
# Instructions per request through the server-layer bench's router (callgrind, so the
# figures are deterministic where criterion's move by hundreds of ns on a shared VM): bare,
# identity layer, ServerTierLayer off, ServerTierLayer on. Each subject runs twice, with
# 2,000 and 4,000 counted requests after a 1,000-request warm-up; the difference over 2,000
# is the per-request figure, free of start-up and collection costs.
#
#   benches/instructions.sh
#
# Needs valgrind; honours CARGO_TARGET_DIR.
set -euo pipefail

if ! command -v valgrind >/dev/null; then
    echo "instructions.sh needs valgrind (Debian/Ubuntu: apt-get install valgrind)" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p scalewatch-benches --example instructions)
probe="$target/release/examples/instructions"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() { # SUBJECT REQUESTS -> instructions counted in `measured`
    valgrind --tool=callgrind --toggle-collect='instructions::measured' \
        --callgrind-out-file="$out/$1-$2.out" "$probe" "$1" "$2" 2>&1 |
        sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p'
}

declare -A per
for subject in bare identity off on; do
    small="$(count "$subject" 2000)"
    large="$(count "$subject" 4000)"
    per[$subject]=$(((large - small) / 2000))
done

echo "| subject | instructions per request | over the identity layer |"
echo "|---|---:|---:|"
for subject in bare identity off on; do
    echo "| $subject | ${per[$subject]} | $((per[$subject] - per[identity])) |"
done
