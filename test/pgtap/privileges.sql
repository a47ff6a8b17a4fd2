-- pgTAP: least privilege per role, as a login role that is a member of each sp_users role.
BEGIN;
SELECT no_plan();

CREATE ROLE tap_app LOGIN;
CREATE ROLE tap_reader LOGIN;
CREATE ROLE tap_admin LOGIN;
CREATE ROLE tap_nobody LOGIN;
GRANT sp_users_app TO tap_app;
GRANT sp_users_readonly TO tap_reader;
GRANT sp_users_admin TO tap_admin;

SELECT id AS uid FROM sp_users.create_user('pat', 'pat@example.com') \gset
SELECT id AS other FROM sp_users.create_user('quinn', 'quinn@example.com') \gset
SELECT id AS closing FROM sp_users.create_user('rita', 'rita@example.com') \gset
SELECT sp_users.ban_ip('192.0.2.99', 'seed', '1 hour');

CREATE FUNCTION pg_temp.as_role(r text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    BEGIN
        EXECUTE q;
    EXCEPTION WHEN OTHERS THEN
        RESET ROLE;
        RETURN SQLSTATE;
    END;
    RESET ROLE;
    RETURN 'ok';
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.as_role(text, text) TO PUBLIC;

-- The application role: request-time work succeeds ...
SELECT is(pg_temp.as_role('tap_app', q), 'ok', 'app may: ' || q) FROM unnest(ARRAY[
    $$SELECT sp_users.create_user('app_made', 'app@example.com')$$,
    $$SELECT * FROM sp_users.find_by_email('pat@example.com')$$,
    $$SELECT * FROM sp_users.find_user('pat')$$,
    format($$SELECT sp_users.start_session(%L, 'app-session')$$, :'uid'),
    $$SELECT sp_users.touch_session('app-session')$$,
    $$SELECT sp_users.end_session('app-session')$$,
    $$SELECT sp_users.create_anonymous('app-fp')$$,
    $$SELECT sp_users.is_banned('192.0.2.99')$$,
    $$SELECT * FROM sp_users.get_ban('192.0.2.99')$$,
    $$SELECT sp_users.ban_ip('198.51.100.5', 'abuse', '1 hour')$$,
    -- self-service: sign-up of an anonymous visitor, own profile, closing the account
    format($$SELECT sp_users.promote_anonymous((SELECT id FROM sp_users.create_anonymous('tap-visitor')), %L)$$, :'uid'),
    format($$SELECT sp_users.update_email(%L, 'pat.new@example.com')$$, :'uid'),
    format($$SELECT sp_users.update_email_verified(%L, true)$$, :'uid'),
    format($$SELECT sp_users.update_display_name(%L, 'Pat')$$, :'uid'),
    format($$SELECT sp_users.update_full_name(%L, 'Pat Doe')$$, :'uid'),
    format($$SELECT sp_users.get_roles(%L)$$, :'uid'),
    format($$SELECT sp_users.is_temporary_anonymous(%L)$$, :'uid'),
    $$SELECT sp_users.email_problem('x@')$$,
    $$SELECT * FROM sp_users.get_stats()$$,
    -- brute-force protection at request time
    $$SELECT * FROM sp_users.record_failure('login', '198.51.100.77')$$,
    format($$SELECT * FROM sp_users.record_failure('login', NULL, %L)$$, :'uid'),
    format($$SELECT sp_users.record_success('login', %L)$$, :'uid'),
    format($$SELECT sp_users.account_locked_until(%L)$$, :'uid'),
    format($$SELECT sp_users.update_status(%L, 'deleted')$$, :'closing')]) AS q;
-- ... and nothing else: no merge, unban, bulk delete, role changes, direct table access.
SELECT is(pg_temp.as_role('tap_app', q), '42501', 'app may not: ' || q) FROM unnest(ARRAY[
    format($$SELECT sp_users.merge_users(%L, %L)$$, :'uid', :'other'),
    $$SELECT sp_users.unban_ip('192.0.2.99')$$,
    format($$SELECT sp_users.bulk_delete(ARRAY[%L]::uuid[])$$, :'uid'),
    format($$SELECT sp_users.delete_user(%L)$$, :'uid'),
    format($$SELECT sp_users.assign_role(%L, 'admin')$$, :'uid'),
    $$SELECT sp_users.promote_to_admin('pat')$$,
    $$SELECT * FROM sp_users.banned_ips$$,
    $$SELECT * FROM sp_users.users$$,
    $$DELETE FROM sp_users.user_sessions$$,
    $$SELECT * FROM sp_users.list_users()$$,
    $$SELECT sp_users.cleanup_expired_bans()$$,
    $$SELECT sp_users.schedule_anonymous_cleanup()$$,
    $$CALL sp_users.run_anonymous_cleanup()$$,
    format($$SELECT sp_users.lift_lockout(%L)$$, :'uid'),
    $$SELECT * FROM sp_users.list_lockouts()$$,
    $$SELECT sp_users.cleanup_failures()$$,
    $$UPDATE sp_users.failure_policies SET address_max_failures = 1$$,
    $$SELECT * FROM sp_users.account_failures$$,
    $$SELECT sp_users.set_merge_policy('sp_users.user_sessions', 'user_id', 'delete')$$,
    $$SELECT * FROM sp_users.list_user_references()$$]) AS q;

-- The read-only role: finders, listings, statistics, is_banned; no writes.
SELECT is(pg_temp.as_role('tap_reader', q), 'ok', 'reader may: ' || q) FROM unnest(ARRAY[
    $$SELECT * FROM sp_users.list_users()$$,
    $$SELECT * FROM sp_users.search_users('pa')$$,
    $$SELECT * FROM sp_users.get_stats()$$,
    $$SELECT * FROM sp_users.count_by_status()$$,
    $$SELECT sp_users.is_banned('192.0.2.99')$$,
    $$SELECT * FROM sp_users.list_active_bans()$$,
    $$SELECT * FROM sp_users.list_lockouts()$$,
    format($$SELECT sp_users.account_locked_until(%L)$$, :'uid')]) AS q;
SELECT is(pg_temp.as_role('tap_reader', q), '42501', 'reader may not: ' || q) FROM unnest(ARRAY[
    $$SELECT sp_users.create_user('r', 'r@example.com')$$,
    $$SELECT sp_users.ban_ip('198.51.100.6', 'x', '1 hour')$$,
    format($$SELECT sp_users.update_email(%L, 'x@example.com')$$, :'uid'),
    $$SELECT * FROM sp_users.record_failure('login', '198.51.100.78')$$,
    format($$SELECT sp_users.lift_lockout(%L)$$, :'uid'),
    $$SELECT * FROM sp_users.users$$]) AS q;

-- Nobody (PUBLIC): not even the schema's functions.
SELECT is(pg_temp.as_role('tap_nobody', q), '42501', 'PUBLIC may not: ' || q) FROM unnest(ARRAY[
    $$SELECT sp_users.is_banned('192.0.2.99')$$,
    $$SELECT * FROM sp_users.find_by_email('pat@example.com')$$]) AS q;

-- Administrators: everything, tables included.
SELECT is(pg_temp.as_role('tap_admin', q), 'ok', 'admin may: ' || q) FROM unnest(ARRAY[
    format($$SELECT sp_users.merge_users(%L, %L)$$, :'other', :'uid'),
    $$SELECT sp_users.unban_ip('192.0.2.99')$$,
    $$SELECT count(*) FROM sp_users.banned_ips$$,
    $$UPDATE sp_users.users SET avatar_url = 'x' WHERE name = 'pat'$$,
    $$UPDATE sp_users.failure_policies SET address_max_failures = 20 WHERE kind = 'login'$$,
    format($$SELECT sp_users.lift_lockout(%L)$$, :'uid'),
    $$SELECT * FROM sp_users.list_lockouts()$$,
    $$SELECT * FROM sp_users.list_user_references()$$]) AS q;

SELECT * FROM finish();
ROLLBACK;
