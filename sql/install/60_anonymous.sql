-- Anonymous users and their clean-up. The clean-up runs as a procedure that commits between
-- batches, scheduled by pg_cron inside the database (one job, sp_users_cleanup_anonymous).

CREATE FUNCTION sp_users.create_anonymous(fingerprint text) RETURNS sp_users.users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
DECLARE
    anon_email pg_catalog.text;
    new_id pg_catalog.uuid;
    new_name pg_catalog.text;
    holder pg_catalog.uuid;
    result sp_users.users;
BEGIN
    IF fingerprint IS NULL OR pg_catalog.btrim(fingerprint) OPERATOR(pg_catalog.=) '' THEN
        PERFORM sp_users._fail('22023', 'fingerprint must not be empty');
    END IF;
    anon_email := sp_users.normalize_email(fingerprint) OPERATOR(pg_catalog.||) '@anonymous.local';
    IF sp_users.email_problem(anon_email) IS NOT NULL THEN -- like create_user: 23514 naming the rule
        PERFORM sp_users._fail('23514', pg_catalog.format('invalid email address "%s" from the fingerprint: %s', anon_email,
                                                          sp_users.email_problem(anon_email)), NULL, 'users_email_check');
    END IF;
    IF sp_users._users_distributed() THEN
        -- Citus (sp_users.distribute()): the email's claim in user_emails is the arbiter; a racing
        -- caller waits for it there and then finds the user that committed.
        FOR attempt IN 1..8 LOOP
            SELECT e.user_id INTO holder FROM sp_users.user_emails e WHERE e.email OPERATOR(pg_catalog.=) anon_email;
            IF FOUND THEN
                SELECT * INTO result FROM sp_users.users u
                 WHERE u.id OPERATOR(pg_catalog.=) holder AND u.email OPERATOR(pg_catalog.=) anon_email;
                IF FOUND THEN
                    RETURN result;
                END IF;
            END IF;
            new_id := pg_catalog.gen_random_uuid();
            new_name := 'anonymous_' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.replace(new_id::pg_catalog.text, '-', ''), 8);
            IF sp_users._claim_user_key('email', anon_email, new_id) THEN
                IF sp_users._claim_user_key('name', new_name, new_id) THEN
                    INSERT INTO sp_users.users (id, name, email, roles) VALUES (new_id, new_name, anon_email, '{anonymous}')
                    RETURNING * INTO result;
                    RETURN result;
                END IF;
                DELETE FROM sp_users.user_emails e
                 WHERE e.email OPERATOR(pg_catalog.=) anon_email AND e.user_id OPERATOR(pg_catalog.=) new_id;
            END IF;
        END LOOP;
        PERFORM sp_users._fail('40001', 'could not create an anonymous user for fingerprint ' OPERATOR(pg_catalog.||) fingerprint);
    END IF;
    FOR attempt IN 1..8 LOOP
        SELECT * INTO result FROM sp_users.users u WHERE u.email OPERATOR(pg_catalog.=) anon_email;
        IF FOUND THEN
            RETURN result;
        END IF;
        -- ON CONFLICT waits for a concurrent creator of the same fingerprint, so racing callers
        -- all end up with the one row that committed.
        new_id := pg_catalog.gen_random_uuid();
        INSERT INTO sp_users.users (id, name, email, roles)
        VALUES (new_id, 'anonymous_' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.replace(new_id::pg_catalog.text, '-', ''), 8),
                anon_email, '{anonymous}')
        ON CONFLICT DO NOTHING
        RETURNING * INTO result;
        IF FOUND THEN
            RETURN result;
        END IF;
        -- Either the fingerprint was created concurrently (found on the next pass) or the
        -- 8-hex name collided with another anonymous user (retried with a new id).
    END LOOP;
    PERFORM sp_users._fail('40001', 'could not create an anonymous user for fingerprint ' OPERATOR(pg_catalog.||) fingerprint);
    RETURN NULL; -- not reached: _fail raises
END
$$;
COMMENT ON FUNCTION sp_users.create_anonymous(text) IS
'The anonymous user of a fingerprint, created on first use: email <fingerprint>@anonymous.local (trimmed, lower-cased), name anonymous_<first 8 hex of the id>, roles {anonymous}. Idempotent and race-safe: the same fingerprint always yields the same user, also under concurrent calls. Empty or NULL fingerprint raises 22023.';

