#!/usr/bin/env bash
# The soak (not part of the test suite): switchyard under mixed load and injected faults for
# DURATION (default 1h; e.g. 20m, 3600s), sampled every 10 s. What runs and how the run is judged:
# scripts/soak.py. Results in $SOAK_DIR (default target/soak/TIMESTAMP): soak.csv, faults.csv,
# soak.png, the proxy's and sysbench's logs. Exit code 0 when the run passes, 1 when it does not.
#
#   SWITCHYARD_BIN     the binary to soak (default: a release build made here)
#   SOAK_FAULT_SCALE   0.1 injects the faults ten times as often (to check the script quickly)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${1:-1h}
bash scripts/install-deps.sh
venv="${SWITCHYARD_VENV:-$HOME/.local/share/switchyard/venv}"
# The picture only: not a test dependency, so not in scripts/deps.
"$venv/bin/python" -c 'import matplotlib' 2>/dev/null ||
    "$venv/bin/python" -m pip install -q --disable-pip-version-check matplotlib
if [ -z "${SWITCHYARD_BIN:-}" ]; then
    cargo build --release --bin switchyard
    SWITCHYARD_BIN="$PWD/target/release/switchyard"
fi
out="${SOAK_DIR:-$PWD/target/soak/$(date -u +%Y%m%d-%H%M%S)}"
exec "$venv/bin/python" scripts/soak.py "$SWITCHYARD_BIN" "$out" "$duration"
