#!/usr/bin/env bash
# RUSTC_WRAPPER for `FUZZ_INSTRUMENT=workspace bash scripts/fuzz.sh`: adds the coverage flags
# ($FUZZ_COVERAGE_FLAGS) when the crate being compiled is one of $FUZZ_OWN_CRATES, and runs rustc
# unchanged for every other crate. RUSTFLAGS cannot do this: it applies to every crate alike.
set -euo pipefail
rustc=$1
shift
name=
prev=
for arg in "$@"; do
    if [ "$prev" = "--crate-name" ]; then
        name=$arg
    fi
    prev=$arg
done
case " ${FUZZ_OWN_CRATES:-} " in
*" $name "*)
    # shellcheck disable=SC2086 # the flags are a space-separated list by design
    exec "$rustc" "$@" ${FUZZ_COVERAGE_FLAGS:-}
    ;;
esac
exec "$rustc" "$@"