CREATE FUNCTION sp_users._retention(retention_days integer) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF retention_days IS NULL OR retention_days < 0 THEN
        RAISE EXCEPTION 'retention_days must be zero or more (got %)', coalesce(retention_days::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    RETURN now() - make_interval(days => retention_days);
END
$$;
COMMENT ON FUNCTION sp_users._retention(integer) IS 'Internal: the creation cut-off for a retention in days (22023 when NULL or negative).';

CREATE FUNCTION sp_users.count_old_anonymous(retention_days integer DEFAULT 30) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := sp_users._retention(retention_days);
    n bigint := 0;
    page uuid[];
    last_created timestamptz := '-infinity';
    last_id uuid := '00000000-0000-0000-0000-000000000000';
    moment timestamptz := now(); -- on Citus, a parameter: a now() in the statement would be each worker's
BEGIN
    IF NOT sp_users._sessions_distributed() THEN
        SELECT count(*) INTO n FROM sp_users.users u
         WHERE u.roles @> ARRAY['anonymous'::sp_users.user_role] AND u.status <> 'deleted' AND u.created_at < cutoff
           AND NOT EXISTS (SELECT 1 FROM sp_users.user_sessions s
                            WHERE s.user_id = u.id AND sp_users.session_is_active(s.ended_at, s.revoked_at, s.expires_at));
        RETURN n;
    END IF;
    -- Citus (sp_users.distribute()): the users here, their sessions on the workers; Citus does not
    -- join them, so the candidates go to the workers a page at a time.
    LOOP
        SELECT array_agg(c.id ORDER BY c.created_at, c.id), max(c.created_at) INTO page, last_created FROM (
            SELECT u.id, u.created_at FROM sp_users.users u
             WHERE u.roles @> ARRAY['anonymous'::sp_users.user_role] AND u.status <> 'deleted' AND u.created_at < cutoff
               AND (u.created_at, u.id) > (last_created, last_id)
             ORDER BY u.created_at, u.id LIMIT 5000) c;
        EXIT WHEN page IS NULL;
        last_id := page[cardinality(page)];
        n := n + cardinality(page) - (SELECT count(DISTINCT s.user_id) FROM sp_users.user_sessions s
                                       WHERE s.user_id = ANY (page) AND s.ended_at IS NULL AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > moment));
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION sp_users.count_old_anonymous(integer) IS
'Anonymous users created more than retention_days days ago (strictly) that have no active session — what cleanup_old_anonymous would delete.';

