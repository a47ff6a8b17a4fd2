"""What test/citus/*.py share: the cluster they are given (argv: socket dir, coordinator port,
worker ports), connections to its database, and TAP-style checks."""
import sys

import psycopg2

SOCK, PORTS = sys.argv[1], [int(p) for p in sys.argv[2:]]
DB = "sp_users_citus"
counts = {"passed": 0, "failed": 0}


def connect(port, user="postgres"):
    c = psycopg2.connect(host=SOCK, port=port, dbname=DB, user=user)
    c.autocommit = True
    return c


def check(ok, what):
    counts["passed" if ok else "failed"] += 1
    print(f"{'ok' if ok else 'not ok'} {counts['passed'] + counts['failed']} - {what}")


def finish(name):
    print(f"{name}: {counts['passed']} passed, {counts['failed']} failed")
    sys.exit(1 if counts["failed"] else 0)
