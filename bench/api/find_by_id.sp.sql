\set n random(1, 100000)
SELECT * FROM sp_users.find_by_id(md5('u' || :n)::uuid);
