# Sourced by the bench scripts that run criterion (`source benches/options.sh "$@"`): the
# repository root, an absolute CARGO_TARGET_DIR, and the options they all take.
#
#   (no option)     run with --warm-up-time 1 --measurement-time 3
#   -- ARGS...      run with these criterion arguments instead
#   --no-run        only print the figures of the last runs
#
# Sets `root`, `target` (= CARGO_TARGET_DIR, exported), `run` (1 or 0) and `args`.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# cargo runs a bench from its package directory: make a relative target dir absolute from
# here, so that cargo and criterion agree on where the estimates go.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
target="$CARGO_TARGET_DIR"

run=1
args=(--warm-up-time 1 --measurement-time 3)
case "${1:-}" in
    --no-run) run=0 ;;
    --) shift; args=("$@") ;;
    "") ;;
    *) echo "usage: $0 [--no-run | -- CRITERION_ARGS...]" >&2; exit 2 ;;
esac
