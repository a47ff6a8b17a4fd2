-- pgTAP: IP bans — every SPEC row, and a randomized differential test of the in-memory ban set
-- against a plain SQL evaluation over banned_ips.
BEGIN;
SELECT no_plan();

-- ban_ip upsert rules.
SELECT is((sp_users.ban_ip('192.0.2.1', 'r1', '1 hour', 'waf', 'fp', '/a', 'ua1', 's1')).ban_count, 1, 'first ban: ban_count 1');
SELECT is((SELECT row(ban_count, reason, ban_source, source_fingerprint, last_offense_path, last_user_agent, associated_session_ids)::text
             FROM sp_users.ban_ip('192.0.2.1', 'r2', '1 hour', 'auto', NULL, NULL, 'ua2', 's2')),
          '(2,r2,auto,fp,/a,ua2,"{s1,s2}")', 'repeat ban: count+1, reason/source replaced, NULL metadata kept, session appended');
SELECT is((sp_users.ban_ip('192.0.2.1', 'r3', '1 hour', session_id => 's2')).associated_session_ids, '{s1,s2}', 'a known session id is not repeated');
SELECT is((SELECT ban_source FROM sp_users.ban_ip('192.0.2.2', 'r', '1 hour')), 'manual', 'ban_source defaults to manual');
SELECT is((SELECT cardinality(associated_session_ids) FROM (SELECT (sp_users.ban_ip('192.0.2.3', 'r', '1 hour', session_id => 's' || i)).* FROM generate_series(1, 150) i) b ORDER BY ban_count DESC LIMIT 1),
          100, 'associated_session_ids keeps the last 100');

-- Expiry rules.
SELECT is((sp_users.ban_ip('192.0.2.4', 'r', '2 days')).expires_at, now() + interval '2 days', 'expires now() + duration');
SELECT is((sp_users.ban_ip('192.0.2.4', 'r', '1 hour')).expires_at, now() + interval '2 days', 'shorter repeat never shortens');
SELECT is((sp_users.ban_ip('192.0.2.4', 'r', '3 days')).expires_at, now() + interval '3 days', 'longer repeat extends');
SELECT is((sp_users.ban_ip('192.0.2.4', 'r', NULL)).is_permanent, true, 'temporary upgraded to permanent');
SELECT is((SELECT expires_at FROM sp_users.banned_ips WHERE ip_address = '192.0.2.4'), NULL, 'permanent has no expiry (seed bug fixed)');
SELECT is((sp_users.ban_ip('192.0.2.4', 'r', '1 hour')).expires_at, NULL, 'permanent stays permanent');
UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 hour' WHERE ip_address = '192.0.2.2';
SELECT is((sp_users.ban_ip('192.0.2.2', 'r', '1 hour')).expires_at, now() + interval '1 hour', 'rebanning an expired entry starts a fresh expiry');

-- Escalation.
SELECT is((sp_users.ban_ip('192.0.2.5', 'r', '1 hour', escalate => true)).expires_at - now(), interval '1 hour', 'escalate: first ban x1');
SELECT is((sp_users.ban_ip('192.0.2.5', 'r', '1 hour', escalate => true)).expires_at - now(), interval '2 hours', 'escalate: x2');
SELECT is((sp_users.ban_ip('192.0.2.5', 'r', '1 hour', escalate => true)).expires_at - now(), interval '4 hours', 'escalate: x4');
UPDATE sp_users.banned_ips SET ban_count = 2000000000 WHERE ip_address = '192.0.2.5';
SELECT is((sp_users.ban_ip('192.0.2.5', 'r', '1 hour', escalate => true)).expires_at - now(), interval '365 days', 'escalate capped at 365 days, no overflow');
SELECT is((sp_users.ban_ip('192.0.2.6', 'r', '400 days', escalate => true)).expires_at - now(), interval '400 days', 'a base beyond the cap is not shortened');
SELECT is((sp_users.ban_ip('192.0.2.6', 'r', '1 hour', escalate => true)).expires_at - now(), interval '400 days', 'escalated repeat never shortens');

