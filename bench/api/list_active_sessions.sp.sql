\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
SELECT * FROM sp_users.list_active_sessions(md5('u' || :n)::uuid);
