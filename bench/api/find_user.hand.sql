-- a third each: a uuid, an email, a name; the hand-written side picks the statement in the client
\set n 100 * random(0, 999) + random(20, 99)
\set kind random(0, 2)
\if :kind = 0
SELECT * FROM sp_users.users WHERE id = (md5('u' || :n)::uuid::text)::uuid AND status <> 'deleted';
\elif :kind = 1
SELECT * FROM sp_users.users WHERE email = lower(btrim('user' || :n || '@example.com')) AND status <> 'deleted';
\else
SELECT * FROM sp_users.users WHERE name = 'user' || :n AND status <> 'deleted';
\endif
