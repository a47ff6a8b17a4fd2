-- pgTAP: sessions and the active-session rule (not ended, not revoked, not expired).
BEGIN;
SELECT no_plan();

SELECT sp_users.create_user('sam', 'sam@example.com');
CREATE TEMP TABLE ids AS SELECT name, id FROM sp_users.users;
CREATE FUNCTION pg_temp.uid(n text) RETURNS uuid LANGUAGE sql AS $$ SELECT id FROM ids WHERE name = n $$;

SELECT is((sp_users.start_session(pg_temp.uid('sam'), 'live')).user_type, 'registered', 'registered user_type');
-- Reads of one session in a statement of their own: on Citus (sp_users.distribute()) a query whose
-- only table is one shard of user_sessions runs on that worker whole, pgTAP's functions included.
SELECT expires_at - started_at AS live_expiry FROM sp_users.user_sessions WHERE session_id = 'live' \gset
SELECT is(:'live_expiry'::interval, interval '7 days', 'default expiry 7 days');
SELECT is((sp_users.start_session(NULL, 'visitor')).user_type, 'anon', 'a session without user is anon');
SELECT is((sp_users.start_session(pg_temp.uid('sam'), 'ended')).session_id, 'ended', 'explicit session id');
SELECT sp_users.start_session(pg_temp.uid('sam'), 'revoked');
SELECT sp_users.start_session(pg_temp.uid('sam'), 'expired', expires_in => '1 hour');
SELECT is((sp_users.start_session(pg_temp.uid('sam'), 'v6', '2001:DB8::0001')).ip_address, '2001:db8::1'::inet, 'IPv6 address stored canonical');
SELECT is((sp_users.start_session(pg_temp.uid('sam'), 'v4m', '::ffff:203.0.113.9')).ip_address, '203.0.113.9'::inet, 'IPv4-mapped stored as IPv4');
SELECT sp_users.end_session('ended');
UPDATE sp_users.user_sessions SET revoked_at = now() WHERE session_id = 'revoked';
UPDATE sp_users.user_sessions SET expires_at = now() - interval '1 microsecond' WHERE session_id = 'expired';

SELECT is(sp_users.session_is_active(NULL, NULL, NULL), true, 'session_is_active: open, never expiring');
SELECT is(sp_users.session_is_active(NULL, NULL, now()), false, 'session_is_active: expires_at = now() is expired');
SELECT is(sp_users.session_is_active(NULL, now(), now() + interval '1 day'), false, 'session_is_active: revoked');
SELECT is(sp_users.session_is_active(now(), NULL, NULL), false, 'session_is_active: ended');
SELECT ok(sp_users.session_exists('live'), 'live session exists');
SELECT ok(NOT sp_users.session_exists('ended'), 'ended session is not active');
SELECT ok(NOT sp_users.session_exists('revoked'), 'revoked session is not active');
SELECT ok(NOT sp_users.session_exists('expired'), 'expired (never ended) session is not active');
SELECT ok(NOT sp_users.session_exists('nope'), 'unknown session');
SELECT is(sp_users.session_exists(NULL), NULL, 'NULL session id');
SELECT is((SELECT array_agg(session_id ORDER BY session_id) FROM sp_users.list_active_sessions(pg_temp.uid('sam'))), '{live,v4m,v6}', 'list_active_sessions');
SELECT is((SELECT count(*)::int FROM sp_users.list_sessions(pg_temp.uid('sam'))), 6, 'list_sessions lists all');
SELECT is((SELECT active_sessions FROM sp_users.find_with_sessions(pg_temp.uid('sam'))), 3::bigint, 'find_with_sessions counts only active');

SELECT ok(sp_users.touch_session('live'), 'touch active');
SELECT ok(NOT sp_users.touch_session('expired'), 'touch expired is false');
SELECT ok(NOT sp_users.touch_session('ended'), 'touch ended is false');
SELECT last_activity_at > started_at AS live_bumped FROM sp_users.user_sessions WHERE session_id = 'live' \gset
SELECT ok(:'live_bumped'::boolean, 'touch bumps last_activity_at');
SELECT is((SELECT session_id FROM sp_users.list_sessions(pg_temp.uid('sam')) LIMIT 1), 'live', 'most recent activity first');
SELECT is((SELECT count(*)::int FROM sp_users.list_recent_sessions(pg_temp.uid('sam'), 2)), 2, 'list_recent_sessions limit');
SELECT is((SELECT count(*)::int FROM sp_users.list_recent_sessions(pg_temp.uid('sam'), 0)), 0, 'list_recent_sessions limit 0');
SELECT throws_ok(format('SELECT sp_users.list_recent_sessions(%L, -1)', pg_temp.uid('sam')), '22023', NULL, 'negative limit');

