-- Scale-out on Citus (docs/scaling.md). Citus is optional: nothing here runs, and no Citus name is
-- resolved, unless the citus extension exists in the database.

-- Citus runs a statement on a table it manages by deparsing it and parsing the text again on the
-- node holding the placement — also in this very backend, under the caller's search_path — and
-- its deparser leaves pg_catalog names unqualified. The definer functions of the request path carry
-- no SET search_path (it costs a quarter of a cheap call; every name in them is qualified), so on
-- a Citus node a caller's look-alike now() or count() would run with the owner's rights. This pins
-- search_path on every definer function that has none; distribute() runs it on every node.
CREATE FUNCTION sp_users._pin_search_paths() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
    pinned integer := 0;
BEGIN
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace
                AND p.prosecdef
                -- C functions that run only kept statements bind them under pg_catalog alone on a
                -- Citus node at each execution (src/pg/citus.hpp), without the clause's cost
                AND NOT (p.prolang OPERATOR(pg_catalog.=) (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname OPERATOR(pg_catalog.=) 'c')
                         AND p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['ban_ip', 'ban_ips', 'create_user', 'create_user_if_absent',
                                                                          'start_session', 'touch_session', 'end_session']))
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) c(setting)
                                 WHERE c.setting OPERATOR(pg_catalog.~~) 'search\_path=%')
    LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp', f);
        pinned := pinned OPERATOR(pg_catalog.+) 1;
    END LOOP;
    -- The SQL and PL/pgSQL functions that call _citus_session() also get the settings it makes
    -- canonical as SET clauses: a SQL function's statements are planned before its first one runs.
    -- So do those whose statements on user_sessions Citus routes to the workers (their text written
    -- here, read there under the owner's pinned defaults), and merges (their C part moves sessions).
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace
                AND p.prolang OPERATOR(pg_catalog.<>) (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname OPERATOR(pg_catalog.=) 'c')
                AND (p.prosrc OPERATOR(pg_catalog.~~) '%sp\_users.\_citus\_session()%'
                     OR p.prosrc OPERATOR(pg_catalog.~~) '%sp\_users.user\_sessions%'
                     OR p.prosrc OPERATOR(pg_catalog.~~) '%sp\_users.\_merge(%'
                     OR (sp_users._users_distributed()
                         AND (p.prosrc OPERATOR(pg_catalog.~~) '%sp\_users.users %'
                              OR p.prosrc OPERATOR(pg_catalog.~~) '%sp\_users.user\_emails%'
                              OR p.prosrc OPERATOR(pg_catalog.~~) '%sp\_users.user\_names%')))
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) c(setting)
                                 WHERE c.setting OPERATOR(pg_catalog.~~*) 'datestyle=%')
    LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s SET DateStyle = ''ISO, MDY'' SET IntervalStyle = postgres '
                                  'SET standard_conforming_strings = on', f);
        pinned := pinned OPERATOR(pg_catalog.+) 1;
    END LOOP;
    -- Citus runs no distributed query from a parallel worker, and is_banned's first load of a ban
    -- set in a backend may query banned_ips through Citus (a fresh-eyes run: 0A000 in a parallel
    -- worker on a worker node): on a Citus node it runs in the leader.
    ALTER FUNCTION sp_users.is_banned(text) PARALLEL RESTRICTED;
    RETURN pinned;
END
$$;
COMMENT ON FUNCTION sp_users._pin_search_paths() IS
'Internal (sp_users.distribute(), on every Citus node): gives every SECURITY DEFINER function of sp_users without a SET search_path the setting search_path = pg_catalog, pg_temp, because Citus re-parses the statements it routes under the caller''s search_path (and DateStyle, IntervalStyle, standard_conforming_strings on the functions that call _citus_session()) — except the C request-path writes, which run their kept statements under pg_catalog alone on a Citus node; and makes is_banned PARALLEL RESTRICTED (its first ban-set load may query through Citus, which a parallel worker cannot). Returns how many it changed.';

-- On a worker only the ban functions answer from the distributed data; the rest would read and
-- write the worker's own, empty, sp_users tables.
CREATE FUNCTION sp_users._restrict_worker() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
    t regclass;
    revoked integer := 0;
