-- pgTAP: every sp_users function called with hostile arguments — NULL in each position, empty and
-- 1 MB strings, SQL-injection text, extreme numbers and intervals, malformed and enormous address
-- text, arrays with NULL elements and duplicates. Each call must return or raise an ordinary SQL
-- error (data, integrity, PL/pgSQL, feature, state or limit class); never an internal error, and
-- the backend keeps answering. (test-all also checks the server log for crashed backends.)
BEGIN;
SELECT no_plan();

SELECT id AS uid FROM sp_users.create_user('sweep', 'sweep@example.com') \gset
SELECT sp_users.start_session(:'uid', 'sweep-session');
SELECT sp_users.ban_ip('192.0.2.1', 'sweep', '1 hour');
CREATE TABLE public.sweep_refs (who text);

CREATE FUNCTION pg_temp.candidates(t regtype, uid uuid) RETURNS text[] LANGUAGE sql AS $$
    SELECT CASE t
        WHEN 'text'::regtype THEN ARRAY[NULL, '', ' ', 'sweep@example.com', repeat('x', 1048576), repeat('1.', 40000),
             $i$'; DROP TABLE sp_users.users; --$i$, '%_\', 'ünï©ødé 用户', '::ffff:1.2.3.4/96', '10.0.0.1/8', '1.2.3.4',
             '2001:db8::/32', 'fe80::1%eth0', '999.999.999.999', uid::text, '* * * * *', 'sweep-session']
        WHEN 'uuid'::regtype THEN ARRAY[NULL, '00000000-0000-0000-0000-000000000000', uid::text]
        WHEN 'integer'::regtype THEN ARRAY[NULL, '0', '-1', '101', '2147483647', '-2147483648']
        WHEN 'bigint'::regtype THEN ARRAY[NULL, '0', '-1', '9223372036854775807', '-9223372036854775808']
        WHEN 'interval'::regtype THEN ARRAY[NULL, '0', '-1 day', '1 microsecond', '177999999 years', '-177999999 years', '1 month -30 days']
        WHEN 'boolean'::regtype THEN ARRAY[NULL, 'true', 'false']
        WHEN 'sp_users.user_status'::regtype THEN ARRAY[NULL, 'deleted', 'active']
        WHEN 'sp_users.user_role'::regtype THEN ARRAY[NULL, 'admin', 'anonymous']
        WHEN 'sp_users.user_role[]'::regtype THEN ARRAY[NULL, '{}', '{NULL}', '{admin,admin}', '{user,anonymous,admin}']
        WHEN 'uuid[]'::regtype THEN ARRAY[NULL, '{}', '{NULL}', '{' || uid || ',' || uid || '}', '{00000000-0000-0000-0000-000000000000}']
        WHEN 'regclass'::regtype THEN ARRAY[NULL, 'public.sweep_refs', 'pg_catalog.pg_class']
        WHEN 'name'::regtype THEN ARRAY[NULL, '', 'who', repeat('n', 63)]
        WHEN 'jsonb'::regtype THEN ARRAY[NULL, '{}', '{"status": "nope"}', '{"email": null}']
        WHEN 'anyelement'::regtype THEN ARRAY['1'::text]
        ELSE ARRAY[NULL] END
$$;

CREATE FUNCTION pg_temp.sweep(uid uuid, OUT calls int, OUT bad text[]) LANGUAGE plpgsql AS $$
DECLARE
    f record;
    base text[];
    args text[];
    v text;
    sql text;
    state text;
BEGIN
    calls := 0;
    bad := '{}';
    FOR f IN SELECT p.oid, p.proname, p.proargtypes::regtype[] AS types
               FROM pg_proc p
              WHERE p.pronamespace = 'sp_users'::regnamespace AND p.prokind = 'f'
                AND p.prorettype <> 'trigger'::regtype
                AND p.proname NOT IN ('_user_not_found') -- always raises P0002, by design
              ORDER BY p.proname
    LOOP
        base := ARRAY(SELECT (pg_temp.candidates(t, uid))[CASE WHEN array_length(pg_temp.candidates(t, uid), 1) > 1 THEN 2 ELSE 1 END]
                        FROM unnest(f.types) AS t);
        FOR i IN 0 .. coalesce(array_length(f.types, 1), 0) LOOP
            FOREACH v IN ARRAY CASE WHEN i = 0 THEN ARRAY['(baseline)'] ELSE pg_temp.candidates(f.types[i], uid) END LOOP
                args := base;
                IF i > 0 THEN args[i] := v; END IF;
                sql := format('SELECT * FROM sp_users.%I(%s)', f.proname,
                              coalesce((SELECT string_agg(CASE WHEN a IS NULL THEN 'NULL' ELSE quote_literal(a) END || '::' || f.types[k]::text, ', ' ORDER BY k)
                                          FROM unnest(args) WITH ORDINALITY AS x(a, k)), ''));
                calls := calls + 1;
                BEGIN
                    EXECUTE sql;
                EXCEPTION WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
                    IF left(state, 2) NOT IN ('22', '23', 'P0', '0A', '55', '54', '2D', '42') THEN
                        bad := bad || (f.proname || ' [' || state || '] ' || left(sql, 120));
                    END IF;
                END;
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;

SELECT calls AS sweep_calls, bad AS sweep_bad FROM pg_temp.sweep(:'uid') \gset
SELECT cmp_ok(:sweep_calls, '>', 500, 'the sweep made ' || :sweep_calls || ' hostile calls');
SELECT is(:'sweep_bad'::text[], '{}'::text[], 'every hostile call returned or raised an ordinary SQL error');
SELECT is(sp_users.is_banned('192.0.2.1'), true, 'the backend still answers, ban cache intact');

SELECT * FROM finish();
ROLLBACK;
