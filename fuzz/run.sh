#!/usr/bin/env bash
# Builds and runs a fuzz target for a while (for humans, not CI).
#
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]     (default: 60 seconds)
#   fuzz/run.sh regressions                              runs each of the target's regression
#                                                        inputs once and says which still fail
#   TARGET=engine_run fuzz/run.sh 600                    the engine target for ten minutes
#
# Targets:
#   parse_validate_compile  workflow JSON → parse, validate, compile (seeds: examples/*.json;
#                           regressions: fuzz/regressions/*.json except engine-*)
#   engine_run              ASL definition + input → a run on the embedded engine (seeds: the
#                           conformance cases tests/asl-conformance/cases/*.json plus structured
#                           seeds; regressions: fuzz/regressions/engine-*.json, which cm-engine's
#                           `cargo test --test fuzz_regressions` also replays). A finding's case
#                           document (what to save as a regression) is printed by
#                           ENGINE_RUN_PRINT=1 cargo fuzz run --sanitizer none engine_run <file>
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
        case "$target:$(basename "$input")" in
            engine_run:engine-*) ;;
            engine_run:*) continue ;;
            *:engine-*) continue ;;
        esac
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
timeout=10
dict="$here/json.dict"
if [ "$target" = "engine_run" ]; then
    dict="$here/asl.dict"
    # Seeds: the conformance cases as case documents, and structured-mode inputs (first byte
    # 0x80 or above: mutate seed N) for a spread of seeds.
    for seed in "$root"/tests/asl-conformance/cases/*.json; do
        [ -e "$seed" ] && cp -f "$seed" "$corpus/seed-$(basename "$seed")"
    done
    for n in $(seq 0 7 700); do
        printf "\\x80\\x$(printf %02x $((n / 256)))\\x$(printf %02x $((n % 256)))\\x01\\x$(printf %02x $((n % 251)))\\x07" \
            >"$corpus/seed-structured-$n"
    done
    # An execution runs on a virtual clock within a small transition budget: anything slower
    # than this is a hang.
    timeout=20
else
    # Seeds: the example workflows.
    for seed in "$root"/examples/*.json; do
        [ -e "$seed" ] && cp -f "$seed" "$corpus/seed-$(basename "$seed")"
    done
fi
exec cargo fuzz run --sanitizer "$sanitizer" --jobs "$jobs" "$target" "$corpus" -- \
    -max_total_time="$seconds" \
    -timeout="$timeout" \
    -rss_limit_mb=4096 \
    -max_len=16384 \
    -dict="$dict" \
    -print_final_stats=1 \
    "$@"
