#!/usr/bin/env bash
# Proxy benchmark: sysbench oltp_point_select and oltp_read_only, 16 threads, against one MariaDB
# primary directly, through HAProxy (mode tcp) and through switchyard, alternating target by
# target for several rounds in one run (this machine is shared and noisy: interleaving is what
# makes the ratios meaningful). Prints QPS and p95 per target, the medians, the ratios
# switchyard/HAProxy and switchyard/direct, the proxies' CPU per query and the load average.
# Then one client's latency (PyMySQL `SELECT 1`, the targets taking turns block by block): p50
# and p99 per target and what each proxy adds to direct, with the server's COM_CHANGE_DB per
# statement; and the proxy's resident memory per idle client (PyMySQL connections left idle).
# Cleans up everything it started. Not part of the tests.
#
#   BENCH_TIME=20  BENCH_ROUNDS=3  BENCH_THREADS=16  BENCH_TESTS="oltp_point_select oltp_read_only"
#                                   (BENCH_TESTS="": skip the throughput runs)
#   BENCH_PS_MODE=auto|disable      sysbench --db-ps-mode (prepared statements or text protocol)
#   BENCH_LAT_ROUNDS=5  BENCH_LAT_STATEMENTS=2000   latency run: rounds, statements per target and
#                                   round (0: skip)
#   BENCH_IDLE_CLIENTS=10000        idle clients for the memory figure (0: skip)
#   BENCH_IDLE_MODE=plain|tls       how those clients connect (PyMySQL takes TLS when offered)
#   SWITCHYARD_VENV=<dir>           the venv with PyMySQL (default ~/.local/share/switchyard/venv)
#   HAPROXY_THREADS=<n>             haproxy nbthread (default: the proxy's threads, one per core)
#   SWITCHYARD_BIN=<path>           use this binary instead of building target/release/switchyard
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

time_s="${BENCH_TIME:-20}"
rounds="${BENCH_ROUNDS:-3}"
threads="${BENCH_THREADS:-16}"
tests="${BENCH_TESTS-oltp_point_select oltp_read_only}"
ps_mode="${BENCH_PS_MODE:-auto}"
lat_rounds="${BENCH_LAT_ROUNDS:-5}"
lat_statements="${BENCH_LAT_STATEMENTS:-2000}"
idle_clients="${BENCH_IDLE_CLIENTS:-10000}"
idle_mode="${BENCH_IDLE_MODE:-plain}"
venv_python="${SWITCHYARD_VENV:-$HOME/.local/share/switchyard/venv}/bin/python"
cores="$(nproc)"
haproxy_threads="${HAPROXY_THREADS:-$cores}"
export SWITCHYARD_LOG="${SWITCHYARD_LOG:-warn}"

. scripts/lib/bench.sh
need_tools sysbench haproxy python3

use_switchyard_bin

bench_workdir switchyard-bench

sandbox_one_primary

sb_common=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user="$user" --mysql-password="$pw"
    --mysql-db=sbtest --tables=4 --table-size=10000)
say "sysbench prepare: 4 tables x 10000 rows"
sysbench oltp_read_only "${sb_common[@]}" --mysql-port="$primary_port" prepare >/dev/null

haproxy_port="$(free_port)"
cat >"$work/haproxy.cfg" <<CFG
global
    nbthread $haproxy_threads
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind 127.0.0.1:$haproxy_port
    server db1 127.0.0.1:$primary_port
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
bench_pids+=" $haproxy_pid"
wait_port "$haproxy_port" 10 "$haproxy_pid" || { say "haproxy did not start:"; cat "$work/haproxy.log" >&2; exit 1; }

targets="direct haproxy"
if start_proxy; then
    targets="direct haproxy switchyard"
else
    say "benchmarking direct and haproxy only"
    proxy_pid=""
fi

port_of() { case "$1" in direct) echo "$primary_port" ;; haproxy) echo "$haproxy_port" ;; switchyard) echo "$proxy_port" ;; esac; }
pid_of() { case "$1" in haproxy) echo "$haproxy_pid" ;; switchyard) echo "$proxy_pid" ;; *) echo "" ;; esac; }
cpu_ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
clk_tck="$(getconf CLK_TCK)"

results="$work/results.tsv"
[ -z "$tests" ] || say "running: $tests; targets: $targets; $rounds rounds x ${time_s}s, $threads threads, ps-mode $ps_mode"
for ((round = 1; round <= rounds; round++)); do
    for test in $tests; do
        for target in $targets; do
            pid="$(pid_of "$target")"
            before="$(cpu_ticks "$pid")"
            out="$(sysbench "$test" "${sb_common[@]}" --mysql-port="$(port_of "$target")" \
                --threads="$threads" --time="$time_s" --db-ps-mode="$ps_mode" --percentile=95 run 2>&1)" || {
                say "sysbench $test via $target failed:"
                printf '%s\n' "$out" | tail -5 >&2
                continue
            }
            after="$(cpu_ticks "$pid")"
            qps="$(printf '%s\n' "$out" | awk '/queries:/ {gsub(/[(]/, "", $3); print $3}')"
            queries="$(printf '%s\n' "$out" | awk '/queries:/ {print $2}')"
            p95="$(printf '%s\n' "$out" | awk '/95th percentile:/ {print $3}')"
            errors="$(printf '%s\n' "$out" | awk '/ignored errors:/ {print $3; exit}')"
            load="$(cut -d' ' -f1 /proc/loadavg)"
            cpu_us="-"
            if [ -n "$pid" ] && [ "${queries:-0}" -gt 0 ]; then
                cpu_us="$(awk -v d="$((after - before))" -v hz="$clk_tck" -v q="$queries" 'BEGIN {printf "%.1f", d / hz * 1e6 / q}')"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$target" "$round" "$qps" "$p95" "$cpu_us" "$load" "${errors:-0}" >>"$results"
            printf '  round %d  %-18s %-10s %10s qps  p95 %6s ms  cpu/query %6s us  errors %s  load %s\n' \
                "$round" "$test" "$target" "$qps" "$p95" "$cpu_us" "${errors:-0}" "$load" >&2
        done
    done
