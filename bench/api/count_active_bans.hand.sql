SELECT count(*) FROM sp_users.banned_ips WHERE expires_at IS NULL OR expires_at > now();