-- One batch: lock candidates (skipping rows locked by a concurrent start_session or FK check),
-- then delete only those still without an active session under a fresh snapshot. A session
-- started after the lock waits for us and then finds no user (P0002) instead of being orphaned.
CREATE FUNCTION sp_users._cleanup_anonymous_batch(retention_days integer, batch_size integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := sp_users._retention(retention_days);
    ids uuid[];
    page uuid[];
    busy uuid[];
    last_created timestamptz := '-infinity';
    last_id uuid := '00000000-0000-0000-0000-000000000000';
    moment timestamptz := now(); -- on Citus, a parameter: a now() in the statement would be each worker's
    deleted bigint;
    users_distributed boolean := sp_users._users_distributed();
    shard_ids uuid[];
    locked uuid[];
    gone record;
    gone_ids uuid[] := '{}';
    gone_emails text[] := '{}';
    gone_names text[] := '{}';
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive (got %)', coalesce(batch_size::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF NOT sp_users._sessions_distributed() THEN
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
    END IF;
    -- Citus (sp_users.distribute()): the users here, their sessions on the workers, which Citus
    -- does not join. Candidates a page at a time, oldest first: those without an active session
    -- are locked (skipping users a session start holds), until batch_size are or none is left.
    ids := '{}';
    LOOP
        SELECT array_agg(c.id ORDER BY c.created_at, c.id), max(c.created_at) INTO page, last_created FROM (
            SELECT u.id, u.created_at FROM sp_users.users u
             WHERE u.roles @> ARRAY['anonymous'::sp_users.user_role] AND u.status <> 'deleted' AND u.created_at < cutoff
               AND (u.created_at, u.id) > (last_created, last_id)
             ORDER BY u.created_at, u.id LIMIT least(batch_size, 5000)) c;
        EXIT WHEN page IS NULL;
        last_id := page[cardinality(page)];
        busy := ARRAY(SELECT s.user_id FROM sp_users.user_sessions s
                       WHERE s.user_id = ANY (page) AND s.ended_at IS NULL AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > moment));
        IF NOT users_distributed THEN
            ids := ids || ARRAY(
                SELECT u.id FROM sp_users.users u
                 WHERE u.id = ANY (page) AND u.roles @> ARRAY['anonymous'::sp_users.user_role] AND u.status <> 'deleted'
                   AND u.id <> ALL (busy)
                 ORDER BY u.created_at, u.id
                 LIMIT batch_size - cardinality(ids)
                 FOR UPDATE SKIP LOCKED);
        ELSE
            -- users split into shards too: Citus locks rows (FOR UPDATE) on one shard per statement.
            FOR shard_ids IN SELECT array_agg(c.id) FROM unnest(page) c(id) WHERE c.id <> ALL (busy)
                              GROUP BY get_shard_id_for_distribution_column('sp_users.users', c.id) LOOP
                EXIT WHEN cardinality(ids) >= batch_size;
                EXECUTE format('SELECT array_agg(l.id) FROM (SELECT u.id FROM sp_users.users u'
                               ' WHERE u.id = ANY (%L::uuid[]) AND u.roles @> ARRAY[''anonymous''::sp_users.user_role]'
                               '   AND u.status <> ''deleted'' LIMIT %s FOR UPDATE SKIP LOCKED) l',
                               shard_ids, batch_size - cardinality(ids))
                   INTO locked;
                ids := ids || coalesce(locked, '{}');
            END LOOP;
        END IF;
        EXIT WHEN cardinality(ids) >= batch_size;
    END LOOP;
    IF cardinality(ids) = 0 THEN
        RETURN 0;
    END IF;
    -- Under a fresh snapshot, now that they are locked: a session started before the lock counts.
    busy := ARRAY(SELECT s.user_id FROM sp_users.user_sessions s
                   WHERE s.user_id = ANY (ids) AND s.ended_at IS NULL AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > moment));
    IF NOT users_distributed THEN
        DELETE FROM sp_users.users u WHERE u.id = ANY (ids) AND u.id <> ALL (busy);
        GET DIAGNOSTICS deleted = ROW_COUNT;
        RETURN deleted;
    END IF;
    -- What the foreign keys do on one server, and the deleted users' emails and names freed.
    FOR gone IN DELETE FROM sp_users.users u WHERE u.id = ANY (ids) AND u.id <> ALL (busy) RETURNING u.id, u.email, u.name LOOP
        gone_ids := gone_ids || gone.id;
        gone_emails := gone_emails || gone.email;
        gone_names := gone_names || gone.name;
    END LOOP;
    PERFORM sp_users._forget_deleted_users(gone_ids, gone_emails, gone_names);
    RETURN cardinality(gone_ids);
END
$$;
COMMENT ON FUNCTION sp_users._cleanup_anonymous_batch(integer, integer) IS
'Internal: deletes up to batch_size old anonymous users without an active session, race-safe against concurrent session starts.';

CREATE FUNCTION sp_users.cleanup_old_anonymous(retention_days integer DEFAULT 30) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._cleanup_anonymous_batch($1, 2147483647) $$;
COMMENT ON FUNCTION sp_users.cleanup_old_anonymous(integer) IS
'Deletes, in this transaction, every anonymous user created more than retention_days days ago that has no active session; never one with an active session, even one started concurrently (it is skipped, or the session start waits and then fails with P0002). Returns how many. For large backlogs use CALL sp_users.run_anonymous_cleanup, which commits between batches.';

CREATE FUNCTION sp_users._job_run_start(job_name text, enforce boolean, details jsonb) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ INSERT INTO sp_users.job_runs (job_name, enforce, details) VALUES ($1, $2, $3) RETURNING id $$;
COMMENT ON FUNCTION sp_users._job_run_start(text, boolean, jsonb) IS 'Internal: records the start of a clean-up run in job_runs.';

