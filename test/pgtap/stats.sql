-- pgTAP: every statistic equals plain SQL over sp_users.users, over random data, after inserts,
-- updates, soft and hard deletes, merges, rolled-back savepoints and window boundaries.
BEGIN;
SELECT no_plan();

SELECT is(enum_range(NULL::sp_users.user_status)::text, '{active,inactive,suspended,pending,deleted,temporary}', 'status order the C++ fold relies on');
SELECT is(enum_range(NULL::sp_users.user_role)::text, '{admin,user,anonymous}', 'role order the C++ fold relies on');

CREATE FUNCTION pg_temp.expected() RETURNS TABLE (total bigint, created_24h bigint, created_7d bigint, created_30d bigint, active bigint,
    suspended bigint, admins bigint, anonymous bigint, bots bigint, oldest_user timestamptz, newest_user timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := now(); -- a value: with users split into shards, a now() in the query would be each worker's
BEGIN
    RETURN QUERY
    SELECT count(*), count(*) FILTER (WHERE u.created_at > at - interval '24 hours'),
           count(*) FILTER (WHERE u.created_at > at - interval '7 days'), count(*) FILTER (WHERE u.created_at > at - interval '30 days'),
           count(*) FILTER (WHERE u.status = 'active'), count(*) FILTER (WHERE u.status = 'suspended'),
           count(*) FILTER (WHERE 'admin' = ANY (u.roles)), count(*) FILTER (WHERE 'anonymous' = ANY (u.roles)),
           count(*) FILTER (WHERE u.is_bot), min(u.created_at), max(u.created_at)
      FROM sp_users.users u WHERE u.status <> 'deleted';
END
$$;
CREATE FUNCTION pg_temp.check(label text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEXT is((SELECT row(s.*)::text FROM sp_users.get_stats() s), (SELECT row(e.*)::text FROM pg_temp.expected() e), label || ': get_stats');
    RETURN NEXT is((SELECT array_agg(row(c.*)::text ORDER BY c.count DESC, c.status) FROM sp_users.count_by_status() c),
                   (SELECT array_agg(row(status, n)::text ORDER BY n DESC, status) FROM (SELECT status, count(*) AS n FROM sp_users.users WHERE status <> 'deleted' GROUP BY status) x),
                   label || ': count_by_status');
    RETURN NEXT is((SELECT array_agg(row(c.*)::text ORDER BY c.count DESC, c.role) FROM sp_users.count_by_role() c),
                   (SELECT array_agg(row(r, n)::text ORDER BY n DESC, r) FROM (SELECT r, count(*) AS n FROM sp_users.users, unnest(roles) r WHERE status <> 'deleted' GROUP BY r) x),
                   label || ': count_by_role');
    RETURN NEXT is((SELECT total FROM sp_users.count_with_breakdown()), (SELECT total FROM pg_temp.expected()), label || ': count_with_breakdown total');
END
$$;

-- With users split into shards (sp_users.distribute() on Citus) the statistics count the users
-- themselves: there are no counters, so what checks the counters' own machinery (folds,
-- compaction, rebuild, a trigger's abort inside a statement) runs only where they exist.
SELECT NOT sp_users._users_distributed() AS counters \gset

SELECT * FROM pg_temp.check('empty');
SELECT is((SELECT count(*)::int FROM sp_users.count_by_status()), 0, 'no statuses when empty');

-- Random users around every window boundary (exactly 24 h / 7 d / 30 d ago, a microsecond either side).
SELECT setseed(0.17);
INSERT INTO sp_users.users (name, email, status, roles, is_bot, created_at)
SELECT 'u' || i, 'u' || i || '@example.com',
       (enum_range(NULL::sp_users.user_status))[1 + (random() * 5)::int],
       (ARRAY['{user}', '{user,admin}', '{anonymous}', '{admin}', '{user,anonymous}'])[1 + (random() * 4)::int]::sp_users.user_role[],
       random() < 0.1,
       CASE i % 7 WHEN 0 THEN now() - interval '24 hours' WHEN 1 THEN now() - interval '24 hours' - interval '1 microsecond'
                  WHEN 2 THEN now() - interval '7 days' + interval '1 microsecond' WHEN 3 THEN now() - interval '30 days'
                  ELSE now() - random() * interval '400 days' END
  FROM generate_series(1, 3000) i;
SELECT * FROM pg_temp.check('random insert');

UPDATE sp_users.users SET status = 'suspended' WHERE name LIKE 'u1%';
UPDATE sp_users.users SET roles = '{user,admin}', is_bot = NOT is_bot WHERE name LIKE 'u2%';
UPDATE sp_users.users u SET created_at = x.earlier -- computed apart: Citus sends no stable expression over a column to the shards
  FROM (SELECT id, created_at - interval '3 days' AS earlier FROM sp_users.users WHERE name LIKE 'u3%' OFFSET 0) x WHERE u.id = x.id;
SELECT * FROM pg_temp.check('after updates');

SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name LIKE 'u4%'));
DELETE FROM sp_users.users WHERE name LIKE 'u5%';
SELECT * FROM pg_temp.check('after soft and hard deletes');

