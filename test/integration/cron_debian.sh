#!/usr/bin/env bash
# pg_cron on stock Debian clusters, set up by following README.md ("Scheduling with pg_cron")
# literally. Two clusters are made with Debian's own pg_createcluster, so they have Debian's
# pg_hba.conf (peer on the socket, scram-sha-256 over TCP):
#  * "ok": the configuration block of the README is written as it stands to its conf.d, the server
#    restarted, the README's SQL block run as it stands in database app. The schedule raises no
#    warning, a scheduled run succeeds (cron.job_run_details), writes its job_runs row, and a
#    non-superuser administrator sees both in sp_users.cleanup_status().
#  * "broken": the same without the README's cron.use_background_workers line (the setup the README
#    used to give). schedule_anonymous_cleanup warns that runs will fail; the run fails with
#    "connection failed" and no job_runs row, and cleanup_status shows the failure, pg_cron's
#    message and the reason with its fix.
# Before pg_cron is configured, scheduling raises 0A000 — also with cron.database_name set but pg_cron
# not preloaded. The only departures from the README: the clusters have their own names and ports
# (so `pg_ctlcluster 15 <name> restart` and `psql -p <port>`), and after the README's hourly schedule
# the job is rescheduled every minute ("calling it again updates that job in place") so a run comes
# within 80 s. Only the clusters this test creates are touched, and dropped at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# The clusters here are reached their own way (Debian's socket directory, ports below), not through
# the caller's PG* environment (scripts/test-all points it at its own cluster).
unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS PGSERVICE
README=${SP_USERS_README:-README.md}
VER=15
OK=sp_users_cron_ok
BROKEN=sp_users_cron_broken
PORT_OK=${SP_CRON_DEBIAN_PORT:-54861}
PORT_BROKEN=$((PORT_OK + 1))
MARK=sp_users-test-cluster # in the cluster's configuration directory: made by this test
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
psql_on() { local port=$1; shift; as_pg psql -X -q -At -v ON_ERROR_STOP=1 -p "$port" "$@"; }

command -v pg_createcluster >/dev/null || fail "pg_createcluster missing (package postgresql-common)"

# The README's steps, as written there.
section=$(awk '/\*\*Scheduling with pg_cron\*\*/ { on = 1 } on' "$README")
# (awk reads a here-string, not a pipe: with pipefail, a writer cut off by awk's early exit would
# end the script silently once the section outgrows a pipe's buffer)
block() { awk -v lang="$1" '$0 ~ "^[[:space:]]*```" lang "[[:space:]]*$" { f = 1; next } f && /^[[:space:]]*```/ { exit } f' <<<"$section" | sed 's/^[[:space:]]*//'; }
conf=$(block ini)
sql=$(block sql)
for want in "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'app'" "cron.use_background_workers = on"; do
  grep -qF "$want" <<<"$conf" || fail "$README: the \`\`\`ini block of \"Scheduling with pg_cron\" lacks: $want"
done
grep -q "CREATE EXTENSION pg_cron" <<<"$sql" && grep -q "sp_users.schedule_anonymous_cleanup(" <<<"$sql" ||
  fail "$README: the \`\`\`sql block of \"Scheduling with pg_cron\" does not create pg_cron and schedule the clean-up"
ok "$README gives the configuration ($(grep -c . <<<"$conf") lines) and the SQL ($(grep -c . <<<"$sql") lines) followed below"

