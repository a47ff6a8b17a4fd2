-- Sessions: start, touch, list, end, expire.
CREATE EXTENSION sp_users;
\set VERBOSITY terse
-- A fixed id keeps error messages reproducible; direct DML works as well as the functions.
INSERT INTO sp_users.users (id, name, email) VALUES ('11111111-1111-1111-1111-111111111111', 'alice', 'alice@example.com');
\set alice 11111111-1111-1111-1111-111111111111

SELECT session_id, user_type, ip_address, device_type, expires_at - started_at AS lifetime
  FROM sp_users.start_session(:'alice', 's1', ' ::ffff:192.0.2.7 ', 'Mozilla/5.0', 'desktop');
SELECT session_id ~ '^sess_[0-9a-f]{32}$' AS generated_id, expires_at IS NULL AS never_expires
  FROM sp_users.start_session(:'alice', expires_in => NULL);
SELECT sp_users.start_session(:'alice', 's3', 'not-an-ip');
SELECT sp_users.start_session(:'alice', 's3', expires_in => '-1 hour');
SELECT sp_users.start_session(:'alice', 's1');
SELECT sp_users.start_session('00000000-0000-0000-0000-000000000000', 's4');

SELECT sp_users.session_exists('s1'), sp_users.touch_session('s1'), sp_users.touch_session('nope');
SELECT count(*) FROM sp_users.list_sessions(:'alice');
SELECT active_sessions FROM sp_users.find_with_sessions(:'alice');

-- An expired session is not active, even never ended.
UPDATE sp_users.user_sessions SET expires_at = now() - interval '1 second' WHERE session_id = 's1';
SELECT sp_users.session_exists('s1') AS expired_is_active;
SELECT count(*) AS active FROM sp_users.list_active_sessions(:'alice');
SELECT sp_users.cleanup_sessions() AS ended_by_cleanup;
SELECT ended_at = expires_at AS ended_at_expiry FROM sp_users.user_sessions WHERE session_id = 's1';

SELECT sp_users.end_session('s1') AS end_already_ended;
SELECT sp_users.end_all_sessions(:'alice');
SELECT sp_users.end_all_sessions(:'alice');
SELECT session_count FROM sp_users.get_activity(:'alice');

-- Soft delete revokes what is still open.
SELECT session_id FROM sp_users.start_session(:'alice', 's5');
SELECT status FROM sp_users.update_status(:'alice', 'deleted');
SELECT revoked_at IS NOT NULL AS revoked FROM sp_users.user_sessions WHERE session_id = 's5';
SELECT sp_users.list_sessions(:'alice');
DROP EXTENSION sp_users;
