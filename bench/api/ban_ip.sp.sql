-- half repeat bans of loaded addresses, half new addresses (in 172.16/12, removed by reset.sql)
\set r random(1, 36000)
SELECT * FROM sp_users.ban_ip(CASE WHEN :r <= 18000 THEN host('10.0.0.0'::inet + :r * 13) ELSE host('172.16.0.0'::inet + :r) END, 'bench', interval '1 hour', 'waf', offense_path => '/login', user_agent => 'curl/8.0');
