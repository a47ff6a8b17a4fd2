-- bench/api.sh data: 100 000 users, 200 000 sessions, 20 000 bans, loaded set-based as the
-- superuser. Every value is a function of a number, so the pgbench scripts compute their
-- arguments from a random number instead of reading a helper table:
--   user n (1..100 000):  id md5('u' || n)::uuid, name 'user<n>', email 'user<n>@example.com';
--     by m = n % 100:  0 admin ({user,admin}) | 1..19 anonymous ({anonymous}; name 'anonymous_<n>',
--     email 'fp<n>@anonymous.local', i.e. create_anonymous('fp<n>')) | 20 deleted | 21..23 suspended
--     | 24..28 inactive | 29..30 pending | 31 temporary | else active user. is_bot when n % 33 = 0.
--   session k (1..200 000): 'sess_<k>' of user ((k - 1) % 100 000) + 1; by pair p = (k + 1) / 2
--     (so odd k and the even k after it are alike), p % 10: 0..5 active, 6 ended, 7 expired but never
--     ended, 8 revoked, 9 active without expiry. A deleted user's unended sessions are revoked.
--   bans: 18 000 addresses 10.0.0.0 + 13 i (i % 3 = 0 expired, i % 20 = 1 permanent); 1 500 IPv4 /24
--     networks at 20.0.0.0 + 768 j (j % 4 = 0 expired); 500 IPv6 /48 networks 2001:db8:<hex j>::/48.
-- Rows the benchmark writes are told apart by bench_meta.loaded_at (bench/api/reset.sql).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT setseed(0.42) \gset

INSERT INTO sp_users.users (id, name, email, full_name, display_name, status, email_verified, roles, is_bot, created_at, updated_at)
SELECT md5('u' || n)::uuid,
       CASE WHEN m BETWEEN 1 AND 19 THEN 'anonymous_' || n ELSE 'user' || n END,
       CASE WHEN m BETWEEN 1 AND 19 THEN 'fp' || n || '@anonymous.local' ELSE 'user' || n || '@example.com' END,
       CASE WHEN m BETWEEN 1 AND 19 THEN NULL ELSE 'User Number ' || n END,
       CASE WHEN m BETWEEN 1 AND 19 THEN NULL ELSE 'User ' || n END,
       CASE WHEN m = 20 THEN 'deleted' WHEN m BETWEEN 21 AND 23 THEN 'suspended' WHEN m BETWEEN 24 AND 28 THEN 'inactive'
            WHEN m BETWEEN 29 AND 30 THEN 'pending' WHEN m = 31 THEN 'temporary' ELSE 'active' END::sp_users.user_status,
       n % 2 = 0,
       CASE WHEN m = 0 THEN '{user,admin}' WHEN m BETWEEN 1 AND 19 THEN '{anonymous}' ELSE '{user}' END::sp_users.user_role[],
       n % 33 = 0,
       c, c + random() * interval '10 days'
  FROM (SELECT n, n % 100 AS m, now() - interval '20 days' - random() * interval '1100 days' AS c
          FROM generate_series(1, 100000) n) s;

INSERT INTO sp_users.user_sessions (session_id, user_id, ip_address, user_agent, device_type, fingerprint_hash, user_type,
                                    started_at, last_activity_at, ended_at, expires_at, revoked_at)
SELECT 'sess_' || k, md5('u' || n)::uuid, '100.64.0.0'::inet + k, 'Mozilla/5.0 (X11; Linux x86_64) bench',
       CASE WHEN k % 3 = 0 THEN 'mobile' ELSE 'desktop' END, md5('f' || k),
       CASE WHEN n % 100 BETWEEN 1 AND 19 THEN 'anon' ELSE 'registered' END,
       st, st + interval '10 minutes',
       CASE WHEN st8 = 6 THEN st + interval '1 hour' END,
       CASE WHEN st8 = 7 THEN st + interval '1 day' WHEN st8 = 9 THEN NULL ELSE st + interval '7 days' END,
       CASE WHEN st8 = 8 OR (n % 100 = 20 AND st8 <> 6) THEN st + interval '2 hours' END
  FROM (SELECT k, ((k - 1) % 100000) + 1 AS n, ((k + 1) / 2) % 10 AS st8,
               CASE WHEN ((k + 1) / 2) % 10 IN (6, 7) THEN now() - interval '10 days' ELSE now() - interval '6 days' END
                 + random() * interval '5 days' AS st
          FROM generate_series(1, 200000) k) s;

INSERT INTO sp_users.banned_ips (ip_address, reason, banned_at, expires_at, ban_count, last_offense_path, last_user_agent,
                                 source_fingerprint, ban_source, associated_session_ids)
SELECT ip, 'bench load', b, CASE WHEN perm THEN NULL WHEN expired THEN now() - interval '1 hour' ELSE now() + interval '30 days' END,
       1 + i % 4, '/login', 'curl/8.0', CASE WHEN i % 10 = 0 THEN 'fp' || i END,
       CASE WHEN i % 3 = 1 THEN 'waf' ELSE 'manual' END, '{}'
  FROM (SELECT '10.0.0.0'::inet + i * 13 AS ip, i, i % 3 = 0 AS expired, i % 20 = 1 AS perm,
               now() - interval '2 days' - random() * interval '60 days' AS b
          FROM generate_series(1, 18000) i
        UNION ALL
        SELECT set_masklen('20.0.0.0'::inet + j * 768, 24), 100000 + j, j % 4 = 0, false, now() - interval '2 days' - random() * interval '60 days'
          FROM generate_series(1, 1500) j
        UNION ALL
        SELECT ('2001:db8:' || to_hex(j) || '::/48')::inet, 200000 + j, j % 4 = 0, false, now() - interval '2 days' - random() * interval '60 days'
          FROM generate_series(1, 500) j) s;

-- The pristine bans (ban_ip rewrites repeat-banned rows; reset.sql restores them) and the load time.
DROP TABLE IF EXISTS public.bench_bans_orig, public.bench_meta;
CREATE TABLE public.bench_bans_orig AS SELECT * FROM sp_users.banned_ips;
ALTER TABLE public.bench_bans_orig ADD PRIMARY KEY (ip_address);
SELECT sp_users.compact_user_counts() AS counter_rows \gset
VACUUM (FREEZE, ANALYZE) sp_users.users, sp_users.user_sessions, sp_users.banned_ips, sp_users.user_counts, sp_users.user_count_deltas, public.bench_bans_orig;
CREATE TABLE public.bench_meta AS SELECT clock_timestamp() AS loaded_at;
CHECKPOINT;
