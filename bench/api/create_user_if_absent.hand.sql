-- half the calls name an existing user (no row), half a new one
\set n 100 * random(0, 999) + random(20, 99)
\set new random(0, 1)
\set r random(1, 9000000000000000000)
INSERT INTO sp_users.users (name, email, full_name, display_name)
VALUES (CASE WHEN :new = 1 THEN 'ci_' || :r ELSE 'user' || :n END, lower(btrim(CASE WHEN :new = 1 THEN 'ci_' || :r ELSE 'user' || :n END || '@Example.com')), 'Bench User', 'Bench User')
ON CONFLICT DO NOTHING
RETURNING *;
