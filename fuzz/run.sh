#!/usr/bin/env bash
# Builds and runs the parse_validate_compile fuzz target for a while (for humans, not CI).
#
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]     (default: 60 seconds)
#   fuzz/run.sh regressions                              runs each fuzz/regressions/*.json once
#                                                        and says which still fail
#
# Environment:
#   TARGET     fuzz target name            (default: parse_validate_compile)
#   SANITIZER  address | none | ...        (default: none — the project forbids unsafe code, and
#                                           without ASan the target runs about twice as fast)
#   JOBS       parallel fuzzing jobs       (default: 1; the machine has 2 cores)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain is stable, so RUSTC_BOOTSTRAP=1
# lets cargo-fuzz use the nightly-only flags it needs. The build keeps debug assertions and
# overflow checks on (cargo-fuzz's default), so arithmetic overflow counts as a crash. The corpus
# is seeded from examples/*.json; findings land in fuzz/artifacts/<target>/ (corpus and artifacts
# are gitignored). Known reproducers live in fuzz/regressions/ (not used as seeds: libFuzzer stops
# on a crashing seed). Reproduce one input:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none <target> <file>
set -euo pipefail

seconds="${1:-60}"
shift || true
target="${TARGET:-parse_validate_compile}"
sanitizer="${SANITIZER:-none}"
jobs="${JOBS:-1}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1

cargo fuzz build --sanitizer "$sanitizer" "$target"

if [ "$seconds" = "regressions" ]; then
    failing=0
    for input in "$here"/regressions/*.json; do
        [ -e "$input" ] || continue
        if cargo fuzz run --sanitizer "$sanitizer" "$target" "$input" >/dev/null 2>&1; then
            echo "ok      $(basename "$input")"
        else
            echo "FAILS   $(basename "$input")"
            failing=$((failing + 1))
        fi
    done
    echo "$failing regression input(s) still fail"
    exit $((failing > 0))
fi

corpus="$here/corpus/$target"
mkdir -p "$corpus" "$here/artifacts/$target"
# Seeds: the example workflows.
for seed in "$root"/examples/*.json; do
    [ -e "$seed" ] && cp -f "$seed" "$corpus/seed-$(basename "$seed")"
done
exec cargo fuzz run --sanitizer "$sanitizer" --jobs "$jobs" "$target" "$corpus" -- \
    -max_total_time="$seconds" \
    -timeout=10 \
    -rss_limit_mb=4096 \
    -max_len=16384 \
    -dict="$here/json.dict" \
    -print_final_stats=1 \
    "$@"
