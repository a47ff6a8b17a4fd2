-- sp_users 0.2.0 → 0.3.0. Hand-written; test/integration/upgrade.sh checks that an upgraded
-- database has the same catalog as a fresh 0.3.0 install.
--
-- 0.3.0, hardening: internal functions are executable by nobody but the owner (except the few a
-- direct write or the clean-up procedure needs), no role holds TRIGGER on sp_users tables, the
-- counter tables are read-only for administrators; C trigger functions check where they fire
-- (39P01); is_banned is PARALLEL SAFE and correct in parallel plans; search_users and the bulk
-- functions no longer cost input size x table size; rebuild_user_counts writes only what differs;
-- the request path runs at the speed of hand-written SQL (C index probes, unpinned qualified PL/pgSQL).
\echo Use "ALTER EXTENSION sp_users UPDATE TO '0.3.0'" to load this file. \quit

-- The request path (issue 12): the readers become C index probes; the other per-request and
-- listing functions become PL/pgSQL without a SET clause, every name schema-qualified. User-facing
-- errors (issue 14) are raised by C helpers without the CONTEXT of internal frames; emails must
-- pass email_problem. Generated from sql/install at 0.3.0 (same text as a fresh install).
-- >>> functions
CREATE FUNCTION sp_users._sessions_distributed() RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_sessions_distributed'
LANGUAGE C STABLE;
COMMENT ON FUNCTION sp_users._sessions_distributed() IS
'Internal: whether Citus splits sp_users.user_sessions into shards (sp_users.distribute()); the functions that join sessions to users take another statement shape then.';

CREATE FUNCTION sp_users._fail(sqlstate text, message text, hint text DEFAULT NULL, constraint_name text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sp_users_fail'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sp_users._fail(text, text, text, text) IS
'Internal: raises an error with this SQLSTATE, message, optional hint and optional constraint of sp_users.users, without a CONTEXT.';

CREATE FUNCTION sp_users.email_problem(email text) RETURNS text
AS 'MODULE_PATHNAME', 'sp_users_email_problem'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.email_problem(text) IS
'NULL when an email address (in its stored form: see normalize_email) is acceptable, else the rule it breaks: exactly one @, something before and after it, no white space or control character, at most 320 characters. user@localhost is accepted. The CHECK users_email_check on sp_users.users applies it.';

CREATE FUNCTION sp_users._checked_email(email text) RETURNS text
AS 'MODULE_PATHNAME', 'sp_users_checked_email'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._checked_email(text) IS
'Internal: the stored form (normalize_email) of an address that passes email_problem; otherwise 23514 naming the rule, with constraint users_email_check and no internal context.';

CREATE FUNCTION sp_users._checked_name(name text) RETURNS text
AS 'MODULE_PATHNAME', 'sp_users_checked_name'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._checked_name(text) IS
'Internal: the name as given when users_name_check accepts it (not empty, at most 255 characters); otherwise 23514 saying which, with constraint users_name_check, no row in DETAIL and no internal context.';

CREATE OR REPLACE FUNCTION sp_users.create_user(name text, email text, full_name text DEFAULT NULL, display_name text DEFAULT NULL)
RETURNS sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_create_user'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.create_user(text, text, text, text) IS
'Creates an active user with roles {user}. The email is stored trimmed and lower-cased and must pass email_problem (else 23514 naming the rule it breaks); display_name defaults to full_name. A taken email raises 23505 "user already exists with email: E", a taken name 23505 too.';

CREATE OR REPLACE FUNCTION sp_users.create_user_if_absent(name text, email text, full_name text DEFAULT NULL, display_name text DEFAULT NULL)
RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_create_user_if_absent'
LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1;
COMMENT ON FUNCTION sp_users.create_user_if_absent(text, text, text, text) IS
'Like create_user, but returns zero rows instead of raising when the name or email is taken (race-safe: ON CONFLICT DO NOTHING).';

CREATE OR REPLACE FUNCTION sp_users.find_by_id(id uuid) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_by_id'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_by_id(uuid) IS 'The user with this id, or no row (deleted users are not found).';

CREATE OR REPLACE FUNCTION sp_users.find_by_email(email text) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_by_email'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_by_email(text) IS 'The user with this email (the argument is trimmed and lower-cased first), or no row.';

CREATE OR REPLACE FUNCTION sp_users.find_by_name(name text) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_by_name(text) IS 'The user with exactly this name (case-sensitive), or no row.';

CREATE OR REPLACE FUNCTION sp_users.find_authenticated_user(id uuid) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_authenticated_user'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_authenticated_user(uuid) IS 'The user with this id only when its status is active (use it to authorise a request), or no row; 28000 "account locked until ..." (or "locked permanently") while brute-force protection (record_failure) has locked the account.';

CREATE OR REPLACE FUNCTION sp_users.find_user(identifier text) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_user'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_user(text) IS 'Finds by whatever the identifier is: a uuid by id, text containing @ by email, anything else by name.';

CREATE OR REPLACE FUNCTION sp_users.find_with_sessions(id uuid) RETURNS SETOF sp_users.user_with_sessions
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
AS $$
DECLARE
    result sp_users.user_with_sessions;
    moment timestamptz := pg_catalog.now(); -- a parameter: on Citus a now() in the statement would be each worker's
BEGIN
    SELECT u.id, u.name, u.email, u.full_name, u.status, u.roles, u.created_at
      INTO result.id, result.name, result.email, result.full_name, result.status, result.roles, result.created_at
      FROM sp_users.users u
     WHERE u.id OPERATOR(pg_catalog.=) find_with_sessions.id AND u.status OPERATOR(pg_catalog.<>) 'deleted';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT pg_catalog.count(*) FILTER (WHERE s.ended_at IS NULL AND s.revoked_at IS NULL
                                             AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) moment)),
           pg_catalog.max(s.last_activity_at)
      INTO result.active_sessions, result.last_session_at
      FROM sp_users.user_sessions s WHERE s.user_id OPERATOR(pg_catalog.=) find_with_sessions.id;
    RETURN NEXT result;
END
$$;
COMMENT ON FUNCTION sp_users.find_with_sessions(uuid) IS
'The user with its number of active sessions (not ended, not revoked, not expired) and last_session_at (latest last_activity_at of any of its sessions), or no row.';

DROP FUNCTION sp_users._with_sessions(sp_users.users);

CREATE OR REPLACE FUNCTION sp_users.list_non_anonymous_with_sessions(lim integer DEFAULT 20) RETURNS SETOF sp_users.user_with_sessions
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    moment timestamptz := now(); -- a parameter: on Citus a now() in the statement would be each worker's
BEGIN
    RETURN QUERY
    SELECT u.id, u.name, u.email, u.full_name, u.status, u.roles, u.created_at,
           coalesce(f.active_sessions, 0), f.last_session_at
      FROM sp_users.users u
      LEFT JOIN (SELECT s.user_id,
                        count(*) FILTER (WHERE s.ended_at IS NULL AND s.revoked_at IS NULL
                                           AND (s.expires_at IS NULL OR s.expires_at > moment)) AS active_sessions,
                        max(s.last_activity_at) AS last_session_at
                   FROM sp_users.user_sessions s
                  WHERE s.user_id IS NOT NULL
                  GROUP BY s.user_id) f ON f.user_id = u.id
     WHERE u.status <> 'deleted' AND NOT (u.roles @> ARRAY['anonymous'::sp_users.user_role])
     ORDER BY f.last_session_at DESC NULLS LAST, u.created_at DESC, u.id
     LIMIT sp_users._page_limit(lim);
END
$$;
COMMENT ON FUNCTION sp_users.list_non_anonymous_with_sessions(integer) IS
'Users without role anonymous, with their session figures, most recent session activity first (users without sessions last). lim capped at 100.';

CREATE OR REPLACE FUNCTION sp_users.get_activity(id uuid) RETURNS sp_users.user_activity
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
DECLARE
    result sp_users.user_activity;
BEGIN
    PERFORM 1 FROM sp_users.users u WHERE u.id OPERATOR(pg_catalog.=) get_activity.id AND u.status OPERATOR(pg_catalog.<>) 'deleted';
    IF NOT FOUND THEN
        PERFORM sp_users._user_not_found(get_activity.id);
    END IF;
    SELECT get_activity.id, pg_catalog.max(s.last_activity_at), pg_catalog.count(*)
      INTO result
      FROM sp_users.user_sessions s WHERE s.user_id OPERATOR(pg_catalog.=) get_activity.id;
    RETURN result;
END
$$;
COMMENT ON FUNCTION sp_users.get_activity(uuid) IS 'Last session activity and number of sessions (all, ended or not) of a user; P0002 when the user does not exist.';

CREATE OR REPLACE FUNCTION sp_users.list_users(lim integer DEFAULT 20, off integer DEFAULT 0) RETURNS SETOF sp_users.users
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN QUERY SELECT * FROM sp_users.users u WHERE u.status OPERATOR(pg_catalog.<>) 'deleted'
                  ORDER BY u.created_at DESC, u.id
                  LIMIT sp_users._page_limit(lim) OFFSET sp_users._page_offset(off);
END
$$;
COMMENT ON FUNCTION sp_users.list_users(integer, integer) IS 'A page of users, newest first. lim is capped at 100; a negative or NULL lim/off raises 22023.';

CREATE OR REPLACE FUNCTION sp_users.search_users(query text, lim integer DEFAULT 20) RETURNS SETOF sp_users.users
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
DECLARE
    -- Lower-cased once: the cost is the table's text once, not the table times the query.
    q pg_catalog.text := pg_catalog.lower(query);
