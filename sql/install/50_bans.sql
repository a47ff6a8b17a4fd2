-- IP bans. The hot path (is_banned) is C++ over an in-memory ban set (pg/ban_cache); the rest is SQL over
-- sp_users.banned_ips, whose addresses are always in sp_users.normalize_ip form.

CREATE FUNCTION sp_users.is_banned(ip text) RETURNS boolean
AS 'MODULE_PATHNAME', 'sp_users_is_banned'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.is_banned(text) IS
'True when an active ban (expires_at NULL or later than now()) equals the address or network, or contains it. Answered from an in-memory ban set (per backend, or shared by all connections when sp_users is preloaded) that follows every committed change through the change log sp_users.ban_changes, re-reading only the changed networks: a committed ban is seen at once, an uncommitted one never by others; a transaction that changed bans itself is answered from the table. 22P02 on invalid address text.';

CREATE FUNCTION sp_users._escalated_duration(duration interval, previous_bans bigint) RETURNS interval
AS 'MODULE_PATHNAME', 'sp_users_escalated_duration'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._escalated_duration(interval, bigint) IS
'Internal: duration x 2^previous_bans, capped at 365 days (overflow-safe); a duration already longer than the cap is kept as is.';

CREATE FUNCTION sp_users._escalated_expiry(start timestamptz, plain_expiry timestamptz, duration interval, previous_bans bigint) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'sp_users_escalated_expiry'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION sp_users._escalated_expiry(timestamptz, timestamptz, interval, bigint) IS
'Internal: start + _escalated_duration(duration, previous_bans), given plain_expiry = start + duration (returned when nothing escalates). Immutable (an escalated duration is whole microseconds), so ban_ip''s upsert holds only immutable expressions in DO UPDATE SET, as Citus requires.';

CREATE FUNCTION sp_users._citus_session() RETURNS void
AS 'MODULE_PATHNAME', 'sp_users_citus_session'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sp_users._citus_session() IS
'Internal: on a Citus node, makes the settings that decide how Citus writes a statement and how other nodes read it canonical (search_path, DateStyle, IntervalStyle, standard_conforming_strings) here and, by Citus'' SET LOCAL propagation, on every node the transaction reaches, after any the caller had Citus replay there; until the calling function''s SET clause ends. Nothing elsewhere. Called first by every function whose statements on banned_ips Citus may run on other nodes as the owner.';

CREATE FUNCTION sp_users.ban_cache_info(OUT entries bigint, OUT memory_bytes bigint, OUT rebuilds bigint,
                                        OUT last_rebuild_ms double precision, OUT valid boolean, OUT fallback_lookups bigint,
                                        OUT refreshes bigint, OUT changes_applied bigint, OUT shared_bytes bigint, OUT publishes bigint)
AS 'MODULE_PATHNAME', 'sp_users_ban_cache_info'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION sp_users.ban_cache_info() IS
'The calling backend''s ban set: active entries it holds, bytes it takes, how often it was rebuilt in full and the last rebuild''s duration, whether it is valid right now, how many calls were answered by an index lookup instead (in a transaction that changed bans itself; with a pre-0.3.0 schema, after a change), how many incremental refreshes through the change log brought it forward, re-reading how many networks, and, with sp_users preloaded, the bytes of the shared base it reads (0 = a private set; entries then counts the base and this backend''s own changes since it, memory_bytes only the latter) and how many bases it built and published.';

CREATE FUNCTION sp_users.ban_ip(ip text, reason text, duration interval, ban_source text DEFAULT 'manual',
                                source_fingerprint text DEFAULT NULL, offense_path text DEFAULT NULL,
                                user_agent text DEFAULT NULL, session_id text DEFAULT NULL, escalate boolean DEFAULT false)
RETURNS sp_users.banned_ips
AS 'MODULE_PATHNAME', 'sp_users_ban_ip'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.ban_ip(text, text, interval, text, text, text, text, text, boolean) IS
'Bans an address or network (normalised; 22P02 when invalid). duration NULL = permanent; zero or negative raises 22023. A repeat ban increments ban_count, replaces reason and ban_source, keeps earlier fingerprint/path/agent where the new one is NULL, appends session_id (distinct, last 100 kept). Permanent stays permanent (expires_at NULL); a repeat ban never shortens an expiry. With escalate, duration x 2^(previous ban_count), capped at 365 days.';

