"""Citus-specific safety of sp_users after distribute() (found by a fresh-eyes run): a change of
banned_ips runs on every other node as the owner of sp_users, as text Citus deparses with
pg_catalog names unqualified, under the session settings Citus replays there. So (1) no ban is
changed while SET LOCAL commands would be replayed (citus.propagate_set_commands = 'local');
(2) distribute() refuses while a non-superuser may create objects on a node's default search_path;
(3) on workers only the ban functions are granted. argv: socket dir, coordinator port, worker ports."""
import sys

import psycopg2

SOCK, PORTS = sys.argv[1], [int(p) for p in sys.argv[2:]]
DB = "sp_users_citus"
passed = failed = 0


def connect(port, user="postgres"):
    c = psycopg2.connect(host=SOCK, port=port, dbname=DB, user=user)
    c.autocommit = True
    return c


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok {passed + failed} - {what}")
    else:
        failed += 1
        print(f"not ok {passed + failed} - {what}")


def run(conn, *sqls):
    """Runs the statements in one transaction; returns (sqlstate or None, last result)."""
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            for sql in sqls:
                cur.execute(sql)
            res = cur.fetchall() if cur.description else None
        conn.commit()
        return None, res
    except psycopg2.Error as e:
        conn.rollback()
        return e.pgcode, str(e).splitlines()[0]
    finally:
        conn.autocommit = True


coord = connect(PORTS[0])
worker = connect(PORTS[1])

# (1) Replayed SET LOCAL commands: every ban-changing function refuses, in the top transaction and
# after a savepoint, also once propagation was switched off again (what was recorded is replayed).
setup = ["SET LOCAL citus.propagate_set_commands = 'local'", "SET LOCAL search_path = public, pg_catalog"]
for call in ["SELECT sp_users.ban_ip('192.0.2.201', 'x', '1 hour')",
             "SELECT * FROM sp_users.ban_ips('192.0.2.202', 'x', '1 hour')",
             "SELECT sp_users.unban_ip('192.0.2.201')",
             "SELECT sp_users.cleanup_expired_bans()"]:
    state, msg = run(coord, *setup, call)
    check(state == "0A000", f"replayed SET LOCAL, then {call}: 0A000 ({state} {msg})")
state, msg = run(coord, *setup, "SAVEPOINT s", "SELECT sp_users.ban_ip('192.0.2.203', 'x', '1 hour')")
check(state == "0A000", f"recorded before a savepoint: still refused ({state})")
state, msg = run(coord, *setup, "SET LOCAL citus.propagate_set_commands = 'none'", "SELECT sp_users.ban_ip('192.0.2.204', 'x', '1 hour')")
check(state == "0A000", f"propagation switched off after recording: still refused ({state})")
state, msg = run(worker, *setup, "SELECT sp_users.ban_ip('192.0.2.205', 'x', '1 hour')")
check(state == "0A000", f"the same through a worker: refused ({state})")
state, msg = run(coord, "SET LOCAL citus.propagate_set_commands = 'local'", "SELECT (sp_users.ban_ip('192.0.2.206', 'x', '1 hour')).ban_count")
check(state is None and msg == [(1,)], f"propagation on but nothing recorded: the ban is made ({state} {msg})")
state, msg = run(coord, "SET LOCAL search_path = public, pg_catalog", "SELECT (sp_users.ban_ip('192.0.2.206', 'x', '1 hour')).ban_count")
check(state is None and msg == [(2,)], f"a SET LOCAL that is not replayed: the ban is made ({state} {msg})")

# (2) A role that may create objects on a worker's default search_path: distribute() refuses and
# names it; once revoked, it succeeds.
run(coord, "DROP ROLE IF EXISTS citus_planter", "CREATE ROLE citus_planter")
run(worker, "SET LOCAL citus.enable_ddl_propagation = off", "GRANT CREATE ON SCHEMA public TO citus_planter")
state, msg = run(coord, "SELECT count(*) FROM sp_users.distribute()")
check(state == "55000" and "citus_planter" in msg, f"CREATE on public for a non-superuser on a worker: distribute() refuses ({state} {msg})")
run(worker, "SET LOCAL citus.enable_ddl_propagation = off", "REVOKE CREATE ON SCHEMA public FROM citus_planter")
state, msg = run(coord, "SELECT count(*) FROM sp_users.distribute()")
check(state is None, f"after REVOKE: distribute() succeeds ({state} {msg})")

# (3) Workers grant only the ban functions to the sp_users roles.
run(coord, "DROP ROLE IF EXISTS citus_app", "CREATE ROLE citus_app LOGIN", "GRANT sp_users_app TO citus_app")
app_worker = connect(PORTS[1], "citus_app")
app_coord = connect(PORTS[0], "citus_app")
state, msg = run(app_worker, "SELECT sp_users.is_banned('192.0.2.206')")
check(state is None and msg == [(True,)], f"app on a worker: is_banned answers ({state} {msg})")
for call in ["SELECT sp_users.create_user('wk', 'wk@example.com')", "SELECT sp_users.find_by_email('wk@example.com')",
             "SELECT sp_users.start_session(NULL, 'wk-session')", "SELECT sp_users.get_stats()",
             "SELECT sp_users.record_failure('login', '198.18.5.5')"]:
    state, msg = run(app_worker, call)
    check(state == "42501", f"app on a worker: {call} is denied ({state})")
state, msg = run(app_coord, "SELECT (sp_users.create_user('wk', 'wk@example.com')).name")
check(state is None and msg == [("wk",)], f"app on the coordinator: create_user works ({state} {msg})")
for c in (app_worker, app_coord):
    c.close()

print(f"citus security: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
