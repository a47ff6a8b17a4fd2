-- pgTAP: invariants over the whole extension catalog, so a new function cannot forget them.
BEGIN;
SELECT no_plan();
-- On a Citus node (test/integration/citus.sh) the placement of a reference table, banned_ips_<shard
-- id>, is a table in schema sp_users too; it is Citus' copy, not sp_users' own, and is left out.
CREATE TEMP VIEW own_relations AS
    SELECT c.* FROM pg_class c
     WHERE c.relnamespace = 'sp_users'::regnamespace
       AND NOT (c.relname ~ '_[0-9]+$' AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus'));

SELECT is_empty($$SELECT p.oid::regprocedure::text FROM pg_proc p
                   WHERE p.pronamespace = 'sp_users'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL$$,
                'every function has a COMMENT (\df+ documents it)');
SELECT is_empty($$SELECT c.oid::regclass::text FROM own_relations c
                   WHERE c.relkind = 'r' AND obj_description(c.oid, 'pg_class') IS NULL$$,
                'every table has a COMMENT');
-- The request-path functions carry no SET clause (it costs a quarter of a cheap call): every
-- name in them is schema-qualified instead, which test/pgtap/search_path.sql proves by running
-- each of them under a hostile search_path. Every other function pins it. (The request-path
-- writes are C: their kept SPI statements are prepared and re-analysed under pg_catalog alone.)
SELECT set_eq($$SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'sp_users'::regnamespace AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
                  AND p.prokind <> 'p' AND p.prosqlbody IS NULL -- BEGIN ATOMIC bodies are bound at creation
                  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=pg_catalog, pg_temp')$$,
              -- (on a Citus node, distribute() pins them too: Citus re-parses routed statements
              -- under the caller's search_path, unqualifying pg_catalog names)
              CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN ARRAY[]::text[] ELSE
              ARRAY['sp_users.find_with_sessions(uuid)', 'sp_users.get_activity(uuid)', 'sp_users.list_users(integer,integer)',
                    'sp_users.search_users(text,integer)', 'sp_users.count_active_bans()', 'sp_users.create_anonymous(text)'] END,
              'every SQL/PL/pgSQL function pins search_path = pg_catalog, pg_temp, except the fully qualified request path');
-- A procedure that COMMITs may carry neither SET nor SECURITY DEFINER: it must stay an invoker
-- that only calls the (pinned, definer) helpers.
SELECT is_empty($$SELECT p.oid::regprocedure::text FROM pg_proc p
                   WHERE p.pronamespace = 'sp_users'::regnamespace AND p.prokind = 'p' AND p.prosecdef$$,
                'procedures are SECURITY INVOKER');
SELECT is_empty($$SELECT p.oid::regprocedure::text FROM pg_proc p
                   WHERE p.pronamespace = 'sp_users'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
                'PUBLIC cannot execute any sp_users function');
SELECT is_empty($$SELECT c.oid::regclass::text FROM pg_class c
                   WHERE c.relnamespace = 'sp_users'::regnamespace AND c.relkind IN ('r', 'S')
                     AND has_table_privilege('public', c.oid, 'SELECT')$$,
                'PUBLIC cannot read any sp_users table or sequence');
SELECT is_empty($$SELECT c.oid::regclass::text FROM own_relations c
                   WHERE c.relkind IN ('r', 'S')
                     AND c.oid NOT IN ('sp_users.user_counts'::regclass, 'sp_users.user_count_deltas'::regclass, -- derived: rebuilt by the triggers when users is restored
                                       'sp_users.ban_set_signal'::regclass, -- holds nothing: an invalidation target
                                       'sp_users.ban_changes'::regclass, 'sp_users.ban_changes_horizon'::regclass) -- a restored database starts a new change log
                     AND NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'sp_users' AND c.oid = ANY (e.extconfig))$$,
                'every table and sequence holding data is dumped by pg_dump (pg_extension_config_dump)');
SELECT has_role('sp_users_admin');
SELECT has_role('sp_users_app');
SELECT has_role('sp_users_readonly');
SELECT function_privs_are('sp_users', 'is_banned', ARRAY['text'], 'sp_users_app', ARRAY['EXECUTE'], 'app may call is_banned');
SELECT function_privs_are('sp_users', 'delete_user', ARRAY['uuid'], 'sp_users_app', ARRAY[]::text[], 'app may not delete users');
SELECT function_privs_are('sp_users', 'unban_ip', ARRAY['text'], 'sp_users_app', ARRAY[]::text[], 'app may not unban');
SELECT function_privs_are('sp_users', 'ban_ip', ARRAY['text','text','interval','text','text','text','text','text','boolean'], 'sp_users_readonly', ARRAY[]::text[], 'readonly may not ban');
SELECT table_privs_are('sp_users', 'banned_ips', 'sp_users_app', ARRAY[]::text[], 'app cannot touch banned_ips directly');

SELECT * FROM finish();
ROLLBACK;
