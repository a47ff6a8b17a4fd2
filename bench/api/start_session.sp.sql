\set n random(1, 100000)
\set n CASE WHEN :n % 100 = 20 THEN :n + 1 ELSE :n END
SELECT * FROM sp_users.start_session(md5('u' || :n)::uuid, ip_address => '198.51.100.' || :n % 250, user_agent => 'Mozilla/5.0 bench', device_type => 'desktop');
