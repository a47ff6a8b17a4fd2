-- pgTAP: brute-force protection — failures per address and account turned into address bans
-- (escalating, capped), network bans and account lockouts (growing wait, maximum, permanent after
-- N, reset time), success resets, lockouts visible, listable and liftable, errors, pruning.
-- One transaction: now() stands still, so the time rules are exercised by moving stored times.
BEGIN;
SELECT no_plan();

SELECT is((SELECT array_agg(kind ORDER BY kind) FROM sp_users.failure_policies), '{api,login,password_reset}', 'three policies out of the box');
SELECT is((SELECT row(address_max_failures, address_window, address_ban, address_ban_max, network_after, account_max_failures, account_lockout, account_lockout_max, account_permanent_after)::text
             FROM sp_users.failure_policies WHERE kind = 'login'),
          '(10,00:10:00,00:15:00,"1 day",5,5,00:01:00,00:15:00,)', 'login defaults');

-- Errors.
SELECT throws_ok($$SELECT sp_users.record_failure('nope', '192.0.2.1')$$, '22023', 'unknown failure kind: nope', 'unknown kind: 22023');
SELECT throws_ok($$SELECT sp_users.record_failure('login')$$, '22023', 'ip and user_id must not both be NULL', 'nothing to count: 22023');
SELECT throws_ok($$SELECT sp_users.record_failure('login', '192.0.2.0/24')$$, '22023', NULL, 'a network as ip: 22023');
SELECT throws_ok($$SELECT sp_users.record_failure('login', '192.0.2.300')$$, '22P02', NULL, 'a bad address: 22P02');
SELECT throws_ok($$SELECT sp_users.record_failure('login', NULL, '00000000-0000-0000-0000-000000000001')$$, 'P0002', NULL, 'a missing user: P0002');
SELECT throws_ok($$INSERT INTO sp_users.failure_policies (kind, address_max_failures) VALUES ('bad', 0)$$, '23514', NULL, 'policies are checked');

-- Addresses: nine failures are counted, the tenth bans; the count starts again.
-- fail(kind, ip, user, n): n failures in a row (each call in its own evaluation), their results.
CREATE FUNCTION pg_temp.fail(k text, ip text, u uuid, n int) RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR i IN 1..n LOOP
        SELECT * INTO r FROM sp_users.record_failure(k, ip, u);
        RETURN NEXT r;
    END LOOP;
END
$$;
CREATE FUNCTION pg_temp.fails(k text, ip text, u uuid, n int)
RETURNS TABLE (outcome text[], address_failures integer, address_banned_until timestamptz, network inet, network_banned_until timestamptz,
               account_failures integer, account_locked_until timestamptz)
LANGUAGE sql AS $$ SELECT * FROM pg_temp.fail(k, ip, u, n) AS f(outcome text[], address_failures integer, address_banned_until timestamptz, network inet,
                                                              network_banned_until timestamptz, account_failures integer, account_locked_until timestamptz) $$;
SELECT is((SELECT array_agg(address_failures) FROM pg_temp.fails('login', '198.51.100.7', NULL, 9)),
          '{1,2,3,4,5,6,7,8,9}', 'failures counted per address');
SELECT is(sp_users.is_banned('198.51.100.7'), false, 'not banned below the threshold');
SELECT is((SELECT row(outcome, address_failures, address_banned_until)::text FROM sp_users.record_failure('login', '198.51.100.7')),
          row('{address_banned}'::text[], 10, now() + interval '15 minutes')::text, 'the tenth failure bans for address_ban');
SELECT is(sp_users.is_banned('198.51.100.7'), true, 'the address is banned');
SELECT is((SELECT row(ban_source, ban_count, reason)::text FROM sp_users.banned_ips WHERE ip_address = '198.51.100.7'),
          '(brute_force:login,1,"login failures: 10 within 00:10:00")', 'the ban names its source and reason');
