\set n random(1, 100000)
SELECT * FROM sp_users.find_with_sessions(md5('u' || :n)::uuid);
