-- a third each: a uuid, an email, a name; the hand-written side picks the statement in the client
\set n 100 * random(0, 999) + random(20, 99)
\set kind random(0, 2)
\if :kind = 0
SELECT * FROM sp_users.find_user(md5('u' || :n)::uuid::text);
\elif :kind = 1
SELECT * FROM sp_users.find_user('user' || :n || '@example.com');
\else
SELECT * FROM sp_users.find_user('user' || :n);
\endif
