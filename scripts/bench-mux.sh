#!/usr/bin/env bash
# Multiplexing benchmark (issue 14's "done when"), against one MariaDB primary through switchyard
# with its defaults. Not part of the tests.
#
#  1. The seed workload: SEED_CLIENTS PyMySQL clients, each looping 3 reads : 2 auto-increment
#     inserts with think time; every insert id is checked three ways (the OK packet's, `SELECT
#     LAST_INSERT_ID()` right after, and the row read back by it). After SEED_SETTLE seconds
#     (the pools' idle timeout has run) it samples, while the load goes on, the backend
#     connections open (in use + idle) against the frontends. Target: <= 5 %.
#  2. sysbench oltp_read_write with prepared statements (--db-ps-mode=auto), SB_THREADS threads
#     at --rate SB_RATE: errors, sessions pinned per reason (stats_switchyard_pinned_sessions)
#     and backend connections in use against frontends, sampled every second. Target: <= 25 %.
#
#   SEED_CLIENTS=600 SEED_TIME=60 SEED_SETTLE=30 SEED_THINK_MS=1000
#   SB_THREADS=64 SB_RATE=200 SB_TIME=30
#   SWITCHYARD_BIN=<path>   use this binary instead of building target/release/switchyard
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seed_clients="${SEED_CLIENTS:-600}"
seed_time="${SEED_TIME:-60}"
seed_settle="${SEED_SETTLE:-30}"
seed_think="${SEED_THINK_MS:-1000}"
sb_threads="${SB_THREADS:-64}"
sb_rate="${SB_RATE:-200}"
sb_time="${SB_TIME:-30}"
venv_python="${VENV_PYTHON:-$HOME/.local/share/switchyard/venv/bin/python}"
export SWITCHYARD_LOG="${SWITCHYARD_LOG:-warn}"

. scripts/lib/bench.sh
need_tools sysbench python3 mariadb
"$venv_python" -c 'import pymysql' 2>/dev/null || { say "PyMySQL missing in $venv_python: run scripts/install-deps.sh"; exit 1; }

use_switchyard_bin

bench_workdir switchyard-bench-mux

sandbox_one_primary

start_proxy || exit 1

export BENCH_PROXY_PORT="$proxy_port" BENCH_ADMIN_PORT="$admin_port" BENCH_USER="$user" BENCH_PW="$pw" \
    BENCH_ADMIN_USER="$admin_user" BENCH_ADMIN_PW="$admin_pw"

# --- 1. the seed workload ----------------------------------------------------------------------
say "seed: $seed_clients clients, 3 reads : 2 inserts, think ${seed_think} ms, ${seed_time}s (sampled after ${seed_settle}s)"
seed_ok=0
"$venv_python" - "$seed_clients" "$seed_time" "$seed_settle" "$seed_think" <<'PY' || seed_ok=$?
import os, random, sys, threading, time
import pymysql

clients, run_s, settle_s, think_ms = (int(a) for a in sys.argv[1:5])
port, aport = int(os.environ["BENCH_PROXY_PORT"]), int(os.environ["BENCH_ADMIN_PORT"])
user, pw = os.environ["BENCH_USER"], os.environ["BENCH_PW"]

def proxy():
    return pymysql.connect(host="127.0.0.1", port=port, user=user, password=pw, database="app", autocommit=True)

def admin():
    return pymysql.connect(host="127.0.0.1", port=aport, user=os.environ["BENCH_ADMIN_USER"],
                           password=os.environ["BENCH_ADMIN_PW"], autocommit=True)

c = proxy()
c.cursor().execute("CREATE TABLE IF NOT EXISTS seed (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                   "client INT NOT NULL, n INT NOT NULL, pad VARCHAR(64))")
c.close()

stop = threading.Event()
lock = threading.Lock()
totals = {"inserts": 0, "reads": 0, "wrong": 0, "wrong_lid": 0, "wrong_row": 0, "errors": 0}
examples = []

