\set n random(1, 100000)
SELECT * FROM sp_users.users WHERE id = md5('u' || :n)::uuid AND status <> 'deleted';
