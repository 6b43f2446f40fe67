#!/usr/bin/env python3
"""Regenerates the seed corpus in fuzz/corpus from real traffic.

Starts a throwaway mariadbd on a free loopback port, puts a recording relay in front of it and
runs the clients people use through the relay (PyMySQL, the mariadb CLI, sysbench with
server-side prepared statements). Every greeting, client hello, command and response becomes a
seed of the target that parses it. The SQL of the field reports (--seeds), the admin statements
of the tests, a cnf fixture, HTTP request heads, a backup written by `switchyard backup stream`
and an xbstream written by mbstream are added beside them.

    python3 fuzz/seed_corpus.py --switchyard target/debug/switchyard [--seeds ../shared/seeds]

Needs mariadbd, mariadb-install-db, the mariadb CLI, sysbench, mbstream and PyMySQL (the test
venv has it). Files are named by content hash, so a rerun only adds what is new.
"""

import argparse
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

# Capability bits that change how responses are framed (the response_tracker selector's flags).
CLIENT_SESSION_TRACK = 1 << 23
CLIENT_DEPRECATE_EOF = 1 << 24
# Command byte -> response_tracker selector (Expect: 0 Simple, 1 Results, 2 Fetch, 3 Prepare,
# 4 FieldList, 5 Statistics).
EXPECT = {0x03: 1, 0x17: 1, 0x16: 3, 0x1C: 2, 0x04: 4, 0x09: 5}