SAVEPOINT before_rollback;
INSERT INTO sp_users.users (name, email) SELECT 'r' || i, 'r' || i || '@example.com' FROM generate_series(1, 500) i;
UPDATE sp_users.users SET status = 'pending' WHERE name LIKE 'u6%';
ROLLBACK TO SAVEPOINT before_rollback;
SELECT * FROM pg_temp.check('after a rolled-back savepoint');

-- A failing statement inside a caught exception block leaves no trace in the counters.
DO $$
BEGIN
    BEGIN
        INSERT INTO sp_users.users (name, email) VALUES ('x1', 'x1@example.com'), ('x2', 'not-an-email');
    EXCEPTION WHEN check_violation THEN NULL;
    END;
END $$;
SELECT * FROM pg_temp.check('after a failed statement');

\if :counters
-- An AFTER ROW trigger that fires after ours (name order) and raises: our deltas for that statement
-- were already recorded in memory and must be dropped with the aborted subtransaction.
CREATE FUNCTION pg_temp.boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER zz_boom AFTER INSERT ON sp_users.users FOR EACH ROW EXECUTE FUNCTION pg_temp.boom();
DO $$
BEGIN
    BEGIN
        INSERT INTO sp_users.users (name, email) VALUES ('fine', 'fine@example.com'), ('boom', 'boom@example.com');
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    INSERT INTO sp_users.users (name, email) VALUES ('after', 'after@example.com');
END $$;
DROP TRIGGER zz_boom ON sp_users.users;
SELECT is((SELECT count(*)::int FROM sp_users.users WHERE name IN ('fine', 'boom', 'after')), 1, 'only the later insert survived');
SELECT * FROM pg_temp.check('after an aborted subtransaction with recorded deltas');
\endif

SELECT sp_users.merge_users((SELECT id FROM sp_users.users WHERE name = 'u7' ), (SELECT id FROM sp_users.users WHERE name = 'u8'))
 WHERE EXISTS (SELECT 1 FROM sp_users.users WHERE name = 'u7' AND status <> 'deleted') AND EXISTS (SELECT 1 FROM sp_users.users WHERE name = 'u8' AND status <> 'deleted');
SELECT sp_users.create_anonymous('stats-fp');
SELECT * FROM pg_temp.check('after merge and create_anonymous');

-- Writers fold their deltas every 512 rows; many single-row statements exercise that path.
DO $$ BEGIN FOR i IN 1..1100 LOOP PERFORM sp_users.create_user('fold' || i, 'fold' || i || '@example.com'); END LOOP; END $$;
\if :counters
SELECT cmp_ok((SELECT count(*)::int FROM sp_users.user_count_deltas), '<', 600, 'writers folded their deltas along the way');
\endif
SELECT * FROM pg_temp.check('after 1 100 single-row statements');
\if :counters
SELECT cmp_ok(sp_users.compact_user_counts(), '>=', 0::bigint, 'compact_user_counts');
SELECT is((SELECT count(*)::int FROM sp_users.user_count_deltas), 0, 'no delta left after compaction');
SELECT * FROM pg_temp.check('after compaction');
SELECT is_empty($$SELECT 1 FROM sp_users.user_counts WHERE shard <> -1 OR n = 0$$, 'compaction folds every shard and leaves no zero counter');
SELECT is_empty($$SELECT 1 FROM sp_users.user_counts GROUP BY day, status, roles, is_bot HAVING count(*) > 1$$, 'one counter row per key after compaction');
INSERT INTO sp_users.users (name, email, is_bot, created_at)
SELECT 'gone' || i, 'gone' || i || '@example.com', true, timestamptz '2001-02-03 12:00+00' FROM generate_series(1, 5) i;
SELECT cmp_ok(sp_users.compact_user_counts(), '>', 0::bigint, 'compaction folds the new users');
SELECT is((SELECT sum(n)::int FROM sp_users.user_counts WHERE day = 399 AND is_bot), 5, 'their counter (day 399, bots)');
DELETE FROM sp_users.users WHERE name LIKE 'gone%';
SELECT cmp_ok(sp_users.compact_user_counts(), '>=', 0::bigint, 'compaction after deleting them');
SELECT is_empty($$SELECT 1 FROM sp_users.user_counts WHERE day = 399$$, 'a counter that reached zero is dropped');
SELECT * FROM pg_temp.check('after a counter went to zero');

SELECT is(sp_users.rebuild_user_counts() > 0, true, 'rebuild_user_counts');
SELECT * FROM pg_temp.check('after rebuild');
SELECT is_empty($$SELECT 1 FROM sp_users.user_counts WHERE shard <> -1$$, 'rebuild writes folded counters');
\endif
TRUNCATE sp_users.users CASCADE;
SELECT * FROM pg_temp.check('after truncate');

SELECT * FROM finish();
ROLLBACK;
