"""Memory per idle client of a proxy process, for scripts/bench-proxy.sh.

Opens N PyMySQL connections to the proxy and leaves them idle (each has run what PyMySQL runs
at connect, `SET AUTOCOMMIT = 0`, so it went through login and one statement), and reads the
proxy's resident memory (VmRSS) before and after. TLS is `plain` (ssl_disabled) or `tls`
(PyMySQL's default: TLS when the server offers it, as switchyard does). Prints: clients, RSS
before (KiB), RSS with the clients idle (KiB), and the growth per client in KiB, tab-separated. Raises the proxy's
`mysql-max_connections` and the user's `max_connections` first through the admin interface
(both default below 10,000).

    python bench-idle.py PROXY_PID HOST PORT USER PASSWORD DB CLIENTS plain|tls ADMIN_PORT ADMIN_USER ADMIN_PASSWORD
"""

import resource
import sys
import time

import pymysql


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settled_rss(pid):
    """RSS once two reads a short while apart agree (the proxy has finished its logins)."""
    last = rss_kib(pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = rss_kib(pid)
        if abs(now - last) <= 64:
            return now
        last = now
    return last


def main():
    pid, host, port, user, password, db, clients, tls, aport, auser, apassword = sys.argv[1:12]
    clients = int(clients)
    if tls not in ("plain", "tls"):
        sys.exit(f"TLS mode is plain or tls, not {tls!r}")
    tls_off = tls == "plain"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < clients + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, clients + 100), hard))
    admin = pymysql.connect(host=host, port=int(aport), user=auser, password=apassword)
    with admin.cursor() as cur:
        limit = str(clients + 1000)
        cur.execute(f"SET mysql-max_connections = {limit}")
        cur.execute("LOAD MYSQL VARIABLES TO RUNTIME")
        cur.execute(f"UPDATE mysql_users SET max_connections = {limit} WHERE username = '{user}'")
        cur.execute("LOAD MYSQL USERS TO RUNTIME")
    admin.close()

    # One client first, so what the first connection allocates once (the backend pool, the
    # runtime's buffers) is in the baseline, not spread over the idle clients.
    def connect():
        return pymysql.connect(
            host=host, port=int(port), user=user, password=password, database=db, ssl_disabled=tls_off
        )

    held = [connect()]
    before = settled_rss(pid)
    for _ in range(clients):
        held.append(connect())
    after = settled_rss(pid)
    print(f"{clients}\t{before}\t{after}\t{(after - before) / clients:.2f}")
    for c in held:
        c.close()


if __name__ == "__main__":
    main()
