-- pgTAP: merge policies per referencing column — move (default), delete with the source
-- (credentials), keep (the merge is refused while the source has rows) — set with
-- set_merge_policy, listed by list_user_references, reported in the merge result.
BEGIN;
SELECT no_plan();

CREATE SCHEMA tap_mp;
CREATE TABLE tap_mp.oauth_links (id serial PRIMARY KEY, user_id uuid NOT NULL REFERENCES sp_users.users (id), provider text);
CREATE TABLE tap_mp.notes (id serial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id) ON DELETE CASCADE, body text);
CREATE TABLE tap_mp.audit (id serial PRIMARY KEY, actor text);
SELECT sp_users.register_user_reference('tap_mp.audit', 'actor');
CREATE TEMP TABLE ids AS
SELECT (SELECT id FROM sp_users.create_user('mp_a', 'mp_a@example.com')) AS a,
       (SELECT id FROM sp_users.create_user('mp_b', 'mp_b@example.com')) AS b,
       (SELECT id FROM sp_users.create_anonymous('mp-fingerprint')) AS anon;
INSERT INTO tap_mp.oauth_links (user_id, provider) SELECT a, p FROM ids, unnest(ARRAY['github', 'google']) p;
INSERT INTO tap_mp.oauth_links (user_id, provider) SELECT b, 'github' FROM ids;
INSERT INTO tap_mp.oauth_links (user_id, provider) SELECT anon, 'webauthn' FROM ids;
INSERT INTO tap_mp.notes (user_id, body) SELECT a, 'n' || i FROM ids, generate_series(1, 3) i;
INSERT INTO tap_mp.audit (actor) SELECT a::text FROM ids;

-- Errors.
SELECT throws_ok($$SELECT sp_users.set_merge_policy('tap_mp.oauth_links', 'user_id', 'shred')$$, '22023', 'policy must be move, delete or keep (got shred)', 'unknown policy: 22023');
SELECT throws_ok($$SELECT sp_users.set_merge_policy('tap_mp.oauth_links', 'nope', 'delete')$$, '42703', NULL, 'missing column: 42703');
SELECT throws_ok($$SELECT sp_users.set_merge_policy('tap_mp.notes', 'body', 'delete')$$, '22023', NULL, 'a column no merge follows: 22023');

SELECT lives_ok($$SELECT sp_users.set_merge_policy('tap_mp.oauth_links', 'user_id', 'delete')$$, 'credentials: delete with the source');
SELECT lives_ok($$SELECT sp_users.set_merge_policy('tap_mp.audit', 'actor', 'keep')$$, 'audit trail: keep');
SELECT is((SELECT array_agg(tbl::text || '.' || col || '=' || policy || ' (' || found_by || ')' ORDER BY tbl::text, col)
             FROM sp_users.list_user_references() WHERE tbl::text LIKE 'tap_mp.%'),
          '{"tap_mp.audit.actor=keep (registered)","tap_mp.notes.user_id=move (foreign key)","tap_mp.oauth_links.user_id=delete (foreign key)"}',
          'list_user_references shows every followed column and its policy');

-- keep: refused, nothing changed.
SELECT throws_ok(format('SELECT * FROM sp_users.merge_users(%L, %L)', (SELECT a FROM ids), (SELECT b FROM ids)), '2BP01',
                 format('merge refused: tap_mp.audit.actor holds 1 row of user %s and its merge policy is keep', (SELECT a FROM ids)),
                 'keep refuses the merge while the source has rows');
SELECT is((SELECT count(*) FROM tap_mp.notes n, ids WHERE n.user_id = ids.a), 3::bigint, 'a refused merge moves nothing');
SELECT is((SELECT count(*) FROM sp_users.find_by_id((SELECT a FROM ids))), 1::bigint, 'a refused merge deletes no user');

-- move the audit rows, delete the credentials.
SELECT lives_ok($$SELECT sp_users.set_merge_policy('tap_mp.audit', 'actor', 'move')$$, 'back to move');
SELECT is((SELECT count(*) FROM sp_users.merge_policies WHERE tbl = 'tap_mp.audit'::regclass), 0::bigint, 'move is the default: no row kept');
CREATE TEMP TABLE merged AS SELECT * FROM sp_users.merge_users((SELECT a FROM ids), (SELECT b FROM ids));
SELECT is((SELECT tables->'deleted_with_source' FROM merged), '{"tap_mp.oauth_links.user_id": 2}'::jsonb, 'the result counts the rows deleted with the source');
SELECT is((SELECT row((tables->>'tap_mp.oauth_links.user_id')::int, (tables->>'tap_mp.notes.user_id')::int, (tables->>'tap_mp.audit.actor')::int)::text FROM merged),
          '(0,3,1)', 'moved per column: credentials 0, notes 3, audit 1');
SELECT is((SELECT array_agg(provider ORDER BY provider) FROM tap_mp.oauth_links o, ids WHERE o.user_id = ids.b), '{github}',
          'the target keeps only its own credentials');
SELECT is((SELECT count(*) FROM tap_mp.oauth_links o, ids WHERE o.user_id = ids.a), 0::bigint, 'the source''s credentials are gone');
SELECT is((SELECT actor FROM tap_mp.audit), (SELECT b::text FROM ids), 'the audit row moved');

