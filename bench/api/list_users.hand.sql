\set p random(0, 4)
SELECT * FROM sp_users.users WHERE status <> 'deleted' ORDER BY created_at DESC, id LIMIT 20 OFFSET 20 * :p;