SELECT is((SELECT count(*) FROM sp_users.address_failures WHERE ip_address = '198.51.100.7'), 0::bigint, 'the count starts again');
SELECT is((SELECT address_failures FROM sp_users.record_failure('login', ' 198.51.100.7 ')), 1, 'addresses are normalised');
-- Escalation: doubled per earlier ban, capped at address_ban_max.
SELECT is((SELECT max(address_banned_until) FROM pg_temp.fails('login', '198.51.100.7', NULL, 9)),
          now() + interval '30 minutes', 'a second ban lasts twice as long');
UPDATE sp_users.banned_ips SET ban_count = 20 WHERE ip_address = '198.51.100.7';
SELECT is((SELECT max(address_banned_until) FROM pg_temp.fails('login', '198.51.100.7', NULL, 10)),
          now() + interval '1 day', 'escalation stops at address_ban_max');
-- The window slides: failures older than address_window no longer count.
SELECT count(*) FROM pg_temp.fails('login', '198.51.100.8', NULL, 9);
UPDATE sp_users.address_failures SET recent = ARRAY(SELECT t - interval '9 minutes' FROM unnest(recent) t) WHERE ip_address = '198.51.100.8';
SELECT is((SELECT address_failures FROM sp_users.record_failure('login', '198.51.100.8')), 10, 'nine minutes old: still in the window');
SELECT count(*) FROM pg_temp.fails('login', '198.51.100.9', NULL, 9);
UPDATE sp_users.address_failures SET recent = ARRAY(SELECT t - interval '11 minutes' FROM unnest(recent) t) WHERE ip_address = '198.51.100.9';
SELECT is((SELECT row(address_failures, address_banned_until)::text FROM sp_users.record_failure('login', '198.51.100.9')), '(1,)',
          'eleven minutes old: out of the window');
-- A rolled-back failure counts nothing.
SAVEPOINT undo;
SELECT count(*) FROM pg_temp.fails('login', '198.51.100.10', NULL, 10);
ROLLBACK TO SAVEPOINT undo;
SELECT is((SELECT count(*) FROM sp_users.address_failures WHERE ip_address = '198.51.100.10'), 0::bigint, 'a rolled-back failure leaves no count');
SELECT is(sp_users.is_banned('198.51.100.10'), false, 'a rolled-back ban is gone');

-- Networks: the fifth banned address of a /24 bans the /24 (once); IPv6 by /64.
INSERT INTO sp_users.failure_policies (kind, address_max_failures, network_after) VALUES ('tap_net', 1, 3);
SELECT is((SELECT array_agg(array_to_string(r.outcome, '+') ORDER BY i) FROM generate_series(1, 4) i, LATERAL sp_users.record_failure('tap_net', '203.0.113.' || i) r),
          '{address_banned,address_banned,address_banned+network_banned,address_banned}', 'the third banned address of the /24 bans the network, once');
SELECT is((SELECT row(ip_address, ban_source, expires_at)::text FROM sp_users.banned_ips WHERE ip_address = '203.0.113.0/24'),
          row('203.0.113.0/24'::inet, 'brute_force:tap_net', now() + interval '1 day')::text, 'the network ban');
SELECT is(sp_users.is_banned('203.0.113.200'), true, 'an address of the network is banned');
SELECT count(*) FROM pg_temp.fails('tap_net', '2001:db8:1:2::1', NULL, 1);
SELECT count(*) FROM pg_temp.fails('tap_net', '2001:db8:1:2::2', NULL, 1);
SELECT is((SELECT network::text FROM sp_users.record_failure('tap_net', '2001:db8:1:2::3')), '2001:db8:1:2::/64', 'IPv6: the /64');
UPDATE sp_users.failure_policies SET network_v4_prefix = 16 WHERE kind = 'tap_net';
SELECT is((SELECT array_agg(r.network::text ORDER BY i) FROM generate_series(1, 3) i, LATERAL sp_users.record_failure('tap_net', '10.20.' || i || '.1') r),
          '{NULL,NULL,10.20.0.0/16}', 'the network size is the policy''s');
