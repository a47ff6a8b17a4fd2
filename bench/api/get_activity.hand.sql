\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
SELECT u.id AS user_id, max(s.last_activity_at) AS last_active, count(s.session_id) AS session_count
  FROM sp_users.users u LEFT JOIN sp_users.user_sessions s ON s.user_id = u.id
 WHERE u.id = md5('u' || :n)::uuid AND u.status <> 'deleted'
 GROUP BY u.id;
