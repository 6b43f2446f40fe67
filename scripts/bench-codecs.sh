#!/usr/bin/env bash
# Bench (not a test): switchyard's in-process codecs against the Debian CLI tools on the same
# input, as stdin → stdout filters (`switchyard codec` vs gzip, pigz, lz4, zstd), release build.
#
#   scripts/bench-codecs.sh [SIZE:PROFILE | FILE] [REPEAT]     default 256MiB:innodb, 3
#
# Prints per method: ratio, then compress and decompress speed for both sides and the ratio
# ours / cli (above 1: switchyard is faster), as MB of input per second of wall time and per
# second of CPU time (user + system). On a shared machine read the CPU columns: wall time also
# counts the time other processes held the cores. Each number is the best of REPEAT runs. Every
# output is decompressed by the other side too and compared with the input, so the formats are
# checked to interoperate while timing.
set -euo pipefail

what=${1:-256MiB:innodb}
repeat=${2:-3}
cores=$(nproc)
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=$PWD/target/release/switchyard
for tool in gzip pigz lz4 zstd; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool: apt-get install $(grep -v '^#' scripts/deps/sst.apt | tr '\n' ' ')" >&2
        exit 1
    }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -f $what ]]; then
    cp "$what" "$tmp/input"
else
    "$bin" codec generate "$what" > "$tmp/input"
fi
size=$(stat -c %s "$tmp/input")

# best_time IN OUT CMD...: runs CMD < IN > OUT REPEAT times; prints the fastest wall time and
# the smallest CPU time (user + system), in seconds.
best_time() {
    local in=$1 out=$2 wall="" cpu="" t r u s c
    shift 2
    for _ in $(seq "$repeat"); do
        local TIMEFORMAT='%R %U %S'
        t=$( { time "$@" < "$in" > "$out"; } 2>&1 )
        read -r r u s <<< "$t"
        c=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
        wall=$(awk -v a="$r" -v b="$wall" 'BEGIN { print (b == "" || a < b) ? a : b }')
        cpu=$(awk -v a="$c" -v b="$cpu" 'BEGIN { print (b == "" || a < b) ? a : b }')
    done
    echo "$wall $cpu"
}

mbs() { awk -v b="$size" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
compression() { awk -v a="$size" -v b="$1" 'BEGIN { printf "%.2f", a / b }'; }

# row METHOD ZOURS ZCLI COMP_OURS COMP_CLI DECOMP_OURS DECOMP_CLI: each time is "wall cpu";
# ZCLI and the cli times are "-" when Debian has no tool.
row() {
    local method=$1 zours=$2 zcli=$3 k cells=() cli_ratio=-
    # compress ours / cli, decompress ours / cli: ("wall" "cpu")
    local -a co cc dk dc
    read -r -a co <<< "$4"
    read -r -a cc <<< "$5"
    read -r -a dk <<< "$6"
    read -r -a dc <<< "$7"
    for k in 0 1; do
        if [[ $zcli == - ]]; then
            cells+=("$(mbs "${co[$k]}")" - - "$(mbs "${dk[$k]}")" - -)
        else
            cli_ratio=$(compression "$zcli")
            cells+=("$(mbs "${co[$k]}")" "$(mbs "${cc[$k]}")" "$(ratio "${co[$k]}" "${cc[$k]}")"
                "$(mbs "${dk[$k]}")" "$(mbs "${dc[$k]}")" "$(ratio "${dk[$k]}" "${dc[$k]}")")
        fi
    done
    printf '%-10s %5s %5s | %5s %5s %5s  %5s %5s %5s | %5s %5s %5s  %5s %5s %5s\n' "$method" \
        "$(compression "$zours")" "$cli_ratio" "${cells[@]}"
}

echo "input: $what, $size bytes; $cores cores; best of $repeat; MB of input per second"
printf '%-10s %-11s | %-17s  %-17s | %-17s  %-17s\n' "" "  ratio" "compress (wall)" \
    "decompress (wall)" "compress (CPU)" "decompress (CPU)"
printf '%-10s %5s %5s | %5s %5s %5s  %5s %5s %5s | %5s %5s %5s  %5s %5s %5s\n' method ours cli \
    ours cli o/c ours cli o/c ours cli o/c ours cli o/c

# method | Debian compressor | Debian decompressor
while IFS='|' read -r method ccmd dcmd; do
    threads=()
    case $method in pigz | pigz-fast | zstd-T) threads=(--threads "$cores") ;; esac
    # shellcheck disable=SC2086 # the tool command lines are meant to split
    {
        c_ours=$(best_time "$tmp/input" "$tmp/ours.z" "$bin" codec compress --method "$method" "${threads[@]}")
        c_cli=$(best_time "$tmp/input" "$tmp/cli.z" $ccmd)
        # Each side decompresses its own output; then the other side's, checked against the input.
        d_ours=$(best_time "$tmp/ours.z" "$tmp/out" "$bin" codec decompress --method "$method")
        cmp -s "$tmp/out" "$tmp/input" || { echo "$method: our round trip differs" >&2; exit 1; }
        d_cli=$(best_time "$tmp/cli.z" "$tmp/out" $dcmd)
        cmp -s "$tmp/out" "$tmp/input" || { echo "$method: cli round trip differs" >&2; exit 1; }
        $dcmd < "$tmp/ours.z" | cmp -s - "$tmp/input" || { echo "$method: $dcmd cannot read ours" >&2; exit 1; }
        "$bin" codec decompress --method "$method" < "$tmp/cli.z" | cmp -s - "$tmp/input" ||
            { echo "$method: we cannot read $ccmd output" >&2; exit 1; }
    }
    row "$method" "$(stat -c %s "$tmp/ours.z")" "$(stat -c %s "$tmp/cli.z")" \
        "$c_ours" "$c_cli" "$d_ours" "$d_cli"
done << LIST
gzip|gzip -6 -c|gzip -d -c
pigz|pigz -6 -p $cores -c|pigz -d -c
pigz-fast|pigz -1 -p $cores -c|pigz -d -c
lz4|lz4 -1 -c|lz4 -d -c
zstd-1|zstd -q -1 -c|zstd -q -d -c
zstd-3|zstd -q -3 -c|zstd -q -d -c
zstd-T|zstd -q -3 -T$cores -c|zstd -q -d -c
LIST

# No Debian tool: ours only.
for method in snappy qpress; do
    c_ours=$(best_time "$tmp/input" "$tmp/ours.z" "$bin" codec compress --method "$method")
    d_ours=$(best_time "$tmp/ours.z" "$tmp/out" "$bin" codec decompress --method "$method")
    cmp -s "$tmp/out" "$tmp/input" || { echo "$method: round trip differs" >&2; exit 1; }
    row "$method" "$(stat -c %s "$tmp/ours.z")" - "$c_ours" "- -" "$d_ours" "- -"
done
