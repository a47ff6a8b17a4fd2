\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
SELECT sp_users.is_temporary_anonymous(md5('u' || :n)::uuid);
