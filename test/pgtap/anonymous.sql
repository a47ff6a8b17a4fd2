-- pgTAP: anonymous users, the active-session rule and retention boundaries of the clean-up.
BEGIN;
SELECT no_plan();

SELECT is((sp_users.create_anonymous('Device-42')).email, 'device-42@anonymous.local', 'email from the fingerprint, normalised');
SELECT is((sp_users.create_anonymous('  DEVICE-42 ')).id, (sp_users.create_anonymous('device-42')).id, 'same fingerprint, same user');
SELECT is((SELECT count(*)::int FROM sp_users.users WHERE email = 'device-42@anonymous.local'), 1, 'exactly one row');
SELECT is((sp_users.create_anonymous('Device-42')).roles, '{anonymous}'::sp_users.user_role[], 'roles {anonymous}');
SELECT ok((SELECT name = 'anonymous_' || left(replace(id::text, '-', ''), 8) FROM sp_users.create_anonymous('Device-42')), 'name is anonymous_<first 8 hex of the id>');
SELECT is(sp_users.is_temporary_anonymous((sp_users.create_anonymous('Device-42')).id), true, 'is_temporary_anonymous');
SELECT throws_ok($$SELECT sp_users.create_anonymous('')$$, '22023', 'fingerprint must not be empty', 'empty fingerprint');
SELECT throws_ok($$SELECT sp_users.create_anonymous('   ')$$, '22023', 'fingerprint must not be empty', 'blank fingerprint');
SELECT throws_ok($$SELECT sp_users.create_anonymous(NULL)$$, '22023', 'fingerprint must not be empty', 'NULL fingerprint');
SELECT throws_ok(format('SELECT sp_users.create_anonymous(%L)', repeat('f', 10000)), '23514', NULL, '10 000-character fingerprint refused by the email length rule');

-- Retention boundaries: created exactly N days ago is kept; a microsecond older goes.
DELETE FROM sp_users.users;
INSERT INTO sp_users.users (name, email, roles, created_at) VALUES
    ('exactly30', 'a@anonymous.local', '{anonymous}', now() - interval '30 days'),
    ('older30',   'b@anonymous.local', '{anonymous}', now() - interval '30 days' - interval '1 microsecond'),
    ('zero_day',  'c@anonymous.local', '{anonymous}', now() - interval '1 microsecond'),
    ('admin_old', 'd@example.com',     '{user,admin}', now() - interval '3 years'),
    ('anon_user', 'e@example.com',     '{user,anonymous}', now() - interval '40 days');
SELECT is(sp_users.count_old_anonymous(30), 2::bigint, 'older than 30 days (strictly): the one a microsecond past, and a user holding anonymous among other roles');
SELECT is(sp_users.count_old_anonymous(0), 4::bigint, 'retention 0: everything created before now()');
SELECT is(sp_users.count_old_anonymous(), sp_users.count_old_anonymous(30), 'default retention is 30 days');
SELECT throws_ok($$SELECT sp_users.count_old_anonymous(-1)$$, '22023', NULL, 'negative retention');
SELECT throws_ok($$SELECT sp_users.cleanup_old_anonymous(NULL)$$, '22023', NULL, 'NULL retention');

-- The active-session rule: live (or never-expiring) sessions protect; ended, revoked, expired do not.
DELETE FROM sp_users.users;
INSERT INTO sp_users.users (name, email, roles, created_at)
SELECT n, n || '@anonymous.local', '{anonymous}', now() - interval '60 days'
  FROM unnest(ARRAY['live', 'forever', 'ended', 'revoked', 'expired', 'expired_now', 'none', 'mixed']) AS n;
INSERT INTO sp_users.user_sessions (session_id, user_id, ended_at, revoked_at, expires_at)
SELECT v.s, usr.id, v.e, v.r, v.x FROM (VALUES
    ('s-live', 'live', NULL::timestamptz, NULL::timestamptz, now() + interval '1 hour'),
    ('s-forever', 'forever', NULL, NULL, NULL),
    ('s-ended', 'ended', now() - interval '1 day', NULL, now() + interval '1 hour'),
    ('s-revoked', 'revoked', NULL, now() - interval '1 day', now() + interval '1 hour'),
    ('s-expired', 'expired', NULL, NULL, now() - interval '1 day'),     -- the seed counted this as active
    ('s-expired-now', 'expired_now', NULL, NULL, now()),               -- expires_at = now() is expired
    ('s-mixed-1', 'mixed', now(), NULL, NULL),
    ('s-mixed-2', 'mixed', NULL, NULL, now() + interval '1 minute')) AS v(s, u, e, r, x)
  JOIN sp_users.users usr ON usr.name = v.u; -- a join: Citus runs no correlated subquery over a distributed table
SELECT is(sp_users.count_old_anonymous(30), 5::bigint, 'count: ended, revoked, expired, expired_now, none');
SELECT is(sp_users.cleanup_old_anonymous(30), 5::bigint, 'cleanup deletes exactly what count said');
SELECT is(ARRAY(SELECT name FROM sp_users.users ORDER BY name), ARRAY['forever', 'live', 'mixed'], 'users with an active session remain');
SELECT is(sp_users.cleanup_old_anonymous(30), 0::bigint, 'a second cleanup finds nothing');
SELECT is((SELECT count(*)::int FROM sp_users.user_sessions WHERE user_id IS NULL), 4, 'their sessions keep history (user_id NULL)');
SELECT is(sp_users.count_old_anonymous(30), 0::bigint, 'count agrees after cleanup');

-- Soft-deleted anonymous users are invisible to the count, like everywhere.
UPDATE sp_users.user_sessions SET revoked_at = now() WHERE session_id = 's-live';
SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name = 'live'));
SELECT is(sp_users.count_old_anonymous(30), 0::bigint, 'soft-deleted users are not counted');

SELECT * FROM finish();
ROLLBACK;
