-- pgTAP: degenerate inputs stay cheap. No function's cost may grow with the product of an input's
-- size and the table's size (a 1 MB search query over 2 000 users took over 20 s in 0.2.0); the
-- statement_timeout below is a generous ceiling for work that now takes milliseconds. And
-- rebuild_user_counts() repeated in one transaction writes nothing after the first call.
BEGIN;
SELECT no_plan();

INSERT INTO sp_users.users (name, email, full_name)
SELECT 'deg' || i, 'deg' || i || '@example.com', 'Degenerate Person ' || i FROM generate_series(1, 2000) i;

SET LOCAL statement_timeout = '5s';
SELECT is((SELECT count(*) FROM sp_users.search_users(repeat('x', 1000000), 100)), 0::bigint,
          'search_users with a 1 MB query over 2 000 users answers at once');
SELECT is((SELECT count(*) FROM sp_users.search_users(repeat('Degenerate Person 1', 2000), 100)), 0::bigint,
          'search_users with a long query made of a real prefix answers at once');
SELECT is((SELECT count(*) FROM sp_users.search_users('PERSON 1999', 100)), 1::bigint, 'search_users still finds');
SELECT is(sp_users.bulk_update_status(ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 200000)), 'inactive'), 0::bigint,
          'bulk_update_status with 200 000 unknown ids answers at once');
SELECT is(sp_users.bulk_update_status(ARRAY(SELECT id FROM sp_users.users WHERE name LIKE 'deg1%') ||
                                      ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 100000)), 'inactive'),
          (SELECT count(*) FROM sp_users.users WHERE name LIKE 'deg1%'), 'bulk_update_status still changes the listed users');
SELECT throws_ok($$INSERT INTO sp_users.users (name, email, roles)
                   VALUES ('many', 'many@example.com', array_fill('user'::sp_users.user_role, ARRAY[1000000]))$$,
                 '23514', NULL, 'a million-element role array is rejected at once (CHECK users_roles_check)');
RESET statement_timeout;

-- Repeated rebuilds: the second and later calls find the counters right and write nothing, so a
-- loop of rebuilds leaves no dead rows (0.2.0 deleted and re-inserted every row each time).
SELECT sp_users.rebuild_user_counts();
CREATE TEMP TABLE before_rebuild AS SELECT ctid AS c, xmin::text AS x FROM sp_users.user_counts;
SELECT sp_users.rebuild_user_counts() FROM generate_series(1, 20);
SELECT set_eq($$SELECT ctid AS c, xmin::text AS x FROM sp_users.user_counts$$, $$SELECT c, x FROM before_rebuild$$,
              'twenty more rebuilds rewrote no counter row');
SELECT is((SELECT total FROM sp_users.get_stats()), (SELECT count(*) FROM sp_users.users WHERE status <> 'deleted'),
          'statistics equal SQL after the rebuilds');
-- A wrong counter is corrected, and only it.
UPDATE sp_users.user_counts SET n = n + 7 WHERE ctid = (SELECT min(ctid) FROM sp_users.user_counts);
SELECT sp_users.rebuild_user_counts();
SELECT is((SELECT total FROM sp_users.get_stats()), (SELECT count(*) FROM sp_users.users WHERE status <> 'deleted'),
          'a rebuild corrects a wrong counter');
SELECT is((SELECT count(*) FROM sp_users.user_counts c JOIN before_rebuild b ON b.c = c.ctid AND b.x = c.xmin::text),
          (SELECT count(*) FROM before_rebuild) - 1, '... and rewrites only that row');

SELECT * FROM finish();
ROLLBACK;
