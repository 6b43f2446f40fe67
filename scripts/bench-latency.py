"""One client's round-trip latency through each target, for scripts/bench-proxy.sh.

One PyMySQL connection per target (PyMySQL: a client without session tracking, the case that
once paid a COM_INIT_DB per statement), without TLS (PyMySQL prefers TLS when a server offers
it, which switchyard does and the sandbox's server does not: the figures would compare TLS
with plain TCP), `SELECT 1` in blocks, the targets taking turns block by
block so a change in the machine's load hits all of them alike. Prints one line per target:
name, p50 and p99 in microseconds over all its samples, and the server's Com_change_db growth
per statement over the whole run (read on a separate direct connection), tab-separated.

    python bench-latency.py HOST USER PASSWORD DB ROUNDS STATEMENTS DIRECT_PORT name=port...
"""

import sys
import time

import pymysql


def percentile(sorted_samples, q):
    return sorted_samples[min(len(sorted_samples) - 1, int(q * len(sorted_samples)))]


def change_db(conn):
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Com_change_db'")
        return int(cur.fetchone()[1])


def main():
    host, user, password, db, rounds, statements, direct_port = sys.argv[1:8]
    rounds, statements = int(rounds), int(statements)
    targets = [t.split("=", 1) for t in sys.argv[8:]]

    def connect(port):
        return pymysql.connect(
            host=host, port=int(port), user=user, password=password, database=db, ssl_disabled=True
        )

    conns = {name: connect(port) for name, port in targets}
    samples = {name: [] for name, _ in targets}
    changes = {name: 0 for name, _ in targets}
    observer = connect(direct_port)
    clock = time.perf_counter_ns
    for name, conn in conns.items():
        with conn.cursor() as cur:
            for _ in range(200):  # warm-up: connections borrowed and pooled, code paths hot
                cur.execute("SELECT 1")
                cur.fetchall()
    for _ in range(rounds):
        for name, conn in conns.items():
            before = change_db(observer)
            out = samples[name]
            with conn.cursor() as cur:
                for _ in range(statements):
                    t0 = clock()
                    cur.execute("SELECT 1")
                    cur.fetchall()
                    out.append(clock() - t0)
            # The observer's own SHOW does not count: it is not a COM_CHANGE_DB.
            changes[name] += change_db(observer) - before
    for name, _ in targets:
        s = sorted(samples[name])
        per = changes[name] / len(s)
        print(f"{name}\t{percentile(s, 0.50) / 1000:.1f}\t{percentile(s, 0.99) / 1000:.1f}\t{per:.3f}")
    for conn in list(conns.values()) + [observer]:
        conn.close()


if __name__ == "__main__":
    main()
