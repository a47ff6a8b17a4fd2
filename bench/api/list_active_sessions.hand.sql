\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
SELECT * FROM sp_users.user_sessions WHERE user_id = md5('u' || :n)::uuid AND ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) ORDER BY last_activity_at DESC, session_id;
