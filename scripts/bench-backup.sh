#!/usr/bin/env bash
# Backup streaming benchmark (not a test): `switchyard backup stream` of one input file to file:// and to
# a local S3 server (moto_server), across chunk sizes, against `cat input > file` of the same bytes on
# the same disk. Then the issue's memory check: a 2 GiB stream at 64 MiB chunks, parallel 4, peak RSS
# against the bound the command prints. Prints a Markdown table; cleans up everything it started.
#
#   BENCH_SIZE=1GiB            input size for file:// (random bytes: nothing to compress)
#   BENCH_S3_SIZE=256MiB       input size for s3:// (moto keeps objects in Python memory)
#   BENCH_CHUNKS="4MiB 16MiB 64MiB 256MiB"
#   BENCH_PARALLEL=4
#   BENCH_MEMORY_SIZE=2GiB     size of the memory-bound run (0 skips it)
#   BENCH_DIR=<dir>            where input and file:// store go (default: a temp dir under /var/tmp)
#   SWITCHYARD_BIN=<path>      use this binary instead of building target/release/switchyard
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

size="${BENCH_SIZE:-1GiB}"
s3_size="${BENCH_S3_SIZE:-256MiB}"
chunks="${BENCH_CHUNKS:-4MiB 16MiB 64MiB 256MiB}"
parallel="${BENCH_PARALLEL:-4}"
mem_size="${BENCH_MEMORY_SIZE:-2GiB}"
venv="${SWITCHYARD_VENV:-$HOME/.local/share/switchyard/venv}"
export SWITCHYARD_LOG="${SWITCHYARD_LOG:-warn}"

. scripts/lib/bench.sh
bytes() { # 1GiB → 1073741824
    python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(KiB|MiB|GiB)?',sys.argv[1]); \
print(int(m.group(1))*{None:1,'KiB':1<<10,'MiB':1<<20,'GiB':1<<30}[m.group(2)])" "$1"
}

use_switchyard_bin
moto="$venv/bin/moto_server"
command -v moto_server >/dev/null && moto="$(command -v moto_server)"

dir="${BENCH_DIR:-$(mktemp -d /var/tmp/bench-backup.XXXXXX)}"
# The input and the file:// store live in $dir (on disk, not tmpfs); kept when BENCH_DIR names it.
bench_cleanup_extra() { [ -n "${BENCH_DIR:-}" ] || rm -rf "$dir"; }
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
rate() { python3 -c "import sys; b,s=float(sys.argv[1]),float(sys.argv[2]); print(f'{b/s/1048576:.0f}')" "$1" "$2"; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$1" "$2"; }

n=$(bytes "$size")
say "input: $size of random bytes in $dir"
head -c "$n" /dev/urandom >"$dir/input"
sync

rows=()
stream() { # dest chunk extra... ; prints "MiB/s peak bound", MiB/s from wall time including a sync
    local dest="$1" chunk="$2"; shift 2
    local id="b$RANDOM$RANDOM" t0 t1 n
    n=$(stat -L -c %s "$dir/in.cur")
    sync
    t0=$(now)
    "$bin" backup stream --dest "$dest" --name "$id" --chunk-size "$chunk" --parallel "$parallel" \
        -q --output json "$@" <"$dir/in.cur" >"$dir/report.json" 2>"$dir/stderr" || {
        cat "$dir/stderr" >&2
        return 1
    }
    sync
    t1=$(now)
    echo "$(rate "$n" "$(python3 -c "print($t1 - $t0)")") $(json "$dir/report.json" 'peak_rss>>20') $(json "$dir/report.json" 'memory_bound["total"]>>20')"
}

copy_rate() { # MiB/s of `cat input > file` on the same disk, sync included
    local n
    n=$(stat -L -c %s "$dir/in.cur")
    rm -f "$dir/copy"
    sync
    local t0 t1
    t0=$(now); cat "$dir/in.cur" >"$dir/copy"; sync; t1=$(now)
    rm -f "$dir/copy"
    rate "$n" "$(python3 -c "print($t1 - $t0)")"
}

printf '%s\n' "$(openssl rand -hex 32)" >"$dir/key"
ln -sf "$dir/input" "$dir/in.cur"
for chunk in $chunks; do
    # The baseline again before each chunk size: the machine is shared and its speed drifts.
    base=$(copy_rate)
    rows+=("| cat > file | — | $size | $base | — | — | 1.00 |")
    for mode in plain aes+zstd; do
        extra=()
        [ "$mode" = "aes+zstd" ] && extra=(--encrypt-key-file "$dir/key" --compress zstd)
        say "file:// $chunk $mode"
        read -r mbs peak bound < <(stream "file://$dir/store" "$chunk" "${extra[@]}")
        rm -rf "$dir/store"
        ratio=$(python3 -c "print(f'{$mbs/$base:.2f}')")
        rows+=("| file:// $mode | $chunk | $size | $mbs | $peak | $bound | $ratio |")
    done
done

if [ -x "$moto" ]; then
    port=$(free_port)
    "$moto" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    bench_pids+=" $!"
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.2
    done
    curl -s -X PUT "http://127.0.0.1:$port/bench" >/dev/null
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
        AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    sn=$(bytes "$s3_size")
    head -c "$sn" "$dir/input" >"$dir/input.s3"
    ln -sf "$dir/input.s3" "$dir/in.cur"
    s3base=$(copy_rate)
    rows+=("| cat > file | — | $s3_size | $s3base | — | — | 1.00 |")
    for chunk in $chunks; do
        say "s3:// (moto) $chunk"
        read -r mbs peak bound < <(stream "s3://bench/b" "$chunk")
        "$bin" backup prune --src s3://bench/b --keep 0 --yes >/dev/null 2>&1 || true
        ratio=$(python3 -c "print(f'{$mbs/$s3base:.2f}')")
        rows+=("| s3:// moto plain | $chunk | $s3_size | $mbs | $peak | $bound | $ratio |")
    done
else
    say "moto_server not found ($moto): skipping s3:// (run scripts/install-deps.sh)"
fi

mem_row=""
if [ "$mem_size" != "0" ]; then
    mn=$(bytes "$mem_size")
    say "memory: $mem_size at 64MiB chunks, parallel 4, to file://"
    head -c "$mn" /dev/zero | "$bin" backup stream --dest "file://$dir/memstore" --name mem \
        --chunk-size 64MiB --parallel 4 -q --output json >"$dir/mem.json"
    rm -rf "$dir/memstore"
    mem_row="memory check: $mem_size at 64 MiB × (4 + 1): peak RSS $(json "$dir/mem.json" 'peak_rss>>20') MiB, \
bound $(json "$dir/mem.json" 'memory_bound["total"]>>20') MiB, $(json "$dir/mem.json" 'round(throughput/1048576)') MiB/s"
fi

echo
echo "parallel $parallel, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| target | chunk | input | MiB/s | peak RSS MiB | bound MiB | vs cat |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
[ -n "$mem_row" ] && { echo; echo "$mem_row"; }
