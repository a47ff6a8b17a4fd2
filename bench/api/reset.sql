-- Run by bench/api.sh before and after every run of a function that writes, so each run (sp_users
-- or hand-written) starts from the loaded state and a fresh checkpoint: rows created since the load go, sessions ended
-- since the load are open again, repeat-banned rows get their loaded values back.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DELETE FROM sp_users.user_sessions WHERE started_at >= (SELECT loaded_at FROM public.bench_meta);
UPDATE sp_users.user_sessions SET ended_at = NULL WHERE ended_at >= (SELECT loaded_at FROM public.bench_meta);
DELETE FROM sp_users.users WHERE created_at >= (SELECT loaded_at FROM public.bench_meta);
DELETE FROM sp_users.banned_ips b WHERE NOT EXISTS (SELECT 1 FROM public.bench_bans_orig o WHERE o.ip_address = b.ip_address);
UPDATE sp_users.banned_ips b
   SET reason = o.reason, banned_at = o.banned_at, expires_at = o.expires_at, ban_count = o.ban_count,
       last_offense_path = o.last_offense_path, last_user_agent = o.last_user_agent,
       source_fingerprint = o.source_fingerprint, ban_source = o.ban_source, associated_session_ids = o.associated_session_ids
  FROM public.bench_bans_orig o
 WHERE o.ip_address = b.ip_address AND b.banned_at >= (SELECT loaded_at FROM public.bench_meta);
SELECT sp_users.compact_user_counts() \gset
VACUUM sp_users.users, sp_users.user_sessions, sp_users.banned_ips, sp_users.user_counts, sp_users.user_count_deltas;
CHECKPOINT;
