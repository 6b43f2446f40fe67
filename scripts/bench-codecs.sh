#!/usr/bin/env bash
# Bench (not a test): switchyard's in-process codecs against the Debian CLI tools on the same
# input, as stdin → stdout filters (`switchyard codec` vs gzip, pigz, lz4, zstd), release build.
#
#   scripts/bench-codecs.sh [SIZE:PROFILE | FILE] [REPEAT]     default 256MiB:innodb, 3
#
# Prints per method: ratio, compress and decompress MB/s (of input bytes) for both, and the
# throughput ratio builtin / cli (above 1: switchyard is faster). Each number is the best of
# REPEAT runs. Every output is decompressed by the other side too and compared with the input,
# so the formats are checked to interoperate while timing.
set -euo pipefail

what=${1:-256MiB:innodb}
repeat=${2:-3}
cores=$(nproc)
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=$PWD/target/release/switchyard
for tool in gzip pigz lz4 zstd; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install $(grep -v '^#' scripts/deps/sst.apt | tr '\n' ' ')" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -f $what ]]; then
    cp "$what" "$tmp/input"
else
    "$bin" codec generate "$what" > "$tmp/input"
fi
size=$(stat -c %s "$tmp/input")

# best_time OUT CMD...: runs CMD < input > OUT REPEAT times, prints the fastest wall time (s).
best_time() {
    local in=$1 out=$2 best="" t
    shift 2
    for _ in $(seq "$repeat"); do
        local TIMEFORMAT=%R
        t=$( { time "$@" < "$in" > "$out"; } 2>&1 )
        if [[ -z $best ]] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$t
        fi
    done
    echo "$best"
}

mbs() { awk -v b="$size" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }

echo "input: $what, $size bytes; $cores cores; best of $repeat; MB/s of input bytes"
printf '%-10s %7s %7s | %9s %9s %6s | %9s %9s %6s\n' method ratio-in ratio-cli \
    comp-in comp-cli in/cli decomp-in decomp-cli in/cli
# method | Debian compressor | Debian decompressor
while IFS='|' read -r method ccmd dcmd; do
    threads=()
    case $method in pigz|pigz-fast|zstd-T) threads=(--threads "$cores") ;; esac
    # shellcheck disable=SC2086 # the tool command lines are meant to split
    {
        tc_in=$(best_time "$tmp/input" "$tmp/in.z" "$bin" codec compress --method "$method" "${threads[@]}")
        tc_cli=$(best_time "$tmp/input" "$tmp/cli.z" $ccmd)
        # Each side decompresses its own output; then the other side's, checked against the input.
        td_in=$(best_time "$tmp/in.z" "$tmp/out" "$bin" codec decompress --method "$method")
        cmp -s "$tmp/out" "$tmp/input" || { echo "$method: builtin round trip differs" >&2; exit 1; }
        td_cli=$(best_time "$tmp/cli.z" "$tmp/out" $dcmd)
        cmp -s "$tmp/out" "$tmp/input" || { echo "$method: cli round trip differs" >&2; exit 1; }
        $dcmd < "$tmp/in.z" | cmp -s - "$tmp/input" || { echo "$method: $dcmd cannot read ours" >&2; exit 1; }
        "$bin" codec decompress --method "$method" < "$tmp/cli.z" | cmp -s - "$tmp/input" \
            || { echo "$method: we cannot read $ccmd output" >&2; exit 1; }
    }
    zin=$(stat -c %s "$tmp/in.z"); zcli=$(stat -c %s "$tmp/cli.z")
    printf '%-10s %7s %7s | %9s %9s %6s | %9s %9s %6s\n' "$method" \
        "$(awk -v a="$size" -v b="$zin" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$size" -v b="$zcli" 'BEGIN { printf "%.2f", a / b }')" \
        "$(mbs "$tc_in")" "$(mbs "$tc_cli")" "$(ratio "$tc_in" "$tc_cli")" \
        "$(mbs "$td_in")" "$(mbs "$td_cli")" "$(ratio "$td_in" "$td_cli")"
done <<EOF
gzip|gzip -6 -c|gzip -d -c
pigz|pigz -6 -p $cores -c|pigz -d -c
pigz-fast|pigz -1 -p $cores -c|pigz -d -c
lz4|lz4 -1 -c|lz4 -d -c
zstd-1|zstd -q -1 -c|zstd -q -d -c
zstd-3|zstd -q -3 -c|zstd -q -d -c
zstd-T|zstd -q -3 -T$cores -c|zstd -q -d -c
EOF

# No Debian tool: builtin only.
for method in snappy qpress; do
    tc=$(best_time "$tmp/input" "$tmp/in.z" "$bin" codec compress --method "$method")
    td=$(best_time "$tmp/in.z" "$tmp/out" "$bin" codec decompress --method "$method")
    cmp -s "$tmp/out" "$tmp/input" || { echo "$method: round trip differs" >&2; exit 1; }
    zin=$(stat -c %s "$tmp/in.z")
    printf '%-10s %7s %7s | %9s %9s %6s | %9s %9s %6s\n' "$method" \
        "$(awk -v a="$size" -v b="$zin" 'BEGIN { printf "%.2f", a / b }')" - \
        "$(mbs "$tc")" - - "$(mbs "$td")" - -
done
