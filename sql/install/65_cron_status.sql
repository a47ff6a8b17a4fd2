-- pg_cron, seen from sp_users: whether a scheduled run can connect, what the schedule and its last
-- runs are (for administrators, who cannot read cron.job or cron.job_run_details themselves), and the
-- job leaving with DROP EXTENSION sp_users. pg_cron is optional: every cron.* name is reached
-- dynamically, only when the extension exists.

CREATE FUNCTION sp_users._cron_run_problem(job_user text, job_host text, OUT problem text, OUT hint text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    db text := current_database();
    target text := coalesce(NULLIF(job_host, ''), NULLIF(current_setting('cron.host', true), ''), 'localhost');
    addrs inet[];
    a inet;
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_settings s WHERE s.name = 'cron.database_name') THEN
        problem := 'pg_cron is not loaded (it is not in shared_preload_libraries), so no scheduled run happens';
        hint := 'Add pg_cron to shared_preload_libraries in postgresql.conf and restart the server.';
        RETURN;
    END IF;
    IF current_setting('cron.use_background_workers', true) = 'on' THEN
        RETURN; -- runs in background workers: no connection, no authentication
    END IF;
    hint := 'Set cron.use_background_workers = on in postgresql.conf and restart the server: pg_cron then runs jobs in background workers, without logging in.';
    -- Otherwise pg_cron logs in as the job's user over libpq to the job's host (cron.host, default
    -- localhost), with no password of its own. pg_hba.conf decides; its first matching line counts.
    IF target LIKE '/%' THEN
        addrs := NULL; -- a Unix socket directory: the "local" lines
    ELSIF current_setting('listen_addresses') = '' THEN
        problem := format('pg_cron runs each job over a new connection to %s (cron.use_background_workers is off), but the server listens on no TCP address (listen_addresses is empty): every run fails with "connection failed"', target);
        RETURN;
    ELSIF target = 'localhost' THEN
        addrs := ARRAY['127.0.0.1', '::1']::inet[];
    ELSE
        BEGIN
            addrs := ARRAY[target::inet];
        EXCEPTION WHEN invalid_text_representation THEN
            hint := NULL;
            RETURN; -- a host name: which address it resolves to is not known here
        END;
    END IF;
    FOR a IN SELECT x FROM unnest(coalesce(addrs, ARRAY[NULL::inet])) x LOOP
        BEGIN
            SELECT h.line_number, h.type, h.auth_method, m.matches INTO r
              FROM pg_hba_file_rules h,
                   LATERAL (SELECT CASE WHEN a IS NULL OR h.address IN ('all', 'samehost', 'samenet') THEN true
                                        WHEN h.address ~ '^[0-9A-Fa-f:.]+$' AND h.netmask IS NOT NULL THEN
                                             CASE WHEN family(h.address::inet) <> family(a) THEN false
                                                  ELSE host(a & h.netmask::inet) = host(h.address::inet & h.netmask::inet) END
                                   END AS matches) m -- NULL: a host name in pg_hba.conf, perhaps
             WHERE h.error IS NULL
               AND CASE WHEN a IS NULL THEN h.type = 'local'
                        ELSE h.type IN ('host', 'hostnogssenc')
                             OR (h.type = 'hostssl' AND current_setting('ssl') = 'on')
                             OR (h.type = 'hostnossl' AND current_setting('ssl') = 'off') END
               AND ('all' = ANY (h.database) OR db = ANY (h.database)
                    OR ('sameuser' = ANY (h.database) AND db = job_user)
                    OR (('samerole' = ANY (h.database) OR 'samegroup' = ANY (h.database))
                        AND EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = db) AND pg_has_role(job_user, db, 'MEMBER')))
               AND ('all' = ANY (h.user_name) OR job_user = ANY (h.user_name)
                    OR EXISTS (SELECT 1 FROM unnest(h.user_name) u, pg_roles g
                                WHERE u LIKE '+%' AND g.rolname = substr(u, 2) AND pg_has_role(job_user, g.oid, 'MEMBER')))
               AND m.matches IS NOT false
             ORDER BY h.line_number
             LIMIT 1;
        EXCEPTION WHEN insufficient_privilege OR undefined_object THEN
            hint := NULL;
            RETURN; -- pg_hba.conf not readable by the owner, or no such role: not known
        END;
        IF NOT FOUND THEN
            problem := format('pg_cron runs each job over a new connection to %s as %s (cron.use_background_workers is off), and no line of pg_hba.conf lets it in: every run fails with "connection failed"',
                              coalesce(host(a), target), job_user);
            RETURN;
        END IF;
        IF r.matches IS NULL THEN
            hint := NULL;
            RETURN; -- a host name decides: not known
        END IF;
        IF r.auth_method IN ('scram-sha-256', 'md5', 'password', 'ldap', 'radius', 'pam', 'bsd', 'cert', 'reject') THEN
            problem := format('pg_cron runs each job over a new connection to %s as %s (cron.use_background_workers is off), and pg_hba.conf line %s (%s) %s: every run fails with "connection failed"%s',
                              coalesce(host(a), target), job_user, r.line_number, r.type,
                              CASE WHEN r.auth_method = 'reject' THEN 'rejects it' ELSE format('asks for %s authentication', r.auth_method) END,
                              CASE WHEN r.auth_method IN ('scram-sha-256', 'md5', 'password')
                                   THEN ', unless the server''s operating-system user has the password in its ~/.pgpass' ELSE '' END);
            RETURN;
        END IF;
    END LOOP;
    hint := NULL;