CREATE FUNCTION sp_users._job_run_progress(run_id bigint, rows_affected bigint, batches integer, details jsonb, finished boolean)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE sp_users.job_runs
       SET rows_affected = $2, batches = $3, details = job_runs.details || $4,
           finished_at = CASE WHEN $5 THEN clock_timestamp() END
     WHERE id = $1
$$;
COMMENT ON FUNCTION sp_users._job_run_progress(bigint, bigint, integer, jsonb, boolean) IS 'Internal: records the progress (or the end) of a clean-up run in job_runs.';

-- A procedure that commits cannot be SECURITY DEFINER or carry a SET clause, so it only
-- orchestrates: every read and write is done by the definer helpers above, schema-qualified.
CREATE PROCEDURE sp_users.run_anonymous_cleanup(retention_days integer DEFAULT 30, enforce boolean DEFAULT true,
                                                batch_size integer DEFAULT 5000)
LANGUAGE plpgsql
AS $$
DECLARE
    run_id bigint;
    n bigint;
    total bigint := 0;
    batches integer := 0;
    sessions_ended bigint := 0;
    failures_pruned bigint := 0;
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
    failures_pruned := sp_users.cleanup_failures(); -- brute-force records that no longer count
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
        pg_catalog.jsonb_build_object('sessions_ended', sessions_ended, 'failures_pruned', failures_pruned, 'pause_factor', pause_factor,
                                      'seconds', pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - started)::numeric, 3)),
        true);
    COMMIT;
    RAISE NOTICE 'sp_users clean-up: done, % anonymous users deleted in % batches, % expired sessions ended', total, batches, sessions_ended;
END
$$;
COMMENT ON PROCEDURE sp_users.run_anonymous_cleanup(integer, boolean, integer) IS
'CALL it (outside a transaction block): ends expired sessions and prunes brute-force records that no longer count (cleanup_failures), then deletes old anonymous users without an active session in batches of batch_size, committing after each batch (no lock held long; cancel stops it between or inside a batch, keeping committed batches). After each batch it pauses sp_users.cleanup_pause_factor (default 3) times the batch''s duration, so it takes at most about a quarter of a core; set it to 0 for full speed. enforce => false deletes nothing and records how many would go. At the end it compacts the statistics counters (compact_user_counts). Every run writes a row to sp_users.job_runs and a NOTICE per batch.';

-- pg_cron integration. pg_cron lives in one database (cron.database_name); its functions are
-- called dynamically so this extension installs and works without it.
CREATE FUNCTION sp_users._cron_command(retention_days integer, enforce boolean) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT format('CALL sp_users.run_anonymous_cleanup(retention_days => %s, enforce => %s)', $1, CASE WHEN $2 THEN 'true' ELSE 'false' END) $$;
COMMENT ON FUNCTION sp_users._cron_command(integer, boolean) IS 'Internal: the command the clean-up job runs.';

CREATE FUNCTION sp_users._require_cron(call_in_cron_db text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NULL OR cron_db = '' THEN
        RAISE EXCEPTION 'pg_cron is not available in this server'
            USING ERRCODE = '0A000',
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name = ''' || current_database()
                         || ''' in postgresql.conf, restart the server, then run CREATE EXTENSION pg_cron in that database.';
    END IF;
    -- cron.database_name set, pg_cron not loaded: the setting is an inert placeholder, pg_cron runs nowhere.
    IF NOT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'cron.database_name') THEN
        RAISE EXCEPTION 'pg_cron is not available in this server'
            USING ERRCODE = '0A000',
                  DETAIL = format('cron.database_name is set to "%s", but pg_cron is not in shared_preload_libraries, so it does not run at all.', cron_db),
                  HINT = format('Add pg_cron to shared_preload_libraries in postgresql.conf, restart the server, then run CREATE EXTENSION pg_cron in database "%s".', cron_db);
    END IF;
    IF cron_db <> current_database() THEN
        RAISE EXCEPTION 'pg_cron runs in database "%", not in "%"', cron_db, current_database()
            USING ERRCODE = '55000',
                  HINT = format('Connect to database %I and run: %s', cron_db, call_in_cron_db);
    END IF;
    RAISE EXCEPTION 'pg_cron is preloaded but the extension is not created in database "%"', current_database()
        USING ERRCODE = '0A000', HINT = 'Run CREATE EXTENSION pg_cron in this database.';
