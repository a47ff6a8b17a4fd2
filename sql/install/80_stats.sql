-- Statistics: exact, from maintained counters (see src/pg/stats.cpp), folded by C++.

CREATE TABLE sp_users.user_counts (
    day     integer NOT NULL,                -- creation day, days since 2000-01-01 UTC
    status  sp_users.user_status NOT NULL,
    roles   smallint NOT NULL,               -- bit per role: 1 admin, 2 user, 4 anonymous
    is_bot  boolean NOT NULL,
    shard   smallint NOT NULL,               -- writer backend's pid mod 16 (concurrent writers rarely share a row); -1 folded
    n       bigint NOT NULL,
    PRIMARY KEY (day, status, roles, is_bot, shard)
) WITH (fillfactor = 20); -- room on every page, so the constant +1/-1 updates stay HOT (no index insertion)
COMMENT ON TABLE sp_users.user_counts IS 'Maintained counters behind the statistics functions: number of users per creation day, status, role set and bot flag (summed over shards: 0..15 written by backends, -1 folded by compact_user_counts). Together with sp_users.user_count_deltas (changes not yet folded in, written by triggers on sp_users.users in the same transaction) exact in every snapshot. Derived data: not dumped (restoring users rebuilds it); sp_users.rebuild_user_counts() recomputes it.';

-- Appended to by the triggers with a bare heap_insert, so: no index, trigger, default or
-- constraint (the trigger checks). Folded into user_counts by compact_user_counts().
CREATE TABLE sp_users.user_count_deltas (
    day     integer,
    status  sp_users.user_status,
    roles   smallint,
    is_bot  boolean,
    n       bigint
);
COMMENT ON TABLE sp_users.user_count_deltas IS 'Counter changes not yet folded into sp_users.user_counts (one row per writing statement and key). Derived data, not dumped.';

CREATE FUNCTION sp_users.compact_user_counts() RETURNS bigint
AS 'MODULE_PATHNAME', 'sp_users_compact_user_counts'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION sp_users.compact_user_counts() IS 'Folds the committed counter deltas (those no other session is folding) into sp_users.user_counts, then folds the per-backend shards of every counter into one row and drops counters that reached zero, so statistics read one row per (day, status, role set, bot) key; returns the number of counter rows written. Never waits for a writer (rows a writer holds are left for next time; a second concurrent compaction only folds deltas). Call it in its own READ COMMITTED transaction: a writer whose counter rows it folded waits for its commit. Writers fold deltas on their own and the scheduled clean-up calls it; statistics are exact either way.';

CREATE FUNCTION sp_users._count_statement() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_count_statement' LANGUAGE C;
COMMENT ON FUNCTION sp_users._count_statement() IS 'Trigger: folds a statement''s inserted, updated or deleted users (its transition tables) into one delta row per key in sp_users.user_count_deltas; every 512 rows the writer folds committed deltas into sp_users.user_counts.';
CREATE FUNCTION sp_users._count_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER -- whoever may truncate users, only the owner writes the counters
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_RELID OPERATOR(pg_catalog.<>) 'sp_users.users'::regclass OR TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' THEN
        RAISE EXCEPTION 'sp_users._count_truncate() may only be attached to sp_users.users' USING ERRCODE = '39P01';
    END IF;
    DELETE FROM sp_users.user_counts;
    DELETE FROM sp_users.user_count_deltas;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION sp_users._count_truncate() IS 'Trigger: empties the counters when sp_users.users is truncated.';

CREATE TRIGGER users_count_insert AFTER INSERT ON sp_users.users REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_statement();
CREATE TRIGGER users_count_update AFTER UPDATE ON sp_users.users REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_statement();
CREATE TRIGGER users_count_delete AFTER DELETE ON sp_users.users REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_statement();
CREATE TRIGGER users_count_truncate AFTER TRUNCATE ON sp_users.users
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._count_truncate();
ALTER TABLE sp_users.users ENABLE ALWAYS TRIGGER users_count_truncate;
-- A logical subscriber's apply worker (session_replication_role = replica) fires no statement
-- trigger: there this row trigger, enabled for replica mode only, counts each applied row (and
-- each row of the initial table copy); in origin mode the statement triggers above count.
CREATE FUNCTION sp_users._count_row() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_count_row' LANGUAGE C;
COMMENT ON FUNCTION sp_users._count_row() IS 'Trigger (row level, enabled only under session_replication_role = replica, as in logical replication''s apply worker): counts each applied users row into sp_users.user_count_deltas, as the statement triggers do in origin mode.';
CREATE TRIGGER users_count_row AFTER INSERT OR UPDATE OR DELETE ON sp_users.users
    FOR EACH ROW EXECUTE FUNCTION sp_users._count_row();
ALTER TABLE sp_users.users ENABLE REPLICA TRIGGER users_count_row;

CREATE FUNCTION sp_users.rebuild_user_counts() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d integer[];
    st sp_users.user_status[];
    r smallint[];
    b boolean[];
    c bigint[];
