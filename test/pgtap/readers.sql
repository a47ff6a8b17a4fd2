-- pgTAP: the C request-path readers against the SQL they replace, on data with the edge cases:
-- deleted and suspended users, mixed-case and padded emails, sessions ended / revoked / expired,
-- equal sort keys (ties broken like ORDER BY does), overlapping networks, expired bans.
-- "(SELECT * FROM sp_users.users OFFSET 0) u": with users split into shards (sp_users.distribute()),
-- Citus would send a query over users that calls a function for each row to the shards whole.
BEGIN;
SELECT no_plan();

SELECT setseed(0.42);
INSERT INTO sp_users.users (name, email, status, roles)
SELECT 'rd' || i, 'rd' || i || '@example.com',
       (ARRAY['active', 'active', 'suspended', 'deleted', 'inactive'])[1 + i % 5]::sp_users.user_status,
       CASE WHEN i % 7 = 0 THEN '{anonymous}' ELSE '{user}' END::sp_users.user_role[]
  FROM generate_series(1, 300) i;
-- Sessions: ties on last_activity_at within a user, every kind of inactivity.
INSERT INTO sp_users.user_sessions (session_id, user_id, last_activity_at, ended_at, revoked_at, expires_at)
SELECT 'rs' || i || '-' || k, u.id, timestamptz '2026-01-01' + ((k % 3) || ' hours')::interval,
       CASE WHEN k % 5 = 1 THEN now() END, CASE WHEN k % 5 = 2 THEN now() END,
       CASE WHEN k % 5 = 3 THEN now() - interval '1 minute' WHEN k % 5 = 4 THEN NULL ELSE now() + interval '1 day' END
  FROM generate_series(1, 300) i JOIN sp_users.users u ON u.name = 'rd' || i, generate_series(1, 1 + i % 9) k
 WHERE u.status <> 'deleted';
-- Bans: many with one banned_at (one statement), networks nested in networks, some expired.
INSERT INTO sp_users.banned_ips (ip_address, reason, banned_at, expires_at)
SELECT ('10.' || (i % 5) || '.' || (i % 7) || '.' || i % 250)::inet, 'r', timestamptz '2026-02-01' + ((i % 4) || ' minutes')::interval,
       CASE WHEN i % 6 = 0 THEN now() - interval '1 hour' WHEN i % 6 = 1 THEN NULL ELSE now() + interval '1 day' END
  FROM generate_series(1, 600) i ON CONFLICT DO NOTHING;
INSERT INTO sp_users.banned_ips (ip_address, reason, expires_at) VALUES
  ('10.0.0.0/8', 'wide', now() + interval '1 day'), ('10.1.0.0/16', 'mid', NULL), ('10.1.2.0/24', 'narrow', now() - interval '1 s'),
  ('2001:db8::/32', 'v6', NULL), ('2001:db8::1', 'v6 host', now() + interval '1 hour');

SELECT results_eq(format('SELECT * FROM sp_users.find_by_email(%L)', e), format($$SELECT * FROM sp_users.users WHERE email = lower(btrim(%L)) AND status <> 'deleted'$$, e), 'find_by_email ' || e)
  FROM unnest(ARRAY['rd1@example.com', '  RD2@Example.COM ', 'rd4@example.com', 'rd3@example.com', 'nobody@example.com']) e;
SELECT results_eq(format('SELECT * FROM sp_users.find_by_name(%L)', n), format($$SELECT * FROM sp_users.users WHERE name = %L AND status <> 'deleted'$$, n), 'find_by_name ' || n)
  FROM unnest(ARRAY['rd1', 'rd4', 'RD1', 'rd3']) n;
SELECT results_eq(format('SELECT * FROM sp_users.find_by_id(%L)', u.id), format($$SELECT * FROM sp_users.users WHERE id = %L AND status <> 'deleted'$$, u.id), 'find_by_id ' || u.name)
  FROM (SELECT * FROM sp_users.users OFFSET 0) u WHERE u.name IN ('rd1', 'rd3', 'rd4');
SELECT results_eq(format('SELECT * FROM sp_users.find_authenticated_user(%L)', u.id), format($$SELECT * FROM sp_users.users WHERE id = %L AND status = 'active'$$, u.id), 'find_authenticated_user ' || u.name)
  FROM (SELECT * FROM sp_users.users OFFSET 0) u WHERE u.name IN ('rd1', 'rd2', 'rd3', 'rd4');
