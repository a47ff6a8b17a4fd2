-- pgTAP: every error row of SPEC.md, with its SQLSTATE and message.
BEGIN;
SELECT no_plan();
SELECT sp_users.create_user('erin', 'erin@example.com');
\set missing '''00000000-0000-0000-0000-00000000beef'''

-- user missing → P0002 "user not found: <id>", from every function that takes a user id.
SELECT throws_ok(format('SELECT %s', f), 'P0002', 'user not found: 00000000-0000-0000-0000-00000000beef', f)
  FROM unnest(ARRAY[
    $$sp_users.get_activity('00000000-0000-0000-0000-00000000beef')$$,
    $$sp_users.is_temporary_anonymous('00000000-0000-0000-0000-00000000beef')$$,
    $$sp_users.update_email('00000000-0000-0000-0000-00000000beef', 'x@example.com')$$,
    $$sp_users.update_full_name('00000000-0000-0000-0000-00000000beef', 'x')$$,
    $$sp_users.update_display_name('00000000-0000-0000-0000-00000000beef', 'x')$$,
    $$sp_users.update_status('00000000-0000-0000-0000-00000000beef', 'active')$$,
    $$sp_users.update_email_verified('00000000-0000-0000-0000-00000000beef', true)$$,
    $$sp_users.update_user('00000000-0000-0000-0000-00000000beef', 'x@example.com', 'a', 'b', 'active')$$,
    $$sp_users.assign_roles('00000000-0000-0000-0000-00000000beef', '{user}')$$,
    $$sp_users.delete_user('00000000-0000-0000-0000-00000000beef')$$,
    $$sp_users.get_roles('00000000-0000-0000-0000-00000000beef')$$,
    $$sp_users.assign_role('00000000-0000-0000-0000-00000000beef', 'admin')$$,
    $$sp_users.revoke_role('00000000-0000-0000-0000-00000000beef', 'admin')$$,
    $$sp_users.start_session('00000000-0000-0000-0000-00000000beef')$$,
    $$sp_users.list_sessions('00000000-0000-0000-0000-00000000beef')$$,
    $$sp_users.list_active_sessions('00000000-0000-0000-0000-00000000beef')$$,
    $$sp_users.list_recent_sessions('00000000-0000-0000-0000-00000000beef', 5)$$,
    $$sp_users.end_all_sessions('00000000-0000-0000-0000-00000000beef')$$
  ]) AS f;

-- Finders never raise for a missing user.
SELECT is((SELECT count(*)::int FROM sp_users.find_by_id(:missing)), 0, 'find_by_id: no row, no error');
SELECT is((SELECT count(*)::int FROM sp_users.find_with_sessions(:missing)), 0, 'find_with_sessions: no row, no error');
SELECT is((SELECT count(*)::int FROM sp_users.find_authenticated_user(:missing)), 0, 'find_authenticated_user: no row');

-- email taken → 23505 "user already exists with email: <email>".
SELECT throws_ok($$SELECT sp_users.create_user('erin2', ' ERIN@example.com')$$, '23505', 'user already exists with email: erin@example.com', 'create_user duplicate email');
SELECT sp_users.create_user('other', 'other@example.com');
SELECT throws_ok(format('SELECT sp_users.update_email(%L, %L)', (SELECT id FROM sp_users.find_by_name('other')), 'Erin@Example.com'),
                 '23505', 'user already exists with email: erin@example.com', 'update_email duplicate');
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'fresh@example.com')$$, '23505', 'user already exists with name: erin', 'duplicate name');
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'Erin@example.com')$$, '23505', 'user already exists with email: erin@example.com', 'name and email both taken: the email is named');

-- bad IP/network text → 22P02 naming the input.
SELECT throws_ok(format('SELECT %s(%L)', f, ip), '22P02', NULL, f || '(' || left(ip, 20) || ')')
  FROM unnest(ARRAY['sp_users.is_banned', 'sp_users.get_ban', 'sp_users.unban_ip', 'sp_users.normalize_ip']) AS f,
       unnest(ARRAY['', 'garbage', '1.2.3.4/33', '10.0.0.1/8', '::g', '1.2.3.4.5', repeat('9', 10000), '2001:db8::1%lo', '010.1.1.1']) AS ip;
SELECT throws_like($$SELECT sp_users.is_banned('not-an-address')$$, '%"not-an-address"%', 'the message names the input');
SELECT throws_ok($$SELECT sp_users.ban_ip('x.y', 'r', '1 hour')$$, '22P02', NULL, 'ban_ip bad address');

