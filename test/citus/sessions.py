"""Sessions on Citus after sp_users.distribute(): user_sessions split into shards by session_id on
the workers, users on the coordinator. Sessions made before distribute() are kept; every session
function through the coordinator gives the single-server answers and errors (also to a login
holding only sp_users_app); deleting a user clears its sessions' user id (the foreign key's ON
DELETE SET NULL, which Citus cannot keep); a merge moves sessions from every shard, and a merge
killed half-way — some shards' sessions already moved, one blocked — moves nothing; concurrent
sign-ups with one email: exactly one wins. argv: socket dir, coordinator port, worker ports."""
import datetime
import threading
import time

import psycopg2

from cluster import PORTS, check, connect, error, finish, one, rows

coord = connect(PORTS[0])
workers = [connect(p) for p in PORTS[1:]]


# --- layout and the data made before distribute() (citus.sh made it, bans.py distributed)
part = rows(coord, "SELECT partmethod, column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition "
                   "WHERE logicalrelid = 'sp_users.user_sessions'::regclass")
check(part == [("h", "session_id")], f"user_sessions is hash-distributed by session_id ({part})")
per_node = dict(rows(coord, "SELECT n.nodeport, count(*) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) "
                           "JOIN pg_dist_node n USING (groupid) WHERE s.logicalrelid = 'sp_users.user_sessions'::regclass GROUP BY 1"))
check(sorted(per_node) == PORTS[1:], f"its shards are on the workers, each of them ({per_node})")
check(one(coord, "SELECT pg_relation_size('sp_users.user_sessions')") == 0 and
      one(coord, "SELECT count(*) FROM sp_users.user_sessions WHERE session_id LIKE 'pre-%'") == 40,
      "the 40 sessions made before distribute() are in the shards, none left in the coordinator's table")
