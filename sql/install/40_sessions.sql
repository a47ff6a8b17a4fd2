-- Sessions. Active = ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()).

CREATE FUNCTION sp_users._checked_session_id(session_id text) RETURNS text
AS 'MODULE_PATHNAME', 'sp_users_checked_session_id'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._checked_session_id(text) IS
'Internal: the session id as given when user_sessions_session_id_check accepts it (not empty, at most 255 characters); otherwise 23514 saying which, with that constraint, no row in DETAIL and no internal context.';

CREATE FUNCTION sp_users.start_session(user_id uuid, session_id text DEFAULT NULL, ip_address text DEFAULT NULL,
                                       user_agent text DEFAULT NULL, device_type text DEFAULT NULL,
                                       fingerprint_hash text DEFAULT NULL, expires_in interval DEFAULT '7 days')
RETURNS sp_users.user_sessions
AS 'MODULE_PATHNAME', 'sp_users_start_session'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.start_session(uuid, text, text, text, text, text, interval) IS
'Starts a session (a random id "sess_<32 hex>" when session_id is NULL). user_type is anon for an anonymous user (or no user), registered otherwise. ip_address is normalised like every sp_users address (22P02 when invalid). expires_in NULL = never expires; zero or negative raises 22023. P0002 when the user does not exist; 23505 when the session id is taken.';

CREATE FUNCTION sp_users.touch_session(session_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_touch_session'
LANGUAGE C VOLATILE STRICT SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.touch_session(text) IS 'Records activity on an active session; false when the session is unknown, ended, revoked or expired.';

CREATE FUNCTION sp_users._require_user(id uuid) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM sp_users.users u WHERE u.id = _require_user.id AND u.status <> 'deleted';
    IF NOT FOUND THEN
        PERFORM sp_users._user_not_found(_require_user.id);
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users._require_user(uuid) IS 'Internal: raises P0002 unless a non-deleted user has this id.';

CREATE FUNCTION sp_users.list_sessions(user_id uuid) RETURNS SETOF sp_users.user_sessions
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sp_users._require_user(list_sessions.user_id);
    RETURN QUERY SELECT * FROM sp_users.user_sessions s WHERE s.user_id = list_sessions.user_id
                  ORDER BY s.last_activity_at DESC, s.session_id;
END
$$;
COMMENT ON FUNCTION sp_users.list_sessions(uuid) IS 'Every session of a user (active or not), most recent activity first; P0002 when the user does not exist.';

CREATE FUNCTION sp_users.list_active_sessions(user_id uuid) RETURNS SETOF sp_users.user_sessions
AS 'MODULE_PATHNAME', 'sp_users_list_active_sessions'
LANGUAGE C STABLE PARALLEL SAFE ROWS 5;
COMMENT ON FUNCTION sp_users.list_active_sessions(uuid) IS 'The active sessions (not ended, not revoked, not expired) of a user, most recent activity first; P0002 when the user does not exist.';

CREATE FUNCTION sp_users.list_recent_sessions(user_id uuid, lim integer DEFAULT 20) RETURNS SETOF sp_users.user_sessions
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sp_users._require_user(list_recent_sessions.user_id);
    RETURN QUERY SELECT * FROM sp_users.user_sessions s WHERE s.user_id = list_recent_sessions.user_id
                  ORDER BY s.last_activity_at DESC, s.session_id
                  LIMIT sp_users._page_limit(lim);
END
$$;
COMMENT ON FUNCTION sp_users.list_recent_sessions(uuid, integer) IS 'The lim most recently active sessions of a user (lim capped at 100; NULL or negative raises 22023); P0002 when the user does not exist.';

CREATE FUNCTION sp_users.session_exists(session_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_session_exists'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.session_exists(text) IS 'True only for an active session (not ended, not revoked, not expired).';

CREATE FUNCTION sp_users.end_session(session_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_end_session'
LANGUAGE C VOLATILE STRICT SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.end_session(text) IS 'Ends a session; false when it is unknown or already ended.';

CREATE FUNCTION sp_users.end_all_sessions(user_id uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM sp_users._require_user(end_all_sessions.user_id);
    UPDATE sp_users.user_sessions s SET ended_at = now()
     WHERE s.user_id = end_all_sessions.user_id AND s.ended_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION sp_users.end_all_sessions(uuid) IS 'Ends every not-yet-ended session of a user ("log out everywhere"); returns how many; P0002 when the user does not exist.';

CREATE FUNCTION sp_users.cleanup_sessions() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ended AS (
        UPDATE sp_users.user_sessions s SET ended_at = s.expires_at
         WHERE s.ended_at IS NULL AND s.expires_at <= now()
        RETURNING 1)
    SELECT count(*) FROM ended
$$;
COMMENT ON FUNCTION sp_users.cleanup_sessions() IS 'Ends every session whose expires_at has passed (ended_at is set to its expiry time); returns how many.';

-- Citus (docs/scaling.md): sp_users.distribute() splits user_sessions into shards on the workers.
CREATE FUNCTION sp_users._sessions_distributed() RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_sessions_distributed'
LANGUAGE C STABLE;
COMMENT ON FUNCTION sp_users._sessions_distributed() IS
'Internal: whether Citus splits sp_users.user_sessions into shards (sp_users.distribute()); the functions that join sessions to users take another statement shape then.';
