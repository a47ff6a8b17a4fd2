-- pgTAP: merges across schemas — FK with ON DELETE CASCADE, FK with SET NULL, a registered non-FK
-- column, unique constraints and partial / expression unique indexes that collide — and the SPEC errors.
BEGIN;
SELECT no_plan();

CREATE SCHEMA shop;
CREATE SCHEMA forum;
CREATE TABLE shop.orders (id serial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id) ON DELETE CASCADE, amount int);
CREATE TABLE shop.prefs (user_id uuid NOT NULL REFERENCES sp_users.users (id), kind text NOT NULL, value text, UNIQUE (user_id, kind));
CREATE TABLE shop.profile (user_id uuid PRIMARY KEY REFERENCES sp_users.users (id), bio text);
CREATE TABLE forum.comments (id serial PRIMARY KEY, author uuid REFERENCES sp_users.users (id) ON DELETE SET NULL, body text);
CREATE TABLE forum.audit (id serial PRIMARY KEY, actor text);          -- no foreign key: registered below
CREATE TABLE forum.empty_ref (user_id uuid REFERENCES sp_users.users (id));

SELECT id AS anon FROM sp_users.create_anonymous('visitor-1') \gset
SELECT id AS reg FROM sp_users.create_user('rita', 'rita@example.com') \gset
SELECT id AS other FROM sp_users.create_user('otto', 'otto@example.com') \gset
SELECT sp_users.start_session(:'anon', 'anon-s1');
SELECT sp_users.start_session(:'anon', 'anon-s2');
SELECT sp_users.start_session(:'reg', 'reg-s1');
INSERT INTO shop.orders (user_id, amount) SELECT :'anon', i FROM generate_series(1, 3) i;
INSERT INTO shop.orders (user_id, amount) VALUES (:'reg', 100), (:'other', 7);
INSERT INTO shop.prefs VALUES (:'anon', 'theme', 'dark'), (:'anon', 'lang', 'fr'), (:'reg', 'theme', 'light');
INSERT INTO shop.profile VALUES (:'anon', 'anon bio'), (:'reg', 'rita bio');
INSERT INTO forum.comments (author, body) VALUES (:'anon', 'first'), (:'anon', 'second');
INSERT INTO forum.audit (actor) VALUES (:'anon'::text), (:'anon'::text), (:'reg'::text);

SELECT lives_ok(format('SELECT sp_users.register_user_reference(%L, %L)', 'forum.audit', 'actor'), 'register a non-FK column');
SELECT lives_ok(format('SELECT sp_users.register_user_reference(%L, %L)', 'forum.audit', 'actor'), 'registering twice is fine');
SELECT throws_ok(format('SELECT sp_users.register_user_reference(%L, %L)', 'forum.audit', 'nope'), '42703', NULL, 'unknown column');

-- Errors.
SELECT throws_ok(format('SELECT sp_users.merge_users(%L, %L)', :'reg', :'reg'), '22023', NULL, 'self-merge is 22023');
SELECT throws_ok(format('SELECT sp_users.merge_users(%L, %L)', '00000000-0000-0000-0000-000000000001', :'reg'), 'P0002', 'user not found: 00000000-0000-0000-0000-000000000001', 'missing source');
SELECT throws_ok(format('SELECT sp_users.merge_users(%L, %L)', :'reg', '00000000-0000-0000-0000-000000000002'), 'P0002', 'user not found: 00000000-0000-0000-0000-000000000002', 'missing target');
SELECT throws_ok(format('SELECT sp_users.promote_anonymous(%L, %L)', :'other', :'reg'), '22023',
                 format('user %s is not anonymous; use an explicit admin merge instead', :'other'), 'promote_anonymous refuses a registered source');
SELECT throws_ok($$SELECT sp_users.merge_users(NULL, gen_random_uuid())$$, '22023', NULL, 'NULL source');

-- The merge.
CREATE TEMP TABLE result AS SELECT * FROM sp_users.promote_anonymous(:'anon', :'reg');
SELECT is((SELECT sessions FROM result), 2::bigint, 'sessions moved');
SELECT is((SELECT tables->'shop.orders.user_id' FROM result), '3'::jsonb, 'FK with ON DELETE CASCADE: rows moved, not cascaded away');
SELECT is((SELECT tables->'forum.comments.author' FROM result), '2'::jsonb, 'FK with ON DELETE SET NULL: rows moved, not nulled');
SELECT is((SELECT tables->'forum.audit.actor' FROM result), '2'::jsonb, 'registered text column moved');
SELECT is((SELECT tables->'forum.empty_ref.user_id' FROM result), '0'::jsonb, 'tables without rows are reported with 0');
SELECT is((SELECT tables->'shop.prefs.user_id' FROM result), '1'::jsonb, 'non-colliding pref moved');
SELECT is((SELECT tables->'dropped_duplicates' FROM result), '{"shop.prefs.user_id": 1, "shop.profile.user_id": 1}'::jsonb, 'collisions: source duplicates dropped and reported');
SELECT is((SELECT total_rows FROM result), 2::bigint + 3 + 2 + 2 + 1 + 0, 'total_rows = sum of moved rows');