UPDATE sp_users.failure_policies SET network_after = NULL WHERE kind = 'tap_net';
SELECT is((SELECT count(network) FROM generate_series(1, 5) i, LATERAL sp_users.record_failure('tap_net', '10.30.0.' || i) r), 0::bigint, 'network_after NULL: no network bans');

-- Accounts.
SELECT count(*) FROM sp_users.create_user('brute', 'brute@example.com');
CREATE TEMP TABLE u AS SELECT id FROM sp_users.users WHERE name = 'brute';
SELECT is((SELECT array_agg(array_to_string(r.outcome, '+') || ':' || r.account_failures)
             FROM pg_temp.fails('login', '192.0.2.50', (SELECT id FROM u), 4) r),
          '{counted:1,counted:2,counted:3,counted:4}', 'account failures counted (with the address)');
SELECT is((SELECT row(outcome, account_failures, account_locked_until)::text FROM sp_users.record_failure('login', NULL, (SELECT id FROM u))),
          row('{account_locked}'::text[], 5, now() + interval '1 minute')::text, 'the fifth locks the account for account_lockout');
SELECT is(sp_users.account_locked_until((SELECT id FROM u)), now() + interval '1 minute', 'account_locked_until');
SELECT throws_ok(format('SELECT * FROM sp_users.find_authenticated_user(%L)', (SELECT id FROM u)), '28000', NULL, 'find_authenticated_user: 28000 while locked');
SELECT is((SELECT count(*) FROM sp_users.list_lockouts()), 1::bigint, 'list_lockouts lists it');
SELECT is(sp_users.record_success('login', (SELECT id FROM u)), false, 'a success does not lift a lockout');
-- The wait grows: 1, 2, 4, 8 minutes, then the 15-minute maximum.
SELECT is((SELECT array_agg(date_part('epoch', r.account_locked_until - now())::int / 60)
             FROM pg_temp.fails('login', NULL, (SELECT id FROM u), 25) r WHERE 'account_locked' = ANY (r.outcome)),
          '{2,4,8,15,15}', 'lockouts grow by account_lockout_factor up to account_lockout_max');
SELECT is(sp_users.lift_lockout((SELECT id FROM u)), 1::bigint, 'lift_lockout');
SELECT is((SELECT count(*) FROM sp_users.find_authenticated_user((SELECT id FROM u))), 1::bigint, 'lifted: find_authenticated_user finds the user');
SELECT is(sp_users.account_locked_until((SELECT id FROM u)), NULL, 'no lockout after lifting');
-- A success resets the count.
SELECT count(*) FROM pg_temp.fails('login', NULL, (SELECT id FROM u), 4);
SELECT is(sp_users.record_success('login', (SELECT id FROM u)), true, 'record_success');
SELECT is((SELECT account_failures FROM sp_users.record_failure('login', NULL, (SELECT id FROM u))), 1, 'the count starts again after a success');
-- The reset time: a failure long after the last one starts a new count.
UPDATE sp_users.account_failures SET failures = 4, last_failure_at = now() - interval '13 hours' WHERE user_id = (SELECT id FROM u);
SELECT is((SELECT row(outcome, account_failures)::text FROM sp_users.record_failure('login', NULL, (SELECT id FROM u))), '({counted},1)', 'after account_reset the count starts again');
-- Permanent after N lockouts in a row.
INSERT INTO sp_users.failure_policies (kind, account_max_failures, account_permanent_after) VALUES ('tap_perm', 2, 2);
SELECT is((SELECT array_agg(r.account_locked_until) FILTER (WHERE 'account_locked' = ANY (r.outcome))
             FROM pg_temp.fails('tap_perm', NULL, (SELECT id FROM u), 4) r),
          ARRAY[now() + interval '1 minute', 'infinity'::timestamptz], 'the second lockout in a row is permanent');
