#!/usr/bin/env bash
# switchyard's container image: the static binary alone on an empty base (FROM scratch), written
# as an OCI image layout by scripts/oci-image.py (no container engine needed to build it).
#
#   scripts/build-image.sh            build the static binary, write target/image/switchyard-oci/
#                                     and target/image/switchyard.oci.tar (podman load -i …,
#                                     skopeo copy oci-archive:… docker://REGISTRY/…)
#   scripts/build-image.sh --check    no build: the image from an existing binary, its layout
#                                     checked; run in front of a sandbox when the binary is static
#                                     and podman can run containers here, else says why not
#   scripts/build-image.sh --run      as --check, but failing when the image cannot be run
#
# Binary: $SWITCHYARD_IMAGE_BIN if set; otherwise the default mode builds one and --check/--run
# take target/x86_64-unknown-linux-gnu/release/switchyard when it exists, else $SWITCHYARD_BIN
# (the test's own binary: a dynamically linked debug build can be laid out and inspected, not run).
#
# Static linking: glibc with `-C target-feature=+crt-static` for x86_64-unknown-linux-gnu. musl
# would be the usual choice, but its Rust std is not installable here (rustup reaches no
# download server, and nightly has no rust-src for -Zbuild-std); the static glibc binary needs
# no shared library. Its one caveat, name resolution through NSS: glibc 2.34+ has the files and
# dns modules built in, so a hostname in mysql_servers resolves from the container's /etc/hosts
# and resolv.conf (which every engine provides); other NSS modules (LDAP, mDNS) cannot load.
#
# A quicker static binary for trying the image (debug, from dependencies already built for the
# tests; only the final link changes): `cargo rustc --bin switchyard -- -C
# target-feature=+crt-static`, then SWITCHYARD_IMAGE_BIN=target/debug/switchyard (the next
# `cargo build` links it dynamically again).
#
# Running it: podman (Debian: apt-get install podman runc). This machine needs runc, the vfs
# driver and explicit ulimits (no cgroup v2, no permission to raise rlimits); those flags are
# in $PODMAN below and harmless elsewhere.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-build}"
case "$mode" in
    build | --check | --run) ;;
    *) echo "usage: $0 [--check|--run]" >&2; exit 2 ;;
esac
say() { printf 'build-image: %s\n' "$*" >&2; }
target="x86_64-unknown-linux-gnu"
release_bin="$root/target/$target/release/switchyard"

is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }

bin="${SWITCHYARD_IMAGE_BIN:-}"
if [ -z "$bin" ]; then
    if [ "$mode" = build ]; then
        say "building the static binary (release, glibc crt-static, $target): this takes a while"
        (cd "$root" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
            nice -n 10 cargo build --release --locked --target "$target" --bin switchyard)
        bin="$release_bin"
    elif [ -x "$release_bin" ] && is_static "$release_bin"; then
        bin="$release_bin"
    else
        bin="${SWITCHYARD_BIN:-$root/target/debug/switchyard}"
    fi
fi
[ -x "$bin" ] || { say "no binary at $bin"; exit 1; }
static=no
if is_static "$bin"; then static=yes; fi
echo "binary: $bin (static: $static, $(stat -c %s "$bin") bytes)"
if [ "$mode" = build ] && [ "$static" = no ]; then
    say "$bin is dynamically linked: it would not start in an empty image"
    exit 1
fi

# The image holds the binary without its symbols (a tenth of the size; backtraces keep function
# names only where the symbol table had them, so keep the unstripped file for debugging).
strip_to() { strip -o "$2" "$1"; }

if [ "$mode" = build ]; then
    out="$root/target/image"
    rm -rf "$out/switchyard-oci"
    mkdir -p "$out"
    strip_to "$bin" "$out/switchyard"
    python3 "$root/scripts/oci-image.py" build --binary "$out/switchyard" --out "$out/switchyard-oci" \
        --tag "${SWITCHYARD_IMAGE_TAG:-switchyard:dev}" --archive "$out/switchyard.oci.tar"
    python3 "$root/scripts/oci-image.py" check "$out/switchyard-oci" --binary "$out/switchyard"
    echo "wrote $out/switchyard-oci and $out/switchyard.oci.tar"
    echo "load it: podman load -i $out/switchyard.oci.tar"
    exit 0
