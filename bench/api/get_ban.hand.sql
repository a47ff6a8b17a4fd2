-- r <= 18 000: a loaded address ban (a third expired); <= 30 000: IPv4 addresses among the /24 network bans; else IPv6
-- (5 % inside a /48 ban). '2001:' || 'db8:' is split because pgbench would take the colon before db8 for a variable.
\set r random(1, 40000)
SELECT * FROM sp_users.banned_ips WHERE ip_address >>= (CASE WHEN :r <= 18000 THEN host('10.0.0.0'::inet + :r * 13) WHEN :r <= 30000 THEN host('20.0.0.0'::inet + (:r - 18000) * 97) ELSE '2001:' || 'db8:' || to_hex(:r - 30000) || '::1' END)::inet AND (expires_at IS NULL OR expires_at > now()) ORDER BY masklen(ip_address) DESC LIMIT 1;
