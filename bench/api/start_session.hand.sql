\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
INSERT INTO sp_users.user_sessions (session_id, user_id, ip_address, user_agent, device_type, user_type, expires_at)
SELECT 'sess_' || replace(gen_random_uuid()::text, '-', ''), u.id, ('198.51.100.' || :n % 250)::inet, 'Mozilla/5.0 bench', 'desktop',
       CASE WHEN u.roles @> '{anonymous}' THEN 'anon' ELSE 'registered' END, now() + interval '7 days'
  FROM sp_users.users u WHERE u.id = md5('u' || :n)::uuid AND u.status <> 'deleted'
RETURNING *;
