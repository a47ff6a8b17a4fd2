\set k random(1, 200000)
SELECT sp_users.session_exists('sess_' || :k);
