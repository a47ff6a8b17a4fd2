-- Least privilege. PUBLIC gets nothing; three roles get what SPEC.md lists (see README, Security).
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['sp_users_admin', 'sp_users_app', 'sp_users_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

-- Internal functions (named _...) are called by the definer functions, which run as the owner;
-- nobody else needs them, and a trigger function in a stranger's hands is an attack surface. An
-- administrator keeps only what a direct write or the invoker-rights clean-up procedure calls.
-- No TRIGGER privilege anywhere: a trigger on a table that definer functions write would run its
-- code with the owner's rights. The counters are derived data, written only by their triggers.
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

REVOKE ALL ON SCHEMA sp_users FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA sp_users FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA sp_users FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA sp_users FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA sp_users FROM PUBLIC;
GRANT USAGE ON SCHEMA sp_users TO sp_users_admin, sp_users_app, sp_users_readonly;

-- Administrators: every public function and the tables themselves.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA sp_users TO sp_users_admin;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA sp_users TO sp_users_admin;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON ALL TABLES IN SCHEMA sp_users TO sp_users_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA sp_users TO sp_users_admin;
SELECT sp_users._restrict_internals();
-- distribute() changes where the tables live (Citus): the extension's owner or a superuser only.
REVOKE ALL ON FUNCTION sp_users.distribute(boolean) FROM sp_users_admin;

-- Helpers any role may call (pure; they read no data).
GRANT EXECUTE ON FUNCTION
    sp_users.normalize_email(text),
    sp_users.email_problem(text),
    sp_users.normalize_ip(text),
    sp_users.session_is_active(timestamptz, timestamptz, timestamptz)
TO sp_users_app, sp_users_readonly;

-- Readers (dashboards, support tools): finders, listings, statistics, is_banned.
GRANT EXECUTE ON FUNCTION
    sp_users.find_by_id(uuid), sp_users.find_by_email(text), sp_users.find_by_name(text),
    sp_users.find_by_role(sp_users.user_role), sp_users.find_first_user(), sp_users.find_first_admin(),
    sp_users.find_authenticated_user(uuid), sp_users.find_user(text), sp_users.find_with_sessions(uuid),
    sp_users.get_activity(uuid), sp_users.list_users(integer, integer), sp_users.list_all_users(),
    sp_users.search_users(text, integer), sp_users.count_users(),
    sp_users.list_by_filter(sp_users.user_status, sp_users.user_role, integer, integer),
    sp_users.list_non_anonymous_with_sessions(integer), sp_users.is_temporary_anonymous(uuid),
    sp_users.get_roles(uuid), sp_users.list_users_by_role(text),
    sp_users.list_sessions(uuid), sp_users.list_active_sessions(uuid), sp_users.list_recent_sessions(uuid, integer),
    sp_users.session_exists(text),
    sp_users.is_banned(text), sp_users.get_ban(text), sp_users.list_active_bans(integer),
    sp_users.list_bans_by_source(text, integer), sp_users.list_bans_by_fingerprint(text),
    sp_users.count_active_bans(), sp_users.ban_cache_info(), sp_users.count_old_anonymous(integer),
    sp_users.get_stats(), sp_users.count_by_status(), sp_users.count_by_role(), sp_users.count_with_breakdown(),
    sp_users.account_locked_until(uuid), sp_users.list_lockouts(integer)
TO sp_users_readonly;

-- Applications at request time: create/find users, sessions, is_banned, get_ban, ban_ip.
GRANT EXECUTE ON FUNCTION
    sp_users.create_user(text, text, text, text), sp_users.create_user_if_absent(text, text, text, text),
    sp_users.find_by_id(uuid), sp_users.find_by_email(text), sp_users.find_by_name(text),
    sp_users.find_by_role(sp_users.user_role), sp_users.find_first_user(), sp_users.find_first_admin(),
    sp_users.find_authenticated_user(uuid), sp_users.find_user(text), sp_users.find_with_sessions(uuid),
    sp_users.start_session(uuid, text, text, text, text, text, interval), sp_users.touch_session(text),
    sp_users.list_sessions(uuid), sp_users.list_active_sessions(uuid), sp_users.list_recent_sessions(uuid, integer),
    sp_users.session_exists(text), sp_users.end_session(text), sp_users.end_all_sessions(uuid),
    sp_users.is_banned(text), sp_users.get_ban(text),
    sp_users.ban_ip(text, text, interval, text, text, text, text, text, boolean),
    sp_users.create_anonymous(text),
    sp_users.record_failure(text, text, uuid), sp_users.record_success(text, uuid), sp_users.account_locked_until(uuid)
TO sp_users_app;

-- Applications, self-service steps of a signed-in user: sign-up of an anonymous visitor, the
-- user's own email, verification, names, roles, closing the account (update_status), and the
-- aggregate statistics (no personal data). Which user is "own" is the application's decision:
-- the database cannot tell; cross-user administration (merges of registered users, role
-- changes, bulk deletes, unbans, listings of users) stays with sp_users_admin / sp_users_readonly.
GRANT EXECUTE ON FUNCTION
    sp_users.promote_anonymous(uuid, uuid), sp_users.update_email(uuid, text), sp_users.update_email_verified(uuid, boolean),
    sp_users.update_display_name(uuid, text), sp_users.update_full_name(uuid, text),
    sp_users.update_status(uuid, sp_users.user_status), sp_users.get_roles(uuid), sp_users.is_temporary_anonymous(uuid),
    sp_users.get_activity(uuid), sp_users.get_stats(), sp_users.count_by_status(), sp_users.count_by_role(),
    sp_users.count_with_breakdown()
TO sp_users_app;
