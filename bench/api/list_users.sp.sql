\set p random(0, 4)
SELECT * FROM sp_users.list_users(20, 20 * :p);
