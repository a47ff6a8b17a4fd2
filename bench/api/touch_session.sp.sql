-- sp_users takes the odd session numbers, the hand-written statement the even ones (load.sql: pairs are alike)
\set k 2 * random(1, 100000) - 1
SELECT sp_users.touch_session('sess_' || :k);