# A cluster of this test: dropped, then the files the test added (which pg_dropcluster leaves) too.
drop_cluster() {
  local name=$1 dir=/etc/postgresql/$VER/$1
  if pg_lsclusters -h 2>/dev/null | awk -v v="$VER" -v n="$name" '$1 == v && $2 == n { found = 1 } END { exit !found }'; then
    $SUDO pg_dropcluster "$VER" "$name" --stop
  fi
  $SUDO rm -f "$dir/$MARK" "$dir/conf.d/sp_users_cron.conf"
  $SUDO rmdir "$dir/conf.d" 2>/dev/null || true
  $SUDO rmdir "$dir" 2>/dev/null || true
}
created=()
drop_ours() {
  for c in "${created[@]}"; do drop_cluster "$c" >/dev/null 2>&1 || true; done
}
trap drop_ours EXIT
make_cluster() {
  local name=$1 port=$2 dir=/etc/postgresql/$VER/$1
  if [ -d "$dir" ]; then
    [ -f "$dir/$MARK" ] || fail "a cluster $VER/$name exists that this test did not make; it is left alone"
    drop_cluster "$name" # left by an interrupted run of this test
    [ ! -d "$dir" ] || fail "could not remove $dir, left by an earlier run"
  fi
  if pg_lsclusters -h | awk -v p="$port" '$3 == p { found = 1 } END { exit !found }' ||
     (command -v ss >/dev/null && ss -Hltn "sport = :$port" | grep -q .); then
    fail "port $port is taken (SP_CRON_DEBIAN_PORT chooses another pair)"
  fi
  $SUDO pg_createcluster "$VER" "$name" -p "$port" --start-conf=manual --locale=C.UTF-8 >/dev/null
  $SUDO touch "$dir/$MARK"
  created+=("$name")
  $SUDO pg_ctlcluster "$VER" "$name" start
  grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+scram-sha-256' "$dir/pg_hba.conf" ||
    fail "$name: not Debian's stock pg_hba.conf"
  psql_on "$port" -d postgres -c "CREATE DATABASE app"
  psql_on "$port" -d app -c "CREATE EXTENSION sp_users" \
    -c "CREATE ROLE sp_cron_ops NOLOGIN IN ROLE sp_users_admin" \
    -c "INSERT INTO sp_users.users (name, email, roles, created_at)
        SELECT 'old' || i, 'old-' || i || '@anonymous.local', '{anonymous}', now() - interval '45 days' FROM generate_series(1, 7) i"
}
make_cluster $OK "$PORT_OK"
make_cluster $BROKEN "$PORT_BROKEN"
ok "two stock Debian clusters ($OK on port $PORT_OK, $BROKEN on port $PORT_BROKEN): scram-sha-256 for TCP in pg_hba.conf"

# Before pg_cron is configured: 0A000, and not the 55000 "runs in another database" of a pg_cron
# that is not running at all.
err=$(psql_on "$PORT_OK" -d app -v VERBOSITY=verbose -c "SELECT sp_users.schedule_anonymous_cleanup()" 2>&1 || true)
grep -q "ERROR:  0A000: pg_cron is not available in this server" <<<"$err" &&
  grep -qF "HINT:  Add pg_cron to shared_preload_libraries, set cron.database_name = 'app' in postgresql.conf" <<<"$err" ||
  fail "expected 0A000 with a HINT without pg_cron, got: $err"
err=$(as_pg env PGOPTIONS="-c cron.database_name=elsewhere" psql -X -q -p "$PORT_OK" -d app -v VERBOSITY=verbose \
        -c "SELECT sp_users.schedule_anonymous_cleanup()" 2>&1 || true)
grep -q "ERROR:  0A000: pg_cron is not available in this server" <<<"$err" &&
  grep -qF 'DETAIL:  cron.database_name is set to "elsewhere", but pg_cron is not in shared_preload_libraries, so it does not run at all.' <<<"$err" &&
  grep -qF 'HINT:  Add pg_cron to shared_preload_libraries in postgresql.conf, restart the server, then run CREATE EXTENSION pg_cron in database "elsewhere".' <<<"$err" ||
  fail "expected 0A000 (not preloaded) with cron.database_name set, got: $err"
status=$(psql_on "$PORT_OK" -d app -c "SET ROLE sp_cron_ops" -c "SELECT source || '|' || status FROM sp_users.cleanup_status()")
[ "$status" = "schedule|no pg_cron" ] || fail "cleanup_status without pg_cron: $status"
ok "without pg_cron: 0A000 with a HINT; with cron.database_name set but pg_cron not preloaded, 0A000 saying so; cleanup_status works"

# README step 1: the configuration lines, as they stand ("broken": without cron.use_background_workers).
printf '%s\n' "$conf" | $SUDO tee /etc/postgresql/$VER/$OK/conf.d/sp_users_cron.conf >/dev/null
printf '%s\n' "$conf" | grep -v '^cron\.use_background_workers' | $SUDO tee /etc/postgresql/$VER/$BROKEN/conf.d/sp_users_cron.conf >/dev/null
# README step 2: restart, then the SQL as it stands, as a superuser in database app.
$SUDO pg_ctlcluster $VER $OK restart
$SUDO pg_ctlcluster $VER $BROKEN restart
out_ok=$(printf '%s\n' "$sql" | as_pg psql -X -v ON_ERROR_STOP=1 -p "$PORT_OK" -d app 2>&1) || fail "the README's SQL failed: $out_ok"
out_broken=$(printf '%s\n' "$sql" | as_pg psql -X -v ON_ERROR_STOP=1 -p "$PORT_BROKEN" -d app 2>&1) || fail "the README's SQL failed ($BROKEN): $out_broken"
grep -q "WARNING" <<<"$out_ok" && fail "the README's setup got a warning: $out_ok"
grep -qF "WARNING:  the clean-up is scheduled (pg_cron job 1), but its runs will fail: pg_cron runs each job over a new connection to 127.0.0.1 as postgres (cron.use_background_workers is off), and pg_hba.conf line" <<<"$out_broken" &&
  grep -qF 'asks for scram-sha-256 authentication: every run fails with "connection failed"' <<<"$out_broken" &&
  grep -qF "HINT:  Set cron.use_background_workers = on in postgresql.conf and restart the server" <<<"$out_broken" ||
  fail "no warning when scheduling without background workers: $out_broken"