CREATE FUNCTION sp_users.ban_ips(list text, reason text, duration interval, ban_source text DEFAULT 'blocklist')
RETURNS TABLE (line integer, entry text, error text)
AS 'MODULE_PATHNAME', 'sp_users_ban_ips'
LANGUAGE C VOLATILE SECURITY DEFINER;
COMMENT ON FUNCTION sp_users.ban_ips(text, text, interval, text) IS
'Bans every address and network of a blocklist in one statement: one entry per line, text after # or ; is a comment, blank lines are skipped (FireHOL netsets, Spamhaus DROP and plain exports load as published). Each entry follows ban_ip''s upsert rules with the given reason, duration (NULL = permanent; zero or negative raises 22023) and ban_source; entries that normalise to the same network count once. Bad lines are returned (line number, entry, why) and the others applied; a NOTICE counts new, repeat, duplicate and rejected entries. One statement: every backend''s ban set re-reads the changed networks once.';

CREATE FUNCTION sp_users.get_ban(ip text) RETURNS SETOF sp_users.banned_ips
AS 'MODULE_PATHNAME', 'sp_users_get_ban'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION sp_users.get_ban(text) IS 'The active ban that applies to the address: the exact entry if banned, else the most specific covering network; no row when none applies.';

CREATE FUNCTION sp_users.unban_ip(ip text) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    net inet := sp_users.normalize_ip(ip); -- first: bad text is 22P02 whatever the table holds
BEGIN
    PERFORM sp_users._citus_session();
    DELETE FROM sp_users.banned_ips b WHERE b.ip_address = net;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION sp_users.unban_ip(text) IS 'Removes exactly that entry (an address, or a network; covering or covered entries stay). False when there was none.';

CREATE FUNCTION sp_users.cleanup_expired_bans() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sp_users._citus_session();
    WITH gone AS (DELETE FROM sp_users.banned_ips b WHERE b.expires_at <= now() RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION sp_users.cleanup_expired_bans() IS 'Deletes bans whose expiry has passed (never permanent ones); returns how many. Expired bans already stop applying without it: this only reclaims space (and forgets ban counts).';

CREATE FUNCTION sp_users.list_active_bans(lim integer DEFAULT 100) RETURNS SETOF sp_users.banned_ips
AS 'MODULE_PATHNAME', 'sp_users_list_active_bans'
LANGUAGE C STABLE PARALLEL SAFE ROWS 100;
COMMENT ON FUNCTION sp_users.list_active_bans(integer) IS 'Active bans, most recently (re)banned first; lim capped at 100.';

CREATE FUNCTION sp_users.list_bans_by_source(source text, lim integer DEFAULT 100) RETURNS SETOF sp_users.banned_ips
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sp_users._citus_session();
    SELECT * FROM sp_users.banned_ips b
     WHERE b.ban_source = $1 AND (b.expires_at IS NULL OR b.expires_at > now())
     ORDER BY b.banned_at DESC, b.ip_address
     LIMIT sp_users._page_limit($2)
$$;
COMMENT ON FUNCTION sp_users.list_bans_by_source(text, integer) IS 'Active bans with this ban_source, most recent first; lim capped at 100.';

CREATE FUNCTION sp_users.list_bans_by_fingerprint(fingerprint text) RETURNS SETOF sp_users.banned_ips
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sp_users._citus_session();
    SELECT * FROM sp_users.banned_ips b WHERE b.source_fingerprint = $1 ORDER BY b.banned_at DESC, b.ip_address
$$;
COMMENT ON FUNCTION sp_users.list_bans_by_fingerprint(text) IS 'Every ban (active or expired) recorded with this source fingerprint, most recent first.';

CREATE FUNCTION sp_users.count_active_bans() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    PERFORM sp_users._citus_session();
    RETURN (SELECT pg_catalog.count(*) FROM sp_users.banned_ips b
             WHERE b.expires_at IS NULL OR b.expires_at OPERATOR(pg_catalog.>) pg_catalog.now());
END
$$;
COMMENT ON FUNCTION sp_users.count_active_bans() IS 'Number of active bans (addresses and networks).';
