-- half repeat bans of loaded addresses, half new addresses (in 172.16/12, removed by reset.sql)
\set r random(1, 36000)
INSERT INTO sp_users.banned_ips AS b (ip_address, reason, banned_at, expires_at, ban_count, last_offense_path, last_user_agent,
                                      source_fingerprint, ban_source, associated_session_ids)
VALUES ((CASE WHEN :r <= 18000 THEN host('10.0.0.0'::inet + :r * 13) ELSE host('172.16.0.0'::inet + :r) END)::inet, 'bench', now(), now() + interval '1 hour', 1, '/login', 'curl/8.0', NULL, 'waf', '{}')
ON CONFLICT (ip_address) DO UPDATE SET
    reason = EXCLUDED.reason, ban_source = EXCLUDED.ban_source, banned_at = now(), ban_count = b.ban_count + 1,
    expires_at = CASE WHEN b.expires_at IS NULL THEN NULL ELSE greatest(b.expires_at, EXCLUDED.expires_at) END,
    last_offense_path = coalesce(EXCLUDED.last_offense_path, b.last_offense_path),
    last_user_agent = coalesce(EXCLUDED.last_user_agent, b.last_user_agent),
    source_fingerprint = coalesce(EXCLUDED.source_fingerprint, b.source_fingerprint)
RETURNING *;
