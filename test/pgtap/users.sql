-- pgTAP: users — creation, normalisation, finders, listings, updates, soft delete, edge cases.
BEGIN;
SELECT no_plan();

SELECT lives_ok($$SELECT sp_users.create_user('alice', '  Alice@Example.COM ', 'Alice')$$, 'create_user');
SELECT is((SELECT email FROM sp_users.find_by_name('alice')), 'alice@example.com', 'email stored trimmed and lower-cased');
SELECT is((SELECT display_name FROM sp_users.find_by_name('alice')), 'Alice', 'display_name defaults to full_name');
SELECT is((SELECT status::text || roles::text FROM sp_users.find_by_name('alice')), 'active{user}', 'active with roles {user}');
SELECT is((SELECT name FROM sp_users.find_by_email(E'\tALICE@example.com \n')), 'alice', 'find_by_email normalises its argument');

-- Unicode names and emails.
SELECT lives_ok($$SELECT sp_users.create_user('Ωμέγα-用户', 'ÜBER@Example.com', 'Ünïcødé Ñame')$$, 'unicode name and email');
SELECT is((SELECT email FROM sp_users.find_by_name('Ωμέγα-用户')), 'über@example.com', 'unicode email lower-cased');
SELECT is((SELECT name FROM sp_users.search_users('用户')), 'Ωμέγα-用户', 'search finds unicode substrings');
SELECT is((SELECT name FROM sp_users.search_users('ÑAME')), 'Ωμέγα-用户', 'search is case-insensitive for non-ASCII');

-- 10 000-character inputs: stored where there is no limit, refused cleanly where there is.
SELECT lives_ok(format($$SELECT sp_users.create_user('longname', 'long@example.com', %L)$$, repeat('x', 10000)), '10 000-character full_name is stored');
SELECT is((SELECT length(full_name) FROM sp_users.find_by_name('longname')), 10000, 'full name kept whole');
SELECT throws_ok(format($$SELECT sp_users.create_user(%L, 'x@example.com')$$, repeat('n', 10000)), '23514', NULL, '10 000-character name is a check violation');
SELECT throws_ok(format($$SELECT sp_users.create_user('y', %L)$$, repeat('e', 10000) || '@example.com'), '23514', NULL, '10 000-character email is a check violation');
SELECT is((SELECT count(*)::int FROM sp_users.search_users(repeat('q', 10000))), 0, 'search with a 10 000-character query');
SELECT is((SELECT count(*)::int FROM sp_users.find_by_email(repeat('q', 10000))), 0, 'find_by_email with a 10 000-character argument');

-- NULL arguments: finders find nothing, writers fail on the constraint.
SELECT is((SELECT count(*)::int FROM sp_users.find_by_id(NULL)), 0, 'find_by_id(NULL) is empty');
SELECT is((SELECT count(*)::int FROM sp_users.find_by_email(NULL)), 0, 'find_by_email(NULL) is empty');
SELECT is((SELECT count(*)::int FROM sp_users.find_user(NULL)), 0, 'find_user(NULL) is empty');
SELECT is((SELECT count(*)::int FROM sp_users.search_users(NULL)), 0, 'search_users(NULL) is empty');
SELECT throws_ok($$SELECT sp_users.create_user(NULL, 'n@example.com')$$, '23502', NULL, 'NULL name is a not-null violation');
SELECT throws_ok($$SELECT sp_users.create_user('n', NULL)$$, '23502', NULL, 'NULL email is a not-null violation');
SELECT throws_ok($$SELECT sp_users.create_user('', 'empty@example.com')$$, '23514', NULL, 'empty name refused');
SELECT throws_ok($$SELECT sp_users.create_user('noat', 'no-at-sign')$$, '23514', NULL, 'email without @ refused');

