#!/usr/bin/env bash
# Live pg_cron run: schedule the clean-up every minute in the cron database, create expired
# anonymous users, wait (bounded) until pg_cron has run the job, and check users, job_runs,
# cron.job_run_details and what sp_users.cleanup_status() shows a non-superuser administrator; then
# DROP EXTENSION sp_users removes the job, while dropping another extension leaves it untouched.
# Needs a cluster from scripts/pgdev (pg_cron preloaded, cron.use_background_workers = on) and PG*
# set by the caller; it works in whichever database pg_cron runs in (scripts/test-all: postgres).
set -euo pipefail
DB=$(psql -X -At -d postgres -c "SHOW cron.database_name")
OTHER=sp_users_not_cron
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
# As a member of sp_users_admin that is no superuser.
qa() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "SET ROLE sp_cron_live_admin" -c "$1"; }
cleanup() {
  psql -X -q -d "$DB" -c "SELECT sp_users.unschedule_anonymous_cleanup()" -c "DROP EXTENSION IF EXISTS sp_users" \
       -c "DROP EXTENSION IF EXISTS citext" -c "DROP ROLE IF EXISTS sp_cron_live_admin" >/dev/null 2>&1 || true
}
trap cleanup EXIT

q "DROP EXTENSION IF EXISTS sp_users" >/dev/null
q "DROP EXTENSION IF EXISTS pg_cron" >/dev/null
q "CREATE EXTENSION sp_users" >/dev/null
q "DROP ROLE IF EXISTS sp_cron_live_admin" >/dev/null
q "CREATE ROLE sp_cron_live_admin NOLOGIN IN ROLE sp_users_admin" >/dev/null

# The cron database, pg_cron preloaded but its extension not created: 0A000 with a HINT.
err=$(psql -X -q -d "$DB" -c "SELECT sp_users.schedule_anonymous_cleanup()" -v VERBOSITY=verbose 2>&1 || true)
grep -q "0A000" <<<"$err" && grep -qF "HINT:  Run CREATE EXTENSION pg_cron in this database." <<<"$err" \
  || { echo "FAIL: expected 0A000 with a HINT before pg_cron is created, got: $err"; exit 1; }
echo "ok - 0A000 with a HINT while pg_cron is not created"
q "CREATE EXTENSION pg_cron" >/dev/null

# From a database that is not the cron one: 55000 + the exact call to run in the cron database.
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $OTHER" -c "CREATE DATABASE $OTHER"
psql -X -q -d $OTHER -c "CREATE EXTENSION sp_users"
err=$(psql -X -q -d $OTHER -v VERBOSITY=verbose -c "SELECT sp_users.schedule_anonymous_cleanup('* * * * *', 30, true)" 2>&1 || true)
grep -q "55000" <<<"$err" || { echo "FAIL: expected 55000 from a non-cron database, got: $err"; exit 1; }
grep -qF "HINT:  Connect to database $DB and run: SELECT cron.schedule_in_database('sp_users_cleanup_anonymous', '* * * * *', 'CALL sp_users.run_anonymous_cleanup(retention_days => 30, enforce => true)', '$OTHER');" <<<"$err" \
  || { echo "FAIL: HINT is not the exact schedule_in_database call: $err"; exit 1; }
status=$(psql -X -At -d $OTHER -c "SELECT source || '|' || status || '|' || message FROM sp_users.cleanup_status() WHERE source = 'schedule'")
[ "$status" = "schedule|no pg_cron|pg_cron runs in database $DB: a job scheduled there for this database (cron.schedule_in_database) and its runs are in cron.job and cron.job_run_details there" ] \
  || { echo "FAIL: cleanup_status outside the cron database: $status"; exit 1; }
psql -X -q -d postgres -c "DROP DATABASE $OTHER"
echo "ok - 55000 with the exact cron.schedule_in_database HINT outside the cron database; cleanup_status says where pg_cron runs"

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

