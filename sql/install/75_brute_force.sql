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
