\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
SELECT roles FROM sp_users.users WHERE id = md5('u' || :n)::uuid AND status <> 'deleted';