BEGIN
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace
                AND p.proname OPERATOR(pg_catalog.<>) ALL (ARRAY[
                    'is_banned', 'get_ban', 'list_active_bans', 'count_active_bans', 'list_bans_by_source',
                    'list_bans_by_fingerprint', 'ban_ip', 'ban_ips', 'unban_ip', 'cleanup_expired_bans',
                    'ban_cache_info', 'normalize_ip', 'normalize_email', 'email_problem', 'session_is_active',
                    -- the CHECK on users.roles, run on the shards by an administrator's direct write
                    '_roles_valid'])
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON ROUTINE %s FROM sp_users_admin, sp_users_app, sp_users_readonly', f);
        revoked := revoked OPERATOR(pg_catalog.+) 1;
    END LOOP;
    -- Table by table, shards excepted (REVOKE ... ON ALL TABLES would reach the shards of the tables
    -- split by Citus too, which live in this schema on the workers).
    FOR t IN SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
              WHERE c.relnamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace
                AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f']::"char"[])
                AND NOT pg_catalog.relation_is_a_known_shard(c.oid)
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM sp_users_admin, sp_users_app, sp_users_readonly', t);
    END LOOP;
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON sp_users.banned_ips TO sp_users_admin;
    -- The tables Citus splits into shards: an administrator's direct write through the coordinator
    -- reaches them here, as that administrator.
    FOR t IN SELECT p.logicalrelid FROM pg_catalog.pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.logicalrelid
              WHERE c.relnamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace AND p.partmethod OPERATOR(pg_catalog.=) 'h'
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON %s TO sp_users_admin', t);
    END LOOP;
    RETURN revoked;
END
$$;
COMMENT ON FUNCTION sp_users._restrict_worker() IS
'Internal (sp_users.distribute(), on every Citus worker): EXECUTE on every function (internal ones included) except the ban functions, the pure helpers and _roles_valid (the CHECK on users.roles), and every table privilege except an administrator''s on banned_ips and on the tables Citus splits into shards, are revoked from the sp_users roles there: those calls belong on the coordinator, which holds the users. Returns how many functions it changed.';

CREATE FUNCTION sp_users._set_guard_installed() RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_set_guard_installed'
LANGUAGE C STABLE;
COMMENT ON FUNCTION sp_users._set_guard_installed() IS
'Internal (sp_users.distribute(), on every Citus node): whether this server preloads sp_users, whose guard refuses a SET or RESET that Citus would propagate (citus.propagate_set_commands = local) together with other statements of its query text.';

-- Citus opens its connections to the other nodes as the current user — inside a definer
-- function, the owner of sp_users — and forwards SET LOCAL commands only inside a transaction
-- block: a call made on its own reaches the other nodes under that connection's defaults. Those
-- defaults, for the owner in this database, are pinned on every node, so that a statement on
-- banned_ips is read there as it was written here (strings the standard way, dates in ISO), and on
-- workers, where nobody works interactively, the search path too.
CREATE FUNCTION sp_users._pin_owner_settings(with_search_path boolean) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner_role text := (SELECT e.extowner::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_extension e
                         WHERE e.extname OPERATOR(pg_catalog.=) 'sp_users');
    setting text;
    pinned integer := 0;
BEGIN
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
    FOREACH setting IN ARRAY ARRAY['standard_conforming_strings = on', 'DateStyle = ''ISO, MDY''', 'IntervalStyle = postgres']
                             OPERATOR(pg_catalog.||) CASE WHEN with_search_path THEN ARRAY['search_path = pg_catalog, pg_temp']
                                                           ELSE ARRAY[]::text[] END
    LOOP
        EXECUTE pg_catalog.format('ALTER ROLE %s IN DATABASE %I SET %s', owner_role, pg_catalog.current_database(), setting);
        pinned := pinned OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN pinned;
END
$$;
COMMENT ON FUNCTION sp_users._pin_owner_settings(boolean) IS
'Internal (sp_users.distribute(), on every Citus node): ALTER ROLE <owner of sp_users> IN DATABASE <this one> SET standard_conforming_strings = on, DateStyle = ''ISO, MDY'', IntervalStyle = postgres (and, on workers, search_path = pg_catalog, pg_temp); returns how many: the defaults of the connections Citus opens as the owner for statements on banned_ips, to which it forwards no SET LOCAL outside a transaction block.';

