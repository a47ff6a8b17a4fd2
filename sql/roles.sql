-- Roles and administration.
CREATE EXTENSION sp_users;
\set VERBOSITY terse
-- A fixed id keeps error messages reproducible; direct DML works as well as the functions.
INSERT INTO sp_users.users (id, name, email) VALUES ('11111111-1111-1111-1111-111111111111', 'alice', 'alice@example.com');
\set alice 11111111-1111-1111-1111-111111111111
SELECT id AS bob FROM sp_users.create_user('bob', 'bob@example.com') \gset

SELECT sp_users.get_roles(:'alice');
SELECT roles FROM sp_users.assign_role(:'alice', 'admin');
SELECT roles FROM sp_users.assign_role(:'alice', 'admin');
SELECT roles FROM sp_users.revoke_role(:'alice', 'user');
SELECT roles FROM sp_users.revoke_role(:'alice', 'admin');
SELECT roles FROM sp_users.assign_roles(:'alice', '{user,admin,user}');
SELECT sp_users.assign_roles(:'alice', '{}');
SELECT sp_users.assign_roles(:'alice', NULL);

SELECT name FROM sp_users.find_first_admin();
SELECT name FROM sp_users.find_by_role('admin');
SELECT name FROM sp_users.list_users_by_role('user') ORDER BY name;
SELECT name FROM sp_users.list_users_by_role('superhero');

SELECT outcome, roles FROM sp_users.promote_to_admin('bob@example.com');
SELECT outcome, roles FROM sp_users.promote_to_admin('bob');
SELECT outcome, roles FROM sp_users.demote_from_admin(:'bob');
SELECT outcome, roles FROM sp_users.demote_from_admin('bob');
SELECT * FROM sp_users.promote_to_admin('nobody');
SELECT * FROM sp_users.demote_from_admin('nobody@example.com');
DROP EXTENSION sp_users;
