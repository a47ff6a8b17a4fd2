-- pgTAP: roles and administration.
BEGIN;
SELECT no_plan();

SELECT sp_users.create_user('ann', 'ann@example.com');
SELECT sp_users.create_user('ben', 'ben@example.com');
CREATE TEMP TABLE ids AS SELECT name, id FROM sp_users.users;
CREATE FUNCTION pg_temp.uid(n text) RETURNS uuid LANGUAGE sql AS $$ SELECT id FROM ids WHERE name = n $$;

SELECT is(sp_users.get_roles(pg_temp.uid('ann')), '{user}'::sp_users.user_role[], 'default roles');
SELECT is((sp_users.assign_role(pg_temp.uid('ann'), 'admin')).roles, '{user,admin}'::sp_users.user_role[], 'assign_role adds');
SELECT is((sp_users.assign_role(pg_temp.uid('ann'), 'admin')).roles, '{user,admin}'::sp_users.user_role[], 'assign_role is idempotent');
SELECT is((sp_users.revoke_role(pg_temp.uid('ann'), 'anonymous')).roles, '{user,admin}'::sp_users.user_role[], 'revoking an absent role is a no-op');
SELECT is((sp_users.revoke_role(pg_temp.uid('ann'), 'user')).roles, '{admin}'::sp_users.user_role[], 'revoke_role removes');
SELECT throws_ok(format('SELECT sp_users.revoke_role(%L, %L)', pg_temp.uid('ann'), 'admin'), '22023', NULL, 'revoking the last role is 22023');
SELECT is((sp_users.assign_roles(pg_temp.uid('ann'), '{anonymous,user,anonymous}')).roles, '{anonymous,user}'::sp_users.user_role[], 'assign_roles drops duplicates, keeps order');
SELECT throws_ok(format('SELECT sp_users.assign_roles(%L, %L)', pg_temp.uid('ann'), '{}'), '22023', NULL, 'empty roles is 22023');
SELECT throws_ok(format('SELECT sp_users.assign_roles(%L, NULL)', pg_temp.uid('ann')), '22023', NULL, 'NULL roles is 22023');
SELECT throws_ok(format('SELECT sp_users.assign_roles(%L, %L)', pg_temp.uid('ann'), '{user,NULL}'), '22023', NULL, 'NULL element is 22023');
SELECT throws_ok($$UPDATE sp_users.users SET roles = '{user,user}' WHERE name = 'ann'$$, '23514', NULL, 'duplicate roles refused by the table CHECK');
SELECT throws_ok($$UPDATE sp_users.users SET roles = '{}' WHERE name = 'ann'$$, '23514', NULL, 'empty roles refused by the table CHECK');
SELECT is(sp_users.is_temporary_anonymous(pg_temp.uid('ann')), true, 'is_temporary_anonymous true with role anonymous');

SELECT is((SELECT count(*)::int FROM sp_users.list_users_by_role('anonymous')), 1, 'list_users_by_role');
SELECT is((SELECT count(*)::int FROM sp_users.list_users_by_role('ADMIN')), 0, 'role names are exact');
SELECT is((SELECT count(*)::int FROM sp_users.list_users_by_role('no such role')), 0, 'unknown role returns no rows');
SELECT is((SELECT count(*)::int FROM sp_users.list_users_by_role(NULL)), 0, 'NULL role returns no rows');
SELECT is((SELECT count(*)::int FROM sp_users.find_by_role('user')), 2, 'find_by_role');
SELECT is((SELECT count(*)::int FROM sp_users.find_first_admin()), 0, 'no admin yet');

-- promote / demote, by name, email or id.
SELECT is((sp_users.promote_to_admin('ann')).outcome, 'promoted', 'promote an anonymous user');
SELECT is(sp_users.get_roles(pg_temp.uid('ann')), '{user,admin}'::sp_users.user_role[], 'promotion drops anonymous, keeps user, adds admin');
SELECT is((sp_users.promote_to_admin('ANN@example.com')).outcome, 'already_admin', 'already_admin by email');
SELECT is((sp_users.promote_to_admin(pg_temp.uid('ann')::text)).outcome, 'already_admin', 'already_admin by id');
SELECT is((SELECT name FROM sp_users.find_first_admin()), 'ann', 'find_first_admin');
SELECT is((sp_users.demote_from_admin('ann')).roles, '{user}'::sp_users.user_role[], 'demote removes admin, keeps user');
SELECT is((sp_users.demote_from_admin('ann')).outcome, 'not_admin', 'not_admin');
SELECT is((sp_users.assign_roles(pg_temp.uid('ben'), '{admin}')).roles, '{admin}'::sp_users.user_role[], 'admin only');
SELECT is((sp_users.demote_from_admin('ben')).roles, '{user}'::sp_users.user_role[], 'demote ensures user');
SELECT is(row((sp_users.promote_to_admin('ghost')).*)::text, '(user_not_found,,)', 'promote unknown');
SELECT is((sp_users.demote_from_admin('ghost@example.com')).outcome, 'user_not_found', 'demote unknown');
SELECT is((sp_users.promote_to_admin(NULL)).outcome, 'user_not_found', 'promote NULL');
UPDATE sp_users.users SET status = 'deleted' WHERE name = 'ben';
SELECT is((sp_users.promote_to_admin('ben')).outcome, 'user_not_found', 'deleted users cannot be promoted');
SELECT throws_ok(format('SELECT sp_users.get_roles(%L)', pg_temp.uid('ben')), 'P0002', 'user not found: ' || pg_temp.uid('ben'), 'get_roles of deleted user');

SELECT * FROM finish();
ROLLBACK;
