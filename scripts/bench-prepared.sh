#!/usr/bin/env bash
# Prepared statements multiplexing under sysbench: oltp_read_write with --db-ps-mode=auto
# (binary-protocol prepared statements, kept open for the whole run) through switchyard against
# one MariaDB primary, at a bounded rate. Samples the proxy's admin once a second and prints:
# sysbench errors, sessions pinned for prepared statements (and for any reason), backend
# connections in use and open against frontend sessions, and the server's Prepared_stmt_count.
# Cleans up everything it started. Not part of the tests.
#
#   BENCH_TIME=30  BENCH_THREADS=64  BENCH_RATE=400 (transactions/s, sysbench --rate)
#   BENCH_MAX_STMTS=<n>     set mysql-max_stmts_per_connection first (default: the proxy's, 20)
#   SWITCHYARD_BIN=<path>   use this binary instead of building target/release/switchyard
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

time_s="${BENCH_TIME:-30}"
threads="${BENCH_THREADS:-64}"
rate="${BENCH_RATE:-400}"
export SWITCHYARD_LOG="${SWITCHYARD_LOG:-warn}"

say() { printf '==> %s\n' "$*" >&2; }
for tool in sysbench mariadb python3; do
    command -v "$tool" >/dev/null || { say "$tool is missing: run scripts/install-deps.sh"; exit 1; }
done
if [ -n "${SWITCHYARD_BIN:-}" ]; then
    bin="$SWITCHYARD_BIN"
else
    say "building switchyard (release)"
    cargo build --release -q
    bin="$PWD/target/release/switchyard"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/switchyard-ps.XXXXXX")"
proxy_pid=""
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; then wait "$proxy_pid" 2>/dev/null || true; fi
    if [ -e "$work/sb/sandbox.json" ]; then
        "$bin" sandbox down --dir "$work/sb" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "sandbox: one primary"
json="$("$bin" sandbox up --dir "$work/sb" --replicas 0 --output json)"
{
    read -r primary_port
    read -r proxy_port
    read -r admin_port
    read -r user
    read -r pw
    read -r admin_user
    read -r admin_pw
    read -r config
} < <(printf '%s' "$json" | python3 scripts/sandbox-fields.py servers.0.port proxy.mysql_port \
    proxy.admin_port proxy.user proxy.password proxy.admin_user proxy.admin_password proxy.config)

wait_port() { # port seconds pid
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

sb_common=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user="$user" --mysql-password="$pw"
    --mysql-db=sbtest --tables=4 --table-size=10000)
say "sysbench prepare: 4 tables x 10000 rows"
sysbench oltp_read_write "${sb_common[@]}" --mysql-port="$primary_port" prepare >/dev/null

"$bin" proxy --config "$config" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
wait_port "$proxy_port" 30 "$proxy_pid" || { say "proxy did not start:"; tail -5 "$work/proxy.log" >&2; exit 1; }

admin() { mariadb -h127.0.0.1 -P"$admin_port" -u"$admin_user" -p"$admin_pw" -N -B -e "$1" 2>/dev/null; }
server() { mariadb -h127.0.0.1 -P"$primary_port" -u"$user" -p"$pw" -N -B -e "$1" 2>/dev/null; }

if [ -n "${BENCH_MAX_STMTS:-}" ]; then
    admin "UPDATE global_variables SET variable_value='$BENCH_MAX_STMTS' WHERE variable_name='mysql-max_stmts_per_connection'; LOAD MYSQL VARIABLES TO RUNTIME" \
        || { say "could not set mysql-max_stmts_per_connection"; exit 1; }
fi
say "max_stmts_per_connection: $(admin "SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_stmts_per_connection'")"
say "sysbench oltp_read_write, ps-mode auto, $threads threads, rate $rate/s, ${time_s}s, through switchyard"
sysbench oltp_read_write "${sb_common[@]}" --mysql-port="$proxy_port" --threads="$threads" \
    --time="$time_s" --rate="$rate" --db-ps-mode=auto --mysql-ignore-errors=none run \
    >"$work/sysbench.out" 2>&1 &
sb_pid=$!
samples="$work/samples.tsv"
while kill -0 "$sb_pid" 2>/dev/null; do
    mux="$(admin "SELECT SUM(frontend_sessions), SUM(backend_connections), SUM(pinned_sessions), SUM(backend_connections_open) FROM stats_switchyard_multiplexing" || true)"
    ps="$(admin "SELECT COALESCE(SUM(sessions),0) FROM stats_switchyard_pinned_sessions WHERE reason='prepared_statement'" || true)"
    stmts="$(server "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'" | cut -f2 || true)"
    [ -n "$mux" ] && printf '%s\t%s\t%s\n' "$mux" "${ps:-0}" "${stmts:-0}" >>"$samples"
    sleep 1
done
sb_rc=0
wait "$sb_pid" || sb_rc=$?
reasons="$(admin "SELECT reason, SUM(pins_total) FROM stats_switchyard_pinned_sessions GROUP BY reason" || true)"
digests="$(admin "SELECT COUNT(*), SUM(count_star) FROM stats_mysql_query_digest" || true)"
server_ps="$(server "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_stmt_prepare','Com_stmt_execute','Com_stmt_close')" | tr '\t\n' '= ' || true)"

grep -E 'transactions:|queries:|ignored errors:|reconnects:|95th percentile:' "$work/sysbench.out" >&2 || true
[ "$sb_rc" -eq 0 ] || { say "sysbench failed ($sb_rc):"; tail -20 "$work/sysbench.out" >&2; }
python3 - "$samples" "$work/sysbench.out" "$threads" "$rate" <<'PY'
import re, statistics, sys
path, out, threads, rate = sys.argv[1:]
text = open(out).read()
errors = re.search(r"ignored errors:\s+(\d+)", text)
fatal = len(re.findall(r"FATAL", text))
rows = []
for line in open(path):
    f = [int(float(x or 0)) if x not in ("NULL", "") else 0 for x in line.rstrip("\n").split("\t")]
    if len(f) == 6 and f[0] >= int(threads):
        rows.append(f)
print(f"\nprepared statements under sysbench oltp_read_write --db-ps-mode=auto, {threads} threads, --rate={rate}")
print(f"  sysbench errors: {errors.group(1) if errors else '?'} ignored, {fatal} fatal")
if rows:
    fe = [r[0] for r in rows]; used = [r[1] for r in rows]; pinned = [r[2] for r in rows]
    opened = [r[3] for r in rows]; ps = [r[4] for r in rows]; stmts = [r[5] for r in rows]
    ratio = [u / f for u, f in zip(used, fe)]
    print(f"  samples (all {threads} clients connected): {len(rows)}")
    print(f"  frontend sessions: {max(fe)}")
    print(f"  sessions pinned for prepared_statement: max {max(ps)}")
    print(f"  sessions pinned for any reason: mean {statistics.mean(pinned):.1f}, max {max(pinned)}")
    print(f"  backend connections in use: mean {statistics.mean(used):.1f}, max {max(used)} "
          f"({statistics.mean(ratio) * 100:.1f} % of frontends on average, max {max(ratio) * 100:.1f} %)")
    print(f"  backend connections open: mean {statistics.mean(opened):.1f}, max {max(opened)}")
    print(f"  server Prepared_stmt_count: max {max(stmts)}")
else:
    print("  no sample with every client connected")
PY
printf '  pins by reason over the run (reason, times):\n%s\n' "$(printf '%s\n' "$reasons" | sed 's/^/    /')"
printf '  digests (entries, executions): %s\n' "$digests"
printf '  server statement commands (prepares include the hidden ones): %s\n' "$server_ps"