-- id::text: with users split into shards, Citus would send a query with id = constant, is() and all, to the shard
SELECT is((SELECT count(*)::int FROM sp_users.users WHERE id::text = :'anon'), 0, 'source deleted');
SELECT is((SELECT count(*)::int FROM shop.orders WHERE user_id = :'reg'), 4, 'target owns all orders');
SELECT is((SELECT count(*)::int FROM shop.orders WHERE user_id = :'other'), 1, 'other users untouched');
SELECT is((SELECT value FROM shop.prefs WHERE user_id = :'reg' AND kind = 'theme'), 'light', 'target''s row kept on collision');
SELECT is((SELECT value FROM shop.prefs WHERE user_id = :'reg' AND kind = 'lang'), 'fr', 'source''s other pref moved');
SELECT is((SELECT bio FROM shop.profile WHERE user_id = :'reg'), 'rita bio', 'target''s profile kept');
SELECT is((SELECT count(*)::int FROM forum.comments WHERE author = :'reg'), 2, 'comments moved');
SELECT is((SELECT count(*)::int FROM forum.audit WHERE actor = :'reg'::text), 3, 'registered references moved');
SELECT is((SELECT count(*)::int FROM sp_users.user_sessions WHERE user_id = :'reg'), 3, 'sessions now belong to the target');
SELECT is((SELECT count(*)::int FROM sp_users.user_sessions WHERE user_id = :'reg' AND user_type = 'anon'), 0, 'moved sessions become registered');

-- merge_users is the admin merge: any two users.
SELECT is((sp_users.merge_users(:'other', :'reg')).total_rows, 1::bigint, 'admin merge of two registered users');
SELECT lives_ok(format('SELECT sp_users.unregister_user_reference(%L, %L)', 'forum.audit', 'actor'), 'unregister');
SELECT is((SELECT count(*)::int FROM sp_users.user_references), 0, 'registry empty');

-- A deleted user is invisible to merges too.
SELECT id AS ghost FROM sp_users.create_user('ghost', 'ghost@example.com') \gset
SELECT sp_users.update_status(:'ghost', 'deleted');
SELECT throws_ok(format('SELECT sp_users.merge_users(%L, %L)', :'ghost', :'reg'), 'P0002', NULL, 'soft-deleted source is not found');

-- Unique indexes beyond plain columns: partial, with expressions, with INCLUDE columns, NULLS NOT
-- DISTINCT. A collision drops the source's row, a non-collision moves it.
CREATE TABLE shop.subs (id serial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id), plan text, active boolean NOT NULL);
CREATE UNIQUE INDEX subs_one_active ON shop.subs (user_id) WHERE active;        -- one active subscription per user
CREATE TABLE shop.emails (id serial PRIMARY KEY, owner uuid REFERENCES sp_users.users (id), address text, note text);
CREATE UNIQUE INDEX emails_per_owner ON shop.emails (owner, lower(address)) INCLUDE (note);
CREATE TABLE shop.slots (owner uuid REFERENCES sp_users.users (id), slot int, UNIQUE NULLS NOT DISTINCT (owner, slot));
SELECT id AS a FROM sp_users.create_user('ann', 'ann@example.com') \gset
SELECT id AS b FROM sp_users.create_user('bob', 'bob@example.com') \gset
INSERT INTO shop.subs (user_id, plan, active) VALUES (:'a', 'pro', true), (:'a', 'old', false), (:'b', 'basic', true), (:'b', 'older', false);
INSERT INTO shop.emails (owner, address, note) VALUES (:'a', 'Ann@Example.com', 'a1'), (:'a', 'ann@work.example', 'a2'), (:'b', 'ANN@example.COM', 'b1');
INSERT INTO shop.slots VALUES (:'a', NULL), (:'a', 1), (:'b', NULL), (:'b', 2);
CREATE TEMP TABLE result2 AS SELECT * FROM sp_users.merge_users(:'a', :'b');
SELECT is((SELECT tables->'dropped_duplicates' FROM result2),
          '{"shop.subs.user_id": 1, "shop.emails.owner": 1, "shop.slots.owner": 1}'::jsonb,
          'partial, expression and NULLS NOT DISTINCT collisions dropped and reported');
SELECT is((SELECT string_agg(plan || ':' || active, ',' ORDER BY plan) FROM shop.subs WHERE user_id = :'b'), 'basic:true,old:false,older:false',
          'partial index: the target''s active subscription kept, the source''s inactive one moved');
SELECT is((SELECT string_agg(address || ':' || note, ',' ORDER BY note) FROM shop.emails WHERE owner = :'b'), 'ann@work.example:a2,ANN@example.COM:b1',
          'expression index: lower(address) collided, the other address moved (INCLUDE column not a key)');
SELECT is((SELECT string_agg(coalesce(slot::text, 'null'), ',' ORDER BY slot) FROM shop.slots WHERE owner = :'b'), '1,2,null',
          'NULLS NOT DISTINCT: the NULL slot collided');

SELECT * FROM finish();
ROLLBACK;
