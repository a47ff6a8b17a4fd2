-- Logical replication (docs/replication.md): what to publish, and a check of either side. The
-- subscriber keeps its own derived data (counters, ban change log) from the rows the apply worker
-- writes, through row triggers enabled for session_replication_role = replica.

CREATE FUNCTION sp_users.check_replication()
RETURNS TABLE (side text, item text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source_tables constant text[] := ARRAY['users', 'user_sessions', 'banned_ips'];
    derived_tables constant text[] := ARRAY['user_counts', 'user_count_deltas', 'ban_changes', 'ban_changes_horizon', 'job_runs'];
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
        RETURN QUERY SELECT 'publisher', format('publication %I: derived tables', pub.pubname), cardinality(extra) = 0,
            CASE WHEN cardinality(extra) = 0 THEN 'no derived table published (each node maintains its own)'
                 ELSE 'do not publish sp_users.' || array_to_string(extra, ', sp_users.')
                      || ': the subscriber derives them from the replicated rows, a copy would count twice (ALTER PUBLICATION '
                      || quote_ident(pub.pubname) || ' DROP TABLE ...)' END;
        RETURN QUERY SELECT 'publisher', format('publication %I: operations', pub.pubname),
            pub.pubinsert AND pub.pubupdate AND pub.pubdelete AND pub.pubtruncate,
            CASE WHEN pub.pubinsert AND pub.pubupdate AND pub.pubdelete AND pub.pubtruncate THEN 'insert, update, delete, truncate'
                 ELSE 'publish every operation (publish = ''insert, update, delete, truncate''), or the copy drifts from the source' END;
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
        RETURN QUERY SELECT 'subscriber', format('subscription %I: derived tables', sub.subname), cardinality(extra) = 0,
            CASE WHEN cardinality(extra) = 0 THEN 'no derived table received (this node maintains its own)'
                 ELSE 'receives sp_users.' || array_to_string(extra, ', sp_users.')
                      || ', which this node derives itself: drop them from the publication and REFRESH PUBLICATION, then SELECT sp_users.rebuild_user_counts()' END;
        RETURN QUERY SELECT 'subscriber', format('subscription %I: initial copy', sub.subname), sub.unready IS NULL,
            CASE WHEN sub.unready IS NULL THEN 'every table copied and streaming'
                 ELSE 'not yet streaming: ' || array_to_string(sub.unready, ', ') END;
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
'Checks this database''s logical replication of sp_users, one row per check (side, item, ok, detail with the command that fixes it). Publisher: each publication carrying sp_users tables publishes users, user_sessions and banned_ips, no derived table (user_counts, user_count_deltas, ban_changes, ban_changes_horizon, job_runs) and every operation; wal_level = logical. Subscriber: each subscription receives the source tables and no derived one, has finished its initial copy and is enabled; the replica-mode triggers that keep counters and ban sets exact are enabled; the anonymous clean-up is not scheduled here. docs/replication.md has the recipe.';
