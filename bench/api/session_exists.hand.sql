\set k random(1, 200000)
SELECT EXISTS (SELECT 1 FROM sp_users.user_sessions WHERE session_id = 'sess_' || :k AND ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()));