SELECT throws_ok(format('SELECT * FROM sp_users.find_authenticated_user(%L)', (SELECT id FROM u)), '28000', 'account locked permanently', 'permanently locked: 28000');
SELECT is((SELECT locked_until FROM sp_users.list_lockouts() LIMIT 1), 'infinity'::timestamptz, 'permanent lockouts listed first');
SELECT is(sp_users.lift_lockout((SELECT id FROM u), 'tap_perm'), 1::bigint, 'an administrator lifts a permanent lockout');
-- A kind without account lockouts counts only addresses.
SELECT is((SELECT row(account_failures, account_locked_until)::text FROM sp_users.record_failure('api', '192.0.2.77', (SELECT id FROM u))), '(,)', 'api: no account counting');
-- Missing or deleted users and unknown kinds, as everywhere.
SELECT throws_ok($$SELECT sp_users.record_success('login', '00000000-0000-0000-0000-000000000001')$$, 'P0002', NULL, 'record_success: a missing user is P0002');
SELECT throws_ok($$SELECT sp_users.account_locked_until('00000000-0000-0000-0000-000000000001')$$, 'P0002', NULL, 'account_locked_until: P0002');
SELECT throws_ok($$SELECT sp_users.lift_lockout('00000000-0000-0000-0000-000000000001')$$, 'P0002', NULL, 'lift_lockout: P0002');
SELECT throws_ok(format('SELECT sp_users.record_success(%L, %L)', 'nokind', (SELECT id FROM u)), '22023', NULL, 'record_success: an unknown kind is 22023');
SELECT throws_ok(format('SELECT sp_users.lift_lockout(%L, %L)', (SELECT id FROM u), 'nokind'), '22023', NULL, 'lift_lockout: an unknown kind is 22023');
-- A merge does not pass failure counts and lockouts to the target (built-in merge policy delete).
-- (the id in a variable: with users split into shards, Citus would send a query over users, pg_temp.fails and all, to the shards)
SELECT id AS brute2 FROM sp_users.create_user('brute2', 'brute2@example.com') \gset
SELECT count(*) FROM pg_temp.fails('login', NULL, :'brute2', 5);
SELECT is((SELECT tables->'deleted_with_source' FROM sp_users.merge_users(:'brute2', (SELECT id FROM u))),
          '{"sp_users.account_failures.user_id": 1}'::jsonb, 'a merge deletes the source''s failure records');
SELECT is(sp_users.account_locked_until((SELECT id FROM u)), NULL, 'the target is not locked by the source''s failures');
-- A permanent ban reads as infinity.
SELECT sp_users.ban_ip('198.51.100.99', 'manual', NULL);
SELECT is((SELECT address_banned_until FROM pg_temp.fails('login', '198.51.100.99', NULL, 10) WHERE address_banned_until IS NOT NULL),
          'infinity'::timestamptz, 'an address already banned permanently: address_banned_until infinity');
-- A soft-deleted user's lockouts are not listed.
SELECT count(*) FROM pg_temp.fails('login', NULL, (SELECT id FROM u), 5);
SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM u));
SELECT is((SELECT count(*) FROM sp_users.list_lockouts() l, u WHERE l.user_id = u.id), 0::bigint, 'list_lockouts leaves deleted users out');
UPDATE sp_users.users SET status = 'active' WHERE id = (SELECT id FROM u);

-- Deleting the user deletes its records.
SELECT sp_users.record_failure('login', NULL, (SELECT id FROM u));
SELECT sp_users.delete_user((SELECT id FROM u));
SELECT is((SELECT count(*) FROM sp_users.account_failures WHERE user_id = (SELECT id FROM u)), 0::bigint, 'a deleted user''s records go with it');

-- Pruning: records that no longer count.
DELETE FROM sp_users.address_failures;
SELECT count(*) FROM generate_series(101, 103) i, LATERAL sp_users.record_failure('login', '192.0.2.' || i) r;
UPDATE sp_users.address_failures SET recent = ARRAY[now() - interval '11 minutes'] WHERE ip_address IN ('192.0.2.101', '192.0.2.102');
SELECT is(sp_users.cleanup_failures(), 2::bigint, 'cleanup_failures deletes records out of their window');
SELECT is((SELECT array_agg(host(ip_address)) FROM sp_users.address_failures), '{192.0.2.103}', 'the rest stay');

SELECT * FROM finish();
ROLLBACK;
