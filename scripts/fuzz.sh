#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs them.
#
#   scripts/fuzz.sh --ci          what the test command runs: every target replays its saved crashes
#                                 (fuzz/regressions/TARGET) and then fuzzes for FUZZ_CI_SECONDS (default 20)
#                                 from the corpus kept in the repo; new inputs go to a scratch folder.
#   scripts/fuzz.sh [SECONDS]     a campaign: each target for SECONDS (default 600); new inputs are added to
#                                 fuzz/corpus/TARGET (minimise before committing: see fuzz/README.md).
#
#   FUZZ_TARGETS="statement cnf"  only these targets
#   FUZZ_RUNS=10000000            stop each target after that many executions instead of a time
#   FUZZ_SANITIZER=address        also AddressSanitizer (a nightly flag: built with RUSTC_BOOTSTRAP=1)
#   FUZZ_INSTRUMENT=workspace     coverage feedback from switchyard's own crates only (built apart, in
#                                 fuzz/target/workspace-only): for long campaigns of a target whose time goes
#                                 to a dependency fuzzed upstream (query_rules spends ~60 % of each execution
#                                 in the regex crate's instrumented compile); dependencies still run, their
#                                 panics still count, but they no longer steer the mutations.
#
# The machine has one stable toolchain and no cargo-fuzz, so this builds the libfuzzer-sys targets with
# the flags cargo-fuzz would pass (SanitizerCoverage through LLVM arguments, `--cfg fuzzing`, debug
# assertions and overflow checks) and runs the binaries directly. A crash stops the run with the input
# saved under fuzz/artifacts/TARGET; reproduce it with `fuzz/target/x86_64-unknown-linux-gnu/release/TARGET FILE`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ci=false
secs=600
if [ "${1:-}" = "--ci" ]; then
    ci=true
    secs=${FUZZ_CI_SECONDS:-20}
elif [ -n "${1:-}" ]; then
    secs=$1
fi
all_targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^switchyard-fuzz$')
targets=${FUZZ_TARGETS:-$all_targets}
triple=$(rustc -vV | sed -n 's/^host: //p')

coverage="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
coverage+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
coverage+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
flags="--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
target_dir=fuzz/target
case "${FUZZ_INSTRUMENT:-all}" in
all) flags="$coverage $flags" ;;
workspace)
    # A wrapper adds the coverage flags per crate; a target folder of its own keeps the two builds apart.
    export RUSTC_WRAPPER=$PWD/scripts/lib/fuzz-rustc.sh FUZZ_COVERAGE_FLAGS=$coverage
    export FUZZ_OWN_CRATES="switchyard switchyard_proxy $(echo $all_targets)"
    target_dir=fuzz/target/workspace-only
    ;;
*)
    echo "FUZZ_INSTRUMENT must be all or workspace, not '$FUZZ_INSTRUMENT'" >&2
    exit 2
    ;;
esac
if [ "${FUZZ_SANITIZER:-}" = "address" ]; then
    flags+=" -Zsanitizer=address"
    export RUSTC_BOOTSTRAP=1
fi

echo "== building fuzz targets ($triple)" >&2
# --target keeps build scripts and proc macros uninstrumented, as cargo-fuzz does.
RUSTFLAGS="$flags" cargo build --release --manifest-path fuzz/Cargo.toml --target "$triple" \
    --target-dir "$target_dir" $(for t in $targets; do printf -- '--bin %s ' "$t"; done)
bin_dir=$target_dir/$triple/release

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    if [ -d "fuzz/regressions/$t" ] && [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
        echo "== $t: replaying $(ls "fuzz/regressions/$t" | wc -l) saved crashes" >&2
        "$bin_dir/$t" "fuzz/regressions/$t"/* 2>"$scratch/$t.replay.log" || {
            tail -40 "$scratch/$t.replay.log" >&2
            exit 1
        }
    fi
    if [ -n "${FUZZ_RUNS:-}" ]; then
        limit="-runs=$FUZZ_RUNS"
    else
        limit="-max_total_time=$secs"
    fi
    if $ci; then
        mkdir -p "$scratch/$t"
        corpora=("$scratch/$t" "fuzz/corpus/$t")
    else
        corpora=("fuzz/corpus/$t")
    fi
    echo "== $t: fuzzing ($limit)" >&2
    if ! "$bin_dir/$t" "$limit" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" "${corpora[@]}" >"$scratch/$t.log" 2>&1; then
        tail -60 "$scratch/$t.log" >&2
        echo "fuzz target $t failed: the input is in fuzz/artifacts/$t/; once fixed, copy it to" \
            "fuzz/regressions/$t/ so every run replays it" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ *DONE' "$scratch/$t.log" \
        | sed "s/^/   $t: /" >&2 || true
done
