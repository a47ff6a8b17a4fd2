-- the search term is lower-cased once (a materialised CTE), not per row
\set q random(100, 999)
WITH p AS MATERIALIZED (SELECT lower('SER' || :q) AS q)
SELECT u.* FROM p, sp_users.users u
 WHERE u.status <> 'deleted'
   AND (strpos(lower(u.name), p.q) > 0 OR strpos(u.email, p.q) > 0 OR strpos(lower(coalesce(u.full_name, '')), p.q) > 0)
 ORDER BY (strpos(lower(u.name), p.q) > 0) DESC, u.created_at DESC, u.id
 LIMIT 20;