fk = one(coord, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'sp_users.user_sessions'::regclass AND contype = 'f'")
check(fk == 0, "the foreign key to users is gone (Citus keeps none from a distributed table to a coordinator table)")
pre_user = one(coord, "SELECT id FROM sp_users.users WHERE name = 'pre-user'")
check(one(coord, "SELECT count(*) FROM sp_users.list_active_sessions(%s)", (pre_user,)) == 40,
      "list_active_sessions finds them on every shard")
claims = [one(coord, "SELECT count(*) FROM sp_users.user_emails WHERE email = 'pre-user@example.com' AND user_id = %s", (pre_user,)),
          one(coord, "SELECT count(*) FROM sp_users.user_names WHERE name = 'pre-user' AND user_id = %s", (pre_user,)),
          error(coord, "SELECT sp_users.create_user('pre-user2', 'PRE-USER@example.com')")[0]]
check(claims == [1, 1, "23505"], f"the user made before distribute() holds its email and name claims: its email is taken ({claims})")

# --- every session function through the coordinator, as a login holding only sp_users_app
rows(coord, "DROP ROLE IF EXISTS sess_app")
rows(coord, "CREATE ROLE sess_app LOGIN")
rows(coord, "GRANT sp_users_app TO sess_app")
app = connect(PORTS[0], "sess_app")
uid = one(app, "SELECT id FROM sp_users.create_user('sess-alice', 'sess-alice@example.com')")
s = rows(app, "SELECT session_id, user_type, host(ip_address), expires_at - started_at FROM sp_users.start_session(%s, 'sa-1', '192.0.2.10', 'ua')", (uid,))
check(s == [("sa-1", "registered", "192.0.2.10", datetime.timedelta(days=7))],
      f"start_session through the coordinator: the row as on one server ({s})")
gen = one(app, "SELECT session_id FROM sp_users.start_session(%s)", (uid,))
check(gen.startswith("sess_") and len(gen) == 37, f"start_session without an id makes one, routed by it ({gen})")
anon = rows(app, "SELECT user_id, user_type FROM sp_users.start_session(NULL, 'sa-anon')")
check(anon == [(None, "anon")], f"a session without user ({anon})")
for label, sql, want in [
    ("unknown user", "SELECT sp_users.start_session('00000000-0000-0000-0000-000000000001', 'sa-x')", "P0002"),
    ("taken session id", f"SELECT sp_users.start_session('{uid}', 'sa-1')", "23505"),
    ("empty session id", f"SELECT sp_users.start_session('{uid}', '')", "23514"),
    ("bad address", f"SELECT sp_users.start_session('{uid}', 'sa-y', 'not-an-ip')", "22P02"),
    ("non-positive expiry", f"SELECT sp_users.start_session('{uid}', 'sa-z', expires_in => '-1 hour')", "22023"),
]:
    state, msg = error(app, sql)
    check(state == want, f"start_session, {label}: {want} as on one server ({state} {msg})")
check(one(coord, "SELECT count(*) FROM sp_users.user_sessions WHERE session_id IN ('sa-x', 'sa-y', 'sa-z')") == 0,
      "nothing stored by the refused calls")
before = one(coord, "SELECT last_activity_at FROM sp_users.user_sessions WHERE session_id = 'sa-1'")
time.sleep(0.01)
check(one(app, "SELECT sp_users.touch_session('sa-1')") is True and one(app, "SELECT sp_users.touch_session('nope')") is False,
      "touch_session: true for the session, false for an unknown one")
check(one(coord, "SELECT last_activity_at FROM sp_users.user_sessions WHERE session_id = 'sa-1'") > before, "touch_session moved last_activity_at")
check([one(app, f"SELECT sp_users.session_exists('{x}')") for x in ("sa-1", gen, "nope")] == [True, True, False],
      "session_exists: true, true, false")
listed = [r[0] for r in rows(app, "SELECT session_id FROM sp_users.list_active_sessions(%s)", (uid,))]
check(listed == ["sa-1", gen], f"list_active_sessions: most recent activity first ({listed})")
state, _ = error(app, "SELECT * FROM sp_users.list_active_sessions('00000000-0000-0000-0000-000000000001')")
check(state == "P0002", f"list_active_sessions of an unknown user: P0002 ({state})")
ws = rows(app, "SELECT name, active_sessions FROM sp_users.find_with_sessions(%s)", (uid,))
check(ws == [("sess-alice", 2)], f"find_with_sessions counts the sessions on the workers ({ws})")
check(one(app, "SELECT sp_users.end_session('sa-1')") is True and one(app, "SELECT sp_users.end_session('sa-1')") is False
      and one(app, "SELECT sp_users.session_exists('sa-1')") is False, "end_session: true, then false; the session is no longer active")
# In a parallel plan (Citus runs no distributed query from a parallel worker): distribute() marks
# the C session readers PARALLEL RESTRICTED (fresh-eyes run: 0A000 before).
par = rows(app, "SELECT set_config('force_parallel_mode', 'on', false), set_config('parallel_setup_cost', '0', false)")
par = [one(app, f"SELECT sp_users.session_exists('{x}')") for x in (gen, "nope")] + \
      [one(app, "SELECT count(*) FROM sp_users.list_active_sessions(%s)", (uid,))]
rows(app, "RESET force_parallel_mode; RESET parallel_setup_cost")
check(par == [True, False, 1], f"session_exists and list_active_sessions under force_parallel_mode ({par})")
# is_banned too, on every node, in a fresh backend (its first ban-set load may query through Citus).
fresh = []
for port in PORTS:
    c = connect(port)
    rows(c, "SET force_parallel_mode = on")
    state, msg = error(c, "SELECT sp_users.is_banned('10.9.9.9')")
    fresh.append(state or one(c, "SELECT sp_users.is_banned('10.9.9.9')"))
    c.close()
check(fresh == [False] * len(PORTS), f"is_banned under force_parallel_mode in a fresh backend on every node ({fresh})")
# One clock per transaction: a session expiring mid-transaction is active for every reader alike
# (the SQL readers pass the transaction's now(); a now() in their statements was each worker's).
rows(app, "SELECT sp_users.start_session(%s, 'sa-short', expires_in => '1 second')", (uid,))
app.autocommit = False
one(app, "SELECT now()")
time.sleep(1.5)
clock = [one(app, "SELECT sp_users.session_exists('sa-short')"),
         one(app, "SELECT active_sessions FROM sp_users.find_with_sessions(%s)", (uid,)),
         one(app, "SELECT count(*) FROM sp_users.list_active_sessions(%s)", (uid,))]
app.rollback()
app.autocommit = True
check(clock == [True, 2, 2], f"a session that expired during the transaction is still active for all readers in it ({clock})")
state, _ = error(app, "SELECT count(*) FROM sp_users.user_sessions")
check(state == "42501", f"the app login still cannot read the table itself ({state})")
app.close()

# --- deleting a user clears its sessions' user id (ON DELETE SET NULL without the foreign key),
# frees its email and name, and deletes its account failures
tmp = one(coord, "SELECT id FROM sp_users.create_user('sess-tmp', 'sess-tmp@example.com')")
rows(coord, "SELECT sp_users.start_session(%s, 'tmp-' || i) FROM generate_series(1, 6) i", (tmp,))
rows(coord, "SELECT sp_users.record_failure('login', NULL, %s)", (tmp,))
rows(coord, "SELECT sp_users.delete_user(%s)", (tmp,))
left = rows(coord, "SELECT count(*), count(user_id) FROM sp_users.user_sessions WHERE session_id LIKE 'tmp-%'")
check(left == [(6, 0)], f"a deleted user's sessions stay, with user_id NULL ({left})")
freed = [one(coord, "SELECT count(*) FROM sp_users.account_failures WHERE user_id = %s", (tmp,)),
         one(coord, "SELECT count(*) FROM sp_users.create_user('sess-tmp', 'sess-tmp@example.com')")]
check(freed == [0, 1], f"its account failures gone, its email and name free again ({freed})")

# ... and a user id cannot change: Citus refuses changing the distribution column (a single server
# refuses it for a user that sessions hold, 23503)
kid = one(coord, "SELECT id FROM sp_users.create_user('sess-kid', 'sess-kid@example.com')")
rows(coord, "SELECT sp_users.start_session(%s, 'kid-1')", (kid,))
state, msg = error(coord, "UPDATE sp_users.users SET id = '00000000-0000-0000-0000-00000000abcd' WHERE id = %s", (kid,))
check(state == "0A000" and "partition" in msg, f"changing the id of a user: refused by Citus ({state} {msg})")
state2, _ = error(coord, "UPDATE sp_users.users SET full_name = 'Kid' WHERE id = %s", (kid,))
check(state2 is None, f"other updates go through ({state2})")

# --- merges across shards: the two users on different workers, the sessions on many shards
NODE_OF_USER = ("SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
                "WHERE p.shardid = get_shard_id_for_distribution_column('sp_users.users', %s)")
src = one(coord, "SELECT id FROM sp_users.create_anonymous('sess-merge-src')")
for i in range(20):
    dst = one(coord, "SELECT id FROM sp_users.create_user(%s, %s)", (f"sess-merge-dst{i}", f"sess-merge-dst{i}@example.com"))
    if one(coord, NODE_OF_USER, (dst,)) != one(coord, NODE_OF_USER, (src,)):
        break
check(one(coord, NODE_OF_USER, (dst,)) != one(coord, NODE_OF_USER, (src,)), "source and target users live on different workers")
rows(coord, "SELECT sp_users.start_session(%s, 'ms-' || i) FROM generate_series(1, 24) i", (src,))
shards = one(coord, "SELECT count(DISTINCT get_shard_id_for_distribution_column('sp_users.user_sessions', 'ms-' || i)) FROM generate_series(1, 24) i")
check(shards > 8, f"the source's 24 sessions lie on {shards} shards")

# Killed half-way: another transaction holds one of the source's sessions, so the merge's update
# of that shard waits while the other shards' updates are done; the merge's backend is killed.
holder = connect(PORTS[0])
holder.autocommit = False
with holder.cursor() as cur:
    cur.execute("SELECT 1 FROM sp_users.user_sessions WHERE session_id = 'ms-7' FOR UPDATE")
merger = connect(PORTS[0])
merge_pid = one(merger, "SELECT pg_backend_pid()")
outcome = {}


def do_merge():
    try:
        rows(merger, "SELECT * FROM sp_users.promote_anonymous(%s, %s)", (src, dst))
        outcome["state"] = None
    except psycopg2.Error as e:
        outcome["state"] = e.pgcode or "killed"


t = threading.Thread(target=do_merge)
t.start()
waiting = False
for _ in range(100):  # until the merge waits on a worker
    time.sleep(0.1)
    if one(coord, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active' AND "
                  "now() - query_start > interval '300 milliseconds'", (merge_pid,)):
        waiting = True
        break
moved_meanwhile = sum(one(w, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                             "WHERE a.query LIKE '%user_sessions%' AND l.granted AND l.locktype = 'transactionid' "
                             "AND a.pid <> pg_backend_pid()") for w in workers)
check(waiting and moved_meanwhile > 1, f"the merge is under way: waiting on the held session, writing on the workers ({waiting}, {moved_meanwhile} transactions)")
one(coord, "SELECT pg_terminate_backend(%s)", (merge_pid,))
t.join(10)
holder.rollback()
holder.close()
check(outcome.get("state") is not None, f"the killed merge failed ({outcome})")
one(coord, "SELECT recover_prepared_transactions()")
after = rows(coord, "SELECT count(*) FILTER (WHERE user_id = %s), count(*) FILTER (WHERE user_id = %s), count(*) FILTER (WHERE user_type = 'anon') "
                    "FROM sp_users.user_sessions WHERE session_id LIKE 'ms-%%'", (src, dst))
check(after == [(24, 0, 24)], f"nothing half-moved: all 24 sessions still the source's, none the target's ({after})")
kept = [one(coord, "SELECT count(*) FROM sp_users.users WHERE id = %s AND roles = '{anonymous}'", (src,)),
        one(coord, "SELECT count(*) FROM sp_users.user_emails WHERE email = 'sess-merge-src@anonymous.local' AND user_id = %s", (src,)),
        one(coord, "SELECT count(*) FROM sp_users.user_sessions WHERE user_id = %s", (dst,))]
check(kept == [1, 1, 0], f"the source user is still there with its email claim, the target has nothing of it ({kept})")
pending = [one(w, "SELECT count(*) FROM pg_prepared_xacts") for w in workers]
check(pending == [0] * len(workers), f"no prepared transaction left on any worker ({pending})")

m = rows(coord, "SELECT sessions, total_rows FROM sp_users.promote_anonymous(%s, %s)", (src, dst))
after = rows(coord, "SELECT count(*) FILTER (WHERE user_id = %s), count(*) FILTER (WHERE user_type = 'registered') "
                    "FROM sp_users.user_sessions WHERE session_id LIKE 'ms-%%'", (dst,))
check(m == [(24, 24)] and after == [(24, 24)], f"the merge run again moves the 24 sessions from every shard, now registered ({m}, {after})")
gone = [one(coord, "SELECT count(*) FROM sp_users.users WHERE id = %s", (src,)),
        one(coord, "SELECT count(*) FROM sp_users.user_emails WHERE user_id = %s", (src,)),
        one(coord, "SELECT count(*) FROM sp_users.user_names WHERE user_id = %s", (src,))]
check(gone == [0, 0, 0], f"and deletes the source, freeing its email and name ({gone})")
state, msg = error(coord, "SELECT sp_users.set_merge_policy('sp_users.user_sessions', 'user_id', 'move')")
check(state is None, f"set_merge_policy accepts user_sessions.user_id, which merges follow without its key ({state} {msg})")

# --- concurrent sign-ups with one email: exactly one wins (each racer's user would go to a shard of
# its own random id; their email claims meet on one shard of user_emails). More in test/citus/users.py.
results = []
barrier = threading.Barrier(8)


def sign_up(i):
    c = connect(PORTS[0])
    barrier.wait()
    try:
        rows(c, "SELECT sp_users.create_user(%s, 'same@example.com')", (f"racer{i}",))
        results.append("won")
    except psycopg2.Error as e:
        results.append(e.pgcode)
    c.close()


threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(8)]
for th in threads:
    th.start()
for th in threads:
    th.join()
check(sorted(results) == ["23505"] * 7 + ["won"], f"8 concurrent sign-ups with one email: one wins, 7 get 23505 ({sorted(results)})")

# --- clean the suite's data (the pgTAP suite runs next and counts users)
rows(coord, "DELETE FROM sp_users.user_sessions")
rows(coord, "DELETE FROM sp_users.users")
rows(coord, "SELECT sp_users.repair_user_claims()")  # what direct deletes call for (docs/scaling.md)
rows(coord, "VACUUM ANALYZE sp_users.users, sp_users.user_sessions")
rows(coord, "DROP ROLE sess_app")
finish("sessions on Citus")