fi

work="$(mktemp -d -t switchyard-image.XXXXXX)"
sandbox_dir="$work/sandbox"
PODMAN=(podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs
    --cgroup-manager cgroupfs --events-backend file)
container=""
cleanup() {
    if [ -n "$container" ]; then "${PODMAN[@]}" rm -f "$container" >/dev/null 2>&1 || true; fi
    if [ -f "$sandbox_dir/state.json" ]; then
        "${SWITCHYARD_BIN:-$bin}" sandbox down --dir "$sandbox_dir" >/dev/null 2>&1 || true
    fi
    rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

strip_to "$bin" "$work/switchyard"
python3 "$root/scripts/oci-image.py" build --binary "$work/switchyard" --out "$work/oci" \
    --tag switchyard:check --archive "$work/image.tar" --gzip-level 1
python3 "$root/scripts/oci-image.py" check "$work/oci" --binary "$work/switchyard"

not_run() {
    echo "run: NOT RUN: $*"
    if [ "$mode" = --run ]; then exit 1; fi
    exit 0
}
[ "$static" = yes ] || not_run "the binary is dynamically linked (build a static one: scripts/build-image.sh)"
command -v podman >/dev/null || not_run "podman is not installed (apt-get install podman runc)"
if command -v runc >/dev/null; then PODMAN+=(--runtime runc); fi
# Explicit limits: podman's defaults are above what this machine lets a process raise them to.
# Open files at this shell's hard limit (a proxy holds two per session); processes lowered,
# since setting them even at the hard limit is refused here.
nofile="$(ulimit -Hn)"
[ "$nofile" = unlimited ] && nofile=1048576
nproc=4096
RUN_FLAGS=(--network host --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

"${PODMAN[@]}" load -q -i "$work/image.tar" >"$work/load.log" 2>&1 \
    || not_run "podman load failed: $(tail -3 "$work/load.log")"
image="$("${PODMAN[@]}" images -q | head -1)"
if ! "${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" "$image" --version >"$work/probe.log" 2>&1; then
    not_run "podman cannot run containers on this machine: $(tail -3 "$work/probe.log")"
fi
echo "run: the image starts: $(tail -1 "$work/probe.log")"

# In front of a sandbox: the sandbox's proxy config mounted read-only, readable by the image's
# user only through its group (it holds passwords), state in the image's data folder.
host_bin="${SWITCHYARD_BIN:-$bin}"
"$host_bin" sandbox up --dir "$sandbox_dir" --replicas 0 -o json >"$work/sandbox.json"
read -r port user password http_port < <(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["proxy"]
print(t["mysql_port"], t["user"], t["password"], t["http_port"])' "$work/sandbox.json")
install -m 0640 -g 65532 "$sandbox_dir/proxy.toml" "$work/proxy.toml"
container="switchyard-check-$$"
"${PODMAN[@]}" run -d --name "$container" "${RUN_FLAGS[@]}" \
    -v "$work/proxy.toml:/etc/switchyard/proxy.toml:ro" \
    "$image" proxy --config /etc/switchyard/proxy.toml --state-dir /var/lib/switchyard/proxy \
    --grace 10 >/dev/null
ready=""
for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    "${PODMAN[@]}" logs "$container" | tail -20
    echo "run: FAILED: /readyz never answered 200"
    exit 1
fi
answer="$(MYSQL_PWD="$password" mariadb --protocol=TCP -h127.0.0.1 -P"$port" -u"$user" \
    --batch --skip-column-names -e 'SELECT CONCAT(@@version_comment, " on port ", @@port)')"
started="$(date +%s%N)"
"${PODMAN[@]}" stop -t 30 "$container" >/dev/null
code="$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$container")"
stopped_ms=$(( ($(date +%s%N) - started) / 1000000 ))
if [ "$code" != 0 ]; then
    "${PODMAN[@]}" logs "$container" | tail -20
    echo "run: FAILED: exit code $code after SIGTERM"
    exit 1
fi
disk="$("${PODMAN[@]}" logs "$container" 2>&1 | grep -o 'DISK layer [^ ]*' | head -1)"
echo "run: ok: a client query through the container answered '$answer'; ${disk:-no DISK layer line}; SIGTERM -> exit 0 in ${stopped_ms} ms"
