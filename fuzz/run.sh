#!/usr/bin/env bash
# Builds and runs the parse_validate_compile fuzz target for a while (for humans, not CI).
#
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]     (default: 60 seconds)
#
# Environment:
#   TARGET     fuzz target name            (default: parse_validate_compile)
#   SANITIZER  address | none | ...        (default: none — the project forbids unsafe code, and
#                                           without ASan the target runs about twice as fast)
#   JOBS       parallel fuzzing jobs       (default: 1; the machine has 2 cores)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain is stable, so RUSTC_BOOTSTRAP=1
# lets cargo-fuzz use the nightly-only flags it needs. The corpus is seeded from examples/*.json
# and fuzz/regressions/*.json; findings land in fuzz/artifacts/<target>/ (both are gitignored).
# Reproduce a finding: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
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

corpus="$here/corpus/$target"
mkdir -p "$corpus" "$here/artifacts/$target"
# Seeds: the example workflows and every recorded regression input.
for seed in "$root"/examples/*.json "$here"/regressions/*.json; do
    [ -e "$seed" ] && cp -f "$seed" "$corpus/seed-$(basename "$seed")"
done

cargo fuzz build --sanitizer "$sanitizer" "$target"
exec cargo fuzz run --sanitizer "$sanitizer" --jobs "$jobs" "$target" "$corpus" -- \
    -max_total_time="$seconds" \
    -timeout=10 \
    -rss_limit_mb=4096 \
    -max_len=65536 \
    -dict="$here/json.dict" \
    -print_final_stats=1 \
    "$@"