BEGIN
    -- No writer may slip between the count and the write (SHARE on users), and no compaction may
    -- run (compactions hold the delta table). user_counts itself is only row-locked, so
    -- autovacuum keeps reclaiming it while a rebuild runs.
    LOCK TABLE sp_users.users IN SHARE MODE;
    LOCK TABLE sp_users.user_count_deltas IN EXCLUSIVE MODE;
    SELECT array_agg(t.day), array_agg(t.status), array_agg(t.roles), array_agg(t.is_bot), array_agg(t.n)
      INTO d, st, r, b, c
      FROM (SELECT floor(extract(epoch FROM u.created_at - timestamptz '2000-01-01 00:00:00+00') / 86400)::integer AS day,
                   u.status,
                   (SELECT coalesce(sum(DISTINCT (1 << (array_position(enum_range(NULL::sp_users.user_role), x) - 1))), 0)::smallint
                      FROM unnest(u.roles) AS x) AS roles,
                   coalesce(u.is_bot, false) AS is_bot, count(*) AS n
              FROM sp_users.users u
             GROUP BY 1, 2, 3, 4) t;
    -- Only what differs is written: a rebuild of correct counters writes nothing, so repeated
    -- rebuilds leave no dead rows behind.
    DELETE FROM sp_users.user_count_deltas;
    DELETE FROM sp_users.user_counts x WHERE x.shard <> -1;
    DELETE FROM sp_users.user_counts x
     WHERE NOT EXISTS (SELECT 1 FROM unnest(d, st, r, b, c) AS t(day, status, roles, is_bot, n)
                        WHERE t.day = x.day AND t.status = x.status AND t.roles = x.roles AND t.is_bot = x.is_bot AND t.n = x.n);
    INSERT INTO sp_users.user_counts AS x (day, status, roles, is_bot, shard, n)
    SELECT t.day, t.status, t.roles, t.is_bot, -1, t.n FROM unnest(d, st, r, b, c) AS t(day, status, roles, is_bot, n)
    ON CONFLICT (day, status, roles, is_bot, shard) DO NOTHING;
    RETURN coalesce(cardinality(d), 0);
END
$$;
COMMENT ON FUNCTION sp_users.rebuild_user_counts() IS 'Recomputes sp_users.user_counts from sp_users.users, one folded row per key, writing only the rows that differ (a rebuild of correct counters writes nothing); returns the number of counter rows. Waits for writers and a running compaction; autovacuum is not blocked. Needed only after the counter triggers were disabled.';

CREATE FUNCTION sp_users._stats(OUT total bigint, OUT created_24h bigint, OUT created_7d bigint, OUT created_30d bigint,
                                OUT active bigint, OUT suspended bigint, OUT admins bigint, OUT anonymous bigint, OUT bots bigint,
                                OUT oldest_user timestamptz, OUT newest_user timestamptz, OUT by_status jsonb, OUT by_role jsonb)
AS 'MODULE_PATHNAME', 'sp_users_stats'
LANGUAGE C STABLE;
COMMENT ON FUNCTION sp_users._stats() IS 'Internal: every statistic in one call, folded in C++ from sp_users.user_counts plus exact counts on each window''s boundary day.';

CREATE FUNCTION sp_users.get_stats(OUT total bigint, OUT created_24h bigint, OUT created_7d bigint, OUT created_30d bigint,
                                   OUT active bigint, OUT suspended bigint, OUT admins bigint, OUT anonymous bigint, OUT bots bigint,
                                   OUT oldest_user timestamptz, OUT newest_user timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.total, s.created_24h, s.created_7d, s.created_30d, s.active, s.suspended, s.admins, s.anonymous, s.bots,
           s.oldest_user, s.newest_user
      FROM sp_users._stats() s
$$;
COMMENT ON FUNCTION sp_users.get_stats() IS
'User statistics over non-deleted users: total; created in the last 24 hours / 7 days / 30 days (created_at > now() - window); active; suspended; holding admin; holding anonymous; bots; oldest and newest created_at. Exact in the caller''s snapshot, from maintained counters (no scan of the users table).';

CREATE FUNCTION sp_users.count_by_status() RETURNS TABLE (status sp_users.user_status, count bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.key::sp_users.user_status, e.value::bigint
      FROM sp_users._stats() s, jsonb_each_text(s.by_status) AS e(key, value)
     ORDER BY e.value::bigint DESC, e.key::sp_users.user_status
$$;
COMMENT ON FUNCTION sp_users.count_by_status() IS 'Number of users per status (deleted excluded; statuses with no user omitted), largest first.';

CREATE FUNCTION sp_users.count_by_role() RETURNS TABLE (role sp_users.user_role, count bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.key::sp_users.user_role, e.value::bigint
      FROM sp_users._stats() s, jsonb_each_text(s.by_role) AS e(key, value)
     ORDER BY e.value::bigint DESC, e.key::sp_users.user_role
$$;
COMMENT ON FUNCTION sp_users.count_by_role() IS 'Number of (non-deleted) users holding each role, largest first; a user with several roles counts once per role.';

CREATE FUNCTION sp_users.count_with_breakdown(OUT total bigint, OUT by_status jsonb, OUT by_role jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT s.total, s.by_status, s.by_role FROM sp_users._stats() s $$;
COMMENT ON FUNCTION sp_users.count_with_breakdown() IS 'Total users with the per-status and per-role counts as JSON objects, e.g. {"active": 10, "suspended": 1}.';
