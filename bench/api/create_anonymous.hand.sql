-- half the calls are a returning visitor (an existing anonymous user), half a new fingerprint
\set a 100 * random(0, 999) + random(1, 19)
\set new random(0, 1)
\set r random(1, 9000000000000000000)
WITH e AS MATERIALIZED (SELECT lower(btrim(CASE WHEN :new = 1 THEN 'fpn' || :r ELSE 'fp' || :a END)) || '@anonymous.local' AS email),
     found AS (SELECT u.* FROM sp_users.users u, e WHERE u.email = e.email),
     ins AS (INSERT INTO sp_users.users (id, name, email, roles)
             SELECT g.id, 'anonymous_' || left(replace(g.id::text, '-', ''), 8), e.email, '{anonymous}'
               FROM e, (SELECT gen_random_uuid() AS id) g
              WHERE NOT EXISTS (SELECT 1 FROM found)
             ON CONFLICT DO NOTHING
             RETURNING *)
SELECT * FROM found UNION ALL SELECT * FROM ins;
