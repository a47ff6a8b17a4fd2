\set n random(1, 100000)
SELECT * FROM sp_users.find_authenticated_user(md5('u' || :n)::uuid);