# What a non-superuser administrator sees: cron.job is closed to them, cleanup_status is not.
err=$(qa "SELECT count(*) FROM cron.job" 2>&1 || true)
grep -q "permission denied" <<<"$err" || { echo "FAIL: the administrator could read cron.job: $err"; exit 1; }
status=$(qa "SELECT source || '|' || status FROM sp_users.cleanup_status(3)")
grep -qx "schedule|active" <<<"$status" || { echo "FAIL: cleanup_status shows no active schedule: $status"; exit 1; }
grep -qx "pg_cron|succeeded" <<<"$status" || { echo "FAIL: cleanup_status shows no succeeded pg_cron run: $status"; exit 1; }
grep -qx "job_runs|finished" <<<"$status" || { echo "FAIL: cleanup_status shows no finished job_runs row: $status"; exit 1; }
grep -q "^check" <<<"$status" && { echo "FAIL: cleanup_status reports a problem: $(qa "TABLE sp_users.cleanup_status()")"; exit 1; }
qa "SELECT message FROM sp_users.cleanup_status() WHERE source = 'job_runs'" | grep -q "^25 anonymous users deleted in 1 batch(es); {" \
  || { echo "FAIL: cleanup_status does not show what the run did: $(qa "TABLE sp_users.cleanup_status()")"; exit 1; }
echo "ok - a non-superuser administrator sees the schedule, the succeeded run and its job_runs row in cleanup_status"

[ "$(q "SELECT sp_users.unschedule_anonymous_cleanup()")" = t ] || { echo "FAIL: unschedule"; exit 1; }
[ "$(qa "SELECT status FROM sp_users.cleanup_status() WHERE source = 'schedule'")" = "not scheduled" ] || { echo "FAIL: cleanup_status after unschedule"; exit 1; }
echo "ok - unscheduled"

# DROP EXTENSION sp_users takes the job along; dropping anything else leaves it exactly as it was.
job=$(q "SELECT sp_users.schedule_anonymous_cleanup('17 3 * * *', 30, false)")
row() { q "SELECT row(j.*)::text FROM cron.job j WHERE j.jobname = 'sp_users_cleanup_anonymous'"; }
before=$(row)
q "CREATE EXTENSION citext" >/dev/null
q "DROP EXTENSION citext" >/dev/null
q "DROP EXTENSION IF EXISTS sp_users_no_such_extension" >/dev/null 2>&1
[ "$(row)" = "$before" ] || { echo "FAIL: dropping another extension changed the job: $before -> $(row)"; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "BEGIN" -c "DROP EXTENSION sp_users" -c "ROLLBACK"
[ "$(row)" = "$before" ] || { echo "FAIL: a rolled-back DROP EXTENSION sp_users lost the job"; exit 1; }
# Nobody can make the DROP hook schedule a job of their own through its transaction-local setting.
psql -X -q -d "$DB" -c "SET sp_users.cron_job_set_aside = '[{\"jobid\": 424242, \"schedule\": \"* * * * *\", \"command\": \"SELECT 1\", \"nodename\": \"localhost\", \"nodeport\": 5432, \"database\": \"$DB\", \"username\": \"postgres\", \"active\": true, \"jobname\": \"forged\"}]'" \
     -c "SET ROLE sp_cron_live_admin" -c "DROP EXTENSION IF EXISTS sp_users_no_such_extension" >/dev/null 2>&1
[ "$(q "SELECT count(*) FROM cron.job WHERE jobid = 424242 OR jobname = 'forged'")" = 0 ] || { echo "FAIL: a forged job was scheduled"; exit 1; }
echo "ok - dropping another extension, a rolled-back DROP and a forged setting leave the job as it was ($before)"
q "DROP EXTENSION sp_users" >/dev/null
[ "$(q "SELECT count(*) FROM cron.job WHERE jobname = 'sp_users_cleanup_anonymous'")" = 0 ] || { echo "FAIL: DROP EXTENSION sp_users left the job $job behind"; exit 1; }
echo "ok - DROP EXTENSION sp_users removed the pg_cron job"
echo "cron_live: 10 passed, 0 failed"
