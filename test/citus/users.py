"""Users split into shards by sp_users.distribute(): the same answers as a single server, emails and
names unique across shards under concurrent writers, direct writes still found, statistics exact,
the clean-up safe against a session starting meanwhile.
argv: socket dir, coordinator port, worker ports. Runs after bans.py (which distributed)."""
import re
import threading

import psycopg2

from cluster import PORTS, SOCK, check, connect, error, finish, one, rows

coord = connect(PORTS[0])

# --- layout
part = dict(rows(coord, "SELECT logicalrelid::text, column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition "
                        "WHERE logicalrelid::text IN ('sp_users.users', 'sp_users.user_emails', 'sp_users.user_names')"))
check(part == {"sp_users.users": "id", "sp_users.user_emails": "email", "sp_users.user_names": "name"},
      f"users split by id, user_emails by email, user_names by name ({part})")
keys = rows(coord, "SELECT conname FROM pg_constraint WHERE conrelid IN ('sp_users.users'::regclass, 'sp_users.account_failures'::regclass) "
                   "AND contype IN ('u', 'f') ORDER BY 1")
check(keys == [], f"no unique key but the id on users, no foreign key on account_failures ({keys})")
def claims_match():
    users = rows(coord, "SELECT id, email, name FROM sp_users.users")
    return (set(rows(coord, "SELECT user_id, email FROM sp_users.user_emails")) == {(i, e) for i, e, _ in users}
            and set(rows(coord, "SELECT user_id, name FROM sp_users.user_names")) == {(i, n) for i, _, n in users})


check(claims_match(), "every user (those made before distribute() too) holds its email and name claim, and no claim is left over")