END
$$;
COMMENT ON FUNCTION sp_users._require_cron(text) IS 'Internal: raises a clear error (with a HINT) unless pg_cron can schedule jobs from this database: 0A000 when pg_cron is not loaded (also when cron.database_name is set without it) or not created here; 55000 where pg_cron lives in another database, the HINT being the given call to run there.';

CREATE FUNCTION sp_users.schedule_anonymous_cleanup(schedule text DEFAULT '0 * * * *', retention_days integer DEFAULT 30,
                                                    enforce boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_id bigint;
    job_host text;
    p record;
BEGIN
    PERFORM sp_users._retention(retention_days);
    IF schedule IS NULL OR enforce IS NULL THEN
        RAISE EXCEPTION 'schedule and enforce must not be NULL' USING ERRCODE = '22023';
    END IF;
    PERFORM sp_users._require_cron(format('SELECT cron.schedule_in_database(%L, %L, %L, %L);', 'sp_users_cleanup_anonymous',
                                          schedule, sp_users._cron_command(retention_days, enforce), current_database()));
    -- cron.schedule with a job name updates that job in place when it exists.
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job_id
      USING 'sp_users_cleanup_anonymous', schedule, sp_users._cron_command(retention_days, enforce);
    -- Scheduled is not yet runnable: say so now when pg_cron's way of running it cannot work.
    EXECUTE 'SELECT j.nodename FROM cron.job j WHERE j.jobid = $1' INTO job_host USING job_id;
    SELECT * INTO p FROM sp_users._cron_run_problem(current_user, job_host);
    IF p.problem IS NOT NULL THEN
        RAISE WARNING 'the clean-up is scheduled (pg_cron job %), but its runs will fail: %', job_id, p.problem
            USING HINT = coalesce(p.hint || ' ', '') || 'SELECT * FROM sp_users.cleanup_status() shows the runs.';
    END IF;
    -- On a logical subscriber the clean-up belongs to the publisher, whose deletions replicate.
    IF EXISTS (SELECT 1 FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid
                WHERE s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                  AND s.subenabled AND r.srrelid = 'sp_users.users'::regclass) THEN
        RAISE WARNING 'the clean-up is scheduled (pg_cron job %) in a database that receives sp_users.users from a logical subscription', job_id
            USING DETAIL = 'It would delete anonymous users the publisher still has; the publisher''s own clean-up reaches this database through replication.',
                  HINT = 'SELECT sp_users.unschedule_anonymous_cleanup() here, and schedule the clean-up here after a switch-over.';
    END IF;
    RETURN job_id;
END
$$;
COMMENT ON FUNCTION sp_users.schedule_anonymous_cleanup(text, integer, boolean) IS
'Schedules (or updates in place) the pg_cron job sp_users_cleanup_anonymous, which runs CALL sp_users.run_anonymous_cleanup(retention_days, enforce) on the cron schedule (default hourly). Returns the pg_cron job id, with a WARNING when its runs cannot start the way pg_cron is configured (e.g. cron.use_background_workers off and pg_hba.conf asking for a password over TCP) or when this database is a logical subscriber of sp_users.users (the clean-up belongs to the publisher). Without pg_cron: 0A000 with a HINT on enabling it; where pg_cron lives in another database: 55000 whose HINT is the exact cron.schedule_in_database(...) call to run there. sp_users.cleanup_status() shows the schedule and its runs.';

CREATE FUNCTION sp_users.unschedule_anonymous_cleanup() RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed boolean;
BEGIN
    PERFORM sp_users._require_cron(format('SELECT cron.unschedule(%L);', 'sp_users_cleanup_anonymous'));
    EXECUTE 'SELECT count(cron.unschedule(jobid)) > 0 FROM cron.job WHERE jobname = $1'
       INTO removed USING 'sp_users_cleanup_anonymous';
    RETURN removed;
END
$$;
COMMENT ON FUNCTION sp_users.unschedule_anonymous_cleanup() IS 'Removes the pg_cron job sp_users_cleanup_anonymous; false when there was none. Same pg_cron errors as schedule_anonymous_cleanup.';
