-- sp_users demo: run by scripts/demo on the private cluster. Every statement is plain SQL that any
-- application can send.
\set QUIET on
\pset footer off
CREATE EXTENSION sp_users;
\echo
\echo '== Users: emails are normalised, duplicates refused with SQLSTATE 23505'
SELECT name, email, display_name, status, roles FROM sp_users.create_user('ada', '  Ada@Example.COM ', 'Ada Lovelace');
SELECT name, email FROM sp_users.create_user('grace', 'grace@example.com', 'Grace Hopper', 'Amazing Grace');
SELECT name, email FROM sp_users.create_user('linus', 'linus@example.com', 'Linus 100% Torvalds');
\set ON_ERROR_STOP off
SELECT sp_users.create_user('ada2', 'ADA@example.com');
\set ON_ERROR_STOP on

\echo
\echo '== Finders take an id, an email or a name'
SELECT name, email FROM sp_users.find_user('ada@example.com');
SELECT name, email FROM sp_users.find_user('grace');

\echo
\echo '== Search is case-insensitive, and % is just a character'
SELECT name, full_name FROM sp_users.search_users('GRACE');
SELECT name, full_name FROM sp_users.search_users('100%');

\echo
\echo '== Roles and administration'
SELECT * FROM sp_users.promote_to_admin('ada');
SELECT * FROM sp_users.promote_to_admin('ada@example.com');
SELECT name FROM sp_users.find_first_admin();

\echo
\echo '== Sessions: active = not ended, not revoked, not expired'
SELECT session_id, user_type, ip_address, expires_at - started_at AS lifetime
  FROM sp_users.start_session((SELECT id FROM sp_users.find_by_name('grace')), 'demo-session-1', '::ffff:198.51.100.20', 'Mozilla/5.0', 'laptop');
SELECT sp_users.session_exists('demo-session-1') AS active, sp_users.touch_session('demo-session-1') AS touched;
SELECT name, active_sessions FROM sp_users.find_with_sessions((SELECT id FROM sp_users.find_by_name('grace')));

\echo
\echo '== IP bans: addresses and networks, answered from an in-memory ban set'
SELECT ip_address, ban_count, expires_at IS NULL AS permanent FROM sp_users.ban_ip('203.0.113.0/24', 'credential stuffing', '1 day', 'waf');
SELECT ip_address, ban_count, expires_at - banned_at AS escalated_to
  FROM sp_users.ban_ip('192.0.2.66', 'scanner', '1 hour', 'honeypot', escalate => true);
SELECT ip_address, ban_count, expires_at - banned_at AS escalated_to
  FROM sp_users.ban_ip('192.0.2.66', 'scanner again', '1 hour', 'honeypot', escalate => true);
SELECT a AS address, sp_users.is_banned(a) AS banned
  FROM unnest(ARRAY['203.0.113.77', '::ffff:203.0.113.9', '192.0.2.66', '198.51.100.20']) AS a;
SELECT ip_address, reason FROM sp_users.get_ban('203.0.113.77');

\echo
\echo '== Soft delete: the user disappears from every finder and listing'
SELECT sp_users.bulk_delete(ARRAY[(SELECT id FROM sp_users.find_by_name('linus'))]) AS deleted;
SELECT sp_users.count_users() AS users, sp_users.count_active_bans() AS active_bans;
SELECT name, email, roles FROM sp_users.list_users();

\echo
\echo '== Anonymous visitors: one user per fingerprint, promoted into the account they sign up with'
SELECT name, email, roles FROM sp_users.create_anonymous('a1b2c3d4e5');
SELECT session_id FROM sp_users.start_session((SELECT id FROM sp_users.create_anonymous('a1b2c3d4e5')), 'visitor-session');
SELECT sessions, total_rows, tables
  FROM sp_users.promote_anonymous((SELECT id FROM sp_users.create_anonymous('a1b2c3d4e5')), (SELECT id FROM sp_users.find_by_name('grace')));
SELECT session_id, user_type FROM sp_users.list_sessions((SELECT id FROM sp_users.find_by_name('grace')));

\echo
\echo '== Statistics: exact, from maintained counters'
SELECT total, created_24h, active, admins, anonymous, bots FROM sp_users.get_stats();
SELECT * FROM sp_users.count_with_breakdown();