done

if [ -n "$tests" ]; then
    [ -s "$results" ] || { say "no successful run"; exit 1; }
    python3 - "$results" "$threads" "$time_s" "$ps_mode" "$cores" "$haproxy_threads" <<'PY'
import statistics, sys
path, threads, time_s, ps_mode, cores, hthreads = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path)]
print(f"\nswitchyard proxy benchmark: {threads} threads, {time_s}s runs, db-ps-mode={ps_mode}, "
      f"{cores} cores, haproxy nbthread {hthreads}")
loads = [float(r[6]) for r in rows]
print(f"load average (1 min) during runs: min {min(loads):.2f}, max {max(loads):.2f}")
for test in dict.fromkeys(r[0] for r in rows):
    print(f"\n{test}")
    print(f"  {'target':<11}{'QPS (median)':>13}{'p95 ms':>9}{'cpu us/q':>10}  rounds (QPS)")
    med = {}
    for target in ["direct", "haproxy", "switchyard"]:
        rs = [r for r in rows if r[0] == test and r[1] == target]
        if not rs:
            continue
        qps = statistics.median(float(r[3]) for r in rs)
        p95 = statistics.median(float(r[4]) for r in rs)
        cpus = [float(r[5]) for r in rs if r[5] != "-"]
        cpu = f"{statistics.median(cpus):.1f}" if cpus else "-"
        med[target] = qps
        runs = " ".join(f"{float(r[3]):.0f}" for r in rs)
        print(f"  {target:<11}{qps:>13.0f}{p95:>9.2f}{cpu:>10}  {runs}")
    if "switchyard" in med:
        for base in ["haproxy", "direct"]:
            if med.get(base):
                print(f"  switchyard/{base}: {med['switchyard'] / med[base]:.2f}x")
    elif "haproxy" in med and med.get("direct"):
        print(f"  haproxy/direct: {med['haproxy'] / med['direct']:.2f}x (switchyard not run)")
PY
fi

if ! "$venv_python" -c 'import pymysql' 2>/dev/null; then
    say "no PyMySQL in $venv_python: latency and idle-client memory skipped (scripts/install-deps.sh)"
    exit 0
fi

if [ "$lat_statements" -gt 0 ]; then
    lat_targets=()
    for target in $targets; do lat_targets+=("$target=$(port_of "$target")"); done
    say "latency: one PyMySQL client, SELECT 1, $lat_rounds rounds x $lat_statements statements per target"
    load_before="$(cut -d' ' -f1 /proc/loadavg)"
    lat="$("$venv_python" scripts/bench-latency.py 127.0.0.1 "$user" "$pw" sbtest "$lat_rounds" \
        "$lat_statements" "$primary_port" "${lat_targets[@]}")" || lat=""
    load_after="$(cut -d' ' -f1 /proc/loadavg)"
    [ -n "$lat" ] || say "latency run failed"
    [ -z "$lat" ] || python3 - "$lat" "$load_before" "$load_after" <<'PY'
import sys
rows = {r[0]: r[1:] for r in (l.split("\t") for l in sys.argv[1].splitlines())}
print(f"\none client, PyMySQL SELECT 1 (load average {sys.argv[2]} before, {sys.argv[3]} after)")
print(f"  {'target':<11}{'p50 us':>9}{'p99 us':>9}{'added p50':>11}{'added p99':>11}{'COM_CHANGE_DB/stmt':>20}")
d50, d99 = (float(v) for v in rows["direct"][:2])
for target in ["direct", "haproxy", "switchyard"]:
    if target not in rows:
        continue
    p50, p99, change_db = rows[target]
    a50, a99 = ("-", "-") if target == "direct" else (f"{float(p50) - d50:.1f}", f"{float(p99) - d99:.1f}")
    print(f"  {target:<11}{p50:>9}{p99:>9}{a50:>11}{a99:>11}{change_db:>20}")
PY
fi

if [ "$idle_clients" -gt 0 ] && [ -n "$proxy_pid" ]; then
    # One mode per run: a second run in the same process would reuse what the first freed.
    mode="$idle_mode"
    say "idle clients: $idle_clients PyMySQL connections to switchyard ($mode)"
    idle="$("$venv_python" scripts/bench-idle.py "$proxy_pid" 127.0.0.1 "$proxy_port" "$user" "$pw" sbtest \
        "$idle_clients" "$mode" "$admin_port" "$admin_user" "$admin_pw")" || idle=""
    if [ -n "$idle" ]; then
        IFS=$'\t' read -r n before after per <<<"$idle"
        printf '\nidle clients (%s): %s; switchyard RSS %s KiB -> %s KiB: %s KiB per idle client\n' \
            "$mode" "$n" "$before" "$after" "$per"
    else
        say "idle-client run ($mode) failed"
    fi
fi
