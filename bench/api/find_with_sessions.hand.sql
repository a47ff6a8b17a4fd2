\set n random(1, 100000)
SELECT u.id, u.name, u.email, u.full_name, u.status, u.roles, u.created_at,
       count(s.session_id) FILTER (WHERE s.ended_at IS NULL AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())) AS active_sessions, max(s.last_activity_at) AS last_session_at
  FROM sp_users.users u LEFT JOIN sp_users.user_sessions s ON s.user_id = u.id
 WHERE u.id = md5('u' || :n)::uuid AND u.status <> 'deleted'
 GROUP BY u.id;
