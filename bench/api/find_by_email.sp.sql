\set n 100 * random(0, 999) + random(20, 99)
SELECT * FROM sp_users.find_by_email(' User' || :n || '@Example.com');
