-- sp_users 0.1.0 → 0.2.0. Hand-written; test/integration/upgrade.sh checks that an upgraded
-- database has the same catalog as a fresh 0.2.0 install.
--
-- 0.2.0: compact_user_counts() (C, same signature) now also folds the per-backend counter shards
-- into one row per key (shard -1) and drops zero counters, so statistics cost one row per key;
-- rebuild_user_counts() writes folded rows and excludes a concurrent compaction; the scheduled
-- clean-up compacts once more at the end of a run, so the users it deleted leave no counters.
-- Merges deduplicate collisions on partial and expression unique indexes (C++; comment below).
\echo Use "ALTER EXTENSION sp_users UPDATE TO '0.2.0'" to load this file. \quit

COMMENT ON TABLE sp_users.user_counts IS 'Maintained counters behind the statistics functions: number of users per creation day, status, role set and bot flag (summed over shards: 0..15 written by backends, -1 folded by compact_user_counts). Together with sp_users.user_count_deltas (changes not yet folded in, written by triggers on sp_users.users in the same transaction) exact in every snapshot. Derived data: not dumped (restoring users rebuilds it); sp_users.rebuild_user_counts() recomputes it.';

COMMENT ON FUNCTION sp_users.compact_user_counts() IS 'Folds the committed counter deltas (those no other session is folding) into sp_users.user_counts, then folds the per-backend shards of every counter into one row and drops counters that reached zero, so statistics read one row per (day, status, role set, bot) key; returns the number of counter rows written. Never waits for a writer (rows a writer holds are left for next time; a second concurrent compaction only folds deltas). Call it in its own READ COMMITTED transaction: a writer whose counter rows it folded waits for its commit. Writers fold deltas on their own and the scheduled clean-up calls it; statistics are exact either way.';

CREATE OR REPLACE FUNCTION sp_users.rebuild_user_counts() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    LOCK TABLE sp_users.users IN SHARE MODE; -- no writer may slip between the count and the swap
    LOCK TABLE sp_users.user_counts IN EXCLUSIVE MODE; -- and no compaction
    DELETE FROM sp_users.user_counts;
    DELETE FROM sp_users.user_count_deltas;
    INSERT INTO sp_users.user_counts (day, status, roles, is_bot, shard, n)
    SELECT floor(extract(epoch FROM u.created_at - timestamptz '2000-01-01 00:00:00+00') / 86400)::integer,
           u.status,
           (SELECT coalesce(sum(DISTINCT (1 << (array_position(enum_range(NULL::sp_users.user_role), r) - 1))), 0)::smallint
              FROM unnest(u.roles) AS r),
           coalesce(u.is_bot, false), -1, count(*)
      FROM sp_users.users u
     GROUP BY 1, 2, 3, 4;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION sp_users.rebuild_user_counts() IS 'Recomputes sp_users.user_counts from sp_users.users, one folded row per key; returns the number of counter rows. Needed only after the counter triggers were disabled.';

CREATE OR REPLACE PROCEDURE sp_users.run_anonymous_cleanup(retention_days integer DEFAULT 30, enforce boolean DEFAULT true,
                                                batch_size integer DEFAULT 5000)
LANGUAGE plpgsql
AS $$
DECLARE
    run_id bigint;
    n bigint;
    total bigint := 0;
    batches integer := 0;
    sessions_ended bigint := 0;
    started timestamptz := pg_catalog.clock_timestamp();
    batch_started timestamptz;
    pause_factor double precision;
