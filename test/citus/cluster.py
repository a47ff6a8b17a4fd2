"""What test/citus/*.py share: the cluster they are given (argv: socket dir, coordinator port,
worker ports), connections to its database, and TAP-style checks."""
import os
import sys

import psycopg2

SOCK, PORTS = sys.argv[1], [int(p) for p in sys.argv[2:]]
DB = os.environ.get("SP_USERS_CITUS_DB", "sp_users_citus")
counts = {"passed": 0, "failed": 0}


def connect(port, user="postgres"):
    c = psycopg2.connect(host=SOCK, port=port, dbname=DB, user=user)
    c.autocommit = True
    return c


def rows(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def one(conn, sql, args=None):
    return rows(conn, sql, args)[0][0]


def error(conn, sql, args=None):
    """(sqlstate, first line) of the error the statement raises, or (None, None)."""
    try:
        rows(conn, sql, args)
        return None, None
    except psycopg2.Error as e:
        return e.pgcode, str(e).splitlines()[0]


def check(ok, what):
    counts["passed" if ok else "failed"] += 1
    print(f"{'ok' if ok else 'not ok'} {counts['passed'] + counts['failed']} - {what}")


def finish(name):
    print(f"{name}: {counts['passed']} passed, {counts['failed']} failed")
    sys.exit(1 if counts["failed"] else 0)
