-- Benchmark data: 1 000 000 single-address bans and 100 000 network bans, a third of each expired,
-- plus the seed's text-keyed table holding the same single addresses.
-- psql -v net_mask=24: every network a /24 (default: masks 20 to 28).
\set QUIET on
\if :{?net_mask}
\else
\set net_mask 0
\endif
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sp_users CASCADE;
CREATE EXTENSION sp_users;
DROP TABLE IF EXISTS public.seed_banned_ips;

-- Address i is a bijective scramble of i over the IPv4 space, so addresses are distinct and spread.
CREATE FUNCTION public.bench_addr(i bigint) RETURNS inet LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '0.0.0.0'::inet + ((i * 2654435761) % 4294967296) $$;

-- No change log for the load itself; one "everything changed" record at the end instead.
ALTER TABLE sp_users.banned_ips DISABLE TRIGGER banned_ips_log_insert;
INSERT INTO sp_users.banned_ips (ip_address, reason, banned_at, expires_at, ban_source)
SELECT public.bench_addr(i), 'bench', now(),
       CASE i % 3 WHEN 0 THEN now() - interval '1 hour' WHEN 1 THEN now() + interval '30 days' ELSE NULL END,
       'bench'
  FROM generate_series(1, 1000000) AS i;
INSERT INTO sp_users.banned_ips (ip_address, reason, banned_at, expires_at, ban_source)
SELECT network(set_masklen(public.bench_addr(5000000 + i), CASE WHEN :net_mask > 0 THEN :net_mask ELSE 20 + (i % 9)::int END))::inet, 'bench net', now(),
       CASE i % 3 WHEN 0 THEN now() - interval '1 hour' WHEN 1 THEN now() + interval '30 days' ELSE NULL END,
       'bench'
  FROM generate_series(1, 100000) AS i
ON CONFLICT DO NOTHING;
ALTER TABLE sp_users.banned_ips ENABLE ALWAYS TRIGGER banned_ips_log_insert;
INSERT INTO sp_users.ban_changes (ip_address) VALUES (NULL); -- every backend's ban set rebuilds once

-- The seed's table: text primary key, exact matches only.
CREATE TABLE public.seed_banned_ips (ip_address text PRIMARY KEY, expires_at timestamptz);
INSERT INTO public.seed_banned_ips SELECT host(ip_address), expires_at FROM sp_users.banned_ips WHERE masklen(ip_address) = 32;
VACUUM ANALYZE sp_users.banned_ips;
VACUUM ANALYZE public.seed_banned_ips;
SELECT count(*) FILTER (WHERE masklen(ip_address) = 32) AS single_address_bans,
       count(*) FILTER (WHERE masklen(ip_address) < 32) AS network_bans,
       count(*) FILTER (WHERE expires_at <= now()) AS expired
  FROM sp_users.banned_ips;
