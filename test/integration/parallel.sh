#!/usr/bin/env bash
# The hot functions inside parallel plans (issue 11): an analytics query over an access log with
# every parallel cost at zero, so the planner always runs a Gather with workers, on a fresh
# backend, right after a committed ban change, and in a long-lived backend across changes, in
# READ COMMITTED and REPEATABLE READ. Every answer must equal the same query written in plain SQL;
# the plan must really be parallel and is_banned must run below the Gather (in the workers).
set -euo pipefail
DB=sp_users_parallel
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
q() { psql -X -At -q -v ON_ERROR_STOP=1 -d $DB "$@"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q >/dev/null <<'SQL'
CREATE EXTENSION sp_users;
CREATE TABLE public.access_log AS
SELECT i, host(CASE WHEN i % 7 = 0 THEN '2001:db8::'::inet + i ELSE '10.0.0.0'::inet + (i % 9000) END) AS ip,
       'u' || (i % 500) || '@Example.com ' AS email
  FROM generate_series(1, 120000) i;
ANALYZE public.access_log;
SELECT sp_users.create_user('u' || i, 'u' || i || '@example.com') FROM generate_series(1, 300) i;
SELECT sp_users.ban_ip('10.0.0.' || i, 'seed', '1 day') FROM generate_series(1, 40) i;
SELECT sp_users.ban_ip('10.0.3.0/24', 'net', NULL);
SELECT sp_users.ban_ip('2001:db8::/120', 'v6 net', '1 day');
SQL

FORCE="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET force_parallel_mode = on;"
# One row: the hot functions over the log, then the same figures in plain SQL.
CHECK="SELECT count(*) FILTER (WHERE sp_users.is_banned(a.ip)),
              count(DISTINCT sp_users.normalize_ip(a.ip)),
              count(DISTINCT sp_users.normalize_email(a.email))
         FROM public.access_log a
       UNION ALL
       SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM sp_users.banned_ips b
                                              WHERE b.ip_address >>= a.ip::inet AND (b.expires_at IS NULL OR b.expires_at > now()))),
              count(DISTINCT a.ip::inet),
              count(DISTINCT lower(btrim(a.email)))
         FROM public.access_log a;"
same() { # label, output of CHECK (two lines)
  local first second; first=$(sed -n 1p <<<"$2"); second=$(sed -n 2p <<<"$2")
  [ -n "$first" ] && [ "$first" = "$second" ] || fail "$1: functions '$first' vs plain SQL '$second'"
  ok "$1 ($first)"
}

plan=$(q -c "$FORCE" -c "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF) SELECT count(*) FILTER (WHERE sp_users.is_banned(a.ip)) FROM public.access_log a")
grep -q "Workers Launched: [12]" <<<"$plan" || fail "no parallel workers: $plan"
awk '/Gather/{g=1} g && /is_banned/{found=1} END{exit !found}' <<<"$plan" || fail "is_banned is not evaluated below the Gather: $plan"
ok "is_banned runs in parallel workers (Gather, workers launched)"

for iso in "READ COMMITTED" "REPEATABLE READ"; do
  # A fresh backend: the leader and every worker build their set inside the parallel query.
  same "$iso, fresh backend" "$(q -c "$FORCE" -c "BEGIN ISOLATION LEVEL $iso" -c "$CHECK" -c "COMMIT" | grep '|')"
  # Right after a committed change, same backend: the set is invalid when the query starts.
  same "$iso, right after a committed ban" "$(q -c "$FORCE" -c "$CHECK" -c "SELECT sp_users.ban_ip('10.0.1.0/26', 'new', '1 hour')" \
        -c "BEGIN ISOLATION LEVEL $iso" -c "$CHECK" -c "COMMIT" | grep '|' | tail -2)"
  same "$iso, right after a committed unban" "$(q -c "$FORCE" -c "$CHECK" -c "SELECT sp_users.unban_ip('10.0.1.0/26')" \
        -c "BEGIN ISOLATION LEVEL $iso" -c "$CHECK" -c "COMMIT" | grep '|' | tail -2)"
done

# A long-lived backend: its set is built in a parallel query, another session changes the bans,
# and the next parallel query (read committed) and the next serial one must see the change.
coproc LONG { psql -X -At -q -d $DB 2>&1; }
ask() { echo "$1" >&"${LONG[1]}"; echo "SELECT 'END';" >&"${LONG[1]}"; local line out=""; while read -r line <&"${LONG[0]}"; do [ "$line" = END ] && break; out+="$line"$'\n'; done; printf %s "$out"; }
ask "$FORCE" >/dev/null
same "long-lived backend, first parallel query" "$(ask "$CHECK")"
q -q -c "SELECT sp_users.ban_ip('10.0.2.0/25', 'other session', '1 hour')" >/dev/null
same "long-lived backend, after another session's ban" "$(ask "$CHECK")"
q -q -c "SELECT sp_users.unban_ip('10.0.2.0/25')" -c "SELECT sp_users.ban_ip('10.0.0.200', 'x', '1 hour')" >/dev/null
same "long-lived backend, after another session's unban and ban" "$(ask "$CHECK")"
[ "$(ask "SET force_parallel_mode = off; SELECT sp_users.is_banned('10.0.2.5'), sp_users.is_banned('10.0.0.200');")" = "f|t" ] ||
  fail "serial is_banned after parallel queries disagrees with the table"
ok "long-lived backend, serial calls after the parallel ones agree with the table"
echo "\\q" >&"${LONG[1]}"; wait "$LONG_PID" 2>/dev/null || true

# The other hot functions under a forced parallel plan (parallel-unsafe ones run in the leader).
got=$(q -c "$FORCE" -c "SELECT (SELECT count(*) FROM sp_users.find_by_email('u7@example.com')), (SELECT total FROM sp_users.get_stats()),
                               (SELECT count(*) FROM sp_users.get_ban('10.0.3.9')), sp_users.session_is_active(NULL, NULL, NULL)")
[ "$got" = "1|300|1|t" ] || fail "finders/statistics/get_ban under force_parallel_mode: $got"
ok "finders, statistics and get_ban under force_parallel_mode"

echo "parallel: $passed passed, 0 failed"