-- Under sp_users.distribute() the foreign key from user_sessions to users is gone (Citus keeps no
-- key from a distributed table to a coordinator table); its ON DELETE SET NULL is this trigger.
CREATE FUNCTION sp_users._clear_sessions_of_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT o.id FROM old_rows o);
BEGIN
    UPDATE sp_users.user_sessions s SET user_id = NULL WHERE s.user_id = ANY (ids);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION sp_users._clear_sessions_of_deleted() IS
'Trigger (attached by sp_users.distribute() on Citus, where the foreign key from user_sessions to users cannot exist): sets user_id to NULL in the sessions of deleted users, as the foreign key''s ON DELETE SET NULL does on a single server (as the owner, like a foreign key''s action).';

-- ... and its NO ACTION on updates: a user id that sessions hold cannot change.
CREATE FUNCTION sp_users._keep_session_user_ids() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone uuid[] := ARRAY(SELECT o.id FROM old_rows o EXCEPT SELECT n.id FROM new_rows n);
    held uuid;
BEGIN
    IF pg_catalog.cardinality(gone) OPERATOR(pg_catalog.>) 0 THEN
        SELECT s.user_id INTO held FROM sp_users.user_sessions s WHERE s.user_id OPERATOR(pg_catalog.=) ANY (gone) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'update or delete on table "users" violates foreign key constraint "user_sessions_user_id_fkey" on table "user_sessions"'
                USING ERRCODE = '23503', SCHEMA = 'sp_users', TABLE = 'user_sessions', CONSTRAINT = 'user_sessions_user_id_fkey',
                      DETAIL = pg_catalog.format('Key (id)=(%s) is still referenced from table "user_sessions".', held);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION sp_users._keep_session_user_ids() IS
'Trigger (attached by sp_users.distribute() on Citus, where the foreign key from user_sessions to users cannot exist): refuses, as the foreign key did (23503), an UPDATE of users that changes the id of a user sessions still point at.';

