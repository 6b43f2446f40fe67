#!/usr/bin/env bash
# The one main command (README): installs what is missing, builds switchyard, starts a MariaDB
# sandbox (a primary and two replicas with GTID replication), loads sysbench data, and runs
# switchyard in front of it until Ctrl-C; then stops it and removes the sandbox.
#
#   SWITCHYARD_DEMO_DIR   where the sandbox lives (default ~/.local/share/switchyard/demo)
#   SWITCHYARD_DEMO_REPLICAS   number of replicas (default 2)
#   SWITCHYARD_DEMO_RATE   transactions per second of the console's demo workload (default 10)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> %s\n' "$*" >&2; }

say "installing what is missing"
bash scripts/install-deps.sh
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

say "building switchyard (release)"
cargo build --release
bin="$PWD/target/release/switchyard"
dir="${SWITCHYARD_DEMO_DIR:-$HOME/.local/share/switchyard/demo}"
replicas="${SWITCHYARD_DEMO_REPLICAS:-2}"
export SWITCHYARD_LOG="${SWITCHYARD_LOG:-warn}"

if [ -e "$dir/sandbox.json" ]; then
    say "removing the sandbox a previous demo left in $dir"
    "$bin" sandbox down --dir "$dir"
fi

cleanup() {
    trap - EXIT INT TERM
    say "stopping: removing the sandbox in $dir"
    "$bin" sandbox down --dir "$dir" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting a sandbox in $dir (primary + $replicas replicas)"
json="$("$bin" sandbox up --dir "$dir" --replicas "$replicas" --output json)"
{
    read -r primary_port
    read -r proxy_port
    read -r admin_port
    read -r app_user
    read -r app_pw
    read -r ro_user
    read -r ro_pw
    read -r admin_pw
    read -r config
    read -r monitor_pw
    read -r repl_user
    read -r repl_pw
} < <(printf '%s' "$json" | python3 scripts/sandbox-fields.py servers.0.port proxy.mysql_port \
    proxy.admin_port proxy.user proxy.password proxy.ro_user proxy.ro_password \
    proxy.admin_password proxy.config monitor_password repl_user repl_password)
# The console's failover view (F) logs in to the servers as the proxy's monitor user and
# re-attaches former primaries with the replication login: passwords by environment only.
export SWITCHYARD_SERVER_PASSWORD="$monitor_pw" SWITCHYARD_REPL_PASSWORD="$repl_pw"

say "loading sysbench data (4 tables x 10000 rows) into sbtest"
sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$primary_port" \
    --mysql-user="$app_user" --mysql-password="$app_pw" --mysql-db=sbtest \
    --tables=4 --table-size=10000 prepare >/dev/null
"$bin" sandbox status --dir "$dir"

cat >&2 <<MSG

==> switchyard is starting on 127.0.0.1:$proxy_port. Connect with:
      mariadb -h127.0.0.1 -P$proxy_port -u$app_user -p$app_pw sbtest      (writes go to the primary)
      mariadb -h127.0.0.1 -P$proxy_port -u$ro_user -p$ro_pw sbtest   (reads go to the replicas)
    Failure drills in another terminal:
      $bin sandbox kill|start|pause|resume --dir $dir db2
    Admin interface (ProxySQL-compatible SQL): mariadb -h127.0.0.1 -P$admin_port -uadmin -p$admin_pw
    On a terminal the console runs on the embedded proxy with a light sysbench workload through
    it (prepared and text statements, SWITCHYARD_DEMO_RATE tx/s, default 10): ? for help (and
    these connection lines), q to quit (the workload stops with the console).
    F opens the failover view: S switches over to the selected replica, step by step (n) or
    all at once (A); after \`sandbox kill --dir $dir db1\`, F plans an unplanned failover.
    Quitting (or Ctrl-C) stops switchyard and removes the sandbox.

MSG
# The console on an embedded proxy when there is a terminal to draw on; the proxy alone otherwise.
if [ -t 0 ] && [ -t 1 ]; then
    "$bin" console --embedded --config "$config" --log-file "$dir/switchyard.log" \
        --repl-user "$repl_user" --state-dir "$dir/ops" \
        --demo "$dir" --demo-rate "${SWITCHYARD_DEMO_RATE:-10}"
else
    "$bin" proxy --config "$config"
fi
