-- sp_users 0.2.0 → 0.3.0. Hand-written; test/integration/upgrade.sh checks that an upgraded
-- database has the same catalog as a fresh 0.3.0 install.
--
-- 0.3.0, hardening: internal functions are executable by nobody but the owner (except the few a
-- direct write or the clean-up procedure needs), no role holds TRIGGER on sp_users tables, the
-- counter tables are read-only for administrators; C trigger functions check where they fire
-- (39P01); is_banned is PARALLEL SAFE and correct in parallel plans; search_users and the bulk
-- functions no longer cost input size x table size; rebuild_user_counts writes only what differs.
\echo Use "ALTER EXTENSION sp_users UPDATE TO '0.3.0'" to load this file. \quit

ALTER FUNCTION sp_users.is_banned(text) PARALLEL SAFE;
ALTER FUNCTION sp_users.ban_cache_info() PARALLEL RESTRICTED;

CREATE OR REPLACE FUNCTION sp_users._count_truncate() RETURNS trigger
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

CREATE OR REPLACE FUNCTION sp_users.rebuild_user_counts() RETURNS bigint
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

CREATE OR REPLACE FUNCTION sp_users.search_users(query text, lim integer DEFAULT 20) RETURNS SETOF sp_users.users
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- The query is lower-cased once (a CTE scan is not recomputed per row): the cost is the
    -- table's text once, not the table times the query.
    WITH p AS MATERIALIZED (SELECT lower($1) AS q)
    SELECT u.* FROM p, sp_users.users u
     WHERE u.status <> 'deleted'
       AND (strpos(lower(u.name), p.q) > 0
            OR strpos(u.email, p.q) > 0
            OR strpos(lower(coalesce(u.full_name, '')), p.q) > 0)
     ORDER BY (strpos(lower(u.name), p.q) > 0) DESC, u.created_at DESC, u.id
     LIMIT sp_users._page_limit($2)
$$;
COMMENT ON FUNCTION sp_users.search_users(text, integer) IS
'Case-insensitive substring search over name, email and full_name; every character is literal (% and _ are not wildcards). Name matches first, then newest. lim capped at 100. A NULL query finds nothing.';

CREATE OR REPLACE FUNCTION sp_users.bulk_update_status(ids uuid[], status sp_users.user_status) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH changed AS (
        UPDATE sp_users.users u SET status = $2
         WHERE u.id IN (SELECT unnest($1)) AND u.status <> 'deleted' AND u.status IS DISTINCT FROM $2 -- a join, not array x table
        RETURNING 1)
    SELECT count(*) FROM changed
$$;
COMMENT ON FUNCTION sp_users.bulk_update_status(uuid[], sp_users.user_status) IS
'Sets the status of every listed (non-deleted) user; returns how many rows actually changed. Unknown ids are ignored.';

CREATE OR REPLACE FUNCTION sp_users._cleanup_anonymous_batch(retention_days integer, batch_size integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := sp_users._retention(retention_days);
    ids uuid[];
    deleted bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive (got %)', coalesce(batch_size::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    SELECT array_agg(c.id) INTO ids FROM (
        SELECT u.id FROM sp_users.users u
         WHERE u.roles @> ARRAY['anonymous'::sp_users.user_role] AND u.status <> 'deleted' AND u.created_at < cutoff
           AND NOT EXISTS (SELECT 1 FROM sp_users.user_sessions s
                            WHERE s.user_id = u.id AND sp_users.session_is_active(s.ended_at, s.revoked_at, s.expires_at))
         ORDER BY u.created_at
         LIMIT batch_size
         FOR UPDATE SKIP LOCKED) c;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM sp_users.users u
     WHERE u.id IN (SELECT unnest(ids)) -- a join, not array x table
       AND NOT EXISTS (SELECT 1 FROM sp_users.user_sessions s
                        WHERE s.user_id = u.id AND sp_users.session_is_active(s.ended_at, s.revoked_at, s.expires_at));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
COMMENT ON FUNCTION sp_users._cleanup_anonymous_batch(integer, integer) IS
'Internal: deletes up to batch_size old anonymous users without an active session, race-safe against concurrent session starts.';

CREATE FUNCTION sp_users._restrict_internals() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'sp_users'::regnamespace
                AND p.proname OPERATOR(pg_catalog.~~) '\_%'
                AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY['_roles_valid', '_cleanup_anonymous_batch',
                                                                 '_job_run_start', '_job_run_progress', '_retention'])
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, sp_users_admin, sp_users_app, sp_users_readonly', f);
    END LOOP;
    REVOKE TRIGGER ON ALL TABLES IN SCHEMA sp_users FROM sp_users_admin, sp_users_app, sp_users_readonly;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON sp_users.user_counts, sp_users.user_count_deltas FROM sp_users_admin;
END
$$;
COMMENT ON FUNCTION sp_users._restrict_internals() IS 'Internal (install and upgrade): revokes EXECUTE on internal functions from every sp_users role except those a direct write (_roles_valid, the CHECK on roles) or run_anonymous_cleanup needs, TRIGGER on every table, and writes to the derived counter tables.';

SELECT sp_users._restrict_internals();