-- With users split into shards by id (sp_users.distribute()), email and name are unique through
-- user_emails and user_names, each split by its own key: two claims of one email meet on one shard,
-- the second waits for the first and then finds it taken (or free, if the first rolled back).
CREATE FUNCTION sp_users._claim_user_key(kind text, key text, user_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kind = 'email' THEN
        INSERT INTO sp_users.user_emails (email, user_id) VALUES (key, _claim_user_key.user_id) ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO sp_users.user_names (name, user_id) VALUES (key, _claim_user_key.user_id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION sp_users._claim_user_key(text, text, uuid) IS
'Internal (Citus, users distributed): claims an email (kind ''email'') or a name for a user in user_emails / user_names; false when another user holds it (waiting for a concurrent claim to commit or roll back).';

-- create_user and create_user_if_absent on Citus with users distributed (src/pg/request_writes.cpp
-- calls it): the claims first, email before name as on one server, then the row on its shard; all
-- in the caller's distributed transaction, which Citus commits on every shard or none.
CREATE FUNCTION sp_users._create_user_on_citus(name text, email text, full_name text, display_name text, if_absent boolean)
RETURNS SETOF sp_users.users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid := gen_random_uuid();
    stored_name text := sp_users._checked_name(name);
    stored_email text := sp_users._checked_email(email);
BEGIN
    IF stored_name IS NULL THEN
        PERFORM sp_users._fail('23502', 'null value in column "name" of relation "users" violates not-null constraint');
    END IF;
    IF stored_email IS NULL THEN
        PERFORM sp_users._fail('23502', 'null value in column "email" of relation "users" violates not-null constraint');
    END IF;
    IF NOT sp_users._claim_user_key('email', stored_email, new_id) THEN
        IF if_absent THEN
            RETURN;
        END IF;
        PERFORM sp_users._fail('23505', 'user already exists with email: ' || stored_email, NULL, 'users_email_key');
    END IF;
    IF NOT sp_users._claim_user_key('name', stored_name, new_id) THEN
        IF if_absent THEN
            DELETE FROM sp_users.user_emails e WHERE e.email = stored_email AND e.user_id = new_id;
            RETURN;
        END IF;
        PERFORM sp_users._fail('23505', 'user already exists with name: ' || stored_name, NULL, 'users_name_key');
    END IF;
    RETURN QUERY
        INSERT INTO sp_users.users (id, name, email, full_name, display_name)
        VALUES (new_id, stored_name, stored_email, _create_user_on_citus.full_name,
                coalesce(_create_user_on_citus.display_name, _create_user_on_citus.full_name))
        RETURNING *;
END
$$;
COMMENT ON FUNCTION sp_users._create_user_on_citus(text, text, text, text, boolean) IS
'Internal (Citus, users distributed): create_user (if_absent false: 23505 naming users_email_key or users_name_key when taken) and create_user_if_absent (no row instead): claims the email, then the name, then inserts the user.';

-- What the foreign keys to users and the trigger on users do on a single server when users are
-- deleted, for users split into shards (their triggers run on the shards, which cannot reach the
-- other tables): sessions keep their history without a user, failures go, email and name are free.
CREATE FUNCTION sp_users._forget_deleted_users(ids uuid[], emails text[], names text[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN;
    END IF;
    UPDATE sp_users.user_sessions s SET user_id = NULL WHERE s.user_id = ANY (ids);
    DELETE FROM sp_users.account_failures a WHERE a.user_id = ANY (ids);
    DELETE FROM sp_users.user_emails e WHERE e.email = ANY (emails) AND e.user_id = ANY (ids);
    DELETE FROM sp_users.user_names n WHERE n.name = ANY (names) AND n.user_id = ANY (ids);
END
$$;
COMMENT ON FUNCTION sp_users._forget_deleted_users(uuid[], text[], text[]) IS
'Internal (Citus, users distributed): after deleting these users (with their emails and names), sets user_id NULL in their sessions, deletes their account failures and frees their emails and names: what the foreign keys and triggers do on a single server.';

CREATE FUNCTION sp_users._revoke_sessions_of(ids uuid[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    moment timestamptz := now();
BEGIN
    UPDATE sp_users.user_sessions s SET revoked_at = moment
     WHERE s.user_id = ANY (ids) AND s.ended_at IS NULL AND s.revoked_at IS NULL;
END
$$;
COMMENT ON FUNCTION sp_users._revoke_sessions_of(uuid[]) IS
'Internal (Citus, users distributed): revokes the open sessions of these (soft-deleted) users, as the trigger users_revoke_sessions_on_delete does on a single server.';

-- Writes to users made directly (an administrator's DELETE, a COPY, an UPDATE of email or name)
-- bypass the claims: the readers still find those users (they ask every shard when no claim
-- matches), but a claim left by a deleted user keeps its email taken, and an email written directly
-- is not protected against a second user. This brings the claims back in line with the users.
CREATE FUNCTION sp_users.repair_user_claims(OUT released bigint, OUT claimed bigint, OUT duplicates bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    shown text;
BEGIN
    released := 0; claimed := 0; duplicates := 0;
    IF NOT sp_users._users_distributed() THEN
        RETURN; -- one server: unique indexes, no claims
    END IF;
    -- No claim is taken or given up meanwhile (a sign-up waits).
    LOCK TABLE sp_users.user_emails, sp_users.user_names IN EXCLUSIVE MODE;
    -- Citus joins no two tables split by different keys: they are compared here, on the coordinator.
    CREATE TEMP TABLE _repair_users ON COMMIT DROP AS SELECT u.id, u.email, u.name FROM sp_users.users u;
    CREATE TEMP TABLE _repair_emails ON COMMIT DROP AS SELECT e.email, e.user_id FROM sp_users.user_emails e;
    CREATE TEMP TABLE _repair_names ON COMMIT DROP AS SELECT x.name, x.user_id FROM sp_users.user_names x;
    -- Claims whose user no longer holds that email or name (deleted or changed directly).
    DELETE FROM sp_users.user_emails e
     WHERE e.email = ANY (ARRAY(SELECT r.email FROM _repair_emails r
                                 WHERE NOT EXISTS (SELECT 1 FROM _repair_users u WHERE u.id = r.user_id AND u.email = r.email)));
    GET DIAGNOSTICS n = ROW_COUNT;
    released := released + n;
    DELETE FROM sp_users.user_names x
     WHERE x.name = ANY (ARRAY(SELECT r.name FROM _repair_names r
                                WHERE NOT EXISTS (SELECT 1 FROM _repair_users u WHERE u.id = r.user_id AND u.name = r.name)));
    GET DIAGNOSTICS n = ROW_COUNT;
    released := released + n;
    -- Users without their claim (inserted or changed directly): claimed, unless another user holds
    -- the same email or name (both written directly) — then the oldest claim stands or, without
    -- one, the first id; the others are reported.
    -- (counted before and after: Citus reports the rows an INSERT ... ON CONFLICT DO NOTHING sent)
    claimed := -((SELECT count(*) FROM sp_users.user_emails) + (SELECT count(*) FROM sp_users.user_names));
    INSERT INTO sp_users.user_emails (email, user_id)
    SELECT DISTINCT ON (u.email) u.email, u.id FROM _repair_users u
     WHERE NOT EXISTS (SELECT 1 FROM _repair_emails r WHERE r.email = u.email AND r.user_id = u.id)
     ORDER BY u.email, u.id
    ON CONFLICT DO NOTHING;
    INSERT INTO sp_users.user_names (name, user_id)
    SELECT DISTINCT ON (u.name) u.name, u.id FROM _repair_users u
     WHERE NOT EXISTS (SELECT 1 FROM _repair_names r WHERE r.name = u.name AND r.user_id = u.id)
     ORDER BY u.name, u.id
    ON CONFLICT DO NOTHING;
    claimed := claimed + (SELECT count(*) FROM sp_users.user_emails) + (SELECT count(*) FROM sp_users.user_names);
    SELECT count(*), string_agg(d.what, ', ') FILTER (WHERE d.rn <= 10) INTO duplicates, shown
      FROM (SELECT w.what, row_number() OVER () AS rn FROM (
              SELECT 'email ' || u.email AS what FROM _repair_users u GROUP BY u.email HAVING count(*) > 1
              UNION ALL
              SELECT 'name ' || u.name FROM _repair_users u GROUP BY u.name HAVING count(*) > 1) w) d;
    IF duplicates > 0 THEN
        RAISE WARNING 'sp_users: % emails or names are held by more than one user (written into users directly): %', duplicates, shown
            USING HINT = 'Change all but one of each with sp_users.update_email or sp_users.update_user, then run repair_user_claims() again.';
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users.repair_user_claims() IS
'Citus, users distributed (sp_users.distribute()): brings user_emails and user_names back in line with users after writes made directly to users (DELETE, COPY, UPDATE of email or name), which sp_users'' functions would have kept in step: releases claims no user holds any more, claims the emails and names of users that have none, and reports (WARNING, and the count) emails or names that two users hold. Returns how many claims it released and made. Locks the claims meanwhile (sign-ups wait). Nothing to do on a single server (zeros).';

CREATE FUNCTION sp_users.distribute(distribute_users boolean DEFAULT true)
RETURNS TABLE (relation regclass, placement text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Citus copies the triggers of banned_ips onto its placements only when asked to; they keep
-- every node's ban set exact (the trigger functions accept the placements of their table).
SET citus.enable_unsafe_triggers = on
AS $$
DECLARE
    failures text;
    referencing text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'sp_users.distribute() needs Citus'
            USING ERRCODE = '0A000',
                  HINT = 'Run it on a Citus coordinator, after CREATE EXTENSION citus there. On a single server sp_users needs no distribution.';
    END IF;
    -- The coordinator must be in Citus' metadata (group 0): reference tables then have a placement
    -- on it, which its ban set reads.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n WHERE n.groupid OPERATOR(pg_catalog.=) 0) THEN
        RAISE EXCEPTION 'sp_users.distribute() must run on a Citus coordinator that is in the Citus metadata'
            USING ERRCODE = '0A000',
                  HINT = 'On the coordinator, run SELECT citus_set_coordinator_host(''<its host>'', <its port>); first.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'sp_users.distribute() must run on the Citus coordinator, not on a worker'
            USING ERRCODE = '0A000', HINT = 'Connect to the coordinator and call it there.';
    END IF;
    -- Citus replays a propagated SET's whole query text on the other nodes, on every connection of
    -- the transaction, also those the definer functions open as the owner: every node must run
    -- sp_users' guard against statements smuggled that way.
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s', r.nodename, r.nodeport), ', ')
      INTO failures
      FROM pg_catalog.run_command_on_workers('SELECT sp_users._set_guard_installed()') r
     WHERE NOT r.success OR r.result OPERATOR(pg_catalog.<>) 't';
    IF NOT sp_users._set_guard_installed() THEN
        failures := pg_catalog.concat_ws(', ', 'this node', failures);
    END IF;
    IF failures IS NOT NULL THEN
        RAISE EXCEPTION 'sp_users.distribute() needs sp_users in shared_preload_libraries on every node; not on: %', failures
            USING ERRCODE = '55000',
                  HINT = 'Set shared_preload_libraries = ''citus,sp_users'' (citus first) on every node, restart them, and run distribute() again.';
    END IF;
    -- A worker added since has no placement until Citus copies one: now, not at its first use.
    PERFORM pg_catalog.replicate_reference_tables();
    -- Bans: a reference table, on every node. Read on every request, small, written rarely: each
    -- node answers is_banned from its own placement, with no network hop.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'sp_users.banned_ips'::pg_catalog.regclass) THEN
        PERFORM pg_catalog.create_reference_table('sp_users.banned_ips');
        -- The rows now live in the placements; the coordinator's own table is an empty shell.
        PERFORM pg_catalog.truncate_local_data_after_distributing_table('sp_users.banned_ips');
    END IF;
    -- Sessions: distributed by session_id, the key of every per-request call (session_exists,
    -- touch_session, end_session: one shard each); anonymous sessions of a deleted user have no user
    -- id. The foreign key to users cannot follow (Citus keeps none from a distributed table to a
    -- coordinator table): start_session locks the user, merges move the column (src/pg/merge.cpp
    -- always follows it), a trigger clears it when a user is deleted, another refuses changing a
    -- user id that sessions hold.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'sp_users.user_sessions'::pg_catalog.regclass) THEN
        ALTER TABLE sp_users.user_sessions DROP CONSTRAINT IF EXISTS user_sessions_user_id_fkey;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) 'sp_users.users'::pg_catalog.regclass
                          AND t.tgname OPERATOR(pg_catalog.=) 'users_clear_sessions_on_delete') THEN
            CREATE TRIGGER users_clear_sessions_on_delete AFTER DELETE ON sp_users.users
                REFERENCING OLD TABLE AS old_rows
                FOR EACH STATEMENT EXECUTE FUNCTION sp_users._clear_sessions_of_deleted();
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                        WHERE t.tgrelid OPERATOR(pg_catalog.=) 'sp_users.users'::pg_catalog.regclass
                          AND t.tgname OPERATOR(pg_catalog.=) 'users_keep_session_user_ids') THEN
            CREATE TRIGGER users_keep_session_user_ids AFTER UPDATE ON sp_users.users
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION sp_users._keep_session_user_ids();
        END IF;
        PERFORM pg_catalog.create_distributed_table('sp_users.user_sessions', 'session_id', colocate_with => 'none');
        PERFORM pg_catalog.truncate_local_data_after_distributing_table('sp_users.user_sessions');
        PERFORM sp_users._pin_search_paths(); -- the trigger function, on this node
    END IF;
    -- Users: distributed by id, the key of every per-user call (find_by_id, the updates, sessions'
    -- user lookups: one shard each). A unique index holds only within a shard, so email and name
    -- are unique through user_emails and user_names, distributed by their own key and written with
    -- the user (_create_user_on_citus, _update_user, _forget_deleted_users). The foreign keys to
    -- users and the triggers on users that write other tables cannot run on a shard: the functions
    -- that delete users or soft-delete them do their work (account_failures stays here, without its
    -- key); the statistics count the users (the counter triggers are dropped).
    IF distribute_users AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                                         WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'sp_users.users'::pg_catalog.regclass) THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('%s (%s)', con.conrelid::pg_catalog.regclass, con.conname), ', ')
          INTO referencing
          FROM pg_catalog.pg_constraint con
         WHERE con.contype OPERATOR(pg_catalog.=) 'f'
           AND con.confrelid OPERATOR(pg_catalog.=) 'sp_users.users'::pg_catalog.regclass
           AND con.conrelid OPERATOR(pg_catalog.<>) ALL (ARRAY['sp_users.account_failures'::pg_catalog.regclass,
                                                                'sp_users.user_sessions'::pg_catalog.regclass]);
        IF referencing IS NOT NULL THEN
            RAISE EXCEPTION 'sp_users.distribute() cannot split sp_users.users into shards: foreign keys of other tables reference it: %', referencing
                USING ERRCODE = '0A000',
                      HINT = 'Citus keeps no foreign key from a table on the coordinator to a distributed one. Either keep users on the coordinator: SELECT * FROM sp_users.distribute(distribute_users => false); or drop those keys, run distribute(), distribute your tables by their user id column (create_distributed_table(''<table>'', ''<column>'', colocate_with => ''sp_users.users'')) and add the keys again.';
        END IF;
        ALTER TABLE sp_users.account_failures DROP CONSTRAINT IF EXISTS account_failures_user_id_fkey;
        DROP TRIGGER IF EXISTS users_count_insert ON sp_users.users;
        DROP TRIGGER IF EXISTS users_count_update ON sp_users.users;
        DROP TRIGGER IF EXISTS users_count_delete ON sp_users.users;
        DROP TRIGGER IF EXISTS users_count_truncate ON sp_users.users;
        DROP TRIGGER IF EXISTS users_count_row ON sp_users.users;
        DROP TRIGGER IF EXISTS users_revoke_sessions_on_delete ON sp_users.users;
        DROP TRIGGER IF EXISTS users_clear_sessions_on_delete ON sp_users.users;
        DROP TRIGGER IF EXISTS users_keep_session_user_ids ON sp_users.users;
        -- The claims of the users there are, then the keys they replace.
        INSERT INTO sp_users.user_emails (email, user_id) SELECT u.email, u.id FROM sp_users.users u ON CONFLICT DO NOTHING;
        INSERT INTO sp_users.user_names (name, user_id) SELECT u.name, u.id FROM sp_users.users u ON CONFLICT DO NOTHING;
        ALTER TABLE sp_users.users DROP CONSTRAINT IF EXISTS users_email_key, DROP CONSTRAINT IF EXISTS users_name_key;
        -- Rows written into users directly (a COPY) have no claim: the readers then ask every shard.
        CREATE INDEX IF NOT EXISTS users_email_idx ON sp_users.users (email);
        CREATE INDEX IF NOT EXISTS users_name_idx ON sp_users.users (name);
        PERFORM pg_catalog.create_distributed_table('sp_users.users', 'id', colocate_with => 'none');
        PERFORM pg_catalog.truncate_local_data_after_distributing_table('sp_users.users');
        PERFORM pg_catalog.create_distributed_table('sp_users.user_emails', 'email', colocate_with => 'none');
        PERFORM pg_catalog.truncate_local_data_after_distributing_table('sp_users.user_emails');
        PERFORM pg_catalog.create_distributed_table('sp_users.user_names', 'name', colocate_with => 'sp_users.user_emails');
        PERFORM pg_catalog.truncate_local_data_after_distributing_table('sp_users.user_names');
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'sp_users.users'::pg_catalog.regclass
                  AND p.partmethod OPERATOR(pg_catalog.=) 'h') THEN
        -- The C readers of users query Citus there (in the leader of a parallel plan only).
        ALTER FUNCTION sp_users.find_by_id(uuid) PARALLEL RESTRICTED;
        ALTER FUNCTION sp_users.find_by_email(text) PARALLEL RESTRICTED;
        ALTER FUNCTION sp_users.find_by_name(text) PARALLEL RESTRICTED;
        ALTER FUNCTION sp_users.find_user(text) PARALLEL RESTRICTED;
        ALTER FUNCTION sp_users.find_authenticated_user(uuid) PARALLEL RESTRICTED;
        ALTER FUNCTION sp_users.get_roles(uuid) PARALLEL RESTRICTED;
        ALTER FUNCTION sp_users.is_temporary_anonymous(uuid) PARALLEL RESTRICTED;
    END IF;
    -- Every node, now that the tables are placed: definer functions pinned (those that reach users
    -- or sessions through Citus included; idempotent; workers added later get theirs when
    -- distribute() runs again); workers: only the ban functions granted, and an administrator's
    -- privileges on the tables split into shards.
    PERFORM sp_users._pin_search_paths();
    PERFORM sp_users._pin_owner_settings(false);
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s: %s', r.nodename, r.nodeport, r.result), '; ')
      INTO failures
      FROM pg_catalog.run_command_on_workers(
               'SELECT sp_users._pin_search_paths() OPERATOR(pg_catalog.+) sp_users._restrict_worker() '
               'OPERATOR(pg_catalog.+) sp_users._pin_owner_settings(true)') r
     WHERE NOT r.success;
    IF failures IS NOT NULL THEN
        RAISE EXCEPTION 'sp_users.distribute() could not prepare every worker: %', failures
            USING ERRCODE = '55000',
                  HINT = 'Every worker must be reachable and have sp_users (CREATE EXTENSION on the coordinator creates it there); then run distribute() again.';
    END IF;
    -- Citus runs no distributed query from a parallel worker: the C session readers, which query
    -- Citus on a distributed layout, stay in the leader there.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'sp_users.user_sessions'::pg_catalog.regclass
                  AND p.partmethod OPERATOR(pg_catalog.=) 'h') THEN
        ALTER FUNCTION sp_users.session_exists(text) PARALLEL RESTRICTED;
        ALTER FUNCTION sp_users.list_active_sessions(uuid) PARALLEL RESTRICTED;
    END IF;
    RETURN QUERY
        SELECT c.oid::pg_catalog.regclass,
               CASE WHEN p.logicalrelid IS NULL THEN 'coordinator'
                    WHEN p.partmethod OPERATOR(pg_catalog.=) 'n' AND p.repmodel OPERATOR(pg_catalog.=) 't' THEN 'reference'
                    WHEN p.partmethod OPERATOR(pg_catalog.=) 'n' THEN 'coordinator (Citus local table)'
                    ELSE 'distributed' END
          FROM pg_catalog.pg_class c
          LEFT JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) c.oid
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p'])
           AND c.relname OPERATOR(pg_catalog.!~) '_[0-9]+$'
         ORDER BY c.relname;
