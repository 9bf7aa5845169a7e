#!/usr/bin/env bash
# Fuzz smoke: every cargo-fuzz target (fuzz/) for a fixed number of runs, on
# the stable toolchain. Exits non-zero on a crash, a panic, a timeout or an
# out-of-memory (libFuzzer writes the input to fuzz/artifacts/<target>/).
#
#   bash scripts/fuzz_smoke.sh                 # every target
#   bash scripts/fuzz_smoke.sh snapshot ops    # some
#   FUZZ_SCALE=10 bash scripts/fuzz_smoke.sh   # 10x the runs
#
# How it works without nightly: cargo-fuzz passes -Z flags to rustc, which
# RUSTC_BOOTSTRAP=1 allows on a stable compiler, and `--sanitizer none`
# drops AddressSanitizer (it needs a nightly-only -Zsanitizer and a matching
# std). Coverage instrumentation (SanitizerCoverage) and libFuzzer itself
# work on stable. `-a` keeps debug assertions (overflow checks) in the
# optimised build.
#
# cargo-fuzz is installed once, pinned, under the target directory
# ($CARGO_TARGET_DIR or target/): tools/bin/cargo-fuzz.
#
# Not flaky: each target starts from its committed seeds (fuzz/seeds/) in a
# fresh scratch corpus, with a fixed libFuzzer seed and a fixed number of
# runs, so a given commit fuzzes the same inputs every time; a generous
# per-input timeout and memory limit leave room for a slow, shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

CARGO_FUZZ_VERSION=0.13.2
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
tools=$target_dir/tools
fuzz_target_dir=$target_dir/fuzz
work=$target_dir/fuzz-smoke
scale=${FUZZ_SCALE:-1}

if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$tools"
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1

# Runs per target: about 15-30 s each on a 2-core machine (measured from
# the seeds; the op-sequence targets build and reopen a ledger per input,
# so they run ~1000x slower than the decoders).
declare -A runs=(
    [segment]=220000
    [snapshot]=3000000
    [snapshot_file]=40000
    [snapshot_sections]=2000000
    [manifest]=3000000
    [entry]=2500000
    [jsonl_record]=1000000
    [jsonl_event]=1500000
    [lineage_jsonl]=1000000
    [policy]=1300000
    [ops]=4500
    [ops_arbitrary]=1500
    [crawl]=300000
)

cd fuzz
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
for t in "${targets[@]}"; do
    [ -n "${runs[$t]:-}" ] || { echo "fuzz_smoke.sh: no run count for target $t" >&2; exit 1; }
done

flags=(--sanitizer none -O -a --target-dir "$fuzz_target_dir")
echo "== building the fuzz targets (stable toolchain, RUSTC_BOOTSTRAP=1, --sanitizer none)"
cargo fuzz build "${flags[@]}"

for t in "${targets[@]}"; do
    n=$((runs[$t] * scale))
    rm -rf "$work/corpus/$t"
    mkdir -p "$work/corpus/$t"
    echo "== fuzz $t: $n runs"
    start=$SECONDS
    if ! cargo fuzz run "${flags[@]}" "$t" "$work/corpus/$t" "seeds/$t" -- \
        -seed=1 -runs="$n" -timeout=120 -rss_limit_mb=2048 \
        -malloc_limit_mb=2048 -print_final_stats=1 >"$work/$t.log" 2>&1; then
        tail -n 60 "$work/$t.log"
        echo "fuzz_smoke.sh: target $t failed (input in fuzz/artifacts/$t/; reproduce:" \
            "RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $t <file>)" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^Done' "$work/$t.log" | tr '\n' ' '
    echo "($((SECONDS - start)) s)"
done
echo "== fuzz smoke: ${#targets[@]} targets, no crash"
