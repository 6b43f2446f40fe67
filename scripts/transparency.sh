#!/usr/bin/env bash
# The differential transparency tester (tests/transparency.rs) for as long as asked: random session
# scripts run concurrently through the proxy and directly, by mysql_async (text and binary),
# PyMySQL, the mariadb CLI and a raw client with session tracking, transcripts compared per session.
#
#   scripts/transparency.sh [--statements N] [--duration SECONDS] [--seed S] [--sessions N]
#                           [--families lid,row_count,...] [--clients async_text,track,...]
#                           [--pool N] [--dir DIR] [--self-check]
#
# --statements: statements through the proxy, all clients together (default 100000), in rounds of
# at most 200000, each with the next seed; --duration: more rounds until that many seconds passed.
# E.g. the 1,000,000-statement run: scripts/transparency.sh --statements 1000000
# Scripts, transcripts and report.txt stay in --dir (default: a new temp dir, printed).
# --self-check: both sides straight to the server, the tester's own check for false differences.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --statements) export TRANSPARENCY_STATEMENTS="$2"; shift 2 ;;
        --duration) export TRANSPARENCY_DURATION="$2"; shift 2 ;;
        --seed) export TRANSPARENCY_SEED="$2"; shift 2 ;;
        --sessions) export TRANSPARENCY_SESSIONS="$2"; shift 2 ;;
        --families) export TRANSPARENCY_FAMILIES="$2"; shift 2 ;;
        --clients) export TRANSPARENCY_CLIENTS="$2"; shift 2 ;;
        --pool) export TRANSPARENCY_POOL="$2"; shift 2 ;;
        --dir) export TRANSPARENCY_DIR="$2"; shift 2 ;;
        --self-check) export TRANSPARENCY_SELF_CHECK=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "transparency.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
if [ -z "${TRANSPARENCY_DIR:-}" ]; then
    TRANSPARENCY_DIR="$(mktemp -d -t transparency.XXXXXX)"
    export TRANSPARENCY_DIR
fi
echo "transparency: scripts, transcripts and report in $TRANSPARENCY_DIR" >&2
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
rc=0
cargo test --test transparency -- --nocapture || rc=$?
echo "transparency: report: $TRANSPARENCY_DIR/report.txt" >&2
exit $rc