SELECT results_eq(format('SELECT * FROM sp_users.find_user(%L)', x), format($$SELECT * FROM sp_users.users WHERE (id::text = %1$L OR email = lower(btrim(%1$L)) OR name = %1$L) AND status <> 'deleted'$$, x), 'find_user ' || x)
  FROM (SELECT (SELECT id::text FROM sp_users.users WHERE name = 'rd5') UNION ALL SELECT 'RD6@example.com' UNION ALL SELECT 'rd7' UNION ALL SELECT 'rd9') AS t(x);
-- The expected answers first, in a table of their own: on Citus (sp_users.distribute()) a query
-- over user_sessions runs on the workers, and session_exists there would be a query in a query.
CREATE TEMP TABLE expected_sessions AS
SELECT s.session_id, s.ended_at IS NULL AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now()) AS active
  FROM sp_users.user_sessions s WHERE s.session_id LIKE 'rs1-%' OR s.session_id LIKE 'rs17-%';
SELECT is(sp_users.session_exists(e.session_id), e.active, 'session_exists ' || e.session_id) FROM expected_sessions e;
SELECT results_eq(format('SELECT session_id FROM sp_users.list_active_sessions(%L)', u.id),
                  format($$SELECT session_id FROM sp_users.user_sessions s WHERE s.user_id = %L AND sp_users.session_is_active(s.ended_at, s.revoked_at, s.expires_at)
                           ORDER BY s.last_activity_at DESC, s.session_id$$, u.id), 'list_active_sessions ' || u.name || ' (ties by session id)')
  FROM (SELECT * FROM sp_users.users OFFSET 0) u WHERE u.name IN ('rd6', 'rd17', 'rd26', 'rd1');
SELECT results_eq('SELECT ip_address FROM sp_users.list_active_bans(' || n || ')',
                  $$SELECT ip_address FROM sp_users.banned_ips b WHERE b.expires_at IS NULL OR b.expires_at > now() ORDER BY b.banned_at DESC, b.ip_address LIMIT $$ || least(n, 100),
                  'list_active_bans(' || n || ') (ties by address)')
  FROM unnest(ARRAY[0, 1, 37, 100, 500]) n;
SELECT results_eq(format('SELECT * FROM sp_users.get_ban(%L)', a),
                  format($$SELECT * FROM sp_users.banned_ips b WHERE b.ip_address >>= sp_users.normalize_ip(%L) AND (b.expires_at IS NULL OR b.expires_at > now()) ORDER BY masklen(b.ip_address) DESC LIMIT 1$$, a),
                  'get_ban ' || a)
  FROM unnest(ARRAY['10.1.2.3', '10.1.9.9', '10.3.3.3', '10.0.1.1', '10.4.6.249', '192.0.2.1', '2001:db8::1', '2001:db8::2', '::ffff:10.1.2.3']) a;
SELECT is(sp_users.get_roles(u.id), u.roles, 'get_roles ' || u.name) FROM (SELECT * FROM sp_users.users OFFSET 0) u WHERE u.name IN ('rd1', 'rd7', 'rd14');
SELECT is(sp_users.is_temporary_anonymous(u.id), u.roles @> '{anonymous}', 'is_temporary_anonymous ' || u.name) FROM (SELECT * FROM sp_users.users OFFSET 0) u WHERE u.name IN ('rd1', 'rd7', 'rd21');
SELECT throws_ok(format('SELECT sp_users.get_roles(%L)', u.id), 'P0002', 'user not found: ' || u.id, 'get_roles of a deleted user') FROM (SELECT * FROM sp_users.users OFFSET 0) u WHERE u.name = 'rd3';
SELECT throws_ok(format('SELECT * FROM sp_users.list_active_sessions(%L)', u.id), 'P0002', NULL, 'list_active_sessions of a deleted user') FROM (SELECT * FROM sp_users.users OFFSET 0) u WHERE u.name = 'rd3';
SELECT throws_ok('SELECT * FROM sp_users.list_active_bans(NULL)', '22023', 'lim must not be NULL', 'list_active_bans(NULL)');
SELECT throws_ok('SELECT * FROM sp_users.list_active_bans(-3)', '22023', 'lim must not be negative (got -3)', 'list_active_bans(-3)');
-- An uncommitted change of another transaction is invisible, our own is visible (the query snapshot).
UPDATE sp_users.users SET status = 'deleted' WHERE name = 'rd1';
SELECT is((SELECT count(*) FROM sp_users.find_by_name('rd1')), 0::bigint, 'find_by_name sees the transaction''s own change');

SELECT * FROM finish();
ROLLBACK;
