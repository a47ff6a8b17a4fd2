#!/usr/bin/env bash
# Scale check: 1 000 000 old anonymous users cleaned by CALL sp_users.run_anonymous_cleanup while a
# pgbench load (is_banned + find_by_id, -c 2 -j 2) runs. Reports the clean-up time and batches, the
# load's tps before and during the clean-up, and lock waits over 1 s (log_lock_waits).
#   bench/anonymous_cleanup.sh [users, default 1000000] [batch_size, default 5000] [pause factor, default 3]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
USERS=${1:-1000000}
BATCH=${2:-5000}
PAUSE=${3:-${SP_USERS_CLEANUP_PAUSE:-3}}  # sp_users.cleanup_pause_factor for the run
DB=sp_users_bench_anon
OUT=bench/out/anon; mkdir -p "$OUT"
scripts/pgdev start >/dev/null
eval "$(scripts/pgdev env)"
LOG=$(scripts/pgdev env | sed -n "s/.*PGDEV_LOG='\([^']*\)'.*/\1/p")

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
echo "loading $USERS old anonymous users ..."
psql -X -q -v ON_ERROR_STOP=1 -d $DB <<SQL
CREATE EXTENSION sp_users;
INSERT INTO sp_users.users (name, email, roles, created_at)
SELECT 'anon' || i, 'fp' || i || '@anonymous.local', '{anonymous}', now() - interval '60 days' - i * interval '1 second'
  FROM generate_series(1, $USERS) i;
-- Registered users the load reads, each with a live session; a few bans for is_banned.
CREATE TABLE public.bench_ids (n int PRIMARY KEY, id uuid NOT NULL);
WITH u AS (
    INSERT INTO sp_users.users (name, email) SELECT 'user' || i, 'user' || i || '@example.com' FROM generate_series(1, 10000) i
    RETURNING id, name)
INSERT INTO public.bench_ids SELECT substr(name, 5)::int, id FROM u;
INSERT INTO sp_users.user_sessions (session_id, user_id, user_type) SELECT 's' || n, id, 'registered' FROM public.bench_ids;
INSERT INTO sp_users.banned_ips (ip_address, reason, expires_at)
SELECT '10.0.0.0'::inet + i, 'bench', now() + interval '1 day' FROM generate_series(1, 10000) i;
VACUUM ANALYZE;
SQL
printf '\\set k random(1, 10000)\nSELECT sp_users.is_banned(host(%s));\nSELECT name FROM sp_users.find_by_id((SELECT id FROM public.bench_ids WHERE n = :k));\n' "'10.0.0.0'::inet + :k * 2" > "$OUT/load.sql"

echo "load alone (20 s) ..."
pgbench -n -M prepared -c 2 -j 2 -T 20 -f "$OUT/load.sql" $DB > "$OUT/before.log" 2>&1
tps_before=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/before.log")

log_lines_before=$(wc -l < "$LOG")
echo "load + clean-up ..."
pgbench -n -M prepared -c 2 -j 2 -T 600 -P 1 --progress-timestamp -f "$OUT/load.sql" $DB > "$OUT/during.log" 2>&1 &
load_pid=$!
trap 'kill -TERM $load_pid 2>/dev/null || true' EXIT
sleep 5
t0=$(date +%s.%N)
psql -X -q -d $DB -c "SET sp_users.cleanup_pause_factor = $PAUSE" \
     -c "CALL sp_users.run_anonymous_cleanup(retention_days => 30, enforce => true, batch_size => $BATCH)" > "$OUT/cleanup.log" 2>&1
t1=$(date +%s.%N)
sleep 2
kill -TERM $load_pid 2>/dev/null || true
wait $load_pid 2>/dev/null || true

tps_during=$(awk -v a="$t0" -v b="$t1" '/^progress: [0-9.]+ s/ { t = $2; if (t >= a && t <= b) { s += $4; n++ } } END { if (n) printf "%.0f", s / n; else print 0 }' "$OUT/during.log")
read -r rows batches secs < <(psql -X -At -F ' ' -d $DB -c "SELECT rows_affected, batches, round(extract(epoch FROM finished_at - started_at)::numeric, 1) FROM sp_users.job_runs ORDER BY id DESC LIMIT 1")
left=$(psql -X -At -d $DB -c "SELECT sp_users.count_old_anonymous(30)")
lock_waits=$(tail -n +"$((log_lines_before + 1))" "$LOG" | grep -c "still waiting for" || true)

echo
printf '%-40s %s\n' "anonymous users deleted" "$rows (left: $left)"
printf '%-40s %s\n' "batches (batch_size $BATCH, pause factor $PAUSE)" "$batches"
printf '%-40s %s s\n' "clean-up time" "$secs"
printf '%-40s %.0f\n' "load tps before" "$tps_before"
printf '%-40s %.0f\n' "load tps during clean-up" "$tps_during"
awk -v a="$tps_during" -v b="$tps_before" 'BEGIN { printf "%-40s %.2f\n", "during / before", a / b }'
printf '%-40s %s\n' "lock waits over 1 s (log_lock_waits)" "$lock_waits"
