-- half the calls are a returning visitor (an existing anonymous user), half a new fingerprint
\set a 100 * random(0, 999) + random(1, 19)
\set new random(0, 1)
\set r random(1, 9000000000000000000)
SELECT * FROM sp_users.create_anonymous(CASE WHEN :new = 1 THEN 'fpn' || :r ELSE 'fp' || :a END);