END
$$;
COMMENT ON FUNCTION sp_users._cron_run_problem(text, text) IS
'Internal: why a pg_cron run of the clean-up job (as job_user, to job_host) cannot start, where that can be known — pg_cron not preloaded; or, with cron.use_background_workers off, no TCP listener, or the first matching pg_hba.conf line asking for a password or rejecting — with a HINT; NULLs otherwise.';

CREATE FUNCTION sp_users.cleanup_status(runs integer DEFAULT 5)
RETURNS TABLE (source text, started_at timestamptz, finished_at timestamptz, status text, message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
    job record;
    jobs integer := 0;
    p record;
    problems text[] := '{}';
BEGIN
    IF runs IS NULL OR runs < 1 OR runs > 1000 THEN
        RAISE EXCEPTION 'runs must be between 1 and 1000 (got %)', coalesce(runs::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_cron') THEN
        FOR job IN EXECUTE
            'SELECT j.jobid, j.schedule, j.command, j.nodename, j.username, j.active FROM cron.job j
              WHERE j.jobname = $1 AND j.database = $2 ORDER BY j.jobid'
            USING 'sp_users_cleanup_anonymous', current_database()
        LOOP
            jobs := jobs + 1;
            RETURN QUERY SELECT 'schedule'::text, NULL::timestamptz, NULL::timestamptz,
                                CASE WHEN job.active THEN 'active' ELSE 'inactive' END,
                                format('pg_cron job %s, schedule "%s", as %s: %s', job.jobid, job.schedule, job.username, job.command);
            SELECT * INTO p FROM sp_users._cron_run_problem(job.username, job.nodename);
            IF p.problem IS NOT NULL THEN
                problems := problems || (p.problem || coalesce('. ' || p.hint, ''));
            END IF;
        END LOOP;
        IF jobs = 0 THEN
            RETURN QUERY SELECT 'schedule'::text, NULL::timestamptz, NULL::timestamptz, 'not scheduled'::text,
                                'no pg_cron job sp_users_cleanup_anonymous for this database; SELECT sp_users.schedule_anonymous_cleanup() creates it'::text;
        END IF;
        -- pg_cron's own record of each run, failures and their messages included (a run that could
        -- not connect has no start time); also the runs of an earlier job of the clean-up
        -- (unscheduled and scheduled again).
        RETURN QUERY EXECUTE
            'SELECT ''pg_cron''::text, d.start_time, d.end_time, d.status, d.return_message
               FROM cron.job_run_details d
              WHERE d.database = $1
                AND (d.jobid IN (SELECT j.jobid FROM cron.job j WHERE j.jobname = $2 AND j.database = $1)
                     OR d.command LIKE ''CALL sp_users.run_anonymous_cleanup(%'')
              ORDER BY d.runid DESC
              LIMIT $3'
            USING current_database(), 'sp_users_cleanup_anonymous', runs;
    ELSE
        RETURN QUERY SELECT 'schedule'::text, NULL::timestamptz, NULL::timestamptz, 'no pg_cron'::text,
            CASE WHEN NOT EXISTS (SELECT 1 FROM pg_settings s WHERE s.name = 'cron.database_name')
                 THEN 'pg_cron is not loaded in this server (not in shared_preload_libraries): nothing is scheduled; CALL sp_users.run_anonymous_cleanup() runs the clean-up by hand'
                 WHEN cron_db IS DISTINCT FROM current_database()
                 THEN format('pg_cron runs in database %s: a job scheduled there for this database (cron.schedule_in_database) and its runs are in cron.job and cron.job_run_details there', cron_db)
                 ELSE 'pg_cron is loaded but its extension is not created in this database: CREATE EXTENSION pg_cron, then SELECT sp_users.schedule_anonymous_cleanup()' END;
    END IF;
    -- What the clean-up itself recorded.
    RETURN QUERY
        SELECT 'job_runs'::text, r.started_at, r.finished_at,
               CASE WHEN r.finished_at IS NULL THEN 'unfinished' ELSE 'finished' END,
               CASE WHEN r.enforce THEN format('%s anonymous users deleted in %s batch(es); %s', r.rows_affected, r.batches, r.details)
                    ELSE format('dry run: %s anonymous users would be deleted; %s', r.rows_affected, r.details) END
          FROM sp_users.job_runs r
         WHERE r.job_name = 'sp_users_cleanup_anonymous'
         ORDER BY r.started_at DESC, r.id DESC
         LIMIT runs;
    RETURN QUERY SELECT 'check'::text, NULL::timestamptz, NULL::timestamptz, 'problem'::text, x FROM unnest(problems) x;
END
$$;
COMMENT ON FUNCTION sp_users.cleanup_status(integer) IS
'For administrators (no access to schema cron needed): the scheduled clean-up and its last runs, newest first. Rows by source: schedule (the pg_cron job sp_users_cleanup_anonymous of this database: active or inactive, schedule, user, command; or not scheduled; or why pg_cron is not usable here), pg_cron (the last runs from cron.job_run_details: status succeeded, failed, running ..., and pg_cron''s message, e.g. connection failed), job_runs (the last rows of sp_users.job_runs: what each run did), check (a reason runs cannot start, e.g. pg_hba.conf asking pg_cron for a password, with the fix). runs: how many of each, 1 to 1000.';
-- EXECUTE: sp_users_admin only, like every public function (90_privileges.sql, which creates the role).

-- DROP EXTENSION sp_users takes the pg_cron job with it. An extension's own sql_drop trigger does not
-- fire for its own DROP (the trigger is gone by then), so: before each DROP EXTENSION in this
-- database the job is set aside (deleted, its row kept in a transaction-local setting), and after the
-- command it is put back — unless sp_users itself was dropped, for then the trigger putting it back
-- is gone as well. An error undoes both with the command.
CREATE FUNCTION sp_users._cron_job_set_aside() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kept text;
BEGIN
    -- Set first, always: no caller can hand _cron_job_put_back a job of their own making.
    PERFORM set_config('sp_users.cron_job_set_aside', '', true);
    IF NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_cron') THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE 'WITH gone AS (DELETE FROM cron.job j WHERE j.jobname = $1 AND j.database = $2 RETURNING j.*)
                 SELECT jsonb_agg(to_jsonb(gone.*))::text FROM gone'
           INTO kept USING 'sp_users_cleanup_anonymous', current_database();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'sp_users could not set its pg_cron job aside for this DROP EXTENSION: %', SQLERRM
            USING HINT = 'If this drops sp_users, run SELECT cron.unschedule(''sp_users_cleanup_anonymous'') afterwards.';
        RETURN; -- nothing deleted: the job stays as it is
    END;
    PERFORM set_config('sp_users.cron_job_set_aside', coalesce(kept, ''), true);
END
$$;
COMMENT ON FUNCTION sp_users._cron_job_set_aside() IS
'Event trigger (ddl_command_start, DROP EXTENSION): deletes the pg_cron job sp_users_cleanup_anonymous of this database, keeping its row for _cron_job_put_back, which restores it unless the command dropped sp_users.';

CREATE FUNCTION sp_users._cron_job_put_back() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kept text := current_setting('sp_users.cron_job_set_aside', true);
BEGIN
    IF kept IS NULL OR kept = '' THEN
        RETURN;
    END IF;
    PERFORM set_config('sp_users.cron_job_set_aside', '', true);
    IF NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_cron') THEN
        RETURN; -- the command dropped pg_cron, and every job with it
    END IF;
    EXECUTE 'INSERT INTO cron.job SELECT * FROM jsonb_populate_recordset(NULL::cron.job, $1::jsonb)' USING kept;
END
$$;
COMMENT ON FUNCTION sp_users._cron_job_put_back() IS
'Event trigger (ddl_command_end, DROP EXTENSION): puts back, unchanged, the pg_cron job _cron_job_set_aside deleted; not reached when the command dropped sp_users, so the job goes with the extension.';

REVOKE ALL ON FUNCTION sp_users._cron_run_problem(text, text), sp_users._cron_job_set_aside(), sp_users._cron_job_put_back() FROM PUBLIC;

CREATE EVENT TRIGGER sp_users_cron_job_set_aside ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION sp_users._cron_job_set_aside();
CREATE EVENT TRIGGER sp_users_cron_job_put_back ON ddl_command_end WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION sp_users._cron_job_put_back();
