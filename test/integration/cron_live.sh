#!/usr/bin/env bash
# Live pg_cron run: schedule the clean-up every minute in the cron database, create expired
# anonymous users, wait (bounded) until pg_cron has run the job, and check users, job_runs and
# cron.job_run_details. Needs the private cluster from scripts/pgdev (pg_cron preloaded,
# cron.database_name = 'postgres', cron.use_background_workers = on) and PG* set by the caller.
set -euo pipefail
DB=postgres
q() { psql -X -At -v ON_ERROR_STOP=1 -d $DB -c "$1"; }
cleanup() { psql -X -q -d $DB -c "SELECT sp_users.unschedule_anonymous_cleanup()" -c "DROP EXTENSION IF EXISTS sp_users" >/dev/null 2>&1 || true; }
trap cleanup EXIT

q "DROP EXTENSION IF EXISTS sp_users" >/dev/null
q "DROP EXTENSION IF EXISTS pg_cron" >/dev/null
q "CREATE EXTENSION sp_users" >/dev/null

# The cron database, pg_cron preloaded but its extension not created: 0A000 with a HINT.
err=$(psql -X -q -d $DB -c "SELECT sp_users.schedule_anonymous_cleanup()" -v VERBOSITY=verbose 2>&1 || true)
echo "$err" | grep -q "0A000" && echo "$err" | grep -qF "HINT:  Run CREATE EXTENSION pg_cron in this database." \
  || { echo "FAIL: expected 0A000 with a HINT before pg_cron is created, got: $err"; exit 1; }
echo "ok - 0A000 with a HINT while pg_cron is not created"
q "CREATE EXTENSION pg_cron" >/dev/null

# Without the extension created in a database that is not the cron one: 55000 + exact HINT.
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS sp_users_not_cron" -c "CREATE DATABASE sp_users_not_cron"
psql -X -q -d sp_users_not_cron -c "CREATE EXTENSION sp_users"
err=$(psql -X -q -d sp_users_not_cron -v VERBOSITY=verbose -c "SELECT sp_users.schedule_anonymous_cleanup('* * * * *', 30, true)" 2>&1 || true)
echo "$err" | grep -q "55000" || { echo "FAIL: expected 55000 from a non-cron database, got: $err"; exit 1; }
echo "$err" | grep -qF "HINT:  Connect to database postgres and run: SELECT cron.schedule_in_database('sp_users_cleanup_anonymous', '* * * * *', 'CALL sp_users.run_anonymous_cleanup(retention_days => 30, enforce => true)', 'sp_users_not_cron');" \
  || { echo "FAIL: HINT is not the exact schedule_in_database call: $err"; exit 1; }
psql -X -q -d postgres -c "DROP DATABASE sp_users_not_cron"
echo "ok - 55000 with the exact cron.schedule_in_database HINT outside the cron database"

q "INSERT INTO sp_users.users (name, email, roles, created_at)
   SELECT 'cron_old' || i, 'cron-old-' || i || '@anonymous.local', '{anonymous}', now() - interval '45 days'
     FROM generate_series(1, 25) i" >/dev/null
q "SELECT sp_users.create_anonymous('recent-visitor')" >/dev/null
job=$(q "SELECT sp_users.schedule_anonymous_cleanup('* * * * *', 30, true)")
again=$(q "SELECT sp_users.schedule_anonymous_cleanup('* * * * *', 30, true)")
[ "$job" = "$again" ] || { echo "FAIL: rescheduling created a second job ($job, $again)"; exit 1; }
[ "$(q "SELECT count(*) FROM cron.job WHERE jobname = 'sp_users_cleanup_anonymous'")" = 1 ] || { echo "FAIL: not exactly one job"; exit 1; }
echo "ok - one job ($job), updated in place when scheduled again"

echo "waiting for pg_cron (at most 80 s) ..."
for i in $(seq 1 80); do
  done_runs=$(q "SELECT count(*) FROM cron.job_run_details WHERE jobid = $job AND status = 'succeeded'")
  [ "$done_runs" -ge 1 ] && break
  sleep 1
done
[ "$done_runs" -ge 1 ] || { q "SELECT status, return_message FROM cron.job_run_details WHERE jobid = $job"; echo "FAIL: pg_cron did not run the job within 80 s"; exit 1; }
echo "ok - cron.job_run_details shows a succeeded run after ${i}s"

left=$(q "SELECT count(*) FROM sp_users.users WHERE name LIKE 'cron_old%'")
[ "$left" = 0 ] || { echo "FAIL: $left expired anonymous users remain"; exit 1; }
[ "$(q "SELECT count(*) FROM sp_users.find_by_email('recent-visitor@anonymous.local')")" = 1 ] || { echo "FAIL: a recent anonymous user was deleted"; exit 1; }
echo "ok - the 25 expired anonymous users are gone, the recent one stays"
runs=$(q "SELECT count(*) FROM sp_users.job_runs WHERE job_name = 'sp_users_cleanup_anonymous' AND enforce AND finished_at IS NOT NULL AND rows_affected = 25")
[ "$runs" -ge 1 ] || { q "TABLE sp_users.job_runs"; echo "FAIL: no finished job_runs row with 25 rows"; exit 1; }
echo "ok - sp_users.job_runs records the run"
[ "$(q "SELECT sp_users.unschedule_anonymous_cleanup()")" = t ] || { echo "FAIL: unschedule"; exit 1; }
echo "ok - unscheduled"
echo "cron_live: 7 passed, 0 failed"