END
$$;
COMMENT ON FUNCTION sp_users.distribute(boolean) IS
'Citus: run on the coordinator (in the Citus metadata) as the extension owner or a superuser, with sp_users preloaded on every node (shared_preload_libraries = ''citus,sp_users''; 55000 otherwise). Makes banned_ips a reference table (a placement on every node, so the ban functions answer on any node, each node''s ban set following its placement); splits user_sessions into shards by session_id; with distribute_users (the default) also splits users into shards by id, emails and names staying unique through user_emails and user_names (split by their own key; 0A000 while tables of yours have foreign keys to users: keep users on the coordinator with distribute_users => false, or see docs/scaling.md). The foreign keys and triggers that cannot follow are replaced by the functions (see docs/scaling.md); the C readers that query Citus are made PARALLEL RESTRICTED; on workers only the ban functions stay granted to the sp_users roles. Pins search_path on every definer function on every node (Citus re-parses the statements it routes under the caller''s settings), and the string, date and interval styles (on workers also search_path) of the owner''s connections to this database on every node (ALTER ROLE ... IN DATABASE). Idempotent; keeps the data; never moves users back to the coordinator. Run it again after adding a node, after ALTER EXTENSION sp_users UPDATE and after a restore. Returns each sp_users table and where it lives. 0A000 with a HINT without Citus, on a worker, or when the coordinator is not in the Citus metadata; 55000 when a worker cannot be prepared. 55000 otherwise). Makes banned_ips a reference table (a placement on every node, so the ban functions answer on any node, each node''s ban set following its placement); splits user_sessions into shards by session_id on the workers (its foreign key to users replaced by a user lock in start_session, two triggers on users and merges always following the column; session_exists, list_active_sessions and is_banned made PARALLEL RESTRICTED); the other tables stay on the coordinator, and on workers only the ban functions stay granted to the sp_users roles. Pins search_path on every definer function on every node (Citus re-parses the statements it routes under the caller''s settings), and the string, date and interval styles (on workers also search_path) of the owner''s connections to this database on every node (ALTER ROLE ... IN DATABASE). Idempotent; keeps the data. Run it again after adding a node, after ALTER EXTENSION sp_users UPDATE and after a restore. Returns each sp_users table and where it lives. 0A000 with a HINT without Citus, on a worker, or when the coordinator is not in the Citus metadata; 55000 when a worker cannot be prepared.';
