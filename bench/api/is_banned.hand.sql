\set r random(1, 40000)
SELECT EXISTS (SELECT 1 FROM sp_users.banned_ips WHERE ip_address >>= (CASE WHEN :r <= 18000 THEN host('10.0.0.0'::inet + :r * 13) WHEN :r <= 30000 THEN host('20.0.0.0'::inet + (:r - 18000) * 97) ELSE '2001:db8:' || to_hex(:r - 30000) || '::1' END)::inet AND (expires_at IS NULL OR expires_at > now()));