# --- the same answers and errors as a single server: a database without Citus on the coordinator's server
single = psycopg2.connect(host=SOCK, port=PORTS[0], dbname="postgres", user="postgres")
single.autocommit = True
rows(single, "DROP DATABASE IF EXISTS sp_users_single")
rows(single, "CREATE DATABASE sp_users_single")
single.close()
single = psycopg2.connect(host=SOCK, port=PORTS[0], dbname="sp_users_single", user="postgres")
single.autocommit = True
rows(single, "CREATE EXTENSION sp_users")
script = [
    "SELECT name, email, display_name, status, roles FROM sp_users.create_user('cmp-a', ' CMP-A@Example.com ', 'Ann')",
    "SELECT name FROM sp_users.create_user('cmp-b', 'cmp-b@example.com')",
    "SELECT name FROM sp_users.create_user('cmp-a', 'other@example.com')",
    "SELECT name FROM sp_users.create_user('cmp-c', 'cmp-a@example.com')",
    "SELECT name FROM sp_users.create_user('', 'e@example.com')",
    "SELECT name FROM sp_users.create_user('cmp-d', 'not-an-email')",
    "SELECT name FROM sp_users.create_user(NULL, 'n@example.com')",
    "SELECT count(*) FROM sp_users.create_user_if_absent('cmp-a', 'fresh@example.com')",
    "SELECT count(*) FROM sp_users.create_user_if_absent('cmp-e', 'CMP-B@example.com')",
    "SELECT name FROM sp_users.create_user_if_absent('cmp-f', 'cmp-f@example.com')",
    "SELECT name FROM sp_users.find_by_email('  cmp-a@EXAMPLE.com')",
    "SELECT name FROM sp_users.find_by_name('cmp-b')",
    "SELECT name FROM sp_users.find_user('cmp-f@example.com')",
    "SELECT name FROM sp_users.find_user('cmp-f')",
    "SELECT count(*) FROM sp_users.find_by_name('CMP-B')",
    "SELECT name, email, email_verified FROM sp_users.update_email((SELECT id FROM sp_users.find_by_name('cmp-b')), 'CMP-B2@example.com')",
    "SELECT name FROM sp_users.find_by_email('cmp-b2@example.com')",
    "SELECT count(*) FROM sp_users.find_by_email('cmp-b@example.com')",
    "SELECT name FROM sp_users.create_user('cmp-g', 'cmp-b@example.com')",
    "SELECT name FROM sp_users.update_email((SELECT id FROM sp_users.find_by_name('cmp-g')), 'cmp-a@example.com')",
    "SELECT name FROM sp_users.update_user((SELECT id FROM sp_users.find_by_name('cmp-g')), NULL, 'G', 'G', 'active')",
    "SELECT name, full_name, display_name, status FROM sp_users.update_user((SELECT id FROM sp_users.find_by_name('cmp-g')), 'cmp-g@example.com', 'G', 'Gee', 'suspended')",
    "SELECT roles FROM sp_users.assign_roles((SELECT id FROM sp_users.find_by_name('cmp-g')), '{admin,user,admin}')",
    "SELECT roles FROM sp_users.assign_roles((SELECT id FROM sp_users.find_by_name('cmp-g')), '{}')",
    "SELECT outcome, roles FROM sp_users.promote_to_admin('cmp-a@example.com')",
    "SELECT outcome, roles FROM sp_users.demote_from_admin('cmp-a')",
    "SELECT outcome FROM sp_users.promote_to_admin('nobody')",
    "SELECT sp_users.get_roles((SELECT id FROM sp_users.find_by_name('cmp-a')))",
    "SELECT sp_users.is_temporary_anonymous('00000000-0000-0000-0000-000000000001')",
    "SELECT name, roles FROM sp_users.create_anonymous(' FP-Cmp ')",
    "SELECT sp_users.is_temporary_anonymous((SELECT id FROM sp_users.create_anonymous('fp-cmp')))",
    "SELECT count(*) FROM sp_users.start_session((SELECT id FROM sp_users.find_by_name('cmp-a')), 'cmp-s1')",
    "SELECT name, active_sessions FROM sp_users.find_with_sessions((SELECT id FROM sp_users.find_by_name('cmp-a')))",
    "SELECT session_count FROM sp_users.get_activity((SELECT id FROM sp_users.find_by_name('cmp-a')))",
    "SELECT name FROM sp_users.update_status((SELECT id FROM sp_users.find_by_name('cmp-a')), 'deleted')",
    "SELECT sp_users.session_exists('cmp-s1')",
    "SELECT count(*) FROM sp_users.find_by_email('cmp-a@example.com')",
    "SELECT name FROM sp_users.create_user('cmp-h', 'cmp-a@example.com')",
    "SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('cmp-f', 'cmp-g')))",
    "SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('cmp-f', 'cmp-g')))",
    "SELECT sp_users.delete_user((SELECT id FROM sp_users.users WHERE name = 'cmp-b'))",
    "SELECT sp_users.delete_user('00000000-0000-0000-0000-000000000001')",
    "SELECT name FROM sp_users.create_user('cmp-b', 'cmp-b2@example.com')",
    "SELECT (sessions, total_rows) FROM sp_users.promote_anonymous((SELECT id FROM sp_users.create_anonymous('fp-cmp')), (SELECT id FROM sp_users.find_by_name('cmp-b')))",
    "SELECT count(*) FROM sp_users.find_by_email('fp-cmp@anonymous.local')",
    "SELECT name FROM sp_users.create_anonymous('fp-cmp') WHERE name LIKE 'anonymous\\_%'",
    "SELECT (sessions, total_rows) FROM sp_users.merge_users((SELECT id FROM sp_users.find_by_name('cmp-b')), (SELECT id FROM sp_users.find_by_name('cmp-b')))",
    "SELECT array_agg(name ORDER BY name) FROM sp_users.search_users('cmp-', 100)",
    "SELECT name, active_sessions FROM sp_users.list_non_anonymous_with_sessions(100) WHERE name LIKE 'cmp-%'",
    "SELECT count(*) FROM sp_users.start_session((SELECT id FROM sp_users.find_by_name('cmp-b')), 'cmp-s2')",
    "SELECT count(*), count(*) FILTER (WHERE user_type = 'registered') FROM sp_users.list_sessions((SELECT id FROM sp_users.find_by_name('cmp-b')))",
    "SELECT session_id FROM sp_users.list_recent_sessions((SELECT id FROM sp_users.find_by_name('cmp-b')), 1) WHERE session_id LIKE 'cmp-%'",
    "SELECT sp_users.end_all_sessions((SELECT id FROM sp_users.find_by_name('cmp-b')))",
    "SELECT count(*) FROM sp_users.list_active_sessions((SELECT id FROM sp_users.find_by_name('cmp-b')))",
    "SELECT name FROM sp_users.find_authenticated_user((SELECT id FROM sp_users.find_by_name('cmp-b')))",
    "SELECT array_agg(name ORDER BY name) FROM sp_users.list_by_filter(status => 'active', lim => 100) WHERE name LIKE 'cmp-%'",
    "SELECT count(*) FROM sp_users.list_users_by_role('admin') WHERE name LIKE 'cmp-%'",
    "SELECT count(*) FROM sp_users.export_users() e WHERE e->>'name' LIKE 'cmp-%'",
    "SELECT * FROM sp_users.record_failure('nokind', NULL, (SELECT id FROM sp_users.find_by_name('cmp-h')))",
    "SELECT account_failures FROM sp_users.record_failure('login', NULL, (SELECT id FROM sp_users.find_by_name('cmp-h')))",
    "SELECT account_failures FROM sp_users.record_failure('login', NULL, '00000000-0000-0000-0000-000000000001')",
]


