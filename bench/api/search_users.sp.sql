\set q random(100, 999)
SELECT * FROM sp_users.search_users('SER' || :q);
