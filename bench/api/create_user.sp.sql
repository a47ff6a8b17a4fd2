\set r random(1, 9000000000000000000)
SELECT * FROM sp_users.create_user('cu_' || :r, ' CU_' || :r || '@Example.com ', 'Bench User');