def outcome(conn, sql):
    """Rows or (sqlstate, message), with generated ids and anonymous names masked."""
    try:
        got = str(rows(conn, sql))
    except psycopg2.Error as e:
        got = str((e.pgcode, str(e).splitlines()[0]))
    return re.sub(r"anonymous_[0-9a-f]{8}", "anonymous_*", re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", got))


rows(coord, "DELETE FROM sp_users.users WHERE name LIKE 'cmp-%' OR email LIKE '%cmp%'")
rows(coord, "DELETE FROM sp_users.user_emails WHERE email LIKE '%cmp%'")
rows(coord, "DELETE FROM sp_users.user_names WHERE name LIKE 'cmp-%'")
differ = []
for sql in script:
    a, b = outcome(single, sql), outcome(coord, sql)
    if a != b:
        differ.append((sql, a, b))
check(differ == [], f"{len(script)} calls give the same answers and errors as on a single server ({differ[:3]})")
single.close()

# --- one email, eight racing sign-ups: exactly one wins
def race(n, work):
    results, barrier = [], threading.Barrier(n)

    def run(i):
        c = connect(PORTS[0])
        barrier.wait()
        try:
            results.append(work(c, i))
        except psycopg2.Error as e:
            results.append(e.pgcode)
        c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sorted(results, key=str)


got = race(8, lambda c, i: one(c, "SELECT name FROM sp_users.create_user(%s, 'race-one@example.com')", (f"race{i}",)) and "won")
check(got == ["23505"] * 7 + ["won"], f"8 concurrent sign-ups with one email: one wins, 7 get 23505 ({got})")
got = race(8, lambda c, i: one(c, "SELECT count(*) FROM sp_users.create_user_if_absent(%s, 'race-two@example.com')", (f"race-b{i}",)))
check(got == [0] * 7 + [1], f"8 concurrent create_user_if_absent with one email: one row, seven none ({got})")
got = race(8, lambda c, i: one(c, "SELECT count(*) FROM sp_users.create_user_if_absent('race-name', %s)", (f"race-c{i}@example.com",)))
check(got == [0] * 7 + [1], f"... and with one name ({got})")

# Eight existing users on different shards and workers change to one email at once.
NODE = ("SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
        "WHERE p.shardid = get_shard_id_for_distribution_column('sp_users.users', %s)")
ids = [one(coord, "SELECT id FROM sp_users.create_user(%s, %s)", (f"mover{i}", f"mover{i}@example.com")) for i in range(8)]
spread = (len({one(coord, "SELECT get_shard_id_for_distribution_column('sp_users.users', %s)", (u,)) for u in ids}),
          len({one(coord, NODE, (u,)) for u in ids}))
got = race(8, lambda c, i: one(c, "SELECT name FROM sp_users.update_email(%s, 'race-move@example.com')", (ids[i],)) and "won")
holders = rows(coord, "SELECT count(*) FROM sp_users.users WHERE email = 'race-move@example.com'")
check(got == ["23505"] * 7 + ["won"] and holders == [(1,)] and spread[0] > 4 and spread[1] > 1,
      f"8 users on {spread[0]} shards and {spread[1]} workers take one email at once: one does, 7 get 23505 ({got}, {holders})")
losers = one(coord, "SELECT count(*) FROM sp_users.users WHERE name LIKE 'mover%%' AND email = name || '@example.com'")
check(losers == 7, f"the losers keep their own email ({losers})")

# A sign-up waits for a claim another transaction holds, and wins when that one rolls back.
holder = connect(PORTS[0])
holder.autocommit = False
one(holder, "SELECT count(*) FROM sp_users.create_user('held', 'held@example.com')")
waiter = {}
t = threading.Thread(target=lambda: waiter.update(r=outcome(connect(PORTS[0]), "SELECT name FROM sp_users.create_user('held2', 'held@example.com')")))
t.start()
t.join(1.5)
waited = t.is_alive()
holder.rollback()
t.join(10)
check(waited and waiter.get("r") == "[('held2',)]", f"a sign-up waits for a held claim and takes it after a rollback ({waited}, {waiter})")

# create_anonymous: eight racers with one fingerprint get one user.
got = race(8, lambda c, i: str(one(c, "SELECT id FROM sp_users.create_anonymous('race-fp')")))
check(len(set(got)) == 1 and "None" not in got, f"8 concurrent create_anonymous with one fingerprint: one user ({len(set(got))})")

# --- rows written into users directly are found (no claim: every shard is asked)
rows(coord, "INSERT INTO sp_users.users (name, email) VALUES ('direct1', 'direct1@example.com')")
found = [one(coord, "SELECT count(*) FROM sp_users.find_by_email('Direct1@example.com')"),
         one(coord, "SELECT count(*) FROM sp_users.find_by_name('direct1')"),
         one(coord, "SELECT count(*) FROM sp_users.find_user('direct1@example.com')")]
rows(coord, "SELECT sp_users.create_user('direct2', 'direct2-old@example.com')")
rows(coord, "UPDATE sp_users.users SET email = 'direct2@example.com' WHERE name = 'direct2'")
found += [one(coord, "SELECT count(*) FROM sp_users.find_by_email('direct2@example.com')"),
          one(coord, "SELECT count(*) FROM sp_users.find_by_email('direct2-old@example.com')")]
check(found == [1, 1, 1, 1, 0], f"a user inserted or re-addressed directly is found by email and name; the stale claim finds nobody ({found})")

# A direct DELETE leaves the email claimed; repair_user_claims() gives it back, claims the direct
# rows' emails and names, and reports an email two direct rows share.
rows(coord, "DELETE FROM sp_users.users WHERE name = 'direct2'")
state, _ = error(coord, "SELECT sp_users.create_user('direct3', 'direct2-old@example.com')")
rows(coord, "INSERT INTO sp_users.users (name, email) VALUES ('twin1', 'twin@example.com'), ('twin2', 'twin@example.com')")
repaired = rows(coord, "SELECT released, claimed, duplicates FROM sp_users.repair_user_claims()")
check(state == "23505" and repaired == [(2, 5, 1)],
      f"after direct writes, repair_user_claims() releases the deleted user's email and name, claims those written directly, reports the shared one ({state}, {repaired})")
after = [one(coord, "SELECT count(*) FROM sp_users.create_user('direct3', 'direct2-old@example.com')"),
         error(coord, "SELECT sp_users.create_user('twin3', 'twin@example.com')")[0],
         error(coord, "SELECT sp_users.create_user('direct1', 'direct-other@example.com')")[0],
         rows(coord, "SELECT released, claimed, duplicates FROM sp_users.repair_user_claims()")]
check(after == [1, "23505", "23505", [(0, 0, 1)]], f"then the freed email signs up again, the claimed ones are taken, a second repair changes nothing ({after})")
check(claims_match() is False, "(the shared email stays with one of its two users until one changes it)")
rows(coord, "DELETE FROM sp_users.users WHERE name LIKE 'twin%'")
rows(coord, "SELECT sp_users.repair_user_claims()")
check(claims_match(), "claims match the users again")

# --- statistics: exact, from the users themselves, in the caller's transaction
rows(coord, "UPDATE sp_users.users SET status = 'suspended' WHERE name LIKE 'race%'")
coord.autocommit = False
rows(coord, "SELECT sp_users.create_user('stat-tx', 'stat-tx@example.com')")
stats = rows(coord, "SELECT total, active, suspended, admins, anonymous FROM sp_users.get_stats()")
want = rows(coord, "SELECT count(*), count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'suspended'), "
                   "count(*) FILTER (WHERE 'admin' = ANY (roles)), count(*) FILTER (WHERE 'anonymous' = ANY (roles)) "
                   "FROM sp_users.users WHERE status <> 'deleted'")
coord.rollback()
coord.autocommit = True
check(stats == want, f"get_stats equals the plain count, with this transaction's own new user ({stats} {want})")

# --- the clean-up never deletes a user whose session is being started meanwhile
old = one(coord, "SELECT id FROM sp_users.create_anonymous('cleanup-race')")
rows(coord, "UPDATE sp_users.users SET created_at = now() - interval '40 days' WHERE id = %s", (old,))
starter = connect(PORTS[0])
starter.autocommit = False
one(starter, "SELECT count(*) FROM sp_users.start_session(%s, 'cleanup-race-1')", (old,))
cleaned = one(coord, "SELECT sp_users.cleanup_old_anonymous(30)")
still = one(coord, "SELECT count(*) FROM sp_users.users WHERE id = %s", (old,))
starter.commit()
check(still == 1 and one(coord, "SELECT sp_users.session_exists('cleanup-race-1')"),
      f"a clean-up while a session of the user is being started skips that user ({cleaned} deleted, user there: {still})")
rows(coord, "SELECT sp_users.end_session('cleanup-race-1')")
cleaned = one(coord, "SELECT sp_users.cleanup_old_anonymous(30)")
gone = [one(coord, "SELECT count(*) FROM sp_users.users WHERE id = %s", (old,)),
        one(coord, "SELECT count(*) FROM sp_users.user_emails WHERE user_id = %s", (old,)),
        one(coord, "SELECT count(*) FROM sp_users.user_sessions WHERE session_id = 'cleanup-race-1' AND user_id IS NULL")]
check(cleaned >= 1 and gone == [0, 0, 1], f"once its session ended, the next clean-up deletes it and frees its email; the session keeps its history ({gone})")

# --- brute-force lockouts follow the user
victim = one(coord, "SELECT id FROM sp_users.create_user('locked', 'locked@example.com')")
for _ in range(10):
    rows(coord, "SELECT * FROM sp_users.record_failure('login', NULL, %s)", (victim,))
state, _ = error(coord, "SELECT * FROM sp_users.find_authenticated_user(%s)", (victim,))
check(state == "28000", f"a locked account: find_authenticated_user raises 28000 ({state})")
rows(coord, "SELECT sp_users.delete_user(%s)", (victim,))
check(one(coord, "SELECT count(*) FROM sp_users.account_failures WHERE user_id = %s", (victim,)) == 0, "deleting the user deletes its failure records")

# --- a table of the application split by user id, co-located with users (docs/scaling.md): merges
# cannot move its rows (Citus does not change a distribution column) and say so before writing
rows(coord, "CREATE SCHEMA shop_c")
rows(coord, "CREATE TABLE shop_c.visits (user_id uuid NOT NULL, at timestamptz NOT NULL DEFAULT now())")
rows(coord, "SELECT create_distributed_table('shop_c.visits', 'user_id', colocate_with => 'sp_users.users')")
rows(coord, "ALTER TABLE shop_c.visits ADD FOREIGN KEY (user_id) REFERENCES sp_users.users (id) ON DELETE CASCADE")
src = one(coord, "SELECT id FROM sp_users.create_anonymous('visits-src')")
dst = one(coord, "SELECT id FROM sp_users.create_user('visits-dst', 'visits-dst@example.com')")
rows(coord, "INSERT INTO shop_c.visits (user_id) VALUES (%s), (%s)", (src, src))
state, msg = error(coord, "SELECT * FROM sp_users.promote_anonymous(%s, %s)", (src, dst))
kept = one(coord, "SELECT count(*) FROM shop_c.visits WHERE user_id = %s", (src,))
check(state == "0A000" and "shop_c.visits" in msg and kept == 2, f"a merge refuses to move rows of a table split by that user id, and writes nothing ({state} {msg}, {kept})")
rows(coord, "SELECT sp_users.set_merge_policy('shop_c.visits', 'user_id', 'delete')")
m = one(coord, "SELECT tables->'deleted_with_source' FROM sp_users.promote_anonymous(%s, %s)", (src, dst))
check(m == {"shop_c.visits.user_id": 2} and one(coord, "SELECT count(*) FROM shop_c.visits") == 0,
      f"with merge policy delete the merge goes through, deleting the source's visits ({m})")
rows(coord, "SELECT sp_users.set_merge_policy('shop_c.visits', 'user_id', 'move')")
rows(coord, "DROP SCHEMA shop_c CASCADE")

# --- an administrator's direct writes (a login holding only sp_users_admin) reach the shards
rows(coord, "DROP ROLE IF EXISTS users_admin")
rows(coord, "CREATE ROLE users_admin LOGIN")
rows(coord, "GRANT sp_users_admin TO users_admin")
adm = connect(PORTS[0], "users_admin")
results = [error(adm, "INSERT INTO sp_users.users (name, email) VALUES ('adm-direct', 'adm-direct@example.com')")[0],
           error(adm, "UPDATE sp_users.users SET email = 'adm-direct2@example.com' WHERE name = 'adm-direct'")[0]]
with adm.cursor() as cur:
    import io
    try:
        cur.copy_expert("COPY sp_users.users (name, email) FROM STDIN", io.StringIO("adm-copy\tadm-copy@example.com\n"))
        results.append(None)
    except psycopg2.Error as e:
        results.append(e.pgcode)
results.append(rows(adm, "SELECT claimed FROM sp_users.repair_user_claims()"))
results.append(one(adm, "SELECT count(*) FROM sp_users.find_by_email('adm-direct2@example.com')"))
results.append(error(adm, "DELETE FROM sp_users.users WHERE name LIKE 'adm-%'")[0])
adm.close()
check(results == [None, None, None, [(4,)], 1, None],
      f"as sp_users_admin: INSERT, UPDATE, COPY into users, repair_user_claims(), DELETE ({results})")

# --- parallel plans: the C readers that query Citus run in the leader
par = connect(PORTS[0])
rows(par, "SET force_parallel_mode = on")
pid = one(coord, "SELECT id FROM sp_users.create_user('par', 'par@example.com')")
got = [one(par, "SELECT count(*) FROM sp_users.find_by_email('par@example.com')"),
       one(par, "SELECT count(*) FROM sp_users.find_by_id(%s)", (pid,)),
       one(par, "SELECT count(*) FROM sp_users.find_user('par')"),
       one(par, "SELECT sp_users.get_roles(%s)::text", (pid,))]
check(got == [1, 1, 1, "{user}"], f"user readers under force_parallel_mode ({got})")
par.close()

# --- clean the data (the pgTAP suite runs next and counts users and sessions)
rows(coord, "DELETE FROM sp_users.user_sessions")
rows(coord, "DELETE FROM sp_users.users")
rows(coord, "SELECT sp_users.repair_user_claims()")
rows(coord, "DROP ROLE users_admin")
check(one(coord, "SELECT count(*) FROM sp_users.user_emails") + one(coord, "SELECT count(*) FROM sp_users.user_names") == 0,
      "after deleting every user directly, repair_user_claims() leaves no claim")
finish("users on Citus")
