-- IP bans: normalisation, networks, upserts, expiry, and the cache following every change.
CREATE EXTENSION sp_users;
\set VERBOSITY terse

-- Every spelling of one address is one address.
SELECT sp_users.normalize_ip(x) FROM unnest(ARRAY['1.2.3.4', '1.2.3.4/32', '::ffff:1.2.3.4', ' ::FFFF:0102:0304 ',
    '2001:DB8:0000::1', '2001:db8::1/128', '10.0.0.0/8', '::ffff:10.0.0.0/104', '2001:db8::/32']) AS x;
SELECT sp_users.normalize_ip('10.0.0.1/8');
SELECT sp_users.normalize_ip('300.1.1.1');
SELECT sp_users.normalize_ip('');
SELECT sp_users.normalize_ip('1.2.3.4/33');
SELECT sp_users.normalize_ip('fe80::1%eth0');
SELECT sp_users.is_banned('garbage');
SELECT sp_users.ban_ip('1.2.3', 'x', '1 hour');

-- First ban, repeat ban, metadata kept where the new value is NULL, sessions appended.
SELECT ip_address, reason, ban_count, is_permanent, ban_source, source_fingerprint, last_offense_path, associated_session_ids
  FROM sp_users.ban_ip('::ffff:198.51.100.7', 'scanner', '1 hour', 'waf', 'fp1', '/wp-admin', 'curl', 'sess-a');
SELECT ip_address, reason, ban_count, ban_source, source_fingerprint, last_offense_path, last_user_agent, associated_session_ids
  FROM sp_users.ban_ip('198.51.100.7', 'again', '1 hour', session_id => 'sess-b');
SELECT sp_users.is_banned('198.51.100.7'), sp_users.is_banned('::ffff:198.51.100.7'), sp_users.is_banned('198.51.100.8');

-- A shorter repeat ban never shortens; a longer one extends.
SELECT expires_at AS first_expiry FROM sp_users.ban_ip('203.0.113.5', 'long', '10 days') \gset
SELECT expires_at = :'first_expiry' AS kept_longer FROM sp_users.ban_ip('203.0.113.5', 'short', '1 minute');
SELECT expires_at > :'first_expiry' AS extended FROM sp_users.ban_ip('203.0.113.5', 'longer', '20 days');

-- Permanent means no expiry, and stays permanent (the seed kept the old expiry).
SELECT is_permanent, expires_at FROM sp_users.ban_ip('203.0.113.5', 'forever', NULL);
SELECT is_permanent, expires_at, ban_count FROM sp_users.ban_ip('203.0.113.5', 'temporary again', '1 hour');
SELECT sp_users.ban_ip('203.0.113.9', 'x', '0 seconds');
SELECT sp_users.ban_ip('203.0.113.9', 'x', '-1 day');

-- Escalation: duration x 2^(previous ban_count), capped at 365 days.
SELECT ban_count, expires_at - now() AS duration FROM sp_users.ban_ip('192.0.2.50', 'e', '1 hour', escalate => true);
SELECT ban_count, expires_at - now() AS duration FROM sp_users.ban_ip('192.0.2.50', 'e', '1 hour', escalate => true);
SELECT ban_count, expires_at - now() AS duration FROM sp_users.ban_ip('192.0.2.50', 'e', '1 hour', escalate => true);
UPDATE sp_users.banned_ips SET ban_count = 40 WHERE ip_address = '192.0.2.50';
SELECT ban_count, expires_at - now() AS duration FROM sp_users.ban_ip('192.0.2.50', 'e', '1 hour', escalate => true);

-- Networks: containment, most specific get_ban, exact unban.
SELECT ip_address FROM sp_users.ban_ip('10.0.0.0/8', 'wide', '1 day');
SELECT ip_address FROM sp_users.ban_ip('10.1.0.0/16', 'narrow', '1 day');
SELECT ip_address FROM sp_users.ban_ip('2001:db8::/32', 'v6 net', '1 day');
SELECT sp_users.is_banned('10.200.1.1') AS in_wide, sp_users.is_banned('10.1.2.3') AS in_narrow,
       sp_users.is_banned('2001:db8:1::1') AS in_v6, sp_users.is_banned('2001:db9::1') AS outside_v6,
       sp_users.is_banned('10.1.0.0/16') AS network_itself, sp_users.is_banned('0.0.0.0/0') AS wider;
SELECT ip_address, reason FROM sp_users.get_ban('10.1.2.3');
SELECT ip_address, reason FROM sp_users.get_ban('10.2.2.3');
SELECT ip_address FROM sp_users.get_ban('11.0.0.1');
SELECT sp_users.unban_ip('10.1.0.0/16'), sp_users.unban_ip('10.1.0.0/16');
SELECT ip_address FROM sp_users.get_ban('10.1.2.3');
SELECT sp_users.unban_ip('10.0.0.0/8');
SELECT sp_users.is_banned('10.1.2.3') AS after_unban;

-- Expiry is honoured without any write; cleanup only reclaims rows, never permanent ones.
UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 second' WHERE ip_address = '198.51.100.7';
SELECT sp_users.is_banned('198.51.100.7') AS expired_is_banned;
SELECT sp_users.count_active_bans();
SELECT sp_users.cleanup_expired_bans(), sp_users.cleanup_expired_bans();
SELECT count(*) AS permanent_left FROM sp_users.banned_ips WHERE is_permanent;

-- Listings.
SELECT ip_address FROM sp_users.list_active_bans() ORDER BY 1;
SELECT count(*) FROM sp_users.list_active_bans(1);
SELECT ip_address FROM sp_users.list_bans_by_source('manual') ORDER BY 1;
SELECT count(*) FROM sp_users.list_bans_by_fingerprint('fp1');
SELECT sp_users.list_active_bans(-1);

-- Rolled back bans are never seen; direct DML and TRUNCATE are followed too.
BEGIN;
SELECT ip_address FROM sp_users.ban_ip('192.0.2.77', 'rolled back', '1 hour');
SELECT sp_users.is_banned('192.0.2.77') AS own_uncommitted_ban;
ROLLBACK;
SELECT sp_users.is_banned('192.0.2.77') AS after_rollback;
INSERT INTO sp_users.banned_ips (ip_address, reason, expires_at) VALUES ('192.0.2.78', 'direct', now() + interval '1 hour');
SELECT sp_users.is_banned('192.0.2.78') AS direct_insert;
TRUNCATE sp_users.banned_ips;
SELECT sp_users.is_banned('192.0.2.78') AS after_truncate, sp_users.is_banned('203.0.113.5') AS permanent_after_truncate;
INSERT INTO sp_users.banned_ips (ip_address, reason, expires_at) VALUES ('10.0.0.1/8', 'host bits', NULL);
DROP EXTENSION sp_users;
