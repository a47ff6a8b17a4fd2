-- Users: create, find, list, search, update, delete, export.
-- Every function: SECURITY DEFINER (callers need EXECUTE only, never table privileges) with a
-- pinned search_path, so nothing a caller puts on its search_path can change what runs here.

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

-- Citus (docs/scaling.md): sp_users.distribute() may split users into shards by id.
CREATE FUNCTION sp_users._users_distributed() RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_users_distributed'
LANGUAGE C STABLE;
COMMENT ON FUNCTION sp_users._users_distributed() IS
'Internal: whether Citus splits sp_users.users into shards (sp_users.distribute()); the functions that write emails, names or delete users then also keep user_emails, user_names, the sessions and the account failures in step, which foreign keys and triggers do on a single server.';

CREATE FUNCTION sp_users.create_user(name text, email text, full_name text DEFAULT NULL, display_name text DEFAULT NULL)
RETURNS sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_create_user'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.create_user(text, text, text, text) IS
'Creates an active user with roles {user}. The email is stored trimmed and lower-cased and must pass email_problem (else 23514 naming the rule it breaks); display_name defaults to full_name. A taken email raises 23505 "user already exists with email: E", a taken name 23505 too.';

CREATE FUNCTION sp_users.create_user_if_absent(name text, email text, full_name text DEFAULT NULL, display_name text DEFAULT NULL)
RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_create_user_if_absent'
LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1;
COMMENT ON FUNCTION sp_users.create_user_if_absent(text, text, text, text) IS
'Like create_user, but returns zero rows instead of raising when the name or email is taken (race-safe: ON CONFLICT DO NOTHING).';

CREATE FUNCTION sp_users.find_by_id(id uuid) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_by_id'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_by_id(uuid) IS 'The user with this id, or no row (deleted users are not found).';

CREATE FUNCTION sp_users.find_by_email(email text) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_by_email'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_by_email(text) IS 'The user with this email (the argument is trimmed and lower-cased first), or no row.';

CREATE FUNCTION sp_users.find_by_name(name text) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_by_name'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_by_name(text) IS 'The user with exactly this name (case-sensitive), or no row.';

-- The listings with arguments are PL/pgSQL: under sp_users.distribute() Citus plans no statement
-- of a SQL function that has parameters.
CREATE FUNCTION sp_users.find_by_role(role sp_users.user_role) RETURNS SETOF sp_users.users
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

CREATE FUNCTION sp_users.find_first_user() RETURNS SETOF sp_users.users
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM sp_users.users u WHERE u.status <> 'deleted' ORDER BY u.created_at, u.id LIMIT 1 $$;
COMMENT ON FUNCTION sp_users.find_first_user() IS 'The oldest user, or no row.';

CREATE FUNCTION sp_users.find_first_admin() RETURNS SETOF sp_users.users
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM sp_users.users u
     WHERE u.roles @> ARRAY['admin'::sp_users.user_role] AND u.status <> 'deleted'
     ORDER BY u.created_at, u.id LIMIT 1
$$;
COMMENT ON FUNCTION sp_users.find_first_admin() IS 'The oldest user with role admin, or no row.';

CREATE FUNCTION sp_users.find_authenticated_user(id uuid) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_authenticated_user'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_authenticated_user(uuid) IS 'The user with this id only when its status is active (use it to authorise a request), or no row; 28000 "account locked until ..." (or "locked permanently") while brute-force protection (record_failure) has locked the account.';

