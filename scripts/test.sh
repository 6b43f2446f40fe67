#!/usr/bin/env bash
# The one test command (README; CI runs it through .ci/run): installs what is missing, then
# checks formatting and the code's structure (scripts/module-graph.py, scripts/long-functions.py),
# runs clippy with warnings as errors, runs every test of the workspace
# against real mariadbd processes and runs the fuzz targets briefly. Exits non-zero on the first
# failing step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
# Test fixtures find Python tools (e.g. moto_server) in the venv install-deps.sh fills.
export PATH="$PATH:${SWITCHYARD_VENV:-$HOME/.local/share/switchyard/venv}/bin"
if [ "${CI:-}" = "true" ]; then
    # A fresh clone builds once; incremental artefacts would only cost time and disk.
    export CARGO_INCREMENTAL=0
fi

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --all -- --check"
cargo fmt --all -- --check
step "structure: no circle between top-level modules, no non-test function over 120 lines"
python3 scripts/module-graph.py
python3 scripts/long-functions.py --limit 120 src proxy/src
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test --workspace"
cargo test --workspace --no-fail-fast
step "fuzz targets: saved crashes, then ${FUZZ_CI_SECONDS:-20} s each from fuzz/corpus"
bash scripts/fuzz.sh --ci
