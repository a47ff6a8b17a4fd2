-- pgTAP: sp_users.distribute() outside Citus, and who may call it. On a Citus cluster it is
-- tested by test/integration/citus.sh.
BEGIN;
SELECT plan(5);

-- (The suite also runs on a Citus coordinator after distribute(): test/integration/citus.sh.)
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')
            THEN is((SELECT placement FROM sp_users.distribute() WHERE relation = 'sp_users.banned_ips'::regclass), 'reference',
                    'distribute() on a Citus coordinator: banned_ips is a reference table')
            ELSE throws_ok('SELECT * FROM sp_users.distribute()', '0A000', 'sp_users.distribute() needs Citus',
                           'distribute() without Citus: 0A000') END;
SELECT ok(NOT has_function_privilege('sp_users_admin', 'sp_users.distribute(boolean)', 'EXECUTE'),
          'sp_users_admin may not distribute (it changes where tables live: owner or superuser only)');
SELECT ok(NOT has_function_privilege('sp_users_app', 'sp_users.distribute(boolean)', 'EXECUTE'), 'sp_users_app may not distribute');

-- The upsert's expiry arithmetic that Citus requires to be immutable gives ban_ip's answers.
SELECT is(sp_users._escalated_expiry('2026-01-01 00:00+00', '2026-01-01 01:00+00', '1 hour', 3),
          timestamptz '2026-01-01 08:00+00', '_escalated_expiry: start + duration x 2^3');
SELECT is(sp_users._escalated_expiry('2026-01-01 00:00+00', '2027-06-01 00:00+00', '17 months', 3),
          timestamptz '2027-06-01 00:00+00', '_escalated_expiry: a duration past the cap is the plain expiry');

SELECT * FROM finish();
ROLLBACK;