def client(k):
    rnd = random.Random(k)
    time.sleep(rnd.uniform(0, min(10.0, settle_s / 2)))  # clients arrive over a few seconds
    try:
        conn = proxy()
    except Exception as e:
        with lock:
            totals["errors"] += 1
            examples.append(f"connect: {e}")
        return
    cur = conn.cursor()
    n = 0
    mine = []
    while not stop.is_set():
        for step in ("insert", "read", "insert", "read", "read"):
            if stop.is_set():
                break
            try:
                if step == "insert":
                    n += 1
                    cur.execute("INSERT INTO seed (client, n, pad) VALUES (%s, %s, REPEAT('x', 32))", (k, n))
                    ok_id = cur.lastrowid
                    cur.execute("SELECT LAST_INSERT_ID()")
                    lid = cur.fetchone()[0]
                    cur.execute("SELECT client, n FROM seed WHERE id = LAST_INSERT_ID()")
                    row = cur.fetchone()
                    good = ok_id == lid and row == (k, n)
                    mine.append(ok_id)
                    with lock:
                        totals["inserts"] += 1
                        totals["wrong_lid"] += ok_id != lid
                        totals["wrong_row"] += row != (k, n)
                        if not good:
                            totals["wrong"] += 1
                            if len(examples) < 5:
                                examples.append(f"client {k} insert {n}: ok id {ok_id}, LAST_INSERT_ID() {lid}, row {row}")
                else:
                    cur.execute("SELECT client, n FROM seed WHERE id = %s", (rnd.choice(mine) if mine else 1,))
                    cur.fetchall()
                    with lock:
                        totals["reads"] += 1
            except Exception as e:
                with lock:
                    totals["errors"] += 1
                    if len(examples) < 5:
                        examples.append(f"client {k}: {e}")
            time.sleep(rnd.uniform(0.5, 1.5) * think_ms / 1000)
    conn.close()

threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
for t in threads:
    t.start()

a = admin()
def sample():
    cur = a.cursor()
    cur.execute("SELECT COALESCE(SUM(ConnUsed),0), COALESCE(SUM(ConnFree),0) FROM stats_mysql_connection_pool")
    used, free = (int(v) for v in cur.fetchone())
    cur.execute("SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Client_Connections_connected'")
    fe = int(cur.fetchone()[0])
    return used, free, fe

start = time.time()
samples = []
peak = 0
while time.time() - start < run_s:
    used, free, fe = sample()
    peak = max(peak, used + free)
    if time.time() - start >= settle_s:
        samples.append((used, free, fe))
    time.sleep(1)
stop.set()
for t in threads:
    t.join(timeout=30)

print(f"\nseed workload: {clients} clients, 3 reads : 2 inserts, think {think_ms} ms (x0.5-1.5), {run_s}s")
print(f"  statements: {totals['inserts']} inserts, {totals['reads']} reads; errors {totals['errors']}")
print(f"  insert ids wrong: {totals['wrong']} of {totals['inserts']}: SELECT LAST_INSERT_ID() differs from the OK "
      f"packet's {totals['wrong_lid']}, the row read by WHERE id = LAST_INSERT_ID() is not the one inserted {totals['wrong_row']}")
for e in examples:
    print(f"    e.g. {e}")
print(f"  peak backend connections open (in use + idle): {peak}")
if not samples:
    print("  no sample after the settle time")
    sys.exit(1)
ratio = [(u + f) / fe for u, f, fe in samples if fe]
in_use = [u / fe for u, f, fe in samples if fe]
fe = sum(s[2] for s in samples) / len(samples)
print(f"  after {settle_s}s ({len(samples)} samples, 1/s): frontends {fe:.0f}, "
      f"backend open avg {sum(s[0] + s[1] for s in samples) / len(samples):.1f} max {max(s[0] + s[1] for s in samples)}, "
      f"in use avg {sum(s[0] for s in samples) / len(samples):.1f}")
worst = max(ratio)
print(f"  backend/frontend: avg {100 * sum(ratio) / len(ratio):.2f} %, max {100 * worst:.2f} %, "
      f"in use avg {100 * sum(in_use) / len(in_use):.2f} %   target <= 5 %: {'PASS' if worst <= 0.05 else 'FAIL'}")
ok = worst <= 0.05 and totals["wrong"] == 0 and totals["errors"] == 0
print(f"  insert ids: {'PASS' if totals['wrong'] == 0 else 'FAIL'}")
sys.exit(0 if ok else 1)
PY

# --- 2. sysbench oltp_read_write with prepared statements -----------------------------------
sb_common=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user="$user" --mysql-password="$pw"
    --mysql-db=sbtest --tables=4 --table-size=10000)
