#!/usr/bin/env bash
# Installs whatever switchyard needs that is missing, and nothing else. Safe to run again.
#   - Debian packages listed in scripts/deps/*.apt (apt-get update only when a package is unknown);
#     the Debian MariaDB service is never started: the sandbox runs its own servers.
#   - Python tools listed in scripts/deps/*.pip, into the venv $SWITCHYARD_VENV
#     (default ~/.local/share/switchyard/venv; its bin/ holds e.g. moto_server).
#   - A Rust toolchain through rustup when cargo is missing, plus clippy and rustfmt.
#   - Tools built from crates.io listed in scripts/deps/*.cargo, into $SWITCHYARD_TOOLS
#     (default ~/.local/share/switchyard/tools; its bin/ holds e.g. garage), built once: the
#     build folder stays there until the install succeeds, so an interrupted build resumes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="$here/deps"
venv="${SWITCHYARD_VENV:-$HOME/.local/share/switchyard/venv}"
tools="${SWITCHYARD_TOOLS:-$HOME/.local/share/switchyard/tools}"

say() { printf 'install-deps: %s\n' "$*" >&2; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "not root and no sudo: cannot install packages"; exit 1; }
    sudo_cmd=(sudo)
fi

# Names from list files: comments and blank lines dropped.
list() { cat "$@" 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u; }

install_apt() {
    local wanted missing=() p
    shopt -s nullglob
    local files=("$deps"/*.apt)
    shopt -u nullglob
    [ ${#files[@]} -gt 0 ] || return 0
    wanted="$(list "${files[@]}")"
    for p in $wanted; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "Debian packages: all present"
        return 0
    fi
    say "Debian packages to install: ${missing[*]}"
    # policy-rc.d answering 101 stops maintainer scripts from starting services, so no system
    # mariadbd appears on port 3306 where a test could reach it by mistake.
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
        "${sudo_cmd[@]}" chmod 755 "$policy"
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    {
        if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
            "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        fi
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}"
    } || rc=$?
    if [ -n "$made_policy" ]; then "${sudo_cmd[@]}" rm -f "$policy"; fi
    return $rc
}

install_pip() {
    shopt -s nullglob
    local files=("$deps"/*.pip)
    shopt -u nullglob
    [ ${#files[@]} -gt 0 ] || return 0
    local wanted missing=() spec name
    wanted="$(list "${files[@]}")"
    [ -n "$wanted" ] || return 0
    if [ ! -x "$venv/bin/python" ]; then
        say "creating Python venv $venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv"
    fi
    for spec in $wanted; do
        name="${spec%%[\[<>=!~;]*}"
        "$venv/bin/python" -m pip show -q "$name" >/dev/null 2>&1 || missing+=("$spec")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "Python tools: all present in $venv"
        return 0
    fi
    say "Python tools to install into $venv: ${missing[*]}"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}"
}

install_rust() {
    if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null; then
        say "installing the Rust toolchain with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --component clippy,rustfmt
        return 0
    fi
    if command -v rustup >/dev/null; then
        local c
        for c in clippy rustfmt; do
            rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
        done
    fi
}

install_cargo_tools() {
    shopt -s nullglob
    local files=("$deps"/*.cargo)
    shopt -u nullglob
    [ ${#files[@]} -gt 0 ] || return 0
    if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    local crate version binary flags
    while read -r crate version binary flags; do
        [ -n "$crate" ] || continue
        # `garage --version` style output names the version; anything else is rebuilt.
        if "$tools/bin/$binary" --version 2>/dev/null | grep -qF "$version"; then
            continue
        fi
        say "building $crate $version from crates.io into $tools (once; a few minutes)"
        # shellcheck disable=SC2086 # flags are words from the list file
        CARGO_TARGET_DIR="$tools/build" cargo install --locked --debug --quiet \
            --root "$tools" "$crate@$version" $flags
        rm -rf "$tools/build"
    done < <(cat "${files[@]}" | sed 's/#.*//' | sed '/^[[:space:]]*$/d')
}

install_apt
install_pip
install_rust
install_cargo_tools
say "done"