-- Limits: 0, 101 (capped at 100), -1.
INSERT INTO sp_users.users (name, email, created_at)
SELECT 'bulk' || i, 'bulk' || i || '@example.com', now() - i * interval '1 minute' FROM generate_series(1, 120) i;
SELECT is((SELECT count(*)::int FROM sp_users.list_users(0)), 0, 'limit 0 returns nothing');
SELECT is((SELECT count(*)::int FROM sp_users.list_users(101)), 100, 'limit 101 is capped at 100');
SELECT is((SELECT count(*)::int FROM sp_users.search_users('bulk', 101)), 100, 'search limit capped at 100');
SELECT is((SELECT count(*)::int FROM sp_users.list_by_filter(lim => 500)), 100, 'list_by_filter limit capped at 100');
SELECT is((SELECT count(*)::int FROM sp_users.list_users(100, 100)), 23, 'offset pages through');
SELECT is((SELECT count(*)::int FROM sp_users.list_all_users()), 123, 'list_all_users is not capped');
SELECT is(sp_users.count_users(), 123::bigint, 'count_users');

-- Ordering: newest first; search puts name matches first.
SELECT is((SELECT name FROM sp_users.list_users(1)), (SELECT name FROM sp_users.users ORDER BY created_at DESC, id LIMIT 1), 'list_users newest first (ties by id)');
SELECT is((SELECT name FROM sp_users.find_first_user()), 'bulk120', 'find_first_user is the oldest');
SELECT lives_ok($$SELECT sp_users.create_user('zed', 'has-bulk-in-email@example.com')$$, 'user matching by email only');
SELECT is((SELECT name FROM sp_users.search_users('bulk', 100) OFFSET 100 LIMIT 1), NULL, 'hundred name matches fill the page');
SELECT ok((SELECT bool_and(name LIKE 'bulk%') FROM (SELECT name FROM sp_users.search_users('bulk', 100)) s), 'name matches come before email matches');
SELECT is((SELECT count(*)::int FROM sp_users.search_users('%')), 0, '% is a literal character');
SELECT is((SELECT count(*)::int FROM sp_users.search_users('bulk1_')), 0, '_ is a literal character');

-- Filters.
UPDATE sp_users.users SET status = 'suspended' WHERE name IN ('bulk1', 'bulk2');
SELECT is((SELECT count(*)::int FROM sp_users.list_by_filter(status => 'suspended')), 2, 'filter by status');
SELECT is((SELECT count(*)::int FROM sp_users.list_by_filter(older_than_days => 0, lim => 100)), 100, 'filter older_than_days 0');
SELECT is((SELECT count(*)::int FROM sp_users.list_by_filter(role => 'admin')), 0, 'filter by role');

-- Updates.
SELECT is((SELECT email FROM sp_users.update_email((SELECT id FROM sp_users.find_by_name('alice')), ' NEW@Example.com ')), 'new@example.com', 'update_email normalises');
SELECT is((SELECT email_verified FROM sp_users.update_email_verified((SELECT id FROM sp_users.find_by_name('alice')), true)), true, 'update_email_verified');
SELECT is((SELECT email_verified FROM sp_users.update_email((SELECT id FROM sp_users.find_by_name('alice')), 'new@example.com')), true, 'same email keeps verification');
SELECT is((SELECT email_verified FROM sp_users.update_email((SELECT id FROM sp_users.find_by_name('alice')), 'newer@example.com')), false, 'changed email resets verification');
SELECT is((SELECT display_name FROM sp_users.update_display_name((SELECT id FROM sp_users.find_by_name('alice')), NULL)), NULL, 'update_display_name to NULL');
SELECT is((SELECT row(email, full_name, display_name, status)::text FROM sp_users.update_user((SELECT id FROM sp_users.find_by_name('alice')), 'A@B.C', 'F', 'D', 'pending')),
          '(a@b.c,F,D,pending)', 'update_user sets all four fields');
SELECT ok((SELECT updated_at > created_at FROM sp_users.find_by_name('alice')), 'updated_at maintained');
UPDATE sp_users.users SET avatar_url = 'x' WHERE name = 'zed';
SELECT ok((SELECT updated_at > created_at FROM sp_users.find_by_name('zed')), 'updated_at maintained on direct UPDATE too');