say "sysbench prepare: 4 tables x 10000 rows (directly)"
sysbench oltp_read_write "${sb_common[@]}" --mysql-port="$primary_port" prepare >/dev/null

say "sysbench oltp_read_write --db-ps-mode=auto, $sb_threads threads, --rate=$sb_rate, ${sb_time}s"
"$venv_python" - "$sb_time" >"$work/samples.txt" <<'PY' &
import os, sys, time
import pymysql
a = pymysql.connect(host="127.0.0.1", port=int(os.environ["BENCH_ADMIN_PORT"]), user=os.environ["BENCH_ADMIN_USER"],
                    password=os.environ["BENCH_ADMIN_PW"], autocommit=True)
cur = a.cursor()
end = time.time() + int(sys.argv[1]) + 5
while time.time() < end:
    cur.execute("SELECT COALESCE(SUM(ConnUsed),0), COALESCE(SUM(ConnFree),0) FROM stats_mysql_connection_pool")
    used, free = cur.fetchone()
    cur.execute("SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Client_Connections_connected'")
    fe = cur.fetchone()[0]
    cur.execute("SELECT reason, SUM(sessions) FROM stats_switchyard_pinned_sessions GROUP BY reason HAVING SUM(sessions) > 0")
    pins = ",".join(f"{r}={n}" for r, n in cur.fetchall())
    print(used, free, fe, pins or "-", flush=True)
    time.sleep(1)
PY
sampler=$!
sb_ok=0
sb_out="$(sysbench oltp_read_write "${sb_common[@]}" --mysql-port="$proxy_port" --threads="$sb_threads" \
    --rate="$sb_rate" --time="$sb_time" --db-ps-mode=auto --mysql-ignore-errors=all --percentile=95 run 2>&1)" || sb_ok=$?
wait "$sampler" || true
printf '%s\n' "$sb_out" >"$work/sysbench.txt"

python3 - "$work/samples.txt" "$work/sysbench.txt" "$sb_threads" "$sb_rate" "$sb_time" "$sb_ok" <<'PY' || sb_ok=$?
import re, sys
path, sb_path, threads, rate, time_s, rc = sys.argv[1:]
out = open(sb_path).read()
def grab(pattern):
    m = re.search(pattern, out)
    return m.group(1) if m else "?"
tps, qps = grab(r"transactions:\s+\d+\s+\(([\d.]+) per sec"), grab(r"queries:\s+\d+\s+\(([\d.]+) per sec")
errors, reconnects = grab(r"ignored errors:\s+(\d+)"), grab(r"reconnects:\s+(\d+)")
p95 = grab(r"95th percentile:\s+([\d.]+)")
print(f"\nsysbench oltp_read_write, --db-ps-mode=auto, {threads} threads, --rate={rate}, {time_s}s (exit {rc})")
print(f"  {tps} tps, {qps} qps, p95 {p95} ms; errors {errors}, reconnects {reconnects}")
rows = []
for line in open(path):
    used, free, fe, pins = line.split()
    if int(fe) >= int(threads):  # only while every sysbench thread is connected
        rows.append((int(used), int(free), int(fe), pins))
if not rows:
    print("  no sample with every thread connected")
    sys.exit(1)
ratio = [u / fe for u, f, fe, _ in rows]
reasons = {}
for *_, pins in rows:
    if pins != "-":
        for kv in pins.split(","):
            r, n = kv.split("=")
            reasons[r] = max(reasons.get(r, 0), int(float(n)))
print(f"  backend in use / frontends: avg {100 * sum(ratio) / len(ratio):.1f} %, max {100 * max(ratio):.1f} % "
      f"({len(rows)} samples; open max {max(u + f for u, f, _, _ in rows)})   target <= 25 %: "
      f"{'PASS' if max(ratio) <= 0.25 else 'FAIL'}")
print(f"  sessions pinned (max per reason): {reasons or 'none'}"
      f"   prepared_statement: {'FAIL' if reasons.get('prepared_statement') else 'PASS'}")
ok = errors == "0" and rc == "0" and max(ratio) <= 0.25 and not reasons.get("prepared_statement")
sys.exit(0 if ok else 1)
PY

say "seed: $([ "$seed_ok" = 0 ] && echo PASS || echo FAIL); sysbench: $([ "$sb_ok" = 0 ] && echo PASS || echo FAIL)"
[ "$seed_ok" = 0 ] && [ "$sb_ok" = 0 ]
