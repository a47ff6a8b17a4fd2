-- Logical replication (docs/replication.md): what to publish, and a check of either side. The
-- subscriber keeps its own derived data (counters, ban change log) from the rows the apply worker
-- writes, through row triggers enabled for session_replication_role = replica.

-- A publication FOR ALL TABLES or FOR TABLES IN SCHEMA sp_users also carries the derived tables.
-- The publisher must still be able to delete from them (a DELETE on a published table needs a
-- replica identity; these two have no key), and a subscriber must not apply those rows: applied,
-- they would count twice, collide with the node's own rows or delete its deltas.
ALTER TABLE sp_users.ban_changes REPLICA IDENTITY FULL;
ALTER TABLE sp_users.user_count_deltas REPLICA IDENTITY FULL;
CREATE FUNCTION sp_users._ignore_replicated() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_ignore_replicated'
LANGUAGE C;
COMMENT ON FUNCTION sp_users._ignore_replicated() IS 'Trigger (row level, before, enabled only under session_replication_role = replica): in a logical replication worker, skips the rows it applies to a derived table (counters, ban change log, clean-up history) or a configuration table (failure and merge policies), which every node keeps itself; the rows sp_users'' own triggers write there pass.';
CREATE TRIGGER user_counts_ignore_replicated BEFORE INSERT OR UPDATE OR DELETE ON sp_users.user_counts
    FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
CREATE TRIGGER user_count_deltas_ignore_replicated BEFORE INSERT OR UPDATE OR DELETE ON sp_users.user_count_deltas
    FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
CREATE TRIGGER ban_changes_ignore_replicated BEFORE INSERT OR UPDATE OR DELETE ON sp_users.ban_changes
    FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
CREATE TRIGGER ban_changes_horizon_ignore_replicated BEFORE INSERT OR UPDATE OR DELETE ON sp_users.ban_changes_horizon
    FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
CREATE TRIGGER job_runs_ignore_replicated BEFORE INSERT OR UPDATE OR DELETE ON sp_users.job_runs
    FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
ALTER TABLE sp_users.user_counts ENABLE REPLICA TRIGGER user_counts_ignore_replicated;
ALTER TABLE sp_users.user_count_deltas ENABLE REPLICA TRIGGER user_count_deltas_ignore_replicated;
ALTER TABLE sp_users.ban_changes ENABLE REPLICA TRIGGER ban_changes_ignore_replicated;
ALTER TABLE sp_users.ban_changes_horizon ENABLE REPLICA TRIGGER ban_changes_horizon_ignore_replicated;
ALTER TABLE sp_users.job_runs ENABLE REPLICA TRIGGER job_runs_ignore_replicated;
-- Configuration is each node's own too (and its built-in rows would collide with a copy).
CREATE TRIGGER failure_policies_ignore_replicated BEFORE INSERT OR UPDATE OR DELETE ON sp_users.failure_policies
    FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
CREATE TRIGGER merge_policies_ignore_replicated BEFORE INSERT OR UPDATE OR DELETE ON sp_users.merge_policies
    FOR EACH ROW EXECUTE FUNCTION sp_users._ignore_replicated();
ALTER TABLE sp_users.failure_policies ENABLE REPLICA TRIGGER failure_policies_ignore_replicated;
ALTER TABLE sp_users.merge_policies ENABLE REPLICA TRIGGER merge_policies_ignore_replicated;