-- Soft-deleted users are invisible everywhere.
SELECT is(sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('bulk3', 'bulk4'))), 2::bigint, 'bulk_delete counts');
SELECT is(sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('bulk3', 'bulk4'))), 0::bigint, 'bulk_delete again changes nothing');
SELECT is((SELECT count(*)::int FROM sp_users.find_by_name('bulk3')), 0, 'find_by_name hides deleted');
SELECT is((SELECT count(*)::int FROM sp_users.find_by_email('bulk3@example.com')), 0, 'find_by_email hides deleted');
-- (the id in a variable: with users split into shards, Citus would send the whole query, find_by_id and all, to a shard)
SELECT id AS bulk3 FROM sp_users.users WHERE name = 'bulk3' \gset
SELECT is((SELECT count(*)::int FROM sp_users.find_by_id(:'bulk3')), 0, 'find_by_id hides deleted');
SELECT is((SELECT count(*)::int FROM sp_users.find_user('bulk3')), 0, 'find_user hides deleted');
SELECT is((SELECT count(*)::int FROM sp_users.search_users('bulk3', 100) WHERE name = 'bulk3'), 0, 'search hides deleted');
SELECT is((SELECT count(*)::int FROM sp_users.list_all_users() WHERE name = 'bulk3'), 0, 'list_all_users hides deleted');
SELECT is((SELECT count(*)::int FROM sp_users.list_by_filter(status => 'deleted')), 0, 'list_by_filter never shows deleted');
SELECT is((SELECT count(*)::int FROM sp_users.export_users() e WHERE e->>'name' = 'bulk3'), 0, 'export hides deleted');
SELECT is(sp_users.count_users(), 122::bigint, 'count_users excludes deleted');
SELECT throws_ok(format('SELECT sp_users.update_full_name(%L, %L)', (SELECT id FROM sp_users.users WHERE name = 'bulk3'), 'x'), 'P0002', NULL, 'updating a deleted user is P0002');
SELECT is(sp_users.bulk_update_status(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('bulk3', 'bulk5')), 'active'), 0::bigint, 'bulk_update_status skips deleted and unchanged');
SELECT is(sp_users.bulk_update_status(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('bulk5', 'bulk6')), 'inactive'), 2::bigint, 'bulk_update_status counts changes');

-- Activity and sessions view.
SELECT is((SELECT row(session_count, last_active IS NULL)::text FROM sp_users.get_activity((SELECT id FROM sp_users.find_by_name('zed')))), '(0,t)', 'get_activity without sessions');
SELECT is((SELECT active_sessions FROM sp_users.find_with_sessions((SELECT id FROM sp_users.find_by_name('zed')))), 0::bigint, 'find_with_sessions without sessions');
SELECT is(sp_users.is_temporary_anonymous((SELECT id FROM sp_users.find_by_name('zed'))), false, 'is_temporary_anonymous false for a user');

-- Export.
SELECT is((SELECT count(*)::int FROM sp_users.export_users()), 122, 'export_users exports all');
SELECT is((SELECT count(*)::int FROM sp_users.export_users(5)), 5, 'export_users(lim)');
SELECT is((SELECT count(*)::int FROM sp_users.export_users(500)), 100, 'export_users lim capped at 100');
SELECT is((SELECT array_agg(k ORDER BY k) FROM sp_users.export_users(1) e, jsonb_object_keys(e) k),
          ARRAY['avatar_url','created_at','display_name','email','email_verified','full_name','id','is_bot','is_scanner','name','roles','status','updated_at'],
          'export has every column');

-- Hard delete.
SELECT lives_ok(format('SELECT sp_users.delete_user(%L)', (SELECT id FROM sp_users.find_by_name('zed'))), 'delete_user');
SELECT is((SELECT count(*)::int FROM sp_users.users WHERE name = 'zed'), 0, 'row gone');

-- The letter v is not white space (normalize_email trimmed it from both ends: E'\v' is a plain v).
SELECT is(sp_users.normalize_email(E'\x0B Vera@Example.dev \t'), 'vera@example.dev', 'normalize_email trims a vertical tab, keeps the letter v');
SELECT is((SELECT email FROM sp_users.create_user('vera', 'Vera@Example.dev')), 'vera@example.dev', 'an email starting and ending with v is stored');
SELECT isnt((SELECT id FROM sp_users.create_anonymous('vfp')), (SELECT id FROM sp_users.create_anonymous('fp')), 'fingerprints vfp and fp are two anonymous users');

SELECT * FROM finish();
ROLLBACK;
