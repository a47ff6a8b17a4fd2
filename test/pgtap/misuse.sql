-- pgTAP: misuse of the internal functions, as every sp_users role and as PUBLIC. Nobody but the
-- owner may run an internal function, attach a trigger function anywhere, add a trigger to an
-- sp_users table or write the derived counters; the C trigger functions refuse to run anywhere
-- but where the install script attached them (39P01), even for a superuser; and after all of it
-- the statistics and the ban set still equal plain SQL.
BEGIN;
SELECT no_plan();

CREATE ROLE tap_m_admin LOGIN;
CREATE ROLE tap_m_app LOGIN;
CREATE ROLE tap_m_reader LOGIN;
CREATE ROLE tap_m_nobody LOGIN;
GRANT sp_users_admin TO tap_m_admin;
GRANT sp_users_app TO tap_m_app;
GRANT sp_users_readonly TO tap_m_reader;
CREATE SCHEMA tap_own;
GRANT ALL ON SCHEMA tap_own TO PUBLIC;

SELECT sp_users.create_user('mia', 'mia@example.com');
SELECT sp_users.ban_ip('192.0.2.0/24', 'seed', '1 hour');

CREATE FUNCTION pg_temp.as_role(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q;
    EXCEPTION WHEN OTHERS THEN
        RESET ROLE;
        RETURN SQLSTATE;
    END;
    RESET ROLE;
    RETURN 'ok';
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.as_role(text, text) TO PUBLIC;

-- Every internal function, called with NULL arguments (behind a subquery, so the planner cannot
-- fold a strict call away before the privilege check), as each role: 42501. An administrator
-- keeps exactly what a direct write (the CHECK on roles) and run_anonymous_cleanup call.
CREATE TEMP TABLE internal_calls AS
SELECT p.proname::text AS name,
       format('SELECT %s(%s)', p.oid::regproc::text,
              (SELECT coalesce(string_agg(format('(SELECT NULL::%s OFFSET 0)', CASE WHEN t = 'anyelement'::regtype THEN 'text'::regtype ELSE t::regtype END), ', ' ORDER BY i), '')
                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i))) AS q
  FROM pg_proc p
 WHERE p.pronamespace = 'sp_users'::regnamespace AND p.proname LIKE '\_%' AND p.prokind = 'f';
GRANT SELECT ON internal_calls TO PUBLIC;
SELECT cmp_ok((SELECT count(*) FROM internal_calls), '>=', 20::bigint, 'internal functions found');

SELECT is(pg_temp.as_role(r, c.q), '42501', r || ' may not: ' || c.q)
  FROM internal_calls c, unnest(ARRAY['tap_m_app', 'tap_m_reader', 'tap_m_nobody']) AS r;
SELECT is(pg_temp.as_role('tap_m_admin', c.q), '42501', 'tap_m_admin may not: ' || c.q)
  FROM internal_calls c
 WHERE c.name NOT IN ('_roles_valid', '_cleanup_anonymous_batch', '_job_run_start', '_job_run_progress', '_retention');
SELECT isnt(pg_temp.as_role('tap_m_admin', c.q), '42501', 'tap_m_admin may (direct writes, run_anonymous_cleanup): ' || c.q)
  FROM internal_calls c
 WHERE c.name IN ('_roles_valid', '_cleanup_anonymous_batch', '_job_run_start', '_job_run_progress', '_retention');