CREATE FUNCTION sp_users.check_replication()
RETURNS TABLE (side text, item text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source_tables constant text[] := ARRAY['users', 'user_sessions', 'banned_ips', 'account_failures', 'address_failures'];
    derived_tables constant text[] := ARRAY['user_counts', 'user_count_deltas', 'ban_changes', 'ban_changes_horizon', 'job_runs'];
    config_tables constant text[] := ARRAY['failure_policies', 'merge_policies'];
    config text[];
    pub record;
    sub record;
    tabs text[];
    missing text[];
    extra text[];
    subscribed boolean := false;
    published boolean := false;
    wrong text[];
    jobs bigint;
BEGIN
    -- Publisher side: every publication in this database that carries an sp_users table.
    FOR pub IN SELECT p.pubname, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,
                      array_agg(t.tablename::text ORDER BY t.tablename) AS tabs
                 FROM pg_publication p JOIN pg_publication_tables t ON t.pubname = p.pubname
                WHERE t.schemaname = 'sp_users'
                GROUP BY 1, 2, 3, 4, 5 ORDER BY 1
    LOOP
        published := true;
        missing := ARRAY(SELECT x FROM unnest(source_tables) x WHERE x <> ALL (pub.tabs));
        extra := ARRAY(SELECT x FROM unnest(derived_tables) x WHERE x = ANY (pub.tabs));
        RETURN QUERY SELECT 'publisher', format('publication %I: source tables', pub.pubname), cardinality(missing) = 0,
            CASE WHEN cardinality(missing) = 0 THEN 'publishes sp_users.' || array_to_string(pub.tabs, ', sp_users.')
                 ELSE 'add sp_users.' || array_to_string(missing, ', sp_users.') || ': ALTER PUBLICATION ' || quote_ident(pub.pubname)
                      || ' ADD TABLE sp_users.' || array_to_string(missing, ', sp_users.') END;
        -- Harmless (subscribers skip those rows), only traffic: reported, not a failure.
        RETURN QUERY SELECT 'publisher', format('publication %I: derived tables', pub.pubname), true,
            CASE WHEN cardinality(extra) = 0 THEN 'no derived table published (each node maintains its own)'
                 ELSE 'also carries sp_users.' || array_to_string(extra, ', sp_users.')
                      || ', which sp_users subscribers ignore (each node derives its own); a publication FOR TABLE sp_users.users, sp_users.user_sessions, sp_users.banned_ips saves that traffic' END;
        config := ARRAY(SELECT x FROM unnest(config_tables) x WHERE x = ANY (pub.tabs));
        RETURN QUERY SELECT 'publisher', format('publication %I: node configuration', pub.pubname), true,
            CASE WHEN cardinality(config) = 0 THEN 'no configuration table published'
                 ELSE 'also carries sp_users.' || array_to_string(config, ', sp_users.')
                      || ', which sp_users subscribers ignore: each node keeps its own policies (set them there too)' END;
        RETURN QUERY SELECT 'publisher', format('publication %I: operations', pub.pubname),
            pub.pubinsert AND pub.pubupdate AND pub.pubdelete AND pub.pubtruncate,
            CASE WHEN pub.pubinsert AND pub.pubupdate AND pub.pubdelete AND pub.pubtruncate THEN 'insert, update, delete, truncate'
                 ELSE 'publish every operation, or the copy drifts from the source: ALTER PUBLICATION ' || quote_ident(pub.pubname)
                      || ' SET (publish = ''insert, update, delete, truncate'')' END;
    END LOOP;
    IF published THEN
        RETURN QUERY SELECT 'publisher', 'wal_level', current_setting('wal_level') = 'logical',
            'wal_level = ' || current_setting('wal_level')
            || CASE WHEN current_setting('wal_level') = 'logical' THEN '' ELSE ': set wal_level = logical and restart' END;
    END IF;

    -- Subscriber side: every subscription of this database that writes sp_users tables.
    FOR sub IN SELECT s.subname, s.subenabled,
                      array_agg(c.relname::text ORDER BY c.relname) AS tabs,
                      array_agg(c.relname::text || ' (' || CASE r.srsubstate WHEN 'i' THEN 'initializing' WHEN 'd' THEN 'copying'
                                WHEN 'f' THEN 'copy finished' WHEN 's' THEN 'synchronized' ELSE r.srsubstate::text END || ')'
                                ORDER BY c.relname) FILTER (WHERE r.srsubstate <> 'r') AS unready
                 FROM pg_subscription s
                 JOIN pg_subscription_rel r ON r.srsubid = s.oid
                 JOIN pg_class c ON c.oid = r.srrelid
                WHERE s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                  AND c.relnamespace = 'sp_users'::regnamespace
                GROUP BY 1, 2 ORDER BY 1
    LOOP
        subscribed := true;
        missing := ARRAY(SELECT x FROM unnest(source_tables) x WHERE x <> ALL (sub.tabs));
        extra := ARRAY(SELECT x FROM unnest(derived_tables) x WHERE x = ANY (sub.tabs));
        RETURN QUERY SELECT 'subscriber', format('subscription %I: source tables', sub.subname), cardinality(missing) = 0,
            CASE WHEN cardinality(missing) = 0 THEN 'receives sp_users.' || array_to_string(sub.tabs, ', sp_users.')
                 ELSE 'not received: sp_users.' || array_to_string(missing, ', sp_users.')
                      || ' (add them to the publication, then ALTER SUBSCRIPTION ' || quote_ident(sub.subname) || ' REFRESH PUBLICATION)' END;
        RETURN QUERY SELECT 'subscriber', format('subscription %I: derived tables', sub.subname), true,
            CASE WHEN cardinality(extra) = 0 THEN 'no derived table received (this node maintains its own)'
                 ELSE 'also receives sp_users.' || array_to_string(extra, ', sp_users.')
                      || ': this node skips those rows (trigger _ignore_replicated) and derives its own' END;
        config := ARRAY(SELECT x FROM unnest(config_tables) x WHERE x = ANY (sub.tabs));
        RETURN QUERY SELECT 'subscriber', format('subscription %I: node configuration', sub.subname), true,
            CASE WHEN cardinality(config) = 0 THEN 'no configuration table received'
                 ELSE 'also receives sp_users.' || array_to_string(config, ', sp_users.')
                      || ': this node skips those rows and keeps its own policies' END;
        RETURN QUERY SELECT 'subscriber', format('subscription %I: initial copy', sub.subname), sub.unready IS NULL,
            CASE WHEN sub.unready IS NULL THEN 'every table copied and streaming'
                 ELSE 'not yet streaming: ' || array_to_string(sub.unready, ', ')
                      || coalesce((SELECT format('; %s failed attempts to copy so far (the server log says why)', st.sync_error_count)
                                     FROM pg_stat_subscription_stats st WHERE st.subname = sub.subname AND st.sync_error_count > 0), '') END;
        RETURN QUERY SELECT 'subscriber', format('subscription %I: enabled', sub.subname), sub.subenabled,
            CASE WHEN sub.subenabled THEN 'enabled' ELSE format('disabled: ALTER SUBSCRIPTION %I ENABLE', sub.subname) END;
    END LOOP;
    IF subscribed THEN
        -- The apply worker fires only triggers enabled for replica mode (and ALWAYS ones).
        wrong := ARRAY(
            SELECT format('%s on %s is %s, should be %s', t.tgname, c.relname,
                          CASE t.tgenabled WHEN 'O' THEN 'ENABLE' WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END,
                          CASE e.mode WHEN 'O' THEN 'ENABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END)
              FROM (VALUES ('users', 'users_count_insert', 'O'), ('users', 'users_count_update', 'O'), ('users', 'users_count_delete', 'O'),
                           ('users', 'users_count_truncate', 'A'), ('users', 'users_count_row', 'R'),
                           ('user_counts', 'user_counts_ignore_replicated', 'R'), ('user_count_deltas', 'user_count_deltas_ignore_replicated', 'R'),
                           ('ban_changes', 'ban_changes_ignore_replicated', 'R'), ('ban_changes_horizon', 'ban_changes_horizon_ignore_replicated', 'R'),
                           ('job_runs', 'job_runs_ignore_replicated', 'R'),
                           ('failure_policies', 'failure_policies_ignore_replicated', 'R'), ('merge_policies', 'merge_policies_ignore_replicated', 'R'),
                           ('banned_ips', 'banned_ips_log_insert', 'O'), ('banned_ips', 'banned_ips_log_update', 'O'),
                           ('banned_ips', 'banned_ips_log_delete', 'O'), ('banned_ips', 'banned_ips_invalidate', 'A'),
                           ('banned_ips', 'banned_ips_log_row', 'R')) AS e(tbl, name, mode)
              JOIN pg_class c ON c.relname = e.tbl AND c.relnamespace = 'sp_users'::regnamespace
              JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = e.name
             WHERE t.tgenabled::text <> e.mode);
        RETURN QUERY SELECT 'subscriber', 'triggers for replicated rows', cardinality(wrong) = 0,
            CASE WHEN cardinality(wrong) = 0 THEN 'counters and ban sets follow the applied rows'
                 ELSE array_to_string(wrong, '; ') || ' (ALTER TABLE sp_users.<table> ENABLE [REPLICA | ALWAYS] TRIGGER <name>, then SELECT sp_users.rebuild_user_counts())' END;
        jobs := 0;
        IF EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_cron') THEN
            EXECUTE 'SELECT count(*) FROM cron.job j WHERE j.jobname = $1 AND j.database = $2 AND j.active'
               INTO jobs USING 'sp_users_cleanup_anonymous', current_database();
        END IF;
        RETURN QUERY SELECT 'subscriber', 'scheduled clean-up', jobs = 0,
            CASE WHEN jobs = 0 THEN 'not scheduled here (it runs on the publisher; its deletions replicate)'
                 ELSE 'the anonymous clean-up is scheduled on this subscriber: it would delete rows the publisher still has. '
                      || 'SELECT sp_users.unschedule_anonymous_cleanup() here; schedule it after a switch-over' END;
    END IF;
    IF NOT published AND NOT subscribed THEN
        RETURN QUERY SELECT 'node', 'logical replication', true,
            'no publication or subscription of this database carries an sp_users table';
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users.check_replication() IS
'Checks this database''s logical replication of sp_users, one row per check (side, item, ok, detail with the command that fixes it). Publisher: each publication carrying sp_users tables publishes users, user_sessions, banned_ips, account_failures and address_failures, and every operation (derived and configuration tables, e.g. with FOR ALL TABLES, are reported; subscribers ignore their rows) ; wal_level = logical. Subscriber: each subscription receives the source tables, has finished its initial copy (failed copy attempts counted) and is enabled; the replica-mode triggers that keep counters and ban sets exact are enabled; the anonymous clean-up is not scheduled here. docs/replication.md has the recipe.';
