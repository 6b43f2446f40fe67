#!/usr/bin/env python3
"""The soak: switchyard under mixed load and injected faults for as long as asked.

Run through scripts/soak.sh (it installs what is missing and builds the release binary). This file
starts a sandbox (primary + 2 replicas) and a proxy process on it, then for DURATION runs:

  - sysbench oltp_read_write with server-side prepared statements (app user, writes), in rounds
    of a minute (see `sysbench_rounds`);
  - sysbench oltp_read_only with text statements (read-only user, the replicas), the same way;
  - connect churn: PyMySQL clients that log in, run one statement and leave, 20 a second;
  - config reloads every 5 s (servers, rules, variables LOAD ... TO RUNTIME);
  - faults: a replica paused 3 s (a blip) every 2 min, a replica killed and restarted every
    7 min, a switchover every 10 min (alternating primaries), a backup streamed with mariabackup
    from a replica to a file:// store every 10 min (pruned to the newest 2);

and samples the proxy every 10 s: RSS, descriptors, threads, sessions, error counters and the
workloads' latency (sysbench's 95th percentile per interval) into soak.csv, the faults into
faults.csv. At the end it draws soak.png and judges the run:

  - RSS flat after warm-up: the last quarter's median within 10 % (+4 MiB) of the first
    post-warm-up quarter's;
  - descriptors flat: the last quarter's 90th percentile within 16 of the first quarter's;
  - no panic in the proxy's log, and the proxy still running;
  - every client error in a sample within a fault's window (its start to 30 s after its end).

Exit code 0 when the run passes, 1 when it does not, 2 when it could not run.
"""

import csv
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

SAMPLE_EVERY = 10.0
FAULT_GRACE = 30.0