-- The crash of issue 11: a table of one's own with the counter trigger attached. Refused at
-- CREATE TRIGGER for every role; and no role may add any trigger to an sp_users table.
SELECT is(pg_temp.as_role(r, q), '42501', r || ' may not: ' || q)
  FROM unnest(ARRAY['tap_m_admin', 'tap_m_app', 'tap_m_reader', 'tap_m_nobody']) AS r,
       unnest(ARRAY[
         $$CREATE TABLE tap_own.t1 (roles int); CREATE TRIGGER t AFTER INSERT ON tap_own.t1 REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_statement()$$,
         $$CREATE TABLE tap_own.t2 (x int); CREATE TRIGGER t AFTER INSERT ON tap_own.t2 FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate()$$,
         $$CREATE TABLE tap_own.t3 (x int); CREATE TRIGGER t AFTER TRUNCATE ON tap_own.t3 FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_truncate()$$,
         $$CREATE TRIGGER t AFTER INSERT ON sp_users.users REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_statement()$$,
         $$CREATE FUNCTION tap_own.f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'; CREATE TRIGGER t AFTER INSERT ON sp_users.users FOR EACH ROW EXECUTE FUNCTION tap_own.f()$$,
         $$CREATE FUNCTION tap_own.g() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'; CREATE TRIGGER t AFTER INSERT ON sp_users.banned_ips FOR EACH ROW EXECUTE FUNCTION tap_own.g()$$]) AS q;

-- The counters are derived: an administrator reads them but cannot write them.
SELECT is(pg_temp.as_role('tap_m_admin', q), '42501', 'tap_m_admin may not: ' || q) FROM unnest(ARRAY[
    $$INSERT INTO sp_users.user_count_deltas VALUES (1, 'active', 1, false, 5)$$,
    $$INSERT INTO sp_users.user_counts VALUES (1, 'active', 1, false, 1, 5)$$,
    $$UPDATE sp_users.user_counts SET n = n + 1$$,
    $$DELETE FROM sp_users.user_count_deltas$$,
    $$TRUNCATE sp_users.user_counts$$]) AS q;
SELECT is(pg_temp.as_role('tap_m_admin', q), 'ok', 'tap_m_admin may: ' || q) FROM unnest(ARRAY[
    $$SELECT count(*) FROM sp_users.user_counts$$,
    $$INSERT INTO sp_users.users (name, email) VALUES ('direct', 'direct@example.com')$$,
    $$SELECT sp_users.rebuild_user_counts()$$,
    $$SELECT sp_users.compact_user_counts()$$]) AS q;

-- Even a superuser cannot make the C trigger functions read a foreign row: 39P01, as
-- PostgreSQL's own trigger functions answer.
CREATE TABLE tap_own.fake (roles int, status int, created_at int);
CREATE TRIGGER c AFTER INSERT ON tap_own.fake REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_statement();
SELECT throws_ok($$INSERT INTO tap_own.fake VALUES (1, 2, 3)$$, '39P01', NULL, '_count_statement on a foreign table: 39P01');
DROP TRIGGER c ON tap_own.fake;
CREATE TRIGGER b AFTER INSERT ON tap_own.fake FOR EACH ROW EXECUTE FUNCTION sp_users._ban_set_invalidate();
SELECT throws_ok($$INSERT INTO tap_own.fake VALUES (1, 2, 3)$$, '39P01', NULL, '_ban_set_invalidate on a foreign table: 39P01');
DROP TRIGGER b ON tap_own.fake;
CREATE TRIGGER t AFTER TRUNCATE ON tap_own.fake FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_truncate();
SELECT throws_ok($$TRUNCATE tap_own.fake$$, '39P01', NULL, '_count_truncate on a foreign table: 39P01');
DROP TRIGGER t ON tap_own.fake;
-- The replica-mode triggers (logical replication) check where they run the same way.
CREATE TRIGGER r1 AFTER INSERT ON tap_own.fake FOR EACH ROW EXECUTE FUNCTION sp_users._count_row();
SELECT throws_ok($$INSERT INTO tap_own.fake VALUES (1, 2, 3)$$, '39P01', NULL, '_count_row on a foreign table: 39P01');
DROP TRIGGER r1 ON tap_own.fake;
CREATE TRIGGER r2 AFTER INSERT ON tap_own.fake FOR EACH ROW EXECUTE FUNCTION sp_users._ban_log_row();
SELECT throws_ok($$INSERT INTO tap_own.fake VALUES (1, 2, 3)$$, '39P01', NULL, '_ban_log_row on a foreign table: 39P01');
DROP TRIGGER r2 ON tap_own.fake;
CREATE TRIGGER r3 BEFORE INSERT ON tap_own.fake FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
SELECT throws_ok($$INSERT INTO tap_own.fake VALUES (1, 2, 3)$$, '39P01', NULL, '_ignore_replicated on a foreign table: 39P01');
DROP TRIGGER r3 ON tap_own.fake;
SELECT throws_ok($$SELECT sp_users._count_row()$$, '39P01', NULL, '_count_row called directly: 39P01');
SELECT throws_ok($$SELECT sp_users._ban_log_row()$$, '39P01', NULL, '_ban_log_row called directly: 39P01');
SELECT throws_ok($$SELECT sp_users._ignore_replicated()$$, '39P01', NULL, '_ignore_replicated called directly: 39P01');
SELECT throws_ok($$SELECT sp_users._count_statement()$$, '39P01', NULL, '_count_statement called directly: 39P01');
SELECT throws_ok($$SELECT sp_users._ban_set_invalidate()$$, '39P01', NULL, '_ban_set_invalidate called directly: 39P01');
-- The right table, the wrong shape: a row-level or BEFORE attachment is refused too.
SAVEPOINT shape;
CREATE TRIGGER bad_level AFTER INSERT ON sp_users.users REFERENCING NEW TABLE AS n FOR EACH ROW EXECUTE FUNCTION sp_users._count_statement();
SELECT throws_ok($$SELECT sp_users.create_user('lev', 'lev@example.com')$$, '39P01', NULL, '_count_statement as a row trigger: 39P01');
ROLLBACK TO SAVEPOINT shape;
-- (On a Citus coordinator the trigger must reach banned_ips' placements to fire: settings that are
-- inert placeholders elsewhere.)
SET LOCAL citus.enable_ddl_propagation = on;
SET LOCAL citus.enable_unsafe_triggers = on;
CREATE TRIGGER bad_timing BEFORE INSERT ON sp_users.banned_ips FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
SELECT throws_ok($$SELECT sp_users.ban_ip('198.51.100.1', 'x', '1 hour')$$, '39P01', NULL, '_ban_set_invalidate as a BEFORE trigger: 39P01');
ROLLBACK TO SAVEPOINT shape;
CREATE TRIGGER bad_row_level AFTER INSERT ON sp_users.users REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_row();
SELECT throws_ok($$SELECT sp_users.create_user('lev', 'lev@example.com')$$, '39P01', NULL, '_count_row as a statement trigger: 39P01');
ROLLBACK TO SAVEPOINT shape;
CREATE TRIGGER bad_guard AFTER INSERT ON sp_users.job_runs FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
SELECT throws_ok($$INSERT INTO sp_users.job_runs (job_name, enforce) VALUES ('x', false)$$, '39P01', NULL, '_ignore_replicated as an AFTER trigger: 39P01');
ROLLBACK TO SAVEPOINT shape;

-- After all of it: statistics and is_banned equal plain SQL.
SELECT is((SELECT total FROM sp_users.get_stats()),
          (SELECT count(*) FROM sp_users.users WHERE status <> 'deleted'), 'get_stats().total equals SQL after the misuse');
SELECT is((SELECT count(*) FROM sp_users.user_count_deltas WHERE day IS NULL OR status IS NULL OR roles IS NULL), 0::bigint,
          'no foreign row reached the counter deltas');
SELECT ok(sp_users.is_banned('192.0.2.77') AND NOT sp_users.is_banned('198.51.100.1'), 'is_banned equals the table after the misuse');

SELECT * FROM finish();
ROLLBACK;