SELECT ok(NOT sp_users.end_session('ended'), 'end_session on ended is false');
SELECT ok(NOT sp_users.end_session('nope'), 'end_session on unknown is false');
SELECT is(sp_users.cleanup_sessions(), 1::bigint, 'cleanup_sessions ends the expired one');
SELECT is(sp_users.cleanup_sessions(), 0::bigint, 'cleanup_sessions is idempotent');
SELECT is(sp_users.end_all_sessions(pg_temp.uid('sam')), 4::bigint, 'end_all_sessions ends every open session (revoked too)');
SELECT is((SELECT count(*)::int FROM sp_users.list_active_sessions(pg_temp.uid('sam'))), 0, 'nothing active left');

-- Expiry choices.
SELECT is((sp_users.start_session(pg_temp.uid('sam'), 'forever', expires_in => NULL)).expires_at, NULL, 'expires_in NULL never expires');
SELECT ok(sp_users.session_exists('forever'), 'never-expiring session is active');
SELECT throws_ok(format('SELECT sp_users.start_session(%L, %L, expires_in => %L)', pg_temp.uid('sam'), 'z', '0'), '22023', NULL, 'zero expires_in');
SELECT throws_ok(format('SELECT sp_users.start_session(%L, %L, %L)', pg_temp.uid('sam'), 'z', '999.1.1.1'), '22P02', NULL, 'bad ip');
SELECT throws_ok(format('SELECT sp_users.start_session(%L, %L)', pg_temp.uid('sam'), repeat('s', 10000)), '23514', NULL, '10 000-character session id refused');
SELECT throws_ok(format('SELECT sp_users.start_session(%L, %L)', pg_temp.uid('sam'), 'live'), '23505', NULL, 'duplicate session id');

-- Sessions of an anonymous user are anon.
SELECT sp_users.create_user('anon1', 'fp@anonymous.local');
SELECT sp_users.assign_roles((SELECT id FROM sp_users.users WHERE name = 'anon1'), '{anonymous}');
SELECT is((sp_users.start_session((SELECT id FROM sp_users.users WHERE name = 'anon1'))).user_type, 'anon', 'anonymous user_type anon');

-- Hard delete keeps session history with user_id NULL.
SELECT sp_users.delete_user(pg_temp.uid('sam'));
SELECT count(*) AS live_orphaned FROM sp_users.user_sessions WHERE session_id = 'live' AND user_id IS NULL \gset
SELECT is(:'live_orphaned'::int, 1, 'ON DELETE SET NULL');

-- start_session checks its arguments before it looks for the user, whatever plan the backend
-- has cached by now (a generic plan after five calls used to reach P0002 first).
CREATE TEMP TABLE plan_user AS SELECT id FROM sp_users.create_user('plan_order', 'plan_order@example.com');
SELECT count(*) FROM (SELECT sp_users.start_session((SELECT id FROM plan_user), NULL, '192.0.2.1')
                        FROM generate_series(1, 8)) s;
SELECT throws_ok($$SELECT sp_users.start_session('00000000-0000-0000-0000-0000000000aa', '')$$, '23514', 'invalid session id: it must not be empty',
                 'missing user and empty session id: the argument error, also with a generic plan cached');
SELECT throws_ok($$SELECT sp_users.start_session('00000000-0000-0000-0000-0000000000aa', NULL, 'garbage')$$, '22P02', NULL,
                 'missing user and bad address: the argument error');
SELECT throws_ok($$SELECT sp_users.start_session('00000000-0000-0000-0000-0000000000aa', expires_in => '-1 day')$$, '22023', NULL,
                 'missing user and negative lifetime: the argument error');
SELECT throws_ok($$SELECT sp_users.start_session('00000000-0000-0000-0000-0000000000aa')$$, 'P0002', 'user not found: 00000000-0000-0000-0000-0000000000aa',
                 'missing user, good arguments: P0002');

SELECT * FROM finish();
ROLLBACK;