def save(target, data):
    if not data:
        return
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A TCP relay that keeps, per connection, the byte runs in each direction in order."""

    def __init__(self, backend_port):
        self.backend_port = backend_port
        self.port = free_port()
        self.conversations = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            backend = socket.create_connection(("127.0.0.1", self.backend_port))
            runs = []
            with self.lock:
                self.conversations.append(runs)
            for src, dst, tag in ((client, backend, "c"), (backend, client, "s")):
                threading.Thread(target=self.pump, args=(src, dst, tag, runs), daemon=True).start()

    def pump(self, src, dst, tag, runs):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            with self.lock:
                if runs and runs[-1][0] == tag:
                    runs[-1][1].extend(data)
                else:
                    runs.append([tag, bytearray(data)])
            dst.sendall(data)


def packets(stream):
    """Splits a byte run into (payload, framed packet) pairs."""
    out, at = [], 0
    while at + 4 <= len(stream):
        n = stream[at] | stream[at + 1] << 8 | stream[at + 2] << 16
        framed = bytes(stream[at : at + 4 + n])
        out.append((framed[4:], framed))
        at += 4 + n
    return out


def harvest(conversations):
    for runs in conversations:
        if len(runs) < 2 or runs[0][0] != "s":
            continue
        greeting = packets(runs[0][1])
        hello = packets(runs[1][1])
        if not greeting or not hello:
            continue
        save("handshake", greeting[0][0])
        save("handshake", hello[0][0])
        caps = struct.unpack_from("<I", hello[0][0])[0] if len(hello[0][0]) >= 4 else 0
        flags = (0x10 if caps & CLIENT_DEPRECATE_EOF else 0) | (0x20 if caps & CLIENT_SESSION_TRACK else 0)
        # Authentication: every server packet until the client's first command.
        for tag, data in runs[2:4]:
            for payload, _ in packets(data):
                save("handshake", payload)
        command = None
        for tag, data in runs[2:]:
            if tag == "c":
                command = packets(data)[0][0] if packets(data) else None
                if command and command[0] == 0x03:
                    save("statement", command[1:])
                continue
            if not command:
                continue
            selector = EXPECT.get(command[0], 0) | flags
            save("response_tracker", bytes([selector]) + bytes(data))
            for payload, _ in packets(data)[:1]:
                save("handshake", payload)  # OK and ERR packets go through the same parsers


def start_mariadbd(tmp):
    datadir, sock = tmp / "data", tmp / "mysqld.sock"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
         "--skip-test-db"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    port = free_port()
    proc = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--port={port}", f"--socket={sock}",
         "--bind-address=127.0.0.1", "--skip-grant-tables=0", f"--pid-file={tmp / 'pid'}",
         f"--log-error={tmp / 'err.log'}", "--user=root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        ok = subprocess.run(["mariadb", f"--socket={sock}", "-uroot", "-e", "SELECT 1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if ok:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        sys.exit("mariadbd did not start")
    subprocess.run(["mariadb", f"--socket={sock}", "-uroot", "-e",
                    "CREATE USER fuzz@'%' IDENTIFIED BY 'fuzzpw'; GRANT ALL ON *.* TO fuzz@'%';"
                    "CREATE DATABASE sbtest"], check=True)
    return proc, port


STATEMENTS = [
    "SELECT 1", "SELECT @@version, @@version_comment, @@max_allowed_packet",
    "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, c VARCHAR(5), d DECIMAL(10,2), "
    "j JSON, b BLOB, ts TIMESTAMP(6) NULL, f DOUBLE, bi BIT(3), e ENUM('a','b'))",
    "INSERT INTO t (c, d, j, b, ts, f, bi, e) VALUES ('abc', 12.5, '{\"a\": [1, 2]}', x'00ff', "
    "NOW(6), 1e300, b'101', 'b'), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "INSERT IGNORE INTO t (c) VALUES ('truncated text')", "SHOW WARNINGS", "SELECT @@warning_count",
    "SELECT * FROM t", "SELECT LAST_INSERT_ID(), ROW_COUNT(), FOUND_ROWS()",
    "UPDATE t SET c = 'x' WHERE id = LAST_INSERT_ID()", "SELECT no_such_column FROM t",
    "SELECT 1; SELECT 2, 'two'; UPDATE t SET f = f + 1", "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES', @user_var = 42, autocommit = 0", "BEGIN", "COMMIT",
    "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT * FROM t; END", "CALL p()",
    "SHOW TABLES", "SHOW FULL PROCESSLIST", "SELECT SLEEP(0.01)", "KILL QUERY 999999",
    "GET DIAGNOSTICS @n = NUMBER", "CREATE SEQUENCE s", "SELECT NEXTVAL(s)",
]


def run_clients(port, python):
    code = (
        "import pymysql, sys\n"
        "c = pymysql.connect(host='127.0.0.1', port=int(sys.argv[1]), user='fuzz', password='fuzzpw',"
        " database='sbtest', client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)\n"
        "cur = c.cursor()\n"
        "for s in sys.argv[2:]:\n"
        "    try:\n"
        "        cur.execute(s)\n"
        "        while True:\n"
        "            cur.fetchall()\n"
        "            if not cur.nextset(): break\n"
        "    except pymysql.MySQLError:\n"
        "        pass\n"
        "c.ping()\n"
        "c.close()\n"
    )
    subprocess.run([python, "-c", code, str(port), *STATEMENTS], check=True)
    for s in ("SELECT * FROM sbtest.t", "SHOW DATABASES", "SELECT @@nonexistent"):
        subprocess.run(["mariadb", "-h127.0.0.1", f"-P{port}", "-ufuzz", "-pfuzzpw", "--ssl=0",
                        "--column-type-info", "-e", s], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = ["sysbench", "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
            "--mysql-user=fuzz", "--mysql-password=fuzzpw", "--mysql-db=sbtest", "--tables=1",
            "--table-size=100", "--mysql-ssl=off"]
    subprocess.run([*base, "oltp_read_write", "prepare"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*base, "--events=5", "--threads=1", "oltp_read_write", "run"], check=True,
                   stdout=subprocess.DEVNULL)


def seed_sql(seeds):
    keywords = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|SET|SHOW|LOAD|SAVE|CREATE|ALTER|"
                          r"DROP|CALL|BEGIN|COMMIT|KILL|GRANT|FLUSH)\b", re.I)
    for f in sorted(Path(seeds).glob("*.txt")):
        for line in f.read_text(errors="replace").splitlines():
            if keywords.match(line):
                stmt = line.strip().replace("\u2018", "'").replace("\u2019", "'")
                save("statement", stmt.encode())
                save("admin_sql", stmt.encode())
                save("query_rules", stmt.encode())
            if "mysql_servers=" in line.replace(" ", "") and "{" in line:
                save("cnf", line.split("proxysql.cnf", 1)[-1].encode())


def admin_sql_from_tests():
    pattern = re.compile(r'"((?:LOAD|SAVE|INSERT INTO mysql_|UPDATE (?:global_variables|mysql_)|DELETE FROM mysql_|'
                         r'SELECT [^"]* FROM (?:stats_|mysql_|runtime_|global_variables))[^"]*)"')
    for f in sorted((ROOT / "tests").glob("*.rs")):
        for m in pattern.finditer(f.read_text()):
            save("admin_sql", m.group(1).replace('\\"', '"').encode())


def http_heads():
    for head in (b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
                 b"HEAD /readyz HTTP/1.0\r\n\r\n", b"GET /healthz\n\n",
                 b"GET /metrics?name=x HTTP/1.1\r\nUser-Agent: Prometheus/2.45\r\n\r\n",
                 b"POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n"):
        save("http_request", head)


def backup_objects(switchyard, tmp):
    store = tmp / "store"
    data = os.urandom(12_000) + bytes(12_000)
    key = tmp / "key"
    key.write_bytes(os.urandom(32).hex().encode())
    variants = {"plain": [], "zstd": ["--compress", "zstd"], "aes": ["--encrypt-key-file", str(key)]}
    for name, extra in variants.items():
        proc = subprocess.run([switchyard, "backup", "stream", "--dest", f"file://{store}", "--name", f"seed-{name}",
                               "--chunk-size", "8KiB", *extra], input=data, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        if proc.returncode != 0:
            print(f"backup stream ({name}) failed, no such seeds:", proc.stderr.decode(errors="replace")[-400:])
    for f in sorted(store.rglob("*")):
        if f.is_file() and f.stat().st_size < 200_000:
            save("backup_chunk", f.read_bytes())


def xbstream_seeds(tmp):
    src = tmp / "xb"
    (src / "db").mkdir(parents=True)
    (src / "db" / "t.ibd").write_bytes(os.urandom(3000) + bytes(5000))
    (src / "xtrabackup_checkpoints").write_text("backup_type = full-backuped\nfrom_lsn = 0\n")
    out = subprocess.run(["mbstream", "-c", "db/t.ibd", "xtrabackup_checkpoints"], cwd=src,
                         stdout=subprocess.PIPE, check=True).stdout
    save("xbstream", out)
    save("xbstream", out[: len(out) // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switchyard", default=str(ROOT / "target" / "debug" / "switchyard"))
    ap.add_argument("--seeds", default=str(ROOT.parent / "shared" / "seeds"))
    ap.add_argument("--python", default=str(Path.home() / ".local/share/switchyard/venv/bin/python"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="switchyard-corpus-"))
    proc = None
    try:
        proc, port = start_mariadbd(tmp)
        relay = Recorder(port)
        run_clients(relay.port, args.python)
        time.sleep(0.5)
        with relay.lock:
            harvest(relay.conversations)
        if Path(args.seeds).is_dir():
            seed_sql(args.seeds)
        admin_sql_from_tests()
        save("cnf", (ROOT / "tests" / "fixtures" / "sidecar-proxysql.cnf").read_bytes())
        http_heads()
        backup_objects(args.switchyard, tmp)
        xbstream_seeds(tmp)
    finally:
        if proc:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
