#!/usr/bin/env bash
# Runs the protocol fuzz targets for a while each (not part of the test suite).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60); FUZZ_TARGETS="cnf admin_sql" picks targets
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the installed stable toolchain build them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in ${FUZZ_TARGETS:-response_tracker handshake admin_sql cnf query_rules}; do
  echo "== fuzzing $target for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$secs"
done