-- Lookups.
SELECT sp_users.ban_ip('10.0.0.0/8', 'wide', '1 day');
SELECT sp_users.ban_ip('10.20.0.0/16', 'narrow', '1 day');
SELECT sp_users.ban_ip('10.20.30.40', 'exact', '1 day');
SELECT sp_users.ban_ip('2001:db8::/48', 'v6', NULL);
SELECT ok(sp_users.is_banned('10.99.1.1'), 'inside /8');
SELECT ok(sp_users.is_banned('::ffff:10.99.1.1'), 'IPv4-mapped inside /8');
SELECT ok(sp_users.is_banned('2001:db8:0:ffff::1'), 'inside v6 /48');
SELECT ok(NOT sp_users.is_banned('2001:db8:1::1'), 'outside v6 /48');
SELECT ok(NOT sp_users.is_banned('11.0.0.1'), 'outside');
SELECT is(sp_users.is_banned(NULL), NULL, 'is_banned(NULL) is NULL');
SELECT is((SELECT reason FROM sp_users.get_ban('10.20.30.40')), 'exact', 'get_ban: exact address first');
SELECT is((SELECT reason FROM sp_users.get_ban('10.20.30.41')), 'narrow', 'get_ban: most specific network');
SELECT is((SELECT reason FROM sp_users.get_ban('10.21.0.1')), 'wide', 'get_ban: covering network');
UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 second' WHERE ip_address = '10.20.0.0/16';
SELECT is((SELECT reason FROM sp_users.get_ban('10.20.30.41')), 'wide', 'get_ban skips an expired more specific network');
SELECT ok(sp_users.is_banned('10.20.30.41'), 'an expired specific ban does not hide an active wide one');
SELECT is((SELECT count(*)::int FROM sp_users.get_ban('11.0.0.1')), 0, 'get_ban: no row');

-- unban removes exactly one entry.
SELECT ok(sp_users.unban_ip('10.20.30.40'), 'unban exact');
SELECT ok(sp_users.is_banned('10.20.30.40'), 'still covered by the /8');
SELECT ok(NOT sp_users.unban_ip('10.20.30.40'), 'unban twice is false');
SELECT ok(NOT sp_users.unban_ip('10.0.0.0/9'), 'unban a network that is not an entry');
SELECT ok(sp_users.unban_ip('::ffff:10.0.0.0/104'), 'unban via another spelling');

-- cleanup, counts, listings.
UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 day' WHERE ip_address = '192.0.2.1';
SELECT is(sp_users.count_active_bans(), (SELECT count(*) FROM sp_users.banned_ips WHERE expires_at IS NULL OR expires_at > now()), 'count_active_bans');
SELECT is(sp_users.cleanup_expired_bans(), 2::bigint, 'cleanup removes the expired ones');
SELECT is((SELECT count(*)::int FROM sp_users.banned_ips WHERE expires_at IS NULL), 2, 'permanent bans survive cleanup');
SELECT is((SELECT count(*)::int FROM sp_users.list_bans_by_fingerprint('fp')), 0, 'fingerprint ban cleaned up');
SELECT sp_users.ban_ip('198.51.100.1', 'r', '1 hour', 'honeypot', 'fp9');
SELECT sp_users.ban_ip('198.51.100.2', 'r', '1 hour', 'honeypot', 'fp9');
UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 second' WHERE ip_address = '198.51.100.2';
SELECT is((SELECT count(*)::int FROM sp_users.list_bans_by_fingerprint('fp9')), 2, 'by fingerprint: active or not');
SELECT is((SELECT count(*)::int FROM sp_users.list_bans_by_source('honeypot')), 1, 'by source: active only');
SELECT is((SELECT count(*)::int FROM sp_users.list_active_bans(0)), 0, 'list limit 0');
SELECT is((SELECT count(*)::int FROM sp_users.list_active_bans()), (SELECT sp_users.count_active_bans()::int), 'list_active_bans');
SELECT is((SELECT ip_address FROM sp_users.list_bans_by_source('honeypot')), '198.51.100.1'::inet, 'listing row');