ok "the README's SQL schedules the job; without cron.use_background_workers, schedule_anonymous_cleanup warns that runs will fail and why"

for port in "$PORT_OK" "$PORT_BROKEN"; do
  psql_on "$port" -d app -c "SELECT sp_users.schedule_anonymous_cleanup('* * * * *', 30, true)" >/dev/null 2>&1
done
echo "waiting for pg_cron's next minute (at most 80 s) ..."
for i in $(seq 1 80); do
  good=$(psql_on "$PORT_OK" -d app -c "SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded'")
  bad=$(psql_on "$PORT_BROKEN" -d app -c "SELECT count(*) FROM cron.job_run_details WHERE status = 'failed'")
  [ "$good" -ge 1 ] && [ "$bad" -ge 1 ] && break
  sleep 1
done
[ "$good" -ge 1 ] || fail "no succeeded run on $OK within 80 s: $(psql_on "$PORT_OK" -d app -c "TABLE cron.job_run_details")"
[ "$bad" -ge 1 ] || fail "no failed run on $BROKEN within 80 s: $(psql_on "$PORT_BROKEN" -d app -c "TABLE cron.job_run_details")"

[ "$(psql_on "$PORT_OK" -d app -c "SELECT count(*) FROM sp_users.users WHERE name LIKE 'old%'")" = 0 ] || fail "the run left old anonymous users"
[ "$(psql_on "$PORT_OK" -d app -c "SELECT count(*) FROM sp_users.job_runs WHERE finished_at IS NOT NULL AND rows_affected = 7")" = 1 ] ||
  fail "no job_runs row for the run: $(psql_on "$PORT_OK" -d app -c "TABLE sp_users.job_runs")"
status=$(psql_on "$PORT_OK" -d app -c "SET ROLE sp_cron_ops" -c "SELECT source || '|' || status FROM sp_users.cleanup_status()")
grep -qx "schedule|active" <<<"$status" && grep -qx "pg_cron|succeeded" <<<"$status" && grep -qx "job_runs|finished" <<<"$status" &&
  ! grep -q "^check" <<<"$status" || fail "cleanup_status on $OK: $status"
ok "README setup: the scheduled run succeeded after ${i}s, deleted the 7 old anonymous users, wrote its job_runs row; cleanup_status shows both to an administrator"

[ "$(psql_on "$PORT_BROKEN" -d app -c "SELECT DISTINCT return_message FROM cron.job_run_details WHERE status = 'failed'")" = "connection failed" ] ||
  fail "unexpected failure on $BROKEN: $(psql_on "$PORT_BROKEN" -d app -c "TABLE cron.job_run_details")"
[ "$(psql_on "$PORT_BROKEN" -d app -c "SELECT count(*) FROM sp_users.job_runs")" = 0 ] || fail "a job_runs row on $BROKEN"
status=$(psql_on "$PORT_BROKEN" -d app -c "SET ROLE sp_cron_ops" -c "SELECT source || '|' || status || '|' || message FROM sp_users.cleanup_status()")
grep -qx "schedule|active|.*" <<<"$status" && grep -qx "pg_cron|failed|connection failed" <<<"$status" && ! grep -q "^job_runs" <<<"$status" &&
  grep -q "^check|problem|pg_cron runs each job over a new connection to 127.0.0.1 as postgres (cron.use_background_workers is off), and pg_hba.conf line .* asks for scram-sha-256 authentication.*Set cron.use_background_workers = on" <<<"$status" ||
  fail "cleanup_status on $BROKEN: $status"
ok "broken setup: the run failed (connection failed, no job_runs row); cleanup_status shows an administrator the failure, pg_cron's message and the fix"
psql_on "$PORT_BROKEN" -d app -P tuples_only=off -P format=aligned -c "SELECT * FROM sp_users.cleanup_status()" | sed 's/^/#   /'

echo "cron_debian: $passed passed, 0 failed"