def parse_duration(text):
    m = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if not m:
        sys.exit(f"soak: duration {text!r}: expected N, Ns, Nm or Nh")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class Soak:
    def __init__(self, binary, out, duration):
        self.bin = binary
        self.out = out
        self.duration = duration
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.faults = []  # (start, end, kind, detail)
        self.churn_errors = 0
        self.churn_ok = 0
        self.children = []
        self.t0 = time.time()

    # --- processes -------------------------------------------------------------------------

    def run(self, args, **kw):
        return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw)

    def sandbox(self, *args):
        return self.run([self.bin, "sandbox", *args, "--dir", self.sbdir])

    def up(self):
        self.sbdir = self.out / "sandbox"
        info = json.loads(self.run([self.bin, "sandbox", "up", "--dir", self.sbdir, "--replicas", "2",
                                    "--output", "json"]).stdout)
        self.info = info
        self.servers = {s["name"]: s["port"] for s in info["servers"]}
        p = info["proxy"]
        self.proxy_port, self.admin_port = p["mysql_port"], p["admin_port"]
        env = dict(os.environ, SWITCHYARD_LOG=os.environ.get("SWITCHYARD_LOG", "info"))
        log = open(self.out / "proxy.log", "w")
        self.proxy = subprocess.Popen([str(self.bin), "proxy", "--config", p["config"]], env=env,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.admin_env = dict(os.environ, SWITCHYARD_ADMIN_PASSWORD=p["admin_password"],
                              SWITCHYARD_SERVER_PASSWORD=info["monitor_password"],
                              SWITCHYARD_REPL_PASSWORD=info["repl_password"])
        self.admin_url = f"mysql://{p['admin_user']}@127.0.0.1:{self.admin_port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.admin_rows("SELECT 1")
                break
            except Exception:
                time.sleep(0.5)
        else:
            raise RuntimeError("the proxy's admin port never answered")
        primary = self.servers["db1"]
        self.run(["sysbench", "oltp_read_write", "--db-driver=mysql", "--mysql-host=127.0.0.1",
                  f"--mysql-port={primary}", f"--mysql-user={p['user']}",
                  f"--mysql-password={p['password']}", "--mysql-db=sbtest", "--tables=4",
                  "--table-size=10000", "prepare"])

    def teardown(self):
        for p in self.children:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if getattr(self, "proxy", None) and self.proxy.poll() is None:
            self.proxy.send_signal(signal.SIGTERM)
            try:
                self.proxy.wait(20)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
        if getattr(self, "sbdir", None) and (self.sbdir / "sandbox.json").exists():
            subprocess.run([str(self.bin), "sandbox", "down", "--dir", str(self.sbdir)],
                           capture_output=True)

    # --- admin -------------------------------------------------------------------------------

    def admin_rows(self, sql):
        import pymysql
        p = self.info["proxy"]
        c = pymysql.connect(host="127.0.0.1", port=self.admin_port, user=p["admin_user"],
                            password=p["admin_password"], connect_timeout=5, read_timeout=10)
        try:
            with c.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            c.close()

    def primary(self):
        rows = self.admin_rows("SELECT writer_hostgroup FROM runtime_mysql_replication_hostgroups")
        writer = int(rows[0][0])
        ports = [int(r[0]) for r in self.admin_rows(
            f"SELECT port FROM runtime_mysql_servers WHERE hostgroup_id = {writer} AND status = 'ONLINE'")]
        for name, port in self.servers.items():
            if port in ports:
                return name
        return None

    def replicas(self):
        primary = self.primary()
        return [n for n in sorted(self.servers) if n != primary]

    # --- workloads ---------------------------------------------------------------------------

    def workloads(self):
        p = self.info["proxy"]
        common = ["--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={self.proxy_port}",
                  "--mysql-db=sbtest", "--tables=4", "--table-size=10000", "--report-interval=10",
                  "--mysql-ignore-errors=all", "--percentile=95"]
        rw = ["sysbench", "oltp_read_write", *common, f"--mysql-user={p['user']}",
              f"--mysql-password={p['password']}", "--db-ps-mode=auto", "--threads=8", "--rate=50"]
        ro = ["sysbench", "oltp_read_only", *common, f"--mysql-user={p['ro_user']}",
              f"--mysql-password={p['ro_password']}", "--db-ps-mode=disable", "--threads=4",
              "--rate=50"]
        for args, log in ((rw, "sysbench_rw.log"), (ro, "sysbench_ro.log")):
            threading.Thread(target=self.sysbench_rounds, args=(args, log), daemon=True).start()
        threading.Thread(target=self.churn, daemon=True).start()
        threading.Thread(target=self.reloads, daemon=True).start()
        threading.Thread(target=self.fault_schedule, daemon=True).start()

    def sysbench_rounds(self, args, log):
        """sysbench in rounds of a minute: sysbench 1.0.20 never recovers a connection its server
        closed mid-query (its reconnect reuses the closed handle and loops; the same against a
        server directly), so a fresh process each round keeps the load on through the faults."""
        with open(self.out / log, "a") as f:
            while not self.stop.is_set():
                left = int(self.duration - (time.time() - self.t0))
                if left < 5:
                    return
                round_ = subprocess.Popen([*args, f"--time={min(60, left)}", "run"], stdout=f,
                                          stderr=subprocess.STDOUT, start_new_session=True)
                with self.lock:
                    self.children.append(round_)
                # A round stuck in that reconnect loop ignores --time: end it a little after.
                try:
                    round_.wait(timeout=min(60, left) + 30)
                except subprocess.TimeoutExpired:
                    os.killpg(round_.pid, signal.SIGKILL)
                    round_.wait()
                    f.write("soak: round killed: still running 30 s after its --time\n")
                    f.flush()

    def churn(self):
        import pymysql
        p = self.info["proxy"]
        while not self.stop.is_set():
            try:
                c = pymysql.connect(host="127.0.0.1", port=self.proxy_port, user=p["user"],
                                    password=p["password"], database="sbtest", connect_timeout=5,
                                    read_timeout=10)
                with c.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM sbtest1 WHERE id < 10")
                c.close()
                with self.lock:
                    self.churn_ok += 1
            except Exception:
                with self.lock:
                    self.churn_errors += 1
            self.stop.wait(0.05)

    def reloads(self):
        while not self.stop.wait(5):
            for module in ("MYSQL SERVERS", "MYSQL QUERY RULES", "MYSQL VARIABLES"):
                try:
                    self.admin_rows(f"LOAD {module} TO RUNTIME")
                except Exception as e:
                    if not self.stop.is_set():
                        print(f"soak: reload {module} failed: {e}", file=sys.stderr)

    def fault(self, kind, detail, action):
        start = time.time() - self.t0
        ok = True
        try:
            action()
        except subprocess.CalledProcessError as e:
            ok = False
            detail += f" FAILED: {e.stderr.strip()[-300:]}"
        except Exception as e:
            ok = False
            detail += f" FAILED: {e}"
        end = time.time() - self.t0
        with self.lock:
            self.faults.append((round(start, 1), round(end, 1), kind, detail, ok))
        print(f"soak: {start:7.0f}s {kind}: {detail}", file=sys.stderr)

    def fault_schedule(self):
        # SOAK_FAULT_SCALE=0.1 runs the schedule ten times as often (a quick check of this script).
        scale = float(os.environ.get("SOAK_FAULT_SCALE", "1"))
        every = {"blip": 120, "restart": 420, "switchover": 600, "backup": 600}
        first = {"blip": 60, "restart": 240, "switchover": 450, "backup": 300}
        every = {k: v * scale for k, v in every.items()}
        due = {k: v * scale for k, v in first.items()}
        backups = self.out / "backups"
        while not self.stop.wait(1):
            now = time.time() - self.t0
            if now > self.duration - 30:
                return
            for kind in ("switchover", "restart", "blip", "backup"):
                if now < due[kind]:
                    continue
                due[kind] = now + every[kind]
                try:
                    replicas = self.replicas()
                except Exception as e:
                    print(f"soak: reading the topology failed: {e}", file=sys.stderr)
                    continue
                if not replicas:
                    continue
                victim = replicas[-1]
                if kind == "blip":
                    def blip(v=victim):
                        self.sandbox("pause", v)
                        time.sleep(3)
                        self.sandbox("resume", v)
                    self.fault(kind, f"{victim} paused 3 s", blip)
                elif kind == "restart":
                    def restart(v=victim):
                        self.sandbox("kill", v)
                        time.sleep(5)
                        self.sandbox("start", v)
                    self.fault(kind, f"{victim} killed and restarted", restart)
                elif kind == "switchover":
                    target = replicas[0]
                    port = self.servers[target]
                    self.fault(kind, f"to {target}", lambda: self.run(
                        [self.bin, "switchover", "--admin", self.admin_url, "--to",
                         f"127.0.0.1:{port}", "--repl-user", self.info["repl_user"],
                         "--state-dir", self.out / "ops", "--yes"], env=self.admin_env))
                elif kind == "backup":
                    src = f"mysql://root:{self.info['root_password']}@127.0.0.1:{self.servers[victim]}"

                    def backup(src=src):
                        self.run([self.bin, "backup", "stream", "--dest", f"file://{backups}",
                                  "--from-server", src, "--chunk-size", "16MiB"])
                        self.run([self.bin, "backup", "prune", "--src", f"file://{backups}",
                                  "--keep", "2", "--yes"])
                    self.fault(kind, f"mariabackup of {victim} streamed", backup)

    # --- sampling ----------------------------------------------------------------------------

    def proc(self):
        pid = self.proxy.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds, threads

    @staticmethod
    def sysbench_last(path):
        """The last interval line: (p95 ms, errors/s, reconnects/s)."""
        try:
            lines = [l for l in Path(path).read_text().splitlines() if "lat (ms" in l]
        except OSError:
            return (None, None, None)
        if not lines:
            return (None, None, None)
        m = re.search(r"lat \(ms,95%\): ([\d.]+) err/s: ([\d.]+) reconn/s: ([\d.]+)", lines[-1])
        return tuple(float(x) for x in m.groups()) if m else (None, None, None)

    def sample(self):
        rss, fds, threads = self.proc()
        g = {k: int(v) for k, v in self.admin_rows(
            "SELECT Variable_Name, Variable_Value FROM stats_mysql_global") if str(v).isdigit()}
        sessions = int(self.admin_rows("SELECT COUNT(*) FROM stats_mysql_processlist")[0][0])
        rw = self.sysbench_last(self.out / "sysbench_rw.log")
        ro = self.sysbench_last(self.out / "sysbench_ro.log")
        with self.lock:
            churn_errors, churn_ok = self.churn_errors, self.churn_ok
        row = {
            "t": round(time.time() - self.t0, 1),
            "rss_kib": rss, "fds": fds, "threads": threads,
            "clients": g.get("Client_Connections_connected", 0),
            "sessions": sessions,
            "backend_conns": g.get("Server_Connections_connected", 0),
            "questions": g.get("Questions", 0),
            "generated_errors": g.get("generated_error_packets", 0),
            "clients_aborted": g.get("Client_Connections_aborted", 0),
            "rw_p95_ms": rw[0], "rw_err_s": rw[1], "rw_reconn_s": rw[2],
            "ro_p95_ms": ro[0], "ro_err_s": ro[1], "ro_reconn_s": ro[2],
            "churn_ok": churn_ok, "churn_errors": churn_errors,
        }
        return row

    def sample_loop(self):
        rows = []
        with open(self.out / "soak.csv", "w", newline="") as f:
            w = None
            end = self.t0 + self.duration
            while time.time() < end:
                self.stop.wait(SAMPLE_EVERY)
                if self.proxy.poll() is not None:
                    print("soak: the proxy exited", file=sys.stderr)
                    break
                try:
                    row = self.sample()
                except Exception as e:
                    print(f"soak: sampling failed: {e}", file=sys.stderr)
                    continue
                if w is None:
                    w = csv.DictWriter(f, fieldnames=list(row))
                    w.writeheader()
                w.writerow(row)
                f.flush()
                rows.append(row)
        return rows


# --- judging and drawing ---------------------------------------------------------------------

def judge(rows, faults, duration, proxy_log, proxy_alive):
    problems = []
    warm = max(120, duration * 0.1)
    steady = [r for r in rows if r["t"] >= warm]
    if len(steady) >= 8:
        q = len(steady) // 4
        first, last = steady[:q], steady[-q:]
        rss0 = statistics.median(r["rss_kib"] for r in first)
        rss1 = statistics.median(r["rss_kib"] for r in last)
        if rss1 > rss0 * 1.10 + 4096:
            problems.append(f"RSS grew after warm-up: median {rss0 / 1024:.1f} MiB -> {rss1 / 1024:.1f} MiB")
        # The 90th percentile, not the maximum: one sample during a burst of connects is not
        # growth.
        def p90(rows):
            values = sorted(r["fds"] for r in rows)
            return values[int(len(values) * 0.9)]
        fd0, fd1 = p90(first), p90(last)
        if fd1 > fd0 + 16:
            problems.append(f"descriptors grew after warm-up: p90 {fd0} -> {fd1}")
    else:
        problems.append(f"too few samples after warm-up ({len(steady)}) to judge RSS and descriptors")
    log = Path(proxy_log).read_text(errors="replace")
    if "panicked" in log:
        problems.append("the proxy's log has a panic")
    if not proxy_alive:
        problems.append("the proxy is not running at the end")
    unexplained = []
    prev = None
    for r in rows:
        errs = (r["rw_err_s"] or 0) + (r["ro_err_s"] or 0) + (r["rw_reconn_s"] or 0) + (r["ro_reconn_s"] or 0)
        churn = r["churn_errors"] - (prev["churn_errors"] if prev else 0)
        prev = r
        if errs == 0 and churn == 0:
            continue
        t0, t1 = r["t"] - SAMPLE_EVERY, r["t"]
        if not any(s - 1 <= t1 and t0 <= e + FAULT_GRACE for s, e, *_ in faults):
            unexplained.append(f"t={r['t']:.0f}s sysbench errors+reconnects/s {errs:g}, churn errors {churn}")
    if unexplained:
        problems.append(f"{len(unexplained)} samples with client errors no fault explains: "
                        + "; ".join(unexplained[:5]))
    failed = [f for f in faults if not f[4]]
    if failed:
        problems.append(f"{len(failed)} fault actions failed: " + "; ".join(f[3] for f in failed[:3]))
    return problems


def draw(rows, faults, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak: matplotlib is missing: no picture (soak.sh installs it)", file=sys.stderr)
        return
    t = [r["t"] / 60 for r in rows]
    fig, ax = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    ax[0].plot(t, [r["rss_kib"] / 1024 for r in rows])
    ax[0].set_ylabel("proxy RSS (MiB)")
    ax[1].plot(t, [r["fds"] for r in rows], label="descriptors")
    ax[1].plot(t, [r["clients"] for r in rows], label="client sessions")
    ax[1].plot(t, [r["backend_conns"] for r in rows], label="backend connections")
    ax[1].legend(loc="upper left", fontsize=8)
    ax[2].plot(t, [r["rw_p95_ms"] for r in rows], label="read/write (prepared) p95")
    ax[2].plot(t, [r["ro_p95_ms"] for r in rows], label="read-only (text) p95")
    ax[2].set_ylabel("latency (ms)")
    ax[2].set_yscale("log")
    ax[2].legend(loc="upper left", fontsize=8)
    qps = [0] + [(b["questions"] - a["questions"]) / max(b["t"] - a["t"], 1) for a, b in zip(rows, rows[1:])]
    ax[3].plot(t, qps, label="statements/s")
    ax[3].set_ylabel("statements/s")
    ax[3].set_xlabel("minutes")
    colors = {"blip": "tab:orange", "restart": "tab:red", "switchover": "tab:purple", "backup": "tab:green"}
    for s, e, kind, *_ in faults:
        for a in ax:
            a.axvspan(s / 60, max(e, s + 5) / 60, color=colors.get(kind, "grey"), alpha=0.25, lw=0)
    ax[0].set_title("switchyard soak (shaded: blip orange, restart red, switchover purple, backup green)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: soak.py BINARY OUT_DIR [DURATION]")
    binary, out = Path(sys.argv[1]), Path(sys.argv[2])
    duration = parse_duration(sys.argv[3] if len(sys.argv) > 3 else "1h")
    out.mkdir(parents=True, exist_ok=True)
    soak = Soak(binary, out, duration)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    try:
        soak.up()
        soak.t0 = time.time()
        soak.workloads()
        rows = soak.sample_loop()
        alive = soak.proxy.poll() is None
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"soak: could not run: {getattr(e, 'stderr', '') or e}", file=sys.stderr)
        return 2
    finally:
        soak.stop.set()
        soak.teardown()
    with open(out / "faults.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["start_s", "end_s", "kind", "detail", "ok"])
        w.writerows(soak.faults)
    draw(rows, soak.faults, out / "soak.png")
    problems = judge(rows, soak.faults, duration, out / "proxy.log", alive)
    if rows:
        steady = [r for r in rows if r["t"] >= max(120, duration * 0.1)] or rows
        print(f"soak: {duration}s, {len(rows)} samples, {len(soak.faults)} faults; RSS "
              f"{min(r['rss_kib'] for r in steady) / 1024:.1f}-{max(r['rss_kib'] for r in steady) / 1024:.1f} MiB "
              f"after warm-up, descriptors {min(r['fds'] for r in steady)}-{max(r['fds'] for r in steady)}, "
              f"statements {rows[-1]['questions']}, churn logins {rows[-1]['churn_ok']} "
              f"({rows[-1]['churn_errors']} failed)")
    print(f"soak: results in {out} (soak.csv, faults.csv, soak.png, logs)")
    if problems:
        for p in problems:
            print(f"soak: FAIL: {p}")
        return 1
    print("soak: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
