-- public.mismatches(): every statistic and every ban answer of sp_users compared with plain SQL
-- over its tables, in the caller's snapshot and session (so a long-lived session's ban set is what
-- is checked). Returns 'exact', or the names of what differs. Used by logical.sh and pg_upgrade.sh.
CREATE FUNCTION public.mismatches() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text[] := '{}';
    addr inet;
    sql_banned boolean;
BEGIN
    IF (SELECT row(s.*)::text FROM sp_users.get_stats() s) IS DISTINCT FROM (
        SELECT row(count(*), count(*) FILTER (WHERE created_at > now() - interval '24 hours'),
                   count(*) FILTER (WHERE created_at > now() - interval '7 days'), count(*) FILTER (WHERE created_at > now() - interval '30 days'),
                   count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'suspended'),
                   count(*) FILTER (WHERE 'admin' = ANY (roles)), count(*) FILTER (WHERE 'anonymous' = ANY (roles)),
                   count(*) FILTER (WHERE is_bot), min(created_at), max(created_at))::text
          FROM sp_users.users WHERE status <> 'deleted') THEN
        bad := bad || 'get_stats'::text;
    END IF;
    IF (SELECT coalesce(array_agg(row(c.*)::text ORDER BY c.count DESC, c.status), '{}') FROM sp_users.count_by_status() c) IS DISTINCT FROM
       (SELECT coalesce(array_agg(row(status, n)::text ORDER BY n DESC, status), '{}') FROM (SELECT status, count(*) AS n FROM sp_users.users WHERE status <> 'deleted' GROUP BY status) x) THEN
        bad := bad || 'count_by_status'::text;
    END IF;
    IF (SELECT coalesce(array_agg(row(c.*)::text ORDER BY c.count DESC, c.role), '{}') FROM sp_users.count_by_role() c) IS DISTINCT FROM
       (SELECT coalesce(array_agg(row(r, n)::text ORDER BY n DESC, r), '{}') FROM (SELECT r, count(*) AS n FROM sp_users.users, unnest(roles) r WHERE status <> 'deleted' GROUP BY r) x) THEN
        bad := bad || 'count_by_role'::text;
    END IF;
    IF (SELECT total FROM sp_users.count_with_breakdown()) IS DISTINCT FROM (SELECT count(*) FROM sp_users.users WHERE status <> 'deleted')
       OR sp_users.count_users() IS DISTINCT FROM (SELECT count(*) FROM sp_users.users WHERE status <> 'deleted') THEN
        bad := bad || 'count_with_breakdown/count_users'::text;
    END IF;
    IF sp_users.count_active_bans() IS DISTINCT FROM (SELECT count(*) FROM sp_users.banned_ips WHERE expires_at IS NULL OR expires_at > now()) THEN
        bad := bad || 'count_active_bans'::text;
    END IF;
    -- Every banned address and network (its first and last address), its neighbours, and the
    -- addresses the test bans and unbans.
    FOR addr IN SELECT DISTINCT a FROM (
            SELECT host(b.ip_address)::inet AS a FROM sp_users.banned_ips b
            UNION ALL SELECT host(broadcast(b.ip_address))::inet FROM sp_users.banned_ips b
            UNION ALL SELECT host(b.ip_address)::inet + 1 FROM sp_users.banned_ips b WHERE masklen(b.ip_address) = 32
            UNION ALL SELECT unnest(ARRAY['198.51.100.7', '192.0.2.1', '10.9.0.7', '10.9.0.14', '203.0.113.9', '172.20.1.1']::inet[])) x
    LOOP
        sql_banned := EXISTS (SELECT 1 FROM sp_users.banned_ips b WHERE b.ip_address >>= addr AND (b.expires_at IS NULL OR b.expires_at > now()));
        IF sp_users.is_banned(host(addr)) IS DISTINCT FROM sql_banned THEN
            bad := bad || ('is_banned(' || host(addr) || ')');
        END IF;
        IF (SELECT count(*) FROM sp_users.get_ban(host(addr))) <> sql_banned::int THEN
            bad := bad || ('get_ban(' || host(addr) || ')');
        END IF;
    END LOOP;
    RETURN CASE WHEN cardinality(bad) = 0 THEN 'exact' ELSE array_to_string(bad[1:8], ', ') END;
END
$$;
