#!/usr/bin/env python3
"""The PyMySQL driver of the transparency tester (a client without session tracking).

Runs each script (JSON lines, one statement each, written by tests/support/transparency) on its
own connection, one thread per script, all at once, and writes one transcript line per statement
in the shape of tests/support/transparency/transcript.rs. Loopback only; needs no network.

usage: pymysql_driver.py PORT SCRIPT_DIR OUT_DIR TAG... (user in TRANSPARENCY_USER, password in
MYSQL_PWD)
"""

import json
import os
import sys
import threading
import traceback

import pymysql
import pymysql.err

IN_TRANS = 0x1
AUTOCOMMIT = 0x2

_original_raise = pymysql.err.raise_mysql_exception


def _raise_with_state(data):
    """PyMySQL drops the SQLSTATE of an ERR packet: keep it on the exception."""
    try:
        _original_raise(data)
    except pymysql.err.MySQLError as e:
        e.sqlstate = data[4:9].decode("ascii", "replace") if data[3:4] == b"#" else ""
        raise


pymysql.err.raise_mysql_exception = _raise_with_state


def value(v):
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    return str(v)


def result(conn, res):
    """One statement's result in the transcript's shape."""
    r = {}
    fields = getattr(res, "fields", None) if res is not None else None
    if fields:
        r["cols"] = [[f.name, f.org_name, f.table_name, f.type_code, f.flags, f.charsetnr,
                      f.scale, f.length] for f in fields]
        r["rows"] = [[value(v) for v in row] for row in (res.rows or ())]
    else:
        r["affected"] = res.affected_rows if res is not None else 0
        r["insert_id"] = res.insert_id if res is not None else 0
        r["info"] = value(res.message) or "" if res is not None else ""
    r["warnings"] = res.warning_count if res is not None else 0
    r["status"] = conn.server_status & (IN_TRANS | AUTOCOMMIT)
    return r


def run(port, user, password, script_path, out_path):
    steps = [json.loads(line) for line in open(script_path) if line.strip()]
    out = []
    try:
        # conv={}: every value as the server sent it, as text; autocommit=None: the server's
        # default, as every other client here (PyMySQL would otherwise send SET autocommit=0).
        conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                               database="app", conv={}, autocommit=None)
    except Exception as e:  # noqa: BLE001 - the transcript records it
        out.append(entry(0, steps[0], {"connect_error": str(e)}))
        write(out_path, out)
        return
    handshake_id = conn.thread_id()
    for i, step in enumerate(steps):
        sql = step["sql"].replace("{HANDSHAKE_ID}", str(handshake_id))
        cur = conn.cursor()
        try:
            cur.execute(sql)
            r = result(conn, cur._result)  # noqa: SLF001 - PyMySQL keeps field metadata only there
        except pymysql.err.MySQLError as e:
            # Only an ERR packet from the server carries a SQLSTATE (see _raise_with_state).
            if hasattr(e, "sqlstate") and len(e.args) > 1:
                r = {"err": [e.args[0], e.sqlstate, e.args[1]]}
            else:
                out.append(entry(i, step, {"io_error": str(e)}))
                break
        except Exception:  # noqa: BLE001 - a driver fault ends the transcript, visibly
            out.append(entry(i, step, {"driver_error": traceback.format_exc()}))
            break
        finally:
            cur.close()
        out.append(entry(i, step, r))
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass
    write(out_path, out)


def entry(i, step, r):
    return {"i": i, "family": step["family"], "sql": step["sql"], "r": r}


def write(path, entries):
    with open(path, "w") as f:
        for e in entries:
            f.write(json.dumps(e) + "\n")


def main():
    port = int(sys.argv[1])
    script_dir, out_dir = sys.argv[2], sys.argv[3]
    tags = sys.argv[4:]
    user = os.environ["TRANSPARENCY_USER"]
    password = os.environ.get("MYSQL_PWD", "")
    threads = [threading.Thread(target=run, args=(port, user, password,
                                                  os.path.join(script_dir, t + ".jsonl"),
                                                  os.path.join(out_dir, t + ".jsonl")))
               for t in tags]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
