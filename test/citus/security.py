"""Citus-specific safety of sp_users after distribute() (found by two fresh-eyes runs). Citus runs
a statement on banned_ips on other nodes (all of them, for a change) as the owner of sp_users, from
text it deparses here — pg_catalog names unqualified, constants in this session's DateStyle — and
parses there under that connection's settings plus the SET LOCAL commands it replays
(citus.propagate_set_commands = 'local', a user setting). So a caller holding only sp_users_app or
sp_users_readonly, with look-alike functions, operators and domains of its own on every node, tries
every way found to make those statements run its code or store something else: replayed
search_path (also from a released savepoint), local execution off, round-robin task assignment,
its own DateStyle / TimeZone / IntervalStyle, statements smuggled into a propagated SET. Nothing of
it may run as anyone but itself, and every node must store the same, right ban. Then: on workers only the ban functions are granted.
argv: socket dir, coordinator port, worker ports."""
import psycopg2

from cluster import PORTS, check, connect, finish


def q1(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


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
workers = [connect(p) for p in PORTS[1:]]
nodes = [coord] + workers

# The attacker's schema on every node: look-alikes that log who ran them.
for n in nodes:
    run(n, "SET LOCAL citus.enable_ddl_propagation = off",
        "DROP SCHEMA IF EXISTS evil CASCADE", "CREATE SCHEMA evil",
        "CREATE TABLE evil.log (who text, what text)",
        "GRANT USAGE ON SCHEMA evil TO PUBLIC", "GRANT INSERT, SELECT ON evil.log TO PUBLIC",
        """CREATE FUNCTION evil.hit(what text) RETURNS boolean LANGUAGE sql AS
           $$ INSERT INTO evil.log VALUES (current_user, what) RETURNING true $$""",
        "GRANT EXECUTE ON FUNCTION evil.hit(text) TO PUBLIC",
        "CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT evil.hit('now') AND true; SELECT pg_catalog.now() $$",
        "CREATE FUNCTION evil.cardinality(text[]) RETURNS integer LANGUAGE sql AS $$ SELECT evil.hit('cardinality'); SELECT pg_catalog.cardinality($1) $$",
        "CREATE FUNCTION evil.count() RETURNS bigint LANGUAGE sql AS $$ SELECT evil.hit('count'); SELECT 0::bigint $$",
        "CREATE FUNCTION evil.assign_distributed_transaction_id(integer, bigint, timestamptz) RETURNS void LANGUAGE sql AS $$ SELECT evil.hit('assign'); $$",
        "CREATE FUNCTION evil.lock_shard_resources(integer, bigint[]) RETURNS void LANGUAGE sql AS $$ SELECT evil.hit('lock_shard_resources'); $$",
        "CREATE FUNCTION evil.inet_ok(pg_catalog.inet) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('inet domain') $$",
        "CREATE DOMAIN evil.inet AS pg_catalog.inet CHECK (evil.inet_ok(VALUE))",
        "CREATE FUNCTION evil.text_ok(pg_catalog.text) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('text domain') $$",
        "CREATE DOMAIN evil.text AS pg_catalog.text CHECK (evil.text_ok(VALUE))",
        "CREATE FUNCTION evil.ts_ok(pg_catalog.timestamptz) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('timestamptz domain') $$",
        "CREATE DOMAIN evil.timestamptz AS pg_catalog.timestamptz CHECK (evil.ts_ok(VALUE))",
        "CREATE FUNCTION evil.gt(pg_catalog.timestamptz, pg_catalog.timestamptz) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('>') AND $1 OPERATOR(pg_catalog.>) $2 $$",
        "CREATE OPERATOR evil.> (LEFTARG = pg_catalog.timestamptz, RIGHTARG = pg_catalog.timestamptz, FUNCTION = evil.gt)")

run(coord, "DROP ROLE IF EXISTS citus_app", "CREATE ROLE citus_app LOGIN", "GRANT sp_users_app TO citus_app",
    "DROP ROLE IF EXISTS citus_reader", "CREATE ROLE citus_reader LOGIN", "GRANT sp_users_readonly TO citus_reader")
propagate = "SET LOCAL citus.propagate_set_commands = 'local'"
hostile = [propagate, "SET LOCAL search_path = evil, pg_catalog"]
# Attacks through Citus' SET propagation are refused at their SET (0A000): sp_users does not let
# Citus propagate SET LOCAL in its database (see the smuggling attacks below). The others must be
# answered, with nothing of the attacker's running.
attacks = [
    ("replayed search_path", hostile),
    ("replayed search_path, then a released savepoint", [propagate, "SAVEPOINT s", "SET LOCAL search_path = evil, pg_catalog",
                                                         "RELEASE SAVEPOINT s"]),
    ("replayed RESET ALL", [propagate, "RESET ALL"]),
    ("own search_path, local execution off", ["SET LOCAL search_path = evil, pg_catalog", "SET LOCAL citus.enable_local_execution = off"]),
    ("own search_path, round-robin tasks", ["SET LOCAL search_path = evil, pg_catalog", "SET LOCAL citus.task_assignment_policy = 'round-robin'"]),
    ("DateStyle SQL, DMY and a far time zone", ["SET LOCAL DateStyle = 'SQL, DMY'", "SET LOCAL TimeZone = 'Asia/Kolkata'",
                                                "SET LOCAL IntervalStyle = 'sql_standard'"]),
    ("DateStyle Postgres with an abbreviation zone", ["SET LOCAL DateStyle = 'Postgres'", "SET LOCAL TimeZone = 'Asia/Shanghai'"]),
    ("standard_conforming_strings off here", ["SET LOCAL standard_conforming_strings = off"]),
]
# Sessions live in shards on the workers (sp_users.distribute()): the app's session calls through
# the coordinator are routed there as the owner, from text written here under the caller's settings.
run(coord, "SELECT sp_users.create_user('sec-sess', 'sec-sess@example.com')")
session_calls = 0
n = 0
for who, user in (("citus_app", "citus_app"), ("citus_reader", "citus_reader")):
    for port in PORTS[:2]:  # through the coordinator and through a worker
        conn = connect(port, user)
        for label, settings in attacks:
            n += 1
            addr = f"198.18.{n}.1"
            if user == "citus_app":
                calls = [f"SELECT sp_users.ban_ip('{addr}', 'attack {n}', '1 hour')",
                         f"SELECT sp_users.ban_ip('{addr}', 'again', '1 hour', session_id => 's{n}', escalate => true)",
                         "SELECT sp_users.is_banned('%s')" % addr]
                if port == PORTS[0]:
                    me = "(SELECT id FROM sp_users.find_by_name('sec-sess'))"
                    calls = [f"SELECT sp_users.start_session({me}, 'sec-{n}', '192.0.2.{n}', E'ua \\\\ ''q')",
                             f"SELECT sp_users.touch_session('sec-{n}')", f"SELECT sp_users.session_exists('sec-{n}')",
                             f"SELECT pg_catalog.count(*) FROM sp_users.list_active_sessions({me})",
                             f"SELECT pg_catalog.count(*) FROM sp_users.find_with_sessions({me})"] + calls
            else:
                calls = ["SELECT sp_users.count_active_bans()", "SELECT pg_catalog.count(*) FROM sp_users.list_bans_by_source('manual')",
                         "SELECT pg_catalog.count(*) FROM sp_users.list_active_bans()"]
            state, msg = run(conn, *settings, *calls)
            where = "the coordinator" if port == PORTS[0] else "a worker"
            if propagate in settings:
                check(state == "0A000", f"{who} through {where}, {label}: refused at the SET ({state} {msg})")
            else:
                check(state is None, f"{who} through {where}, {label}: the calls answer ({state} {msg})")
                session_calls += user == "citus_app" and port == PORTS[0]
        conn.close()
hits = [(i, q1(node, "SELECT string_agg(who || ':' || what, ', ') FROM evil.log")) for i, node in enumerate(nodes)]
check(all(h is None for _, h in hits), f"no look-alike ran on any node, as anyone ({hits})")
rows = [q1(node, "SELECT string_agg(host(ip_address) || '|' || reason || '|' || ban_count || '|' || (expires_at - banned_at)::text || '|' || "
                 "array_to_string(associated_session_ids, ','), ';' ORDER BY ip_address) FROM sp_users.banned_ips WHERE ip_address << '198.18.0.0/16'")
        for node in nodes]
check(len(set(rows)) == 1 and rows[0] is not None, f"every node stores the same bans ({[r[:80] if r else r for r in rows]})")
bad = q1(coord, "SELECT count(*) FROM sp_users.banned_ips WHERE ip_address << '198.18.0.0/16' AND "
                "(ban_count <> 2 OR expires_at - banned_at <> interval '2 hours' OR abs(extract(epoch FROM banned_at - now())) > 600)")
check(bad == 0, f"every ban has count 2, the escalated 2 hours from now, whatever the caller's DateStyle or time zone ({bad} wrong)")
stored = q1(coord, "SELECT count(*) || ': ' || string_agg(DISTINCT user_agent || '|' || (host(ip_address) ~ '^192[.]0[.]2[.]') || '|' || "
                   "(expires_at - started_at)::text || '|' || (abs(extract(epoch FROM started_at - now())) < 600) || '|' || "
                   "(last_activity_at >= started_at), '; ') FROM sp_users.user_sessions WHERE session_id LIKE 'sec-%'")
check(stored == f"{session_calls}: ua \\ 'q|true|7 days|true|true",
      f"every session stored as given, started now, expiring in 7 days, whatever the caller's settings ({stored})")

# Citus replays a propagated SET by sending its query text, glued to the others on one line, on
# every connection of the transaction, also those ban_ip opens as the owner: statements smuggled
# after it (fresh-eyes run 3), a string read differently there, a trailing comment swallowing the
# next SETs (fresh-eyes run 4) ran as the owner. sp_users' guard (preloaded) refuses every SET that
# Citus would propagate in its database; nothing smuggled runs anywhere.
smuggled = "DO $$BEGIN PERFORM evil.hit('smuggled'); END$$"
app = connect(PORTS[0], "citus_app")
for label, steps in [
    ("in one simple query", ["SET LOCAL citus.propagate_set_commands = 'local'", "SET LOCAL work_mem = '4MB'; " + smuggled,
                             "SELECT sp_users.ban_ip('198.20.0.1', 'x', '1 hour')"]),
    ("through EXECUTE", ["SET LOCAL citus.propagate_set_commands = 'local'",
                         "DO $o$BEGIN EXECUTE $s$SET LOCAL work_mem = '4MB'; " + smuggled.replace("$$", "$d$") + "$s$; END$o$",
                         "SELECT sp_users.ban_ip('198.20.0.2', 'x', '1 hour')"]),
    ("after ban_ip opened its connections, with RESET", ["SELECT sp_users.ban_ip('198.20.0.3', 'x', '1 hour')",
                                                       "SET LOCAL citus.propagate_set_commands = 'local'",
                                                       "RESET work_mem; " + smuggled]),
]:
    state, msg = run(app, *steps)
    check(state == "0A000", f"a SET carrying another statement, {label}: refused ({state} {msg})")
# One statement where strings are read with standard_conforming_strings off, several where Citus
# replays it (its connections read them the standard way).
state, msg = run(app, "SET standard_conforming_strings = off", "SET LOCAL citus.propagate_set_commands = 'local'",
                 r"SET LOCAL sp_test.x = 'a\'; DO $$BEGIN PERFORM evil.hit($m$scs$m$); END$$; --'",
                 "SELECT sp_users.ban_ip('198.20.0.5', 'x', '1 hour')")
check(state == "0A000", f"a SET read differently here (standard_conforming_strings off) and there: refused ({state} {msg})")
run(app, "SET standard_conforming_strings = on")
for label, text in [("alone", "SET LOCAL work_mem = '4MB'"),
                    ("ending in a line comment (Citus glues the next SETs onto that line)", "SET LOCAL work_mem = '4MB' --"),
                    ("with a newline in a block comment", "SET LOCAL work_mem = '4MB' /*\n;SELECT evil.hit('comment'); -- */")]:
    state, msg = run(app, propagate, text, "SELECT (sp_users.ban_ip('198.20.0.4', 'x', '1 hour')).ban_count")
    check(state == "0A000", f"a SET LOCAL Citus would propagate, {label}: refused ({state} {msg})")
state, msg = run(app, "SET LOCAL work_mem = '4MB' --", "SELECT (sp_users.ban_ip('198.20.0.4', 'x', '1 hour')).ban_count")
check(state is None and msg == [(1,)], f"SET LOCAL without propagation: the ban is made ({state} {msg})")
app.close()
hits = [q1(node, "SELECT string_agg(who || ':' || what, ', ') FROM evil.log") for node in nodes]
check(all(h is None for h in hits), f"nothing smuggled ran on any node ({hits})")

# A node whose connections read strings the old way and resolve names in the attacker's schema first
# (what a database owner may set with ALTER DATABASE): a reason with a backslash and a quote is
# stored as given, and nothing of the attacker's runs.
payload = r"x\'||(SELECT evil.hit('injected'))::text||'"
run(workers[0], "SET LOCAL citus.enable_ddl_propagation = off", "ALTER DATABASE sp_users_citus SET standard_conforming_strings = off",
    "ALTER DATABASE sp_users_citus SET search_path = evil, pg_catalog")
fresh = connect(PORTS[0], "citus_app")
state, msg = run(fresh, "SELECT (sp_users.ban_ip('198.19.0.1', '%s', '1 hour')).reason" % payload.replace("'", "''"))
# The same on its own, outside a transaction block, where Citus forwards no SET LOCAL (fresh-eyes
# run 5): the owner's connections start from their defaults, which distribute() pinned.
auto_state = None
try:
    with fresh.cursor() as cur:  # autocommit
        cur.execute("SELECT (sp_users.ban_ip('198.19.0.2', '%s', '1 hour')).reason" % payload.replace("'", "''"))
except psycopg2.Error as e:
    auto_state = e.pgcode
fresh.close()
reasons2 = [q1(node, "SELECT reason FROM sp_users.banned_ips WHERE ip_address = '198.19.0.2'") for node in nodes]
check(auto_state is None and len(set(reasons2)) == 1 and reasons2[0] == payload,
      f"... and in autocommit: stored as given everywhere ({auto_state} {reasons2})")
run(workers[0], "SET LOCAL citus.enable_ddl_propagation = off", "ALTER DATABASE sp_users_citus RESET standard_conforming_strings",
    "ALTER DATABASE sp_users_citus RESET search_path")
reasons = [q1(node, "SELECT reason FROM sp_users.banned_ips WHERE ip_address = '198.19.0.1'") for node in nodes]
check(state is None and len(set(reasons)) == 1 and reasons[0] == payload,
      f"standard_conforming_strings off and the attacker's schema first on a worker: the reason is stored as given everywhere ({state} {msg} {reasons})")
hits = [q1(node, "SELECT string_agg(who || ':' || what, ', ') FROM evil.log") for node in nodes]
check(all(h is None for h in hits), f"... and nothing ran ({hits})")

# (3) Workers grant only the ban functions to the sp_users roles.
app_worker = connect(PORTS[1], "citus_app")
app_coord = connect(PORTS[0], "citus_app")
run(coord, "SELECT sp_users.ban_ip('198.21.0.1', 'for the worker check', NULL)")
state, msg = run(app_worker, "SELECT sp_users.is_banned('198.21.0.1')")
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

finish("citus security")