CREATE FUNCTION sp_users._looks_like_uuid(identifier text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT identifier ~ '^\s*\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?\s*$'
$$;
COMMENT ON FUNCTION sp_users._looks_like_uuid(text) IS 'Internal: true when the text is a uuid in any spelling PostgreSQL accepts.';

CREATE FUNCTION sp_users.find_user(identifier text) RETURNS SETOF sp_users.users
AS 'MODULE_PATHNAME', 'sp_users_find_user'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.find_user(text) IS 'Finds by whatever the identifier is: a uuid by id, text containing @ by email, anything else by name.';

-- Two statements, not a join: under sp_users.distribute() (Citus) the sessions are on the
-- workers and the users on the coordinator, which Citus does not join.
CREATE FUNCTION sp_users.find_with_sessions(id uuid) RETURNS SETOF sp_users.user_with_sessions
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

CREATE FUNCTION sp_users.get_activity(id uuid) RETURNS sp_users.user_activity
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

CREATE FUNCTION sp_users.list_users(lim integer DEFAULT 20, off integer DEFAULT 0) RETURNS SETOF sp_users.users
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN QUERY SELECT * FROM sp_users.users u WHERE u.status OPERATOR(pg_catalog.<>) 'deleted'
                  ORDER BY u.created_at DESC, u.id
                  LIMIT sp_users._page_limit(lim) OFFSET sp_users._page_offset(off);
END
$$;
COMMENT ON FUNCTION sp_users.list_users(integer, integer) IS 'A page of users, newest first. lim is capped at 100; a negative or NULL lim/off raises 22023.';

CREATE FUNCTION sp_users.list_all_users() RETURNS SETOF sp_users.users
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM sp_users.users u WHERE u.status <> 'deleted' ORDER BY u.created_at DESC, u.id $$;
COMMENT ON FUNCTION sp_users.list_all_users() IS 'Every user, newest first (no page cap: meant for administration and export).';

CREATE FUNCTION sp_users.search_users(query text, lim integer DEFAULT 20) RETURNS SETOF sp_users.users
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

CREATE FUNCTION sp_users.count_users() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT count(*) FROM sp_users.users u WHERE u.status <> 'deleted' $$;
COMMENT ON FUNCTION sp_users.count_users() IS 'Number of users (deleted ones excluded).';

CREATE FUNCTION sp_users.list_by_filter(status sp_users.user_status DEFAULT NULL, role sp_users.user_role DEFAULT NULL,
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

-- The session figures of every user at once (a grouped scan of the sessions, joined to the users):
-- the order needs them all anyway, and under sp_users.distribute() Citus runs the grouping on the
-- workers and joins its result to the coordinator's users.
CREATE FUNCTION sp_users.list_non_anonymous_with_sessions(lim integer DEFAULT 20) RETURNS SETOF sp_users.user_with_sessions
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

CREATE FUNCTION sp_users.is_temporary_anonymous(id uuid) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_is_temporary_anonymous'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.is_temporary_anonymous(uuid) IS 'True when the user has role anonymous; P0002 when it does not exist.';

-- Updates. One private worker applies a change and raises the SPEC errors.
CREATE FUNCTION sp_users._update_user(id uuid, changes jsonb) RETURNS sp_users.users
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

CREATE FUNCTION sp_users.update_email(id uuid, email text) RETURNS sp_users.users
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._update_user($1, jsonb_build_object('email', $2)) $$;
COMMENT ON FUNCTION sp_users.update_email(uuid, text) IS
'Sets the email (trimmed, lower-cased); a changed email resets email_verified to false. 23505 when taken, P0002 when the user does not exist.';

CREATE FUNCTION sp_users.update_full_name(id uuid, full_name text) RETURNS sp_users.users
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._update_user($1, jsonb_build_object('full_name', $2)) $$;
COMMENT ON FUNCTION sp_users.update_full_name(uuid, text) IS 'Sets full_name (NULL clears it); P0002 when the user does not exist.';

CREATE FUNCTION sp_users.update_display_name(id uuid, display_name text) RETURNS sp_users.users
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._update_user($1, jsonb_build_object('display_name', $2)) $$;
COMMENT ON FUNCTION sp_users.update_display_name(uuid, text) IS 'Sets display_name (NULL clears it); P0002 when the user does not exist.';

CREATE FUNCTION sp_users.update_status(id uuid, status sp_users.user_status) RETURNS sp_users.users
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._update_user($1, jsonb_build_object('status', $2)) $$;
COMMENT ON FUNCTION sp_users.update_status(uuid, sp_users.user_status) IS
'Sets the status. Setting ''deleted'' soft-deletes the user (its open sessions are revoked); a deleted user cannot be changed through sp_users any more (P0002).';

CREATE FUNCTION sp_users.update_email_verified(id uuid, email_verified boolean) RETURNS sp_users.users
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._update_user($1, jsonb_build_object('email_verified', $2)) $$;
COMMENT ON FUNCTION sp_users.update_email_verified(uuid, boolean) IS 'Sets email_verified; P0002 when the user does not exist.';

CREATE FUNCTION sp_users.update_user(id uuid, email text, full_name text, display_name text, status sp_users.user_status)
RETURNS sp_users.users
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sp_users._update_user($1, jsonb_build_object('email', $2, 'full_name', $3, 'display_name', $4, 'status', $5))
$$;
COMMENT ON FUNCTION sp_users.update_user(uuid, text, text, text, sp_users.user_status) IS
'Sets email, full_name, display_name and status at once (exactly the values given; NULL email or status violates NOT NULL). A changed email resets email_verified.';

CREATE FUNCTION sp_users.assign_roles(id uuid, roles sp_users.user_role[]) RETURNS sp_users.users
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._update_user($1, jsonb_build_object('roles', to_jsonb(sp_users._dedupe_roles($2)))) $$;
COMMENT ON FUNCTION sp_users.assign_roles(uuid, sp_users.user_role[]) IS
'Replaces the roles (duplicates dropped). An empty or NULL array, or a NULL element, raises 22023; P0002 when the user does not exist.';

CREATE FUNCTION sp_users.delete_user(id uuid) RETURNS void
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

CREATE FUNCTION sp_users.bulk_update_status(ids uuid[], status sp_users.user_status) RETURNS bigint
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

CREATE FUNCTION sp_users.bulk_delete(ids uuid[]) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users.bulk_update_status($1, 'deleted') $$;
COMMENT ON FUNCTION sp_users.bulk_delete(uuid[]) IS 'Soft delete: sets status deleted on every listed user (their open sessions are revoked); returns how many were deleted now.';

CREATE FUNCTION sp_users.export_users(lim integer DEFAULT NULL) RETURNS SETOF jsonb
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
