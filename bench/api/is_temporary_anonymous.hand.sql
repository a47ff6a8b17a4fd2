\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
SELECT roles @> '{anonymous}'::sp_users.user_role[] FROM sp_users.users WHERE id = md5('u' || :n)::uuid AND status <> 'deleted';