BEGIN
    -- Throttle: after each batch, pause pause_factor x the batch's duration (3 = at most a quarter of a
    -- core), so the request load keeps its throughput. SET sp_users.cleanup_pause_factor = 0 for full speed.
    pause_factor := coalesce(NULLIF(pg_catalog.current_setting('sp_users.cleanup_pause_factor', true), '')::double precision, 3.0);
    IF pause_factor < 0 OR pause_factor > 100 THEN
        RAISE EXCEPTION 'sp_users.cleanup_pause_factor must be between 0 and 100 (got %)', pause_factor USING ERRCODE = '22023';
    END IF;
    PERFORM sp_users._retention(retention_days);
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive (got %)', coalesce(batch_size::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    run_id := sp_users._job_run_start('sp_users_cleanup_anonymous', coalesce(enforce, true),
        pg_catalog.jsonb_build_object('retention_days', retention_days, 'batch_size', batch_size));
    COMMIT; -- the run is visible in job_runs while it works

    IF enforce IS FALSE THEN
        n := sp_users.count_old_anonymous(retention_days);
        PERFORM sp_users._job_run_progress(run_id, n, 0, pg_catalog.jsonb_build_object('dry_run', true), true);
        COMMIT;
        RAISE NOTICE 'sp_users clean-up (dry run): % anonymous users would be deleted', n;
        RETURN;
    END IF;

    sessions_ended := sp_users.cleanup_sessions();
    PERFORM sp_users.compact_user_counts(); -- keeps the statistics' delta table small
    COMMIT;
    LOOP
        batch_started := pg_catalog.clock_timestamp();
        n := sp_users._cleanup_anonymous_batch(retention_days, batch_size);
        EXIT WHEN n = 0;
        total := total + n;
        batches := batches + 1;
        PERFORM sp_users._job_run_progress(run_id, total, batches, '{}'::jsonb, false);
        COMMIT;
        RAISE NOTICE 'sp_users clean-up: batch % deleted % anonymous users (% so far)', batches, n, total;
        IF pause_factor > 0 THEN
            PERFORM pg_catalog.pg_sleep(pause_factor * pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - batch_started));
        END IF;
    END LOOP;
    PERFORM sp_users.compact_user_counts(); -- the deleted users' counters fold away to nothing
    PERFORM sp_users._job_run_progress(run_id, total, batches,
        pg_catalog.jsonb_build_object('sessions_ended', sessions_ended, 'pause_factor', pause_factor,
                                      'seconds', pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - started)::numeric, 3)),
        true);
    COMMIT;
    RAISE NOTICE 'sp_users clean-up: done, % anonymous users deleted in % batches, % expired sessions ended', total, batches, sessions_ended;
END
$$;
COMMENT ON PROCEDURE sp_users.run_anonymous_cleanup(integer, boolean, integer) IS
'CALL it (outside a transaction block): ends expired sessions, then deletes old anonymous users without an active session in batches of batch_size, committing after each batch (no lock held long; cancel stops it between or inside a batch, keeping committed batches). After each batch it pauses sp_users.cleanup_pause_factor (default 3) times the batch''s duration, so it takes at most about a quarter of a core; set it to 0 for full speed. enforce => false deletes nothing and records how many would go. At the end it compacts the statistics counters (compact_user_counts). Every run writes a row to sp_users.job_runs and a NOTICE per batch.';

-- Merges (C++) now deduplicate partial and expression unique indexes too.
COMMENT ON FUNCTION sp_users.merge_users(uuid, uuid) IS
'Moves every row that points at source to target — in every table of the database with a single-column foreign key to sp_users.users(id), whatever its schema, and in every column registered with register_user_reference — then deletes source, in one transaction. Both users are locked in id order first, tables are processed in a fixed order, so concurrent merges cannot deadlock each other. When a moved row would violate a unique index that has the user column as a key column (the target already has its counterpart; partial indexes, expression keys and NULLS NOT DISTINCT included), the target''s row is kept and the source''s is deleted, counted under tables->''dropped_duplicates''. Returns sessions moved, total rows moved, and tables: {"schema.table.column": rows moved} (zeros included). Source = target raises 22023; a missing (or deleted) user P0002.';

-- Fold what 0.1.0 left behind (shards and zero counters) now.
SELECT sp_users.compact_user_counts();
