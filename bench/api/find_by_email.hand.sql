\set n 100 * random(0, 999) + random(20, 99)
SELECT * FROM sp_users.users WHERE email = lower(btrim(' User' || :n || '@Example.com')) AND status <> 'deleted';