BEGIN
    -- Longer than any name (users_name_check: 255) or email (users_email_check: 320): only a full
    -- name can hold it, and the query is written once (on Citus it goes to every shard as text).
    IF pg_catalog.length(q) OPERATOR(pg_catalog.>) 320 THEN
        RETURN QUERY SELECT u.* FROM sp_users.users u
                      WHERE u.status OPERATOR(pg_catalog.<>) 'deleted'
                        AND pg_catalog.strpos(pg_catalog.lower(coalesce(u.full_name, '')), q) OPERATOR(pg_catalog.>) 0
                      ORDER BY u.created_at DESC, u.id
                      LIMIT sp_users._page_limit(lim);
        RETURN;
    END IF;
    RETURN QUERY SELECT u.* FROM sp_users.users u
                  WHERE u.status OPERATOR(pg_catalog.<>) 'deleted'
                    AND (pg_catalog.strpos(pg_catalog.lower(u.name), q) OPERATOR(pg_catalog.>) 0
                         OR pg_catalog.strpos(u.email, q) OPERATOR(pg_catalog.>) 0
                         OR pg_catalog.strpos(pg_catalog.lower(coalesce(u.full_name, '')), q) OPERATOR(pg_catalog.>) 0)
                  ORDER BY (pg_catalog.strpos(pg_catalog.lower(u.name), q) OPERATOR(pg_catalog.>) 0) DESC, u.created_at DESC, u.id
                  LIMIT sp_users._page_limit(lim);
END
$$;
COMMENT ON FUNCTION sp_users.search_users(text, integer) IS
'Case-insensitive substring search over name, email and full_name; every character is literal (% and _ are not wildcards). Name matches first, then newest. lim capped at 100. A NULL query finds nothing.';

CREATE OR REPLACE FUNCTION sp_users.is_temporary_anonymous(id uuid) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_is_temporary_anonymous'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.is_temporary_anonymous(uuid) IS 'True when the user has role anonymous; P0002 when it does not exist.';

CREATE FUNCTION sp_users._checked_session_id(session_id text) RETURNS text
AS 'MODULE_PATHNAME', 'sp_users_checked_session_id'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._checked_session_id(text) IS
'Internal: the session id as given when user_sessions_session_id_check accepts it (not empty, at most 255 characters); otherwise 23514 saying which, with that constraint, no row in DETAIL and no internal context.';

CREATE OR REPLACE FUNCTION sp_users.start_session(user_id uuid, session_id text DEFAULT NULL, ip_address text DEFAULT NULL,
                                       user_agent text DEFAULT NULL, device_type text DEFAULT NULL,
                                       fingerprint_hash text DEFAULT NULL, expires_in interval DEFAULT '7 days')
RETURNS sp_users.user_sessions
AS 'MODULE_PATHNAME', 'sp_users_start_session'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.start_session(uuid, text, text, text, text, text, interval) IS
'Starts a session (a random id "sess_<32 hex>" when session_id is NULL). user_type is anon for an anonymous user (or no user), registered otherwise. ip_address is normalised like every sp_users address (22P02 when invalid). expires_in NULL = never expires; zero or negative raises 22023. P0002 when the user does not exist; 23505 when the session id is taken.';

