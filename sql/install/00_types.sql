-- Types, and the pure helpers that table constraints use.

CREATE TYPE sp_users.user_status AS ENUM ('active', 'inactive', 'suspended', 'pending', 'deleted', 'temporary');
COMMENT ON TYPE sp_users.user_status IS 'Lifecycle state of a user; ''deleted'' users are invisible to every sp_users finder, listing and statistic.';

CREATE TYPE sp_users.user_role AS ENUM ('admin', 'user', 'anonymous');
COMMENT ON TYPE sp_users.user_role IS 'Role of a user; a user holds a non-empty set of distinct roles.';

-- A SQL-standard body: bound when created (no search_path lookup at run time, nothing to
-- hijack) and inlined into the CHECK below, so an INSERT does not parse a function body.
CREATE FUNCTION sp_users.normalize_email(email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.lower(pg_catalog.btrim(email, E' \t\r\n\f\x0B')); -- \x0B: vertical tab (E'' has no \v)
END;
COMMENT ON FUNCTION sp_users.normalize_email(text) IS
'The stored form of an email address: surrounding whitespace removed, lower-cased. sp_users.users enforces it with a CHECK.';

-- What a stored email must be: exactly one @, something on both sides, no white space or control
-- character, at most 320 characters (src/core/email.cpp). NULL when acceptable, else the rule broken.
CREATE FUNCTION sp_users.email_problem(email text) RETURNS text
AS 'MODULE_PATHNAME', 'sp_users_email_problem'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.email_problem(text) IS
'NULL when an email address (in its stored form: see normalize_email) is acceptable, else the rule it breaks: exactly one @, something before and after it, no white space or control character, at most 320 characters. user@localhost is accepted. The CHECK users_email_check on sp_users.users applies it.';

-- The one definition of an active session (SPEC: not ended, not revoked, not expired). Inlined
-- where it is used, so it costs nothing and indexes still apply.
CREATE FUNCTION sp_users.session_is_active(ended_at timestamptz, revoked_at timestamptz, expires_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
END;
COMMENT ON FUNCTION sp_users.session_is_active(timestamptz, timestamptz, timestamptz) IS
'True for an active session: not ended, not revoked, not expired (expires_at NULL or later than now()). Pass a session''s ended_at, revoked_at, expires_at.';

CREATE FUNCTION sp_users._roles_valid(roles sp_users.user_role[]) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_roles_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._roles_valid(sp_users.user_role[]) IS
'Internal: true when a role array is non-empty, has no NULL and no duplicate (the CHECK on sp_users.users.roles).';

CREATE FUNCTION sp_users._dedupe_roles(roles sp_users.user_role[]) RETURNS sp_users.user_role[]
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

-- The user-facing errors of the SQL functions are raised from C with the context hidden: a client
-- sees the message, SQLSTATE, hint and constraint, not the internal frames that led there.
CREATE FUNCTION sp_users._fail(sqlstate text, message text, hint text DEFAULT NULL, constraint_name text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sp_users_fail'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sp_users._fail(text, text, text, text) IS
'Internal: raises an error with this SQLSTATE, message, optional hint and optional constraint of sp_users.users, without a CONTEXT.';

CREATE FUNCTION sp_users._page_limit(lim integer, arg text DEFAULT 'lim') RETURNS integer
AS 'MODULE_PATHNAME', 'sp_users_page_limit'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._page_limit(integer, text) IS
'Internal: a listing limit capped at 100 (MAX_PAGE_SIZE); NULL or negative raises 22023.';

CREATE FUNCTION sp_users._page_offset(off integer) RETURNS integer
AS 'MODULE_PATHNAME', 'sp_users_page_offset'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._page_offset(integer) IS 'Internal: a listing offset; NULL or negative raises 22023.';

CREATE FUNCTION sp_users._user_not_found(id anyelement) RETURNS void
AS 'MODULE_PATHNAME', 'sp_users_user_not_found'
LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION sp_users._user_not_found(anyelement) IS 'Internal: raises P0002 "user not found: <id>".';

CREATE FUNCTION sp_users._positive_interval(value interval, arg text) RETURNS interval
AS 'MODULE_PATHNAME', 'sp_users_positive_interval'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._positive_interval(interval, text) IS
'Internal: passes NULL or a positive interval through; zero or negative raises 22023 naming the argument.';

CREATE FUNCTION sp_users.normalize_ip(ip text) RETURNS inet
AS 'MODULE_PATHNAME', 'sp_users_normalize_ip'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.normalize_ip(text) IS
'Parses IPv4/IPv6 address or network text the way every sp_users function does: IPv4-mapped IPv6 becomes IPv4, /32 and /128 become plain addresses, surrounding whitespace is ignored. Garbage, octets with leading zeros, zone ids or host bits right of the mask raise 22P02 naming the input.';

-- Result shapes.
CREATE TYPE sp_users.user_with_sessions AS (
    id uuid, name text, email text, full_name text, status sp_users.user_status,
    roles sp_users.user_role[], created_at timestamptz, active_sessions bigint, last_session_at timestamptz);
COMMENT ON TYPE sp_users.user_with_sessions IS 'A user with its number of active sessions and the time of its most recent session activity.';

CREATE TYPE sp_users.user_activity AS (user_id uuid, last_active timestamptz, session_count bigint);
COMMENT ON TYPE sp_users.user_activity IS 'Result of sp_users.get_activity.';

CREATE TYPE sp_users.admin_outcome AS (outcome text, user_id uuid, roles sp_users.user_role[]);
COMMENT ON TYPE sp_users.admin_outcome IS 'Result of promote_to_admin / demote_from_admin.';