-- The ban set follows savepoint rollbacks.
SAVEPOINT sp;
SELECT sp_users.ban_ip('203.0.113.200', 'r', '1 hour');
SELECT ok(sp_users.is_banned('203.0.113.200'), 'own ban visible inside the transaction');
ROLLBACK TO SAVEPOINT sp;
SELECT ok(NOT sp_users.is_banned('203.0.113.200'), 'rolled back to savepoint: gone');

-- Differential: 3 000 random operations, each followed by probes; the C++ set and plain SQL agree.
CREATE FUNCTION pg_temp.rand_addr(v6 boolean) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN v6 THEN format('2001:db8::%s:%s', (random() * 3)::int, (random() * 7)::int)
                ELSE format('10.%s.%s.%s', (random() * 3)::int, (random() * 3)::int, (random() * 7)::int) END
$$;
CREATE FUNCTION pg_temp.rand_net(v6 boolean) RETURNS text LANGUAGE sql AS $$
    SELECT host(network(set_masklen(a::inet, m))) || '/' || m
      FROM (SELECT pg_temp.rand_addr(v6) AS a,
                   CASE WHEN v6 THEN 100 + (random() * 28)::int ELSE 8 + (random() * 24)::int END AS m) x
$$;
CREATE FUNCTION pg_temp.differential(ops int, probes int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    disagreements int := 0;
    op int; v6 boolean; target text; p text; victim inet; shift int;
BEGIN
    PERFORM setseed(0.42);
    FOR i IN 1..ops LOOP
        op := (random() * 5)::int;
        v6 := random() < 0.3;
        target := CASE WHEN random() < 0.6 THEN pg_temp.rand_addr(v6) ELSE pg_temp.rand_net(v6) END;
        IF op <= 1 THEN
            PERFORM sp_users.ban_ip(target, 'diff', CASE WHEN random() < 0.2 THEN NULL ELSE make_interval(secs => 1 + random() * 100) END);
        ELSIF op = 2 THEN
            PERFORM sp_users.unban_ip(target);
        ELSIF op = 3 THEN -- expire or un-expire something directly, to the second around now()
            -- (values drawn first: Citus refuses volatile functions in an UPDATE of a reference table)
            victim := (SELECT ip_address FROM sp_users.banned_ips ORDER BY random() LIMIT 1);
            shift := (random() * 4)::int - 2;
            UPDATE sp_users.banned_ips SET expires_at = now() + make_interval(secs => shift)
             WHERE ip_address = victim;
        ELSE
            PERFORM sp_users.cleanup_expired_bans();
        END IF;
        FOR j IN 1..probes LOOP
            p := pg_temp.rand_addr(random() < 0.3);
            IF sp_users.is_banned(p) IS DISTINCT FROM EXISTS (
                   SELECT 1 FROM sp_users.banned_ips b
                    WHERE b.ip_address >>= p::inet AND (b.expires_at IS NULL OR b.expires_at > now())) THEN
                disagreements := disagreements + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN disagreements;
END
$$;
SELECT is(pg_temp.differential(3000, 10), 0, 'is_banned agrees with plain SQL on 30 000 probes over 3 000 random changes');
SELECT cmp_ok((SELECT count(*)::int FROM sp_users.banned_ips), '>', 10, 'the differential run left a non-trivial ban set');
SELECT cmp_ok((SELECT fallback_lookups FROM sp_users.ban_cache_info()), '>', 29000::bigint,
              'a transaction that changed bans answers from the table (its own changes may still be rolled back)');
-- The incremental path (changes committed by other transactions) is differential-tested across
-- sessions and transactions in test/integration/ban_churn.sh.

SELECT * FROM finish();
ROLLBACK;