-- bad argument → 22023.
SELECT throws_ok($$SELECT sp_users.list_users(-1)$$, '22023', 'lim must not be negative (got -1)', 'negative limit');
SELECT throws_ok($$SELECT sp_users.list_users(10, -1)$$, '22023', 'off must not be negative (got -1)', 'negative offset');
SELECT throws_ok($$SELECT sp_users.list_users(NULL)$$, '22023', 'lim must not be NULL', 'NULL limit');
SELECT throws_ok($$SELECT sp_users.search_users('x', -5)$$, '22023', NULL, 'search negative limit');
SELECT throws_ok($$SELECT sp_users.list_by_filter(lim => -1)$$, '22023', NULL, 'list_by_filter negative limit');
SELECT throws_ok($$SELECT sp_users.list_non_anonymous_with_sessions(-1)$$, '22023', NULL, 'list_non_anonymous_with_sessions negative limit');
SELECT throws_ok($$SELECT sp_users.export_users(-1)$$, '22023', NULL, 'export negative limit');
SELECT throws_ok($$SELECT sp_users.list_active_bans(-1)$$, '22023', NULL, 'list_active_bans negative limit');
SELECT throws_ok($$SELECT sp_users.list_bans_by_source('manual', -1)$$, '22023', NULL, 'list_bans_by_source negative limit');
SELECT throws_ok($$SELECT sp_users.ban_ip('1.2.3.4', 'r', '0')$$, '22023', 'duration must be positive (got 00:00:00)', 'zero duration');
SELECT throws_ok($$SELECT sp_users.ban_ip('1.2.3.4', 'r', '-5 minutes')$$, '22023', NULL, 'negative duration');
SELECT throws_ok($$SELECT sp_users.ban_ip(NULL, 'r', '1 hour')$$, '22023', 'ip must not be NULL', 'NULL ip');
SELECT throws_ok(format('SELECT sp_users.assign_roles(%L, %L)', (SELECT id FROM sp_users.find_by_name('erin')), '{}'), '22023', 'roles must not be empty', 'empty roles');
SELECT throws_ok(format('SELECT sp_users.revoke_role(%L, %L)', (SELECT id FROM sp_users.find_by_name('erin')), 'user'), '22023', NULL, 'last role');
SELECT throws_ok(format('SELECT sp_users.start_session(%L, expires_in => %L)', (SELECT id FROM sp_users.find_by_name('erin')), '-1 day'), '22023', NULL, 'negative session lifetime');

-- The unique indexes of users exist on a single server (and with users on a Citus coordinator);
-- with users split into shards, user_emails and user_names replace them (docs/scaling.md) and the
-- duplicate-email and duplicate-name errors above hold through those.
SELECT to_regclass('sp_users.users_email_key') IS NOT NULL AS users_key_indexes \gset
\if :users_key_indexes
-- create_user inserts straight away only while users_email_key is checked first (lower oid);
-- with the order turned round (as a REINDEX CONCURRENTLY of the email index does) it inserts with
-- ON CONFLICT (email), which checks the email first, and still names the email first.
SELECT ok('sp_users.users_email_key'::regclass::oid < 'sp_users.users_name_key'::regclass::oid, 'installed: an INSERT checks the email index first');
ALTER TABLE sp_users.users DROP CONSTRAINT users_email_key, ADD CONSTRAINT users_email_key UNIQUE (email);
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'Erin@example.com')$$, '23505', 'user already exists with email: erin@example.com', 'order turned round: both taken, the email is named');
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'fresh2@example.com')$$, '23505', 'user already exists with name: erin', 'order turned round: duplicate name');
SELECT throws_ok($$SELECT sp_users.create_user('erin3', 'erin@example.com')$$, '23505', 'user already exists with email: erin@example.com', 'order turned round: duplicate email');
SELECT is((SELECT email FROM sp_users.create_user('erin4', ' Erin4@Example.com ')), 'erin4@example.com', 'order turned round: a new user is created');
-- Another unique index checked first (what a cancelled REINDEX CONCURRENTLY leaves: a _ccold
-- index with the old, lower oid, _ccold1 after an earlier one; or an administrator's own): the
-- email is checked first, and never the raw error of a twin of our indexes.
CREATE UNIQUE INDEX users_name_key_ccold1 ON sp_users.users (name);
ALTER TABLE sp_users.users DROP CONSTRAINT users_email_key, ADD CONSTRAINT users_email_key UNIQUE (email);
ALTER TABLE sp_users.users DROP CONSTRAINT users_name_key, ADD CONSTRAINT users_name_key UNIQUE (name);
SELECT ok('sp_users.users_name_key_ccold1'::regclass::oid < 'sp_users.users_email_key'::regclass::oid
          AND 'sp_users.users_email_key'::regclass::oid < 'sp_users.users_name_key'::regclass::oid, 'a third unique index is checked first');
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'fresh3@example.com')$$, '23505', 'user already exists with name: erin', 'extra unique index: duplicate name');
SELECT throws_ok($$SELECT sp_users.create_user('erin5', 'ERIN@example.com')$$, '23505', 'user already exists with email: erin@example.com', 'extra unique index: duplicate email');
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'erin@example.com')$$, '23505', 'user already exists with email: erin@example.com', 'extra unique index: both taken');
DROP INDEX sp_users.users_name_key_ccold1;
-- A _ccnew twin (a REINDEX CONCURRENTLY cancelled before its swap) checked before users_name_key.
CREATE UNIQUE INDEX users_name_key_ccnew ON sp_users.users (name);
ALTER TABLE sp_users.users DROP CONSTRAINT users_name_key, ADD CONSTRAINT users_name_key UNIQUE (name);
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'fresh5@example.com')$$, '23505', 'user already exists with name: erin', '_ccnew twin: duplicate name');
DROP INDEX sp_users.users_name_key_ccnew;
SELECT throws_ok($$SELECT sp_users.create_user('erin', 'fresh4@example.com')$$, '23505', 'user already exists with name: erin', 'the extra index gone: duplicate name');
\endif

SELECT * FROM finish();
ROLLBACK;
