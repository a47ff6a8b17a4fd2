\set q random(100, 999)
SELECT * FROM sp_users.users
 WHERE status <> 'deleted'
   AND (strpos(lower(name), lower('SER' || :q)) > 0 OR strpos(email, lower('SER' || :q)) > 0
        OR strpos(lower(coalesce(full_name, '')), lower('SER' || :q)) > 0)
 ORDER BY (strpos(lower(name), lower('SER' || :q)) > 0) DESC, created_at DESC, id
 LIMIT 20;