-- promote_anonymous follows the same policies.
SELECT is((SELECT tables->'deleted_with_source' FROM sp_users.promote_anonymous((SELECT anon FROM ids), (SELECT b FROM ids))),
          '{"tap_mp.oauth_links.user_id": 1}'::jsonb, 'promote_anonymous deletes the visitor''s credentials too');

-- A registered column or a policy whose column is gone (renamed, dropped, the table created again)
-- refuses every merge (nothing changes) until the entry is fixed: moving on would leave that
-- column's user ids behind, or ignore the policy.
CREATE TABLE tap_mp.stale_refs (id serial PRIMARY KEY, owner_id text);
CREATE TABLE tap_mp.stale_keys (id serial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id));
SELECT sp_users.register_user_reference('tap_mp.stale_refs', 'owner_id');
SELECT sp_users.set_merge_policy('tap_mp.stale_keys', 'user_id', 'delete');
CREATE TEMP TABLE stale AS SELECT (SELECT id FROM sp_users.create_user('stale_src', 'stale_src@example.com')) AS s,
                                  (SELECT id FROM sp_users.create_user('stale_dst', 'stale_dst@example.com')) AS d;
INSERT INTO tap_mp.stale_refs (owner_id) SELECT s::text FROM stale;
INSERT INTO tap_mp.stale_keys (user_id) SELECT s FROM stale;
ALTER TABLE tap_mp.stale_refs RENAME COLUMN owner_id TO author_id;
SELECT throws_ok(format('SELECT sp_users.merge_users(%L, %L)', (SELECT s FROM stale), (SELECT d FROM stale)), '42703',
                 'merge refused: the registered user reference owner_id of table tap_mp.stale_refs no longer exists',
                 'a renamed registered column refuses the merge');
SELECT is((SELECT count(*)::int FROM sp_users.users WHERE id = (SELECT s FROM stale) AND status <> 'deleted'), 1, 'the source is untouched');
SELECT sp_users.register_user_reference('tap_mp.stale_refs', 'author_id');
SELECT sp_users.unregister_user_reference('tap_mp.stale_refs', 'owner_id');
ALTER TABLE tap_mp.stale_keys RENAME COLUMN user_id TO uid;
SELECT throws_ok(format('SELECT sp_users.merge_users(%L, %L)', (SELECT s FROM stale), (SELECT d FROM stale)), '42703',
                 'merge refused: the column user_id a merge policy is set for of table tap_mp.stale_keys no longer exists',
                 'a policy for a renamed column refuses the merge');
SELECT lives_ok($$SELECT sp_users.set_merge_policy('tap_mp.stale_keys', 'user_id', 'move')$$, 'move removes the stale policy');
SELECT sp_users.set_merge_policy('tap_mp.stale_keys', 'uid', 'delete');
CREATE TEMP TABLE old_oid AS SELECT 'tap_mp.stale_refs'::regclass::oid AS o;
DROP TABLE tap_mp.stale_refs;
CREATE TABLE tap_mp.stale_refs (id serial PRIMARY KEY, author_id text);
SELECT throws_ok(format('SELECT sp_users.merge_users(%L, %L)', (SELECT s FROM stale), (SELECT d FROM stale)), '42P01',
                 format('merge refused: the registered user reference author_id belongs to a dropped table (oid %s)', (SELECT o FROM old_oid)),
                 'a registration of a dropped table refuses the merge');
SELECT lives_ok(format('SELECT sp_users.unregister_user_reference(%L, %L)', (SELECT o FROM old_oid), 'author_id'), 'unregistered by oid');
SELECT is((sp_users.merge_users((SELECT s FROM stale), (SELECT d FROM stale))).tables->'deleted_with_source',
          '{"tap_mp.stale_keys.uid": 1}'::jsonb, 'then the merge runs, under the policy set for the new name');

-- The HINT's SQL runs as written, whatever the names (quotes in schema, table and column).
CREATE SCHEMA "Odd's";
CREATE TABLE "Odd's"."My ""Notes""" ("Owner's Id" text);
SELECT sp_users.register_user_reference('"Odd''s"."My ""Notes"""', 'Owner''s Id');
ALTER TABLE "Odd's"."My ""Notes""" RENAME COLUMN "Owner's Id" TO owner_id;
CREATE TEMP TABLE hint_sql (sql text);
DO $$
DECLARE h text;
BEGIN
    PERFORM sp_users.merge_users((SELECT id FROM sp_users.create_user('hint_src', 'hint_src@example.com')),
                                 (SELECT id FROM sp_users.create_user('hint_dst', 'hint_dst@example.com')));
EXCEPTION WHEN undefined_column THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    INSERT INTO hint_sql VALUES (substring(h FROM 'remove the old entry with (SELECT .*)\.$'));
END $$;
SELECT is((SELECT sql FROM hint_sql), $$SELECT sp_users.unregister_user_reference('"Odd''s"."My ""Notes"""', 'Owner''s Id')$$, 'the HINT quotes the names');
DO $$ BEGIN EXECUTE (SELECT sql FROM hint_sql); END $$;
SELECT is((SELECT count(*)::int FROM sp_users.user_references WHERE col = 'Owner''s Id'), 0, 'running the HINT''s SQL removes the entry');

SELECT ok('sp_users.merge_policies'::regclass = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'sp_users')::regclass[]), 'policies are dumped');

SELECT * FROM finish();
ROLLBACK;
