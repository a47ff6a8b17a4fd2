SELECT * FROM sp_users.banned_ips WHERE expires_at IS NULL OR expires_at > now() ORDER BY banned_at DESC, ip_address LIMIT 100;
