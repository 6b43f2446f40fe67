# shellcheck shell=bash
# What every benchmark script needs before it measures anything: messages, the tools it calls,
# the switchyard binary, free ports, a work folder torn down on exit (the processes it started,
# by pid, and the sandbox), and a sandbox with one primary. Sourced, not run:
#
#   . scripts/lib/bench.sh
#   need_tools sysbench mariadb python3
#   use_switchyard_bin               # $bin: $SWITCHYARD_BIN or a release build made here
#   bench_workdir switchyard-bench   # $work, removed on exit with everything listed in $bench_pids
#   sandbox_one_primary              # $primary_port $proxy_port $user $pw $config $admin_*
#   start_proxy || exit 1            # $proxy_pid, listening on $proxy_port
#
# A script with more to clean (a store, a folder outside $work) defines `bench_cleanup_extra`.

say() { printf '==> %s\n' "$*" >&2; }

need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { say "$tool is missing: run scripts/install-deps.sh"; exit 1; }
    done
}

use_switchyard_bin() {
    if [ -n "${SWITCHYARD_BIN:-}" ]; then
        bin="$SWITCHYARD_BIN"
        return
    fi
    if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    say "building switchyard (release)"
    cargo build --release -q --bin switchyard
    bin="$PWD/target/release/switchyard"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT SECONDS PID: true once PORT accepts; gives up early when PID has exited.
wait_port() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

bench_pids=""
bench_cleanup() {
    trap - EXIT INT TERM
    local pid
    for pid in $bench_pids; do
        if kill "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; fi
    done
    if declare -F bench_cleanup_extra >/dev/null; then bench_cleanup_extra || true; fi
    if [ -n "${work:-}" ]; then
        if [ -e "$work/sb/sandbox.json" ]; then
            "$bin" sandbox down --dir "$work/sb" >/dev/null 2>&1 || true
        fi
        rm -rf "$work"
    fi
}

# bench_workdir NAME: a fresh $work under $TMPDIR and the traps that tear everything down.
bench_workdir() {
    work="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

sandbox_one_primary() {
    say "sandbox: one primary"
    local json
    json="$("$bin" sandbox up --dir "$work/sb" --replicas 0 --output json)"
    {
        read -r primary_port
        read -r proxy_port
        read -r user
        read -r pw
        read -r config
        read -r admin_port
        read -r admin_user
        read -r admin_pw
    } < <(printf '%s' "$json" | python3 scripts/sandbox-fields.py servers.0.port proxy.mysql_port \
        proxy.user proxy.password proxy.config proxy.admin_port proxy.admin_user proxy.admin_password)
}

# start_proxy: the sandbox's proxy from its config, logging to $work/proxy.log; false (with the
# log's tail) when it does not listen within 30 s.
start_proxy() {
    "$bin" proxy --config "$config" >"$work/proxy.log" 2>&1 &
    proxy_pid=$!
    bench_pids+=" $proxy_pid"
    if ! wait_port "$proxy_port" 30 "$proxy_pid" || ! wait_port "$admin_port" 30 "$proxy_pid"; then
        say "switchyard proxy did not start:"
        tail -5 "$work/proxy.log" >&2
        return 1
    fi
}
