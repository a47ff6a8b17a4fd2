\set r random(1, 9000000000000000000)
INSERT INTO sp_users.users (name, email, full_name, display_name)
VALUES ('cu_' || :r, lower(btrim(' CU_' || :r || '@Example.com ')), 'Bench User', 'Bench User')
RETURNING *;