CREATE OR REPLACE FUNCTION sp_users.touch_session(session_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_touch_session'
LANGUAGE C VOLATILE STRICT SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.touch_session(text) IS 'Records activity on an active session; false when the session is unknown, ended, revoked or expired.';

CREATE OR REPLACE FUNCTION sp_users.list_active_sessions(user_id uuid) RETURNS SETOF sp_users.user_sessions
AS 'MODULE_PATHNAME', 'sp_users_list_active_sessions'
LANGUAGE C STABLE PARALLEL SAFE ROWS 5;
COMMENT ON FUNCTION sp_users.list_active_sessions(uuid) IS 'The active sessions (not ended, not revoked, not expired) of a user, most recent activity first; P0002 when the user does not exist.';

CREATE OR REPLACE FUNCTION sp_users.session_exists(session_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_session_exists'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.session_exists(text) IS 'True only for an active session (not ended, not revoked, not expired).';

CREATE OR REPLACE FUNCTION sp_users.end_session(session_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_end_session'
LANGUAGE C VOLATILE STRICT SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.end_session(text) IS 'Ends a session; false when it is unknown or already ended.';

CREATE OR REPLACE FUNCTION sp_users.ban_ip(ip text, reason text, duration interval, ban_source text DEFAULT 'manual',
                                source_fingerprint text DEFAULT NULL, offense_path text DEFAULT NULL,
                                user_agent text DEFAULT NULL, session_id text DEFAULT NULL, escalate boolean DEFAULT false)
RETURNS sp_users.banned_ips
AS 'MODULE_PATHNAME', 'sp_users_ban_ip'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.ban_ip(text, text, interval, text, text, text, text, text, boolean) IS
'Bans an address or network (normalised; 22P02 when invalid). duration NULL = permanent; zero or negative raises 22023. A repeat ban increments ban_count, replaces reason and ban_source, keeps earlier fingerprint/path/agent where the new one is NULL, appends session_id (distinct, last 100 kept). Permanent stays permanent (expires_at NULL); a repeat ban never shortens an expiry. With escalate, duration x 2^(previous ban_count), capped at 365 days.';

CREATE OR REPLACE FUNCTION sp_users.get_ban(ip text) RETURNS SETOF sp_users.banned_ips
AS 'MODULE_PATHNAME', 'sp_users_get_ban'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.get_ban(text) IS 'The active ban that applies to the address: the exact entry if banned, else the most specific covering network; no row when none applies.';

CREATE OR REPLACE FUNCTION sp_users.list_active_bans(lim integer DEFAULT 100) RETURNS SETOF sp_users.banned_ips
AS 'MODULE_PATHNAME', 'sp_users_list_active_bans'
LANGUAGE C STABLE PARALLEL SAFE ROWS 100;
COMMENT ON FUNCTION sp_users.list_active_bans(integer) IS 'Active bans, most recently (re)banned first; lim capped at 100.';

CREATE OR REPLACE FUNCTION sp_users.count_active_bans() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    PERFORM sp_users._citus_session();
    RETURN (SELECT pg_catalog.count(*) FROM sp_users.banned_ips b
             WHERE b.expires_at IS NULL OR b.expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
END
$$;
COMMENT ON FUNCTION sp_users.count_active_bans() IS 'Number of active bans (addresses and networks).';

CREATE OR REPLACE FUNCTION sp_users.create_anonymous(fingerprint text) RETURNS sp_users.users
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

CREATE OR REPLACE FUNCTION sp_users.get_roles(id uuid) RETURNS sp_users.user_role[]
AS 'MODULE_PATHNAME', 'sp_users_get_roles'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.get_roles(uuid) IS 'The roles of a user; P0002 when it does not exist.';

CREATE OR REPLACE FUNCTION sp_users._page_limit(lim integer, arg text DEFAULT 'lim') RETURNS integer
AS 'MODULE_PATHNAME', 'sp_users_page_limit'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._page_limit(integer, text) IS
'Internal: a listing limit capped at 100 (MAX_PAGE_SIZE); NULL or negative raises 22023.';

CREATE OR REPLACE FUNCTION sp_users._page_offset(off integer) RETURNS integer
AS 'MODULE_PATHNAME', 'sp_users_page_offset'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._page_offset(integer) IS 'Internal: a listing offset; NULL or negative raises 22023.';

CREATE OR REPLACE FUNCTION sp_users._user_not_found(id anyelement) RETURNS void
AS 'MODULE_PATHNAME', 'sp_users_user_not_found'
LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION sp_users._user_not_found(anyelement) IS 'Internal: raises P0002 "user not found: <id>".';

CREATE OR REPLACE FUNCTION sp_users._positive_interval(value interval, arg text) RETURNS interval
AS 'MODULE_PATHNAME', 'sp_users_positive_interval'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._positive_interval(interval, text) IS
'Internal: passes NULL or a positive interval through; zero or negative raises 22023 naming the argument.';

CREATE OR REPLACE FUNCTION sp_users.unban_ip(ip text) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    net inet := sp_users.normalize_ip(ip); -- first: bad text is 22P02 whatever the table holds
BEGIN
    PERFORM sp_users._citus_session();
    DELETE FROM sp_users.banned_ips b WHERE b.ip_address = net;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION sp_users.unban_ip(text) IS 'Removes exactly that entry (an address, or a network; covering or covered entries stay). False when there was none.';

CREATE OR REPLACE FUNCTION sp_users._update_user(id uuid, changes jsonb) RETURNS sp_users.users
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result sp_users.users;
    old sp_users.users;
    new_email text;
    new_roles sp_users.user_role[];
    constraint_name text;
    distributed boolean := sp_users._users_distributed();
BEGIN
    IF changes ? 'email' THEN
        new_email := sp_users.normalize_email(changes->>'email');
        IF sp_users.email_problem(new_email) IS NOT NULL THEN
            PERFORM sp_users._fail('23514', format('invalid email address "%s": %s', new_email, sp_users.email_problem(new_email)),
                                   NULL, 'users_email_check');
        END IF;
    END IF;
    IF changes ? 'roles' THEN -- a variable: Citus sends no subquery inside an UPDATE to a shard
        new_roles := ARRAY(SELECT jsonb_array_elements_text(changes->'roles'))::sp_users.user_role[];
    END IF;
    IF distributed THEN
        -- Citus (sp_users.distribute()): an email is unique through user_emails, claimed before the
        -- row changes; the trigger that revokes a deleted user's sessions cannot run on a shard.
        SELECT * INTO old FROM sp_users.users u WHERE u.id = _update_user.id AND u.status <> 'deleted' FOR UPDATE;
        IF NOT FOUND THEN
            PERFORM sp_users._user_not_found(_update_user.id);
        END IF;
        IF changes ? 'email' AND new_email IS DISTINCT FROM old.email THEN
            IF new_email IS NULL THEN
                PERFORM sp_users._fail('23502', 'null value in column "email" of relation "users" violates not-null constraint');
            END IF;
            IF NOT sp_users._claim_user_key('email', new_email, old.id) THEN
                PERFORM sp_users._fail('23505', 'user already exists with email: ' || new_email, NULL, 'users_email_key');
            END IF;
            DELETE FROM sp_users.user_emails e WHERE e.email = old.email AND e.user_id = old.id;
        END IF;
        -- The new row computed here, sent as plain values: Citus sends no CASE over a stable cast
        -- (enum input) to a shard.
        result := old;
        IF changes ? 'email' THEN
            result.email := new_email;
            result.email_verified := CASE WHEN new_email IS DISTINCT FROM old.email THEN false ELSE old.email_verified END;
        END IF;
        IF changes ? 'email_verified' THEN result.email_verified := (changes->>'email_verified')::boolean; END IF;
        IF changes ? 'full_name' THEN result.full_name := changes->>'full_name'; END IF;
        IF changes ? 'display_name' THEN result.display_name := changes->>'display_name'; END IF;
        IF changes ? 'status' THEN result.status := (changes->>'status')::sp_users.user_status; END IF;
        IF changes ? 'roles' THEN result.roles := new_roles; END IF;
        UPDATE sp_users.users u
           SET email = result.email, email_verified = result.email_verified, full_name = result.full_name,
               display_name = result.display_name, status = result.status, roles = result.roles
         WHERE u.id = old.id
        RETURNING * INTO result;
        IF result.status = 'deleted' AND old.status <> 'deleted' THEN
            PERFORM sp_users._revoke_sessions_of(ARRAY[result.id]);
        END IF;
        RETURN result;
    END IF;
    UPDATE sp_users.users u SET
        email          = CASE WHEN changes ? 'email' THEN new_email ELSE u.email END,
        email_verified = CASE WHEN changes ? 'email_verified' THEN (changes->>'email_verified')::boolean
                              WHEN changes ? 'email' AND new_email IS DISTINCT FROM u.email THEN false
                              ELSE u.email_verified END,
        full_name      = CASE WHEN changes ? 'full_name' THEN changes->>'full_name' ELSE u.full_name END,
        display_name   = CASE WHEN changes ? 'display_name' THEN changes->>'display_name' ELSE u.display_name END,
        status         = CASE WHEN changes ? 'status' THEN (changes->>'status')::sp_users.user_status ELSE u.status END,
        roles          = CASE WHEN changes ? 'roles' THEN new_roles ELSE u.roles END
     WHERE u.id = _update_user.id AND u.status <> 'deleted'
    RETURNING * INTO result;
    IF NOT FOUND THEN
        PERFORM sp_users._user_not_found(_update_user.id);
    END IF;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS constraint_name = CONSTRAINT_NAME;
    PERFORM sp_users._fail('23505', 'user already exists with email: ' || new_email, NULL, constraint_name);
    RETURN NULL; -- not reached: _fail raises
END
$$;
COMMENT ON FUNCTION sp_users._update_user(uuid, jsonb) IS 'Internal: applies the given column changes to a non-deleted user (P0002 when missing, 23505 on a taken email).';

CREATE OR REPLACE FUNCTION sp_users._dedupe_roles(roles sp_users.user_role[]) RETURNS sp_users.user_role[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF roles IS NULL OR cardinality(roles) = 0 THEN
        PERFORM sp_users._fail('22023', 'roles must not be empty');
    END IF;
    IF array_position(roles, NULL) IS NOT NULL THEN
        PERFORM sp_users._fail('22023', 'roles must not contain NULL');
    END IF;
    RETURN ARRAY(SELECT r FROM unnest(roles) WITH ORDINALITY AS u(r, i) GROUP BY r ORDER BY min(i));
END
$$;
COMMENT ON FUNCTION sp_users._dedupe_roles(sp_users.user_role[]) IS
'Internal: validates a role array (22023 when empty, NULL or with a NULL element) and drops duplicates, keeping first-seen order.';

CREATE OR REPLACE FUNCTION sp_users.assign_role(id uuid, role sp_users.user_role) RETURNS sp_users.users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        PERFORM sp_users._fail('22023', 'role must not be NULL');
    END IF;
    RETURN sp_users.assign_roles(id, sp_users.get_roles(id) || role);
END
$$;
COMMENT ON FUNCTION sp_users.assign_role(uuid, sp_users.user_role) IS 'Adds a role (no-op when already held); P0002 when the user does not exist.';

CREATE OR REPLACE FUNCTION sp_users.revoke_role(id uuid, role sp_users.user_role) RETURNS sp_users.users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remaining sp_users.user_role[];
BEGIN
    IF role IS NULL THEN
        PERFORM sp_users._fail('22023', 'role must not be NULL');
    END IF;
    remaining := array_remove(sp_users.get_roles(id), role);
    IF cardinality(remaining) = 0 THEN
        PERFORM sp_users._fail('22023', format('cannot revoke role %s: it is the last role of user %s', role, id),
                               'Assign another role first; every user holds at least one role.');
    END IF;
    RETURN sp_users.assign_roles(id, remaining);
END
$$;
COMMENT ON FUNCTION sp_users.revoke_role(uuid, sp_users.user_role) IS 'Removes a role (no-op when not held); revoking the last role raises 22023; P0002 when the user does not exist.';

CREATE OR REPLACE FUNCTION sp_users.register_user_reference(tbl regclass, col name) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        PERFORM sp_users._fail('22023', 'tbl and col must not be NULL');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped) THEN
        PERFORM sp_users._fail('42703', format('column %s does not exist in table %s', col, tbl));
    END IF;
    INSERT INTO sp_users.user_references (tbl, col) VALUES (tbl, col) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION sp_users.register_user_reference(regclass, name) IS
'Registers a column that holds a user id without a foreign key (any type a uuid can be cast to and from, e.g. uuid or text), so merges move it too. Idempotent; 42703 when the column does not exist.';

-- The email rule (issue 14). Rows that break it are kept: the constraint is added NOT VALID
-- (new and updated rows are checked) and validated only when every row passes; otherwise a
-- WARNING says how many rows and how to fix them.
ALTER TABLE sp_users.users DROP CONSTRAINT users_email_check;
ALTER TABLE sp_users.users ADD CONSTRAINT users_email_check CHECK (sp_users.email_problem(email) IS NULL) NOT VALID;
DO $upgrade$
DECLARE
    bad bigint;
BEGIN
    SELECT pg_catalog.count(*) INTO bad FROM sp_users.users u WHERE sp_users.email_problem(u.email) IS NOT NULL;
    IF bad OPERATOR(pg_catalog.=) 0 THEN
        ALTER TABLE sp_users.users VALIDATE CONSTRAINT users_email_check;
    ELSE
        RAISE WARNING 'sp_users 0.3.0: % users have an email that breaks the new rule; they are kept and the constraint users_email_check is NOT VALID (checked for new and changed rows only)', bad
            USING HINT = 'List them with SELECT id, email, sp_users.email_problem(email) FROM sp_users.users WHERE sp_users.email_problem(email) IS NOT NULL; fix each with sp_users.update_email, then ALTER TABLE sp_users.users VALIDATE CONSTRAINT users_email_check.';
    END IF;
END
$upgrade$;
-- <<< functions

-- create_user inserts without ON CONFLICT and reports a taken email before a taken name only while
-- an INSERT checks users_email_key first; it checks unique indexes in oid order, and 0.2.0 created
-- the name index first. Rebuilding it (one index build, under this upgrade's lock) puts it last —
-- unless a foreign key of the database's own references users(name): then the index stays, and
-- create_user then inserts with ON CONFLICT (email) (same answers, a little slower).
DO $upgrade$
BEGIN
    IF 'sp_users.users_name_key'::pg_catalog.regclass::pg_catalog.oid OPERATOR(pg_catalog.<)
       'sp_users.users_email_key'::pg_catalog.regclass::pg_catalog.oid THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.refobjid OPERATOR(pg_catalog.=) 'sp_users.users_name_key'::pg_catalog.regclass
                      AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass)
           OR EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                       WHERE i.indexrelid OPERATOR(pg_catalog.=) 'sp_users.users_name_key'::pg_catalog.regclass
                         AND (i.indisreplident OR i.indisclustered)) THEN
            RAISE WARNING 'sp_users 0.3.0: users_name_key is kept (a foreign key references users(name), or it is the table''s replica identity or CLUSTER index); create_user inserts with ON CONFLICT (email)'
                USING HINT = 'To give create_user its faster path, run ALTER TABLE sp_users.users DROP CONSTRAINT users_name_key, ADD CONSTRAINT users_name_key UNIQUE (name) and set up again what used the index (foreign keys, REPLICA IDENTITY USING INDEX, CLUSTER ON).';
        ELSE
            ALTER TABLE sp_users.users DROP CONSTRAINT users_name_key, ADD CONSTRAINT users_name_key UNIQUE (name);
        END IF;
    END IF;
END
$upgrade$;

ALTER FUNCTION sp_users.is_banned(text) PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.is_banned(text) IS
'True when an active ban (expires_at NULL or later than now()) equals the address or network, or contains it. Answered from an in-memory ban set (per backend, or shared by all connections when sp_users is preloaded) that follows every committed change through the change log sp_users.ban_changes, re-reading only the changed networks: a committed ban is seen at once, an uncommitted one never by others; a transaction that changed bans itself is answered from the table. 22P02 on invalid address text.';
-- Two more columns (issue 13: incremental refreshes): a new OUT list needs a new function.
DROP FUNCTION sp_users.ban_cache_info();
CREATE FUNCTION sp_users.ban_cache_info(OUT entries bigint, OUT memory_bytes bigint, OUT rebuilds bigint,
                                        OUT last_rebuild_ms double precision, OUT valid boolean, OUT fallback_lookups bigint,
                                        OUT refreshes bigint, OUT changes_applied bigint, OUT shared_bytes bigint, OUT publishes bigint)
AS 'MODULE_PATHNAME', 'sp_users_ban_cache_info'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION sp_users.ban_cache_info() IS
'The calling backend''s ban set: active entries it holds, bytes it takes, how often it was rebuilt in full and the last rebuild''s duration, whether it is valid right now, how many calls were answered by an index lookup instead (in a transaction that changed bans itself; with a pre-0.3.0 schema, after a change), how many incremental refreshes through the change log brought it forward, re-reading how many networks, and, with sp_users preloaded, the bytes of the shared base it reads (0 = a private set; entries then counts the base and this backend''s own changes since it, memory_bytes only the latter) and how many bases it built and published.';
REVOKE ALL ON FUNCTION sp_users.ban_cache_info() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.ban_cache_info() TO sp_users_admin, sp_users_readonly;

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

CREATE OR REPLACE FUNCTION sp_users.bulk_update_status(ids uuid[], status sp_users.user_status) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed bigint;
    shard_ids uuid[];
    shard_changed uuid[];
BEGIN
    IF NOT sp_users._users_distributed() THEN
        UPDATE sp_users.users u SET status = bulk_update_status.status
         WHERE u.id IN (SELECT unnest(ids)) AND u.status <> 'deleted' AND u.status IS DISTINCT FROM bulk_update_status.status; -- a join, not array x table
        GET DIAGNOSTICS changed = ROW_COUNT;
        RETURN changed;
    END IF;
    -- Citus: one statement per shard with that shard's ids (a statement for all would carry every
    -- id to every shard); the sessions of those now deleted revoked here (the trigger that does it
    -- on one server cannot run on a shard).
    changed := 0;
    FOR shard_ids IN SELECT array_agg(c.id) FROM unnest(ids) c(id)
                      GROUP BY get_shard_id_for_distribution_column('sp_users.users', c.id) LOOP
        EXECUTE format('WITH c AS (UPDATE sp_users.users u SET status = %L'
                       ' WHERE u.id = ANY (%L::uuid[]) AND u.status <> ''deleted'' AND u.status IS DISTINCT FROM %L'
                       ' RETURNING u.id) SELECT array_agg(c.id) FROM c',
                       bulk_update_status.status, shard_ids, bulk_update_status.status)
           INTO shard_changed;
        changed := changed + coalesce(cardinality(shard_changed), 0);
        IF bulk_update_status.status = 'deleted' AND shard_changed IS NOT NULL THEN
            PERFORM sp_users._revoke_sessions_of(shard_changed);
        END IF;
    END LOOP;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION sp_users.bulk_update_status(uuid[], sp_users.user_status) IS
'Sets the status of every listed (non-deleted) user; returns how many rows actually changed. Unknown ids are ignored.';

CREATE OR REPLACE FUNCTION sp_users.count_old_anonymous(retention_days integer DEFAULT 30) RETURNS bigint
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

CREATE OR REPLACE FUNCTION sp_users._cleanup_anonymous_batch(retention_days integer, batch_size integer) RETURNS bigint
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

-- ==== Bulk blocklist import (issue 13). Same text as sql/install/50_bans.sql.
CREATE FUNCTION sp_users.ban_ips(list text, reason text, duration interval, ban_source text DEFAULT 'blocklist')
RETURNS TABLE (line integer, entry text, error text)
AS 'MODULE_PATHNAME', 'sp_users_ban_ips'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.ban_ips(text, text, interval, text) IS
'Bans every address and network of a blocklist in one statement: one entry per line, text after # or ; is a comment, blank lines are skipped (FireHOL netsets, Spamhaus DROP and plain exports load as published). Each entry follows ban_ip''s upsert rules with the given reason, duration (NULL = permanent; zero or negative raises 22023) and ban_source; entries that normalise to the same network count once. Bad lines are returned (line number, entry, why) and the others applied; a NOTICE counts new, repeat, duplicate and rejected entries. One statement: every backend''s ban set re-reads the changed networks once.';
REVOKE ALL ON FUNCTION sp_users.ban_ips(text, text, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.ban_ips(text, text, interval, text) TO sp_users_admin;

-- ==== Incremental ban sets (issue 13): the change log, its triggers. Same text as
-- sql/install/10_tables.sql.
-- The ban change log: one row per network a statement on banned_ips touched, written by the
-- triggers below inside the changing transaction (so it commits, rolls back and replicates with
-- the change). A backend brings its ban set forward by re-reading only the networks logged by
-- transactions its set's snapshot did not yet see (docs/ban-cache.md). ip_address NULL: anything
-- may have changed (TRUNCATE), rebuild. Writers prune rows older than one to two minutes.
CREATE TABLE sp_users.ban_changes (
    xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ip_address  inet
);
CREATE INDEX ban_changes_xid_idx ON sp_users.ban_changes (xid);
COMMENT ON TABLE sp_users.ban_changes IS 'Internal: networks changed in banned_ips, with the changing transaction (top-level xid). Written only by the banned_ips triggers; read by every backend''s ban set; pruned after one to two minutes.';

CREATE TABLE sp_users.ban_changes_horizon (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_below      xid8 NOT NULL,
    prune_next_below  xid8 NOT NULL,
    pruned_at         timestamptz NOT NULL
);
COMMENT ON TABLE sp_users.ban_changes_horizon IS 'Internal: ban_changes rows of transactions below pruned_below may be gone; a ban set whose snapshot is older rebuilds. The next prune removes rows below prune_next_below (a snapshot xmin taken at the last prune).';
INSERT INTO sp_users.ban_changes_horizon
VALUES (true, '0'::xid8, pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()), pg_catalog.now());
REVOKE ALL ON sp_users.ban_changes, sp_users.ban_changes_horizon FROM PUBLIC;
GRANT SELECT, REFERENCES ON sp_users.ban_changes, sp_users.ban_changes_horizon TO sp_users_admin;
COMMENT ON FUNCTION sp_users._ban_set_invalidate() IS 'Trigger: logs the networks a statement changed in sp_users.ban_changes and queues a transactional invalidation of every backend''s ban set (delivered at commit, replayed on standbys), which then re-reads only those networks. TRUNCATE logs a full rebuild.';
DROP TRIGGER banned_ips_invalidate ON sp_users.banned_ips;
CREATE TRIGGER banned_ips_log_insert AFTER INSERT ON sp_users.banned_ips REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
CREATE TRIGGER banned_ips_log_update AFTER UPDATE ON sp_users.banned_ips REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
CREATE TRIGGER banned_ips_log_delete AFTER DELETE ON sp_users.banned_ips REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
CREATE TRIGGER banned_ips_invalidate AFTER TRUNCATE ON sp_users.banned_ips
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
-- A logical subscriber's apply worker (session_replication_role = replica) fires no statement
-- trigger and no ORIGIN trigger: there the row triggers below, enabled for replica mode only, log
-- and count each applied row (and each row of the initial table copy). TRUNCATE fires in both modes.
CREATE FUNCTION sp_users._ban_log_row() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_ban_log_row'
LANGUAGE C;
COMMENT ON FUNCTION sp_users._ban_log_row() IS 'Trigger (row level, enabled only under session_replication_role = replica, as in logical replication''s apply worker): logs the network of each applied row in sp_users.ban_changes and queues the invalidation of every backend''s ban set, as the statement triggers do in origin mode.';
CREATE TRIGGER banned_ips_log_row AFTER INSERT OR UPDATE OR DELETE ON sp_users.banned_ips
    FOR EACH ROW EXECUTE FUNCTION sp_users._ban_log_row();
ALTER TABLE sp_users.banned_ips ENABLE REPLICA TRIGGER banned_ips_log_row;
ALTER TABLE sp_users.banned_ips ENABLE ALWAYS TRIGGER banned_ips_invalidate;
ALTER TABLE sp_users.users ENABLE ALWAYS TRIGGER users_count_truncate;
CREATE FUNCTION sp_users._count_row() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_count_row' LANGUAGE C;
COMMENT ON FUNCTION sp_users._count_row() IS 'Trigger (row level, enabled only under session_replication_role = replica, as in logical replication''s apply worker): counts each applied users row into sp_users.user_count_deltas, as the statement triggers do in origin mode.';
CREATE TRIGGER users_count_row AFTER INSERT OR UPDATE OR DELETE ON sp_users.users
    FOR EACH ROW EXECUTE FUNCTION sp_users._count_row();
ALTER TABLE sp_users.users ENABLE REPLICA TRIGGER users_count_row;


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
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON sp_users.user_counts, sp_users.user_count_deltas,
        sp_users.ban_changes, sp_users.ban_changes_horizon FROM sp_users_admin;
END
$$;
COMMENT ON FUNCTION sp_users._restrict_internals() IS 'Internal (install and upgrade): revokes EXECUTE on internal functions from every sp_users role except those a direct write (_roles_valid, the CHECK on roles) or run_anonymous_cleanup needs, TRIGGER on every table, and writes to the derived counter tables and the ban change log.';

SELECT sp_users._restrict_internals();

-- Privileges of the new public helper, and the self-service steps applications may now run.
REVOKE ALL ON FUNCTION sp_users.email_problem(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.email_problem(text) TO sp_users_admin;
GRANT EXECUTE ON FUNCTION sp_users.email_problem(text) TO sp_users_app, sp_users_readonly;
GRANT EXECUTE ON FUNCTION
    sp_users.promote_anonymous(uuid, uuid), sp_users.update_email(uuid, text), sp_users.update_email_verified(uuid, boolean),
    sp_users.update_display_name(uuid, text), sp_users.update_full_name(uuid, text),
    sp_users.update_status(uuid, sp_users.user_status), sp_users.get_roles(uuid), sp_users.is_temporary_anonymous(uuid),
    sp_users.get_activity(uuid), sp_users.get_stats(), sp_users.count_by_status(), sp_users.count_by_role(),
    sp_users.count_with_breakdown()
TO sp_users_app;

-- Ban-set invalidations travel through this relation's relcache entry, not the table's, so a ban
-- no longer invalidates every cached plan over banned_ips (the library falls back to the table
-- for schemas without it).
CREATE SEQUENCE sp_users.ban_set_signal;
COMMENT ON SEQUENCE sp_users.ban_set_signal IS 'Not a counter: the relation whose relcache invalidation tells every backend (and standby) that sp_users.banned_ips changed, so their ban sets follow. Never read or advanced.';
REVOKE ALL ON SEQUENCE sp_users.ban_set_signal FROM PUBLIC;
GRANT ALL ON SEQUENCE sp_users.ban_set_signal TO sp_users_admin;


-- ==== pg_cron for operators (issue 14): cleanup_status() for administrators, a warning when
-- scheduled runs cannot connect, 0A000 when cron.database_name is set but pg_cron is not loaded,
-- and DROP EXTENSION sp_users removing the job. Same text as sql/install/60_anonymous.sql and
-- sql/install/65_cron_status.sql.
CREATE OR REPLACE FUNCTION sp_users._require_cron(call_in_cron_db text) RETURNS void
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

CREATE OR REPLACE FUNCTION sp_users.schedule_anonymous_cleanup(schedule text DEFAULT '0 * * * *', retention_days integer DEFAULT 30,
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

REVOKE ALL ON FUNCTION sp_users.cleanup_status(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.cleanup_status(integer) TO sp_users_admin;

-- ==== Merge policies (issue 16).
-- Merge policies (issue 16): what a merge does with the source's rows, per referencing column.
CREATE TABLE sp_users.merge_policies (
    tbl     regclass NOT NULL,
    col     name NOT NULL,
    policy  text NOT NULL,
    PRIMARY KEY (tbl, col),
    CONSTRAINT merge_policies_policy_check CHECK (policy OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'keep']))
);
COMMENT ON TABLE sp_users.merge_policies IS 'Merge policy per column that holds a user id (by foreign key or registered), when it is not move: delete (the source''s rows go with the source: credentials such as OAuth links, WebAuthn or API keys) or keep (a merge is refused while the source has rows there). Set with set_merge_policy.';
-- Dumped except the row the extension itself inserts (sp_users.account_failures), which CREATE EXTENSION makes.
SELECT pg_catalog.pg_extension_config_dump('sp_users.merge_policies', 'WHERE tbl::text <> ''sp_users.account_failures''');

CREATE FUNCTION sp_users.set_merge_policy(tbl regclass, col name, policy text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attnum smallint;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'tbl and col must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF policy IS NULL OR policy NOT IN ('move', 'delete', 'keep') THEN
        RAISE EXCEPTION 'policy must be move, delete or keep (got %)', coalesce(policy, 'NULL') USING ERRCODE = '22023';
    END IF;
    -- 'move' is the default: it only removes the row, also one whose column is gone (renamed,
    -- dropped, or the table created again), which merges refuse to run with.
    IF policy = 'move' THEN
        DELETE FROM sp_users.merge_policies p WHERE p.tbl = set_merge_policy.tbl AND p.col = set_merge_policy.col;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    SELECT a.attnum INTO attnum FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % does not exist in table %', col, tbl USING ERRCODE = '42703';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint c
                    WHERE c.contype = 'f' AND c.conrelid = tbl AND c.confrelid = 'sp_users.users'::regclass AND c.conkey = ARRAY[attnum])
       AND NOT EXISTS (SELECT 1 FROM sp_users.user_references r WHERE r.tbl = set_merge_policy.tbl AND r.col = set_merge_policy.col)
       AND NOT (tbl = ANY (ARRAY['sp_users.user_sessions'::regclass, 'sp_users.account_failures'::regclass]) AND col = 'user_id') THEN -- followed without their keys on Citus
        RAISE EXCEPTION 'column % of table % holds no user id a merge follows', col, tbl USING ERRCODE = '22023',
            HINT = 'A merge follows single-column foreign keys to sp_users.users(id) and columns registered with sp_users.register_user_reference.';
    END IF;
    IF policy = 'move' THEN
        DELETE FROM sp_users.merge_policies p WHERE p.tbl = set_merge_policy.tbl AND p.col = set_merge_policy.col;
    ELSE
        INSERT INTO sp_users.merge_policies AS p VALUES (tbl, col, policy)
        ON CONFLICT ON CONSTRAINT merge_policies_pkey DO UPDATE SET policy = EXCLUDED.policy;
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users.set_merge_policy(regclass, name, text) IS
'Sets what merge_users and promote_anonymous do with the source''s rows in a column that holds a user id (a single-column foreign key to sp_users.users(id), or a column registered with register_user_reference): move (the default: they pass to the target), delete (they are deleted with the source and counted under tables->''deleted_with_source'': credentials such as OAuth links, WebAuthn or API keys, device certificates) or keep (the merge is refused with 2BP01 while the source has rows there). 42703 for a missing column, 22023 for a column no merge follows or another policy. Setting move removes the policy, also one whose column no longer exists (merges refuse to run while such an entry remains).';

CREATE FUNCTION sp_users.list_user_references()
RETURNS TABLE (tbl regclass, col name, found_by text, policy text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.tbl, x.col, string_agg(x.found_by, ', ' ORDER BY x.found_by),
           coalesce((SELECT p.policy FROM sp_users.merge_policies p WHERE p.tbl = x.tbl AND p.col = x.col), 'move')
      FROM (SELECT c.conrelid::regclass AS tbl, a.attname AS col, 'foreign key' AS found_by
              FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             WHERE c.contype = 'f' AND c.confrelid = 'sp_users.users'::regclass AND cardinality(c.conkey) = 1 AND c.conparentid = 0
            UNION ALL
            SELECT r.tbl, r.col, 'registered' FROM sp_users.user_references r
            UNION ALL -- on Citus, where the foreign keys cannot exist
            SELECT 'sp_users.user_sessions'::regclass, 'user_id', 'sp_users.distribute()' WHERE sp_users._sessions_distributed()
            UNION ALL
            SELECT 'sp_users.account_failures'::regclass, 'user_id', 'sp_users.distribute()' WHERE sp_users._users_distributed()) x
     GROUP BY x.tbl, x.col
     ORDER BY x.tbl::text, x.col
$$;
COMMENT ON FUNCTION sp_users.list_user_references() IS 'Every column a merge follows (found by a foreign key to sp_users.users(id) and/or registered; on Citus sp_users.user_sessions.user_id and, with users distributed, sp_users.account_failures.user_id, whose foreign keys sp_users.distribute() replaces), with its merge policy (move, delete or keep).';

REVOKE ALL ON FUNCTION sp_users.set_merge_policy(regclass, name, text), sp_users.list_user_references() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.set_merge_policy(regclass, name, text), sp_users.list_user_references() TO sp_users_admin;
REVOKE ALL ON sp_users.merge_policies FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON sp_users.merge_policies TO sp_users_admin;

-- ==== Brute-force protection (issue 16).
-- Brute-force protection (README, "Brute-force protection"): the application records each failed
-- attempt (a login, a password-reset token, an API key, ...) for the address and/or the account;
-- a policy per kind of attempt turns failures into address bans (escalating, capped), network bans
-- (when enough addresses of one /24 or /64 are banned) and account lockouts (a growing wait with a
-- maximum, permanent after N lockouts if wanted). Exact under concurrency: every counter is one
-- row changed by an upsert under its row lock, so concurrent failures serialise and exactly one
-- crosses a threshold; a network is counted under a transaction-level lock of its own; a
-- rolled-back failure leaves nothing behind.

CREATE TABLE sp_users.failure_policies (
    kind                    text PRIMARY KEY,
    -- Addresses (fail2ban's maxretry / findtime / bantime, bantime.increment, bantime.maxtime):
    -- address_max_failures failures within address_window ban the address for address_ban,
    -- doubled for each earlier ban of that address (SPEC's escalation), at most address_ban_max.
    -- NULL: this kind does not count addresses.
    address_max_failures    integer DEFAULT 10,
    address_window          interval NOT NULL DEFAULT '10 minutes',
    address_ban             interval NOT NULL DEFAULT '15 minutes',
    address_ban_max         interval NOT NULL DEFAULT '1 day',
    -- Networks: when network_after addresses of one IPv4 /network_v4_prefix (IPv6
    -- /network_v6_prefix) are banned, the network is banned for network_ban. NULL: never.
    network_after           integer DEFAULT 5,
    network_v4_prefix       integer NOT NULL DEFAULT 24,
    network_v6_prefix       integer NOT NULL DEFAULT 64,
    network_ban             interval NOT NULL DEFAULT '1 day',
    -- Accounts (Keycloak's max login failures, wait increment, max wait, failure reset time,
    -- permanent lockout): account_max_failures failures, none more than account_reset apart, lock
    -- the account for account_lockout x account_lockout_factor^(lockouts so far), at most
    -- account_lockout_max; the account_permanent_after-th lockout in a row is permanent (NULL:
    -- never, the default: a permanent lockout lets anyone who knows a user name lock that user
    -- out). A success resets the count. NULL account_max_failures: no lockouts for this kind.
    account_max_failures    integer DEFAULT 5,
    account_reset           interval NOT NULL DEFAULT '12 hours',
    account_lockout         interval NOT NULL DEFAULT '1 minute',
    account_lockout_factor  double precision NOT NULL DEFAULT 2,
    account_lockout_max     interval NOT NULL DEFAULT '15 minutes',
    account_permanent_after integer,
    CONSTRAINT failure_policies_kind_check CHECK (kind OPERATOR(pg_catalog.<>) '' AND pg_catalog.length(kind) OPERATOR(pg_catalog.<=) 63),
    CONSTRAINT failure_policies_positive CHECK (
        coalesce(address_max_failures, 1) OPERATOR(pg_catalog.>) 0 AND coalesce(network_after, 1) OPERATOR(pg_catalog.>) 0
        AND coalesce(account_max_failures, 1) OPERATOR(pg_catalog.>) 0 AND coalesce(account_permanent_after, 1) OPERATOR(pg_catalog.>) 0
        AND address_window OPERATOR(pg_catalog.>) interval '0' AND address_ban OPERATOR(pg_catalog.>) interval '0'
        AND address_ban_max OPERATOR(pg_catalog.>=) address_ban AND network_ban OPERATOR(pg_catalog.>) interval '0'
        AND account_reset OPERATOR(pg_catalog.>) interval '0' AND account_lockout OPERATOR(pg_catalog.>) interval '0'
        AND account_lockout_max OPERATOR(pg_catalog.>=) account_lockout
        AND account_lockout_factor BETWEEN 1 AND 1000000),
    CONSTRAINT failure_policies_prefixes CHECK (network_v4_prefix BETWEEN 8 AND 31 AND network_v6_prefix BETWEEN 16 AND 127)
);
COMMENT ON TABLE sp_users.failure_policies IS 'Brute-force policy per kind of failed attempt (login, password_reset, api, or your own): thresholds, windows and durations for address bans, network bans and account lockouts. Administrators edit it with plain INSERT / UPDATE; record_failure reads it on every call.';
INSERT INTO sp_users.failure_policies (kind) VALUES ('login');
INSERT INTO sp_users.failure_policies (kind, address_max_failures, address_window, address_ban, address_ban_max,
                                       account_max_failures, account_reset, account_lockout, account_lockout_max)
VALUES ('password_reset', 5, '1 hour', '1 hour', '7 days', 3, '1 hour', '15 minutes', '1 day');
INSERT INTO sp_users.failure_policies (kind, address_max_failures, address_window, address_ban, address_ban_max,
                                       network_after, account_max_failures)
VALUES ('api', 50, '1 minute', '5 minutes', '1 hour', 10, NULL);

-- Recent failures of an address: their times within the window, oldest first (at most
-- address_max_failures of them), so the window slides exactly.
CREATE TABLE sp_users.address_failures (
    kind        text NOT NULL,   -- no foreign key: one more lookup per failure; cleanup_failures drops orphans
    ip_address  inet NOT NULL,
    recent      timestamptz[] NOT NULL,
    PRIMARY KEY (ip_address, kind)
);
COMMENT ON TABLE sp_users.address_failures IS 'Failures per address and kind not yet turned into a ban: the times of those within the policy''s window, oldest first. Written by record_failure; pruned by cleanup_failures.';

CREATE TABLE sp_users.account_failures (
    user_id          uuid NOT NULL REFERENCES sp_users.users (id) ON DELETE CASCADE,
    kind             text NOT NULL,   -- no foreign key, as in address_failures
    failures         integer NOT NULL,
    last_failure_at  timestamptz NOT NULL,
    lockouts         integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,            -- 'infinity': locked permanently
    PRIMARY KEY (user_id, kind)
);
CREATE INDEX account_failures_locked_idx ON sp_users.account_failures (locked_until DESC) WHERE locked_until IS NOT NULL;
COMMENT ON TABLE sp_users.account_failures IS 'Failures and lockouts per account and kind: failures since the last lockout, success or reset time; lockouts in a row; locked_until (infinity = permanently). Written by record_failure and record_success, lifted by lift_lockout, pruned by cleanup_failures.';

-- record_failure keeps the policies in each backend's memory: every change to them tells every
-- backend (at commit) to read them again.
CREATE FUNCTION sp_users._failure_policies_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_failure_policies_changed'
LANGUAGE C;
COMMENT ON FUNCTION sp_users._failure_policies_changed() IS 'Trigger: queues a relcache invalidation of sp_users.failure_policies, so every backend''s cached copy of the policies is read again once the change commits.';
-- Row level and ALWAYS, so that a logical replication worker applying a policy change fires it too.
CREATE TRIGGER failure_policies_changed AFTER INSERT OR UPDATE OR DELETE ON sp_users.failure_policies
    FOR EACH ROW EXECUTE FUNCTION sp_users._failure_policies_changed();
CREATE TRIGGER failure_policies_truncated AFTER TRUNCATE ON sp_users.failure_policies
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._failure_policies_changed();
ALTER TABLE sp_users.failure_policies ENABLE ALWAYS TRIGGER failure_policies_changed;
ALTER TABLE sp_users.failure_policies ENABLE ALWAYS TRIGGER failure_policies_truncated;

-- Dumped: the kinds an administrator added. The three built-in rows are made by CREATE EXTENSION
-- (restoring them would collide); changes to them are not dumped (README, Brute-force protection).
SELECT pg_catalog.pg_extension_config_dump('sp_users.failure_policies', 'WHERE kind NOT IN (''login'', ''password_reset'', ''api'')');
SELECT pg_catalog.pg_extension_config_dump('sp_users.address_failures', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.account_failures', '');

-- first x factor^steps, at most cap, without overflowing an interval however large steps grows.
CREATE FUNCTION sp_users._grown(first interval, factor double precision, steps integer, cap interval) RETURNS interval
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN factor <= 1 OR steps <= 0 THEN least(first, cap)
                WHEN steps * ln(factor) >= ln(greatest(extract(epoch FROM cap) / greatest(extract(epoch FROM first), 1e-6), 1)) THEN cap
                ELSE least(first * power(factor, steps), cap) END
$$;
COMMENT ON FUNCTION sp_users._grown(interval, double precision, integer, interval) IS 'Internal: first x factor^steps, capped, for escalating bans and lockouts (never overflows an interval).';

-- What a failure that crossed an address threshold does: the ban (escalating, capped), a fresh
-- count, and perhaps the network's ban. Called by record_failure (C) in the failing transaction.
CREATE FUNCTION sp_users._address_banned(kind text, addr inet, failures integer,
                                         OUT address_banned_until timestamptz, OUT network inet, OUT network_banned_until timestamptz)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p sp_users.failure_policies;
    prev integer;
    ban sp_users.banned_ips;
    net inet;
    banned_in_net bigint;
BEGIN
    PERFORM sp_users._citus_session(); -- it reads and changes banned_ips
    SELECT * INTO STRICT p FROM sp_users.failure_policies fp WHERE fp.kind = _address_banned.kind;
    SELECT b.ban_count INTO prev FROM sp_users.banned_ips b WHERE b.ip_address = addr;
    ban := sp_users.ban_ip(host(addr), format('%s failures: %s within %s', p.kind, failures, p.address_window),
                           sp_users._grown(p.address_ban, 2, coalesce(prev, 0), p.address_ban_max), 'brute_force:' || p.kind);
    address_banned_until := coalesce(ban.expires_at, 'infinity');
    DELETE FROM sp_users.address_failures a WHERE a.kind = p.kind AND a.ip_address = addr;
    IF p.network_after IS NULL THEN
        RETURN;
    END IF;
    net := network(set_masklen(addr, CASE family(addr) WHEN 4 THEN p.network_v4_prefix ELSE p.network_v6_prefix END));
    -- One network decision at a time; in read committed the count below then sees every ban
    -- committed before the lock was granted.
    PERFORM pg_advisory_xact_lock(21328, hashtext('sp_users.network ' || net::text));
    IF EXISTS (SELECT 1 FROM sp_users.banned_ips b WHERE b.ip_address >>= net AND (b.expires_at IS NULL OR b.expires_at > now())) THEN
        RETURN; -- already banned, by this or by a covering network
    END IF;
    SELECT count(*) INTO banned_in_net FROM sp_users.banned_ips b
     WHERE b.ip_address << net AND masklen(b.ip_address) = (CASE family(addr) WHEN 4 THEN 32 ELSE 128 END)
       AND (b.expires_at IS NULL OR b.expires_at > now());
    IF banned_in_net >= p.network_after THEN
        ban := sp_users.ban_ip(host(net) || '/' || masklen(net), format('%s failures: %s banned addresses in %s', p.kind, banned_in_net, net),
                               p.network_ban, 'brute_force:' || p.kind);
        network := net;
        network_banned_until := coalesce(ban.expires_at, 'infinity');
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users._address_banned(text, inet, integer) IS 'Internal (record_failure): bans an address whose failures crossed its policy''s threshold, clears its count, and bans its network when enough of its addresses are banned.';

-- What a failure that crossed an account threshold does: the next lockout, growing, capped, or
-- permanent at the policy's count. Returns the lockout's end.
CREATE FUNCTION sp_users._account_locked(kind text, user_id uuid, lockouts integer) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p sp_users.failure_policies;
    l integer := lockouts + 1;
    wait interval;
    locked timestamptz;
BEGIN
    SELECT * INTO STRICT p FROM sp_users.failure_policies fp WHERE fp.kind = _account_locked.kind;
    IF p.account_permanent_after IS NULL OR l < p.account_permanent_after THEN
        wait := sp_users._grown(p.account_lockout, p.account_lockout_factor, l - 1, p.account_lockout_max);
    END IF;
    UPDATE sp_users.account_failures a
       SET failures = 0, lockouts = l,
           locked_until = greatest(a.locked_until, coalesce(now() + wait, 'infinity'))
     WHERE a.user_id = _account_locked.user_id AND a.kind = p.kind
    RETURNING a.locked_until INTO locked;
    RETURN locked;
END
$$;
COMMENT ON FUNCTION sp_users._account_locked(text, uuid, integer) IS 'Internal (record_failure): locks an account whose failures crossed its policy''s threshold, for a wait that grows with the lockouts in a row (or permanently), and starts its count again.';

CREATE FUNCTION sp_users.record_failure(kind text, ip text DEFAULT NULL, user_id uuid DEFAULT NULL,
                                        OUT outcome text[], OUT address_failures integer, OUT address_banned_until timestamptz,
                                        OUT network inet, OUT network_banned_until timestamptz,
                                        OUT account_failures integer, OUT account_locked_until timestamptz)
AS 'MODULE_PATHNAME', 'sp_users_record_failure'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.record_failure(text, text, uuid) IS
'Records one failed attempt of a kind (a row of sp_users.failure_policies: login, password_reset, api, ...) for an address and/or an account, and applies the policy: address_max_failures within address_window ban the address (ban_ip, ban_source brute_force:<kind>) for address_ban doubled per earlier ban of it, at most address_ban_max, and clear its count; network_after banned addresses in its /network_v4_prefix (/network_v6_prefix) ban the network for network_ban; account_max_failures failures (reset after account_reset without one) lock the account for account_lockout x factor^(lockouts so far), at most account_lockout_max, permanently at the account_permanent_after-th lockout in a row. Returns outcome ({counted}, or what happened: address_banned, network_banned, account_locked), the counts, the ban ends and account_locked_until (infinity = permanently; NULL = not locked). Exact under concurrency: N concurrent failures crossing a threshold make one ban or lockout; a rolled-back call counts nothing. Unknown kind, both NULL, or a network as ip: 22023; a bad address 22P02; a missing user P0002.';

-- Raises 22023 for an unknown kind (NULL: any kind) and P0002 for a missing or deleted user.
CREATE FUNCTION sp_users._failure_args(kind text, user_id uuid, any_kind boolean) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (any_kind AND kind IS NULL) AND NOT EXISTS (SELECT 1 FROM sp_users.failure_policies p WHERE p.kind = _failure_args.kind) THEN
        RAISE EXCEPTION 'unknown failure kind: %', coalesce(kind, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF user_id IS NULL OR NOT EXISTS (SELECT 1 FROM sp_users.users u WHERE u.id = user_id AND u.status <> 'deleted') THEN
        RAISE EXCEPTION 'user not found: %', coalesce(user_id::text, '<NULL>') USING ERRCODE = 'P0002';
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users._failure_args(text, uuid, boolean) IS 'Internal: the argument checks of record_success, account_locked_until and lift_lockout (22023 unknown kind, P0002 missing or deleted user).';

CREATE FUNCTION sp_users.record_success(kind text, user_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sp_users._failure_args(kind, user_id, false);
    IF EXISTS (SELECT 1 FROM sp_users.account_failures a
                WHERE a.user_id = record_success.user_id AND a.kind = record_success.kind AND a.locked_until > now()) THEN
        RETURN false;
    END IF;
    DELETE FROM sp_users.account_failures a WHERE a.user_id = record_success.user_id AND a.kind = record_success.kind;
    RETURN true;
END
$$;
COMMENT ON FUNCTION sp_users.record_success(text, uuid) IS 'Records a successful attempt of a kind for an account: its failure count and lockouts in a row start again from zero. Returns false (and resets nothing) while the account is locked for that kind: check account_locked_until before letting a user in. 22023 for an unknown kind, P0002 for a missing user.';

CREATE FUNCTION sp_users.account_locked_until(user_id uuid) RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sp_users._failure_args(NULL, user_id, true);
    RETURN (SELECT max(a.locked_until) FROM sp_users.account_failures a WHERE a.user_id = account_locked_until.user_id AND a.locked_until > now());
END
$$;
COMMENT ON FUNCTION sp_users.account_locked_until(uuid) IS 'When the account''s lockout ends (the latest over all kinds; infinity = locked permanently), or NULL when it is not locked; P0002 for a missing user. find_authenticated_user raises 28000 for a locked account.';

CREATE FUNCTION sp_users.list_lockouts(lim integer DEFAULT 100) RETURNS SETOF sp_users.account_failures
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT a.* FROM sp_users.account_failures a JOIN sp_users.users u ON u.id = a.user_id AND u.status <> 'deleted'
                  WHERE a.locked_until > now()
                  ORDER BY a.locked_until DESC, a.user_id, a.kind
                  LIMIT sp_users._page_limit(lim);
END
$$;
COMMENT ON FUNCTION sp_users.list_lockouts(integer) IS 'Accounts locked now (one row per account and kind; deleted users left out), permanent ones first, then by lockout end; lim capped at 100.';

CREATE FUNCTION sp_users.lift_lockout(user_id uuid, kind text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM sp_users._failure_args(kind, user_id, true);
    DELETE FROM sp_users.account_failures a WHERE a.user_id = lift_lockout.user_id AND (lift_lockout.kind IS NULL OR a.kind = lift_lockout.kind);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION sp_users.lift_lockout(uuid, text) IS 'Lifts the lockouts of an account (of one kind, or all) and clears its failure counts, permanent lockouts included; returns the number of (account, kind) rows cleared. 22023 for an unknown kind, P0002 for a missing user.';

-- A merge does not pass the source's failure counts and lockouts to the target: they are about
-- attempts on the source account.
INSERT INTO sp_users.merge_policies VALUES ('sp_users.account_failures', 'user_id', 'delete');

CREATE FUNCTION sp_users.cleanup_failures() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH a AS (DELETE FROM sp_users.address_failures f
                WHERE NOT EXISTS (SELECT 1 FROM sp_users.failure_policies p
                                   WHERE p.kind = f.kind AND p.address_max_failures IS NOT NULL
                                     AND f.recent[cardinality(f.recent)] > now() - p.address_window) RETURNING 1),
         b AS (DELETE FROM sp_users.account_failures f
                WHERE NOT EXISTS (SELECT 1 FROM sp_users.failure_policies p
                                   WHERE p.kind = f.kind AND p.account_max_failures IS NOT NULL
                                     AND (f.locked_until > now() OR f.last_failure_at > now() - p.account_reset)) RETURNING 1)
    SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)
$$;
COMMENT ON FUNCTION sp_users.cleanup_failures() IS 'Deletes failure records that no longer count: addresses whose last failure left the window, accounts not locked whose last failure is older than the reset time, and records of kinds whose policy is gone or no longer counts them. The scheduled clean-up (run_anonymous_cleanup) calls it; returns the rows deleted.';

REVOKE ALL ON FUNCTION sp_users._grown(interval, double precision, integer, interval), sp_users._address_banned(text, inet, integer),
    sp_users._account_locked(text, uuid, integer), sp_users._failure_policies_changed(),
    sp_users._failure_args(text, uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users.record_failure(text, text, uuid), sp_users.record_success(text, uuid),
    sp_users.account_locked_until(uuid), sp_users.list_lockouts(integer), sp_users.lift_lockout(uuid, text),
    sp_users.cleanup_failures() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.record_failure(text, text, uuid), sp_users.record_success(text, uuid),
    sp_users.account_locked_until(uuid), sp_users.list_lockouts(integer), sp_users.lift_lockout(uuid, text),
    sp_users.cleanup_failures() TO sp_users_admin;
GRANT EXECUTE ON FUNCTION sp_users.account_locked_until(uuid), sp_users.list_lockouts(integer) TO sp_users_readonly;
GRANT EXECUTE ON FUNCTION sp_users.record_failure(text, text, uuid), sp_users.record_success(text, uuid),
    sp_users.account_locked_until(uuid) TO sp_users_app;
REVOKE ALL ON sp_users.failure_policies, sp_users.address_failures, sp_users.account_failures FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON sp_users.failure_policies, sp_users.address_failures,
    sp_users.account_failures TO sp_users_admin;

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


-- ==== Logical replication (issue 15): derived and configuration tables guarded, check_replication().
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

REVOKE ALL ON FUNCTION sp_users._ignore_replicated() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users.check_replication() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.check_replication() TO sp_users_admin;

COMMENT ON FUNCTION sp_users.merge_users(uuid, uuid) IS
'Moves every row that points at source to target — in every table of the database with a single-column foreign key to sp_users.users(id), whatever its schema, and in every column registered with register_user_reference — then deletes source, in one transaction. Both users are locked in id order first, tables are processed in a fixed order, so concurrent merges cannot deadlock each other. When a moved row would violate a unique index that has the user column as a key column (the target already has its counterpart; partial indexes, expression keys and NULLS NOT DISTINCT included), the target''s row is kept and the source''s is deleted, counted under tables->''dropped_duplicates''. Returns sessions moved, total rows moved, and tables: {"schema.table.column": rows moved} (zeros included). Per column, set_merge_policy makes a merge delete the source''s rows instead (counted under tables->''deleted_with_source'') or refuse while there are any (keep: 2BP01). Source = target raises 22023; a missing (or deleted) user P0002.';

-- ==== normalize_email trimmed the letter v from both ends: E'\v' is a plain v in PostgreSQL
-- (a vertical tab is \x0B). Stored emails stay valid: none starts or ends with white space.
CREATE OR REPLACE FUNCTION sp_users.normalize_email(email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.lower(pg_catalog.btrim(email, E' \t\r\n\f\x0B')); -- \x0B: vertical tab (E'' has no \v)
END;
COMMENT ON FUNCTION sp_users.normalize_email(text) IS
'The stored form of an email address: surrounding whitespace removed, lower-cased. sp_users.users enforces it with a CHECK.';

-- ==== Users split into shards on Citus (issue 17): the email and name claims, and the functions that
-- keep them (or take another statement shape there). Same text as sql/install.
-- Under sp_users.distribute() Citus splits users into shards by id, and a unique index holds only
-- within a shard: these hold each taken email and each taken name once, split by their own key, so
-- two sign-ups with one email meet on one shard whatever their user ids (docs/scaling.md). sp_users'
-- functions write them with the user, in one transaction. Empty and unused on a single server.
CREATE TABLE sp_users.user_emails (
    email    text PRIMARY KEY,
    user_id  uuid NOT NULL
);
COMMENT ON TABLE sp_users.user_emails IS 'Citus only (sp_users.distribute()): the user holding each email, distributed by email, so that emails stay unique across the shards of users. Written by sp_users'' functions; empty on a single server.';
CREATE TABLE sp_users.user_names (
    name     text PRIMARY KEY,
    user_id  uuid NOT NULL
);
COMMENT ON TABLE sp_users.user_names IS 'Citus only (sp_users.distribute()): the user holding each name, distributed by name, so that names stay unique across the shards of users. Written by sp_users'' functions; empty on a single server.';

SELECT pg_catalog.pg_extension_config_dump('sp_users.user_emails', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.user_names', '');
REVOKE ALL ON sp_users.user_emails, sp_users.user_names FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON sp_users.user_emails, sp_users.user_names TO sp_users_admin;

CREATE FUNCTION sp_users._users_distributed() RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_users_distributed'
LANGUAGE C STABLE;
COMMENT ON FUNCTION sp_users._users_distributed() IS
'Internal: whether Citus splits sp_users.users into shards (sp_users.distribute()); the functions that write emails, names or delete users then also keep user_emails, user_names, the sessions and the account failures in step, which foreign keys and triggers do on a single server.';

CREATE OR REPLACE FUNCTION sp_users.delete_user(id uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone_email text;
    gone_name text;
BEGIN
    IF sp_users._users_distributed() THEN
        -- Citus: what the foreign keys do on one server (sessions keep their history, failures go)
        -- and the user's email and name freed.
        DELETE FROM sp_users.users u WHERE u.id = delete_user.id AND u.status <> 'deleted'
        RETURNING u.email, u.name INTO gone_email, gone_name;
        IF NOT FOUND THEN
            PERFORM sp_users._user_not_found(delete_user.id);
        END IF;
        PERFORM sp_users._forget_deleted_users(ARRAY[delete_user.id], ARRAY[gone_email], ARRAY[gone_name]);
        RETURN;
    END IF;
    DELETE FROM sp_users.users u WHERE u.id = delete_user.id AND u.status <> 'deleted';
    IF NOT FOUND THEN
        PERFORM sp_users._user_not_found(delete_user.id);
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users.delete_user(uuid) IS
'Hard delete: removes the row (its sessions keep their history with user_id set to NULL). P0002 "user not found: ID" when there is no such non-deleted user.';

CREATE OR REPLACE FUNCTION sp_users.find_by_role(role sp_users.user_role) RETURNS SETOF sp_users.users
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT * FROM sp_users.users u
     WHERE u.roles @> ARRAY[find_by_role.role] AND u.status <> 'deleted'
     ORDER BY u.created_at DESC, u.id;
END
$$;
COMMENT ON FUNCTION sp_users.find_by_role(sp_users.user_role) IS 'Every user holding the role, newest first.';

CREATE OR REPLACE FUNCTION sp_users.list_by_filter(status sp_users.user_status DEFAULT NULL, role sp_users.user_role DEFAULT NULL,
                                        older_than_days integer DEFAULT NULL, lim integer DEFAULT 20)
RETURNS SETOF sp_users.users
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    page integer := sp_users._page_limit(lim);
    cutoff timestamptz := now() - make_interval(days => older_than_days); -- here: on Citus now() would be each worker's
BEGIN
    RETURN QUERY
    SELECT * FROM sp_users.users u
     WHERE u.status <> 'deleted'
       AND (list_by_filter.status IS NULL OR u.status = list_by_filter.status)
       AND (list_by_filter.role IS NULL OR u.roles @> ARRAY[list_by_filter.role])
       AND (older_than_days IS NULL OR u.created_at < cutoff)
     ORDER BY u.created_at DESC, u.id
     LIMIT page;
END
$$;
COMMENT ON FUNCTION sp_users.list_by_filter(sp_users.user_status, sp_users.user_role, integer, integer) IS
'Users matching every non-NULL filter (status, role, created more than older_than_days days ago), newest first, lim capped at 100. Deleted users never match, even with status => ''deleted''.';

CREATE OR REPLACE FUNCTION sp_users.export_users(lim integer DEFAULT NULL) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    page integer := CASE WHEN lim IS NULL THEN NULL ELSE sp_users._page_limit(lim) END;
BEGIN
    RETURN QUERY
    SELECT to_jsonb(u) FROM sp_users.users u
     WHERE u.status <> 'deleted'
     ORDER BY u.created_at, u.id
     LIMIT page;
END
$$;
COMMENT ON FUNCTION sp_users.export_users(integer) IS
'One JSON object per user with every column, oldest first. lim NULL = all users; otherwise capped at 100 like every listing.';

CREATE OR REPLACE FUNCTION sp_users.list_users_by_role(role text) RETURNS SETOF sp_users.users
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role <> ALL (enum_range(NULL::sp_users.user_role)::text[]) THEN
        RETURN;
    END IF;
    RETURN QUERY -- PL/pgSQL: Citus (sp_users.distribute()) plans no statement of a SQL function with parameters
    SELECT u.* FROM sp_users.users u
     WHERE u.roles @> ARRAY[role::sp_users.user_role]
       AND u.status <> 'deleted'
     ORDER BY u.created_at DESC, u.id;
END
$$;
COMMENT ON FUNCTION sp_users.list_users_by_role(text) IS 'Users holding the role named by the text, newest first; an unknown role name returns no rows (no error).';

-- ==== Scale-out on Citus (issue 17). Same text as sql/install/50_bans.sql (_escalated_expiry,
-- _citus_session and the ban functions calling it that 0.2.0 had) and sql/install/88_citus.sql.
CREATE FUNCTION sp_users._escalated_expiry(start timestamptz, plain_expiry timestamptz, duration interval, previous_bans bigint) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'sp_users_escalated_expiry'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._escalated_expiry(timestamptz, timestamptz, interval, bigint) IS
'Internal: start + _escalated_duration(duration, previous_bans), given plain_expiry = start + duration (returned when nothing escalates). Immutable (an escalated duration is whole microseconds), so ban_ip''s upsert holds only immutable expressions in DO UPDATE SET, as Citus requires.';

CREATE FUNCTION sp_users._citus_session() RETURNS void
AS 'MODULE_PATHNAME', 'sp_users_citus_session'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sp_users._citus_session() IS
'Internal: on a Citus node, makes the settings that decide how Citus writes a statement and how other nodes read it canonical (search_path, DateStyle, IntervalStyle, standard_conforming_strings) here and, by Citus'' SET LOCAL propagation, on every node the transaction reaches, after any the caller had Citus replay there; until the calling function''s SET clause ends. Nothing elsewhere. Called first by every function whose statements on banned_ips Citus may run on other nodes as the owner.';

CREATE OR REPLACE FUNCTION sp_users.cleanup_expired_bans() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sp_users._citus_session();
    WITH gone AS (DELETE FROM sp_users.banned_ips b WHERE b.expires_at <= now() RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION sp_users.cleanup_expired_bans() IS 'Deletes bans whose expiry has passed (never permanent ones); returns how many. Expired bans already stop applying without it: this only reclaims space (and forgets ban counts).';

CREATE OR REPLACE FUNCTION sp_users.list_bans_by_source(source text, lim integer DEFAULT 100) RETURNS SETOF sp_users.banned_ips
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sp_users._citus_session();
    SELECT * FROM sp_users.banned_ips b
     WHERE b.ban_source = $1 AND (b.expires_at IS NULL OR b.expires_at > now())
     ORDER BY b.banned_at DESC, b.ip_address
     LIMIT sp_users._page_limit($2)
$$;
COMMENT ON FUNCTION sp_users.list_bans_by_source(text, integer) IS 'Active bans with this ban_source, most recent first; lim capped at 100.';

CREATE OR REPLACE FUNCTION sp_users.list_bans_by_fingerprint(fingerprint text) RETURNS SETOF sp_users.banned_ips
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sp_users._citus_session();
    SELECT * FROM sp_users.banned_ips b WHERE b.source_fingerprint = $1 ORDER BY b.banned_at DESC, b.ip_address
$$;
COMMENT ON FUNCTION sp_users.list_bans_by_fingerprint(text) IS 'Every ban (active or expired) recorded with this source fingerprint, most recent first.';

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

REVOKE ALL ON FUNCTION sp_users._escalated_expiry(timestamptz, timestamptz, interval, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._citus_session() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._pin_search_paths() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._restrict_worker() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._set_guard_installed() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._pin_owner_settings(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users.distribute(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._sessions_distributed() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._clear_sessions_of_deleted() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._keep_session_user_ids() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._users_distributed() FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._claim_user_key(text, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._create_user_on_citus(text, text, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._forget_deleted_users(uuid[], text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users._revoke_sessions_of(uuid[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION sp_users.repair_user_claims() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sp_users.repair_user_claims() TO sp_users_admin;
