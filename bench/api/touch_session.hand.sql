-- sp_users takes the odd session numbers, the hand-written statement the even ones (load.sql: pairs are alike)
\set k 2 * random(1, 100000)
UPDATE sp_users.user_sessions SET last_activity_at = now() WHERE session_id = 'sess_' || :k AND ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());
