#!/usr/bin/env bash
# sp_users on a real Citus cluster (scripts/citus: Citus 13.0.5 built from the vendored release and
# cached, a coordinator and two workers on this machine): sp_users.distribute() and the ban path on
# every node (test/citus/bans.py), sessions split into shards (test/citus/sessions.py), the pgTAP
# suite against the coordinator after distribute(), what keeps the nodes safe
# (test/citus/security.py), a third worker and a rebalance with sessions in place, and a live run
# of the anonymous clean-up from pg_cron on the coordinator (waits for the next minute, at most 80 s).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export SP_USERS_CITUS_DIR=${SP_USERS_CITUS_TEST_DIR:-/tmp/sp_users-citus-test} SP_USERS_CITUS_PORT=${SP_USERS_CITUS_TEST_PORT:-54850}
scripts/citus build
scripts/citus start --fresh 2
trap 'scripts/citus stop >/dev/null 2>&1' EXIT
eval "$(scripts/citus env)"
P=$SP_USERS_CITUS_PORT
failed=0

psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION sp_users"
# Sessions made before distribute(), which must move into the shards (test/citus/sessions.py).
psql -X -q -v ON_ERROR_STOP=1 -c "WITH u AS (SELECT id FROM sp_users.create_user('pre-user', 'pre-user@example.com'))
  SELECT sp_users.start_session(u.id, 'pre-' || i) FROM u, generate_series(1, 40) i" >/dev/null
/usr/bin/python3 test/citus/bans.py "$PGHOST" "$P" "$((P + 1))" "$((P + 2))" || failed=1
/usr/bin/python3 test/citus/sessions.py "$PGHOST" "$P" "$((P + 1))" "$((P + 2))" || failed=1
/usr/bin/python3 test/citus/users.py "$PGHOST" "$P" "$((P + 1))" "$((P + 2))" || failed=1

# The pgTAP suite, on the coordinator after distribute() (bans.py ran it). The suite's scaffolding
# (roles without LOGIN, schemas and functions of its own) stays on the coordinator: with DDL
# propagation on, Citus would create each on the workers, connecting as those roles. Where an
# assertion needs a Citus setting to hold (a trigger that must reach the placements), the test
# sets it itself.
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pgtap"
echo "pgTAP on the Citus coordinator:"
# Autovacuum paused meanwhile: the suite's hostile-input sweep is one transaction that rewrites
# users' pg_class row (_restrict_internals' REVOKE) and later LOCKs users (rebuild_user_counts),
# which deadlocks (40P01) with an autovacuum of users waiting for that row — PostgreSQL behaviour,
# not sp_users'; this long-lived database, unlike test-all's fresh ones, gets autovacuumed mid-run.
psql -X -q -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
# Users are split into shards: the assertions that cannot hold there are listed, with the reason,
# in test/citus/pgtap_cannot_hold.txt; every other one must pass (test/citus/pgtap.py).
/usr/bin/python3 test/citus/pgtap.py "$PGHOST" "$P" || failed=1
psql -X -q -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null

# After the suite: it leaves a user and roles behind, which the suite's counts would see.
/usr/bin/python3 test/citus/security.py "$PGHOST" "$P" "$((P + 1))" "$((P + 2))" || failed=1

# The clean-up, scheduled every minute in the coordinator's pg_cron (pg_cron exists only there:
# Citus would propagate CREATE EXTENSION to workers that do not preload it), runs live while the
# third worker is added below; checked at the end.
out=$(psql -X -At -v ON_ERROR_STOP=1 <<'SQL'
SET citus.enable_ddl_propagation = off;
CREATE EXTENSION pg_cron;
RESET citus.enable_ddl_propagation;
SELECT 'job=' || sp_users.schedule_anonymous_cleanup('* * * * *', 30, true);
SELECT 'created=' || count(*) FROM sp_users.create_anonymous('fp-citus-old');
UPDATE sp_users.users SET created_at = now() - interval '40 days' WHERE email = 'fp-citus-old@anonymous.local';
SELECT 'created=' || count(*) FROM sp_users.create_anonymous('fp-citus-new');
SELECT 'created=' || count(*) FROM sp_users.start_session((SELECT id FROM sp_users.create_anonymous('fp-citus-busy')), 'busy-1');
UPDATE sp_users.users SET created_at = now() - interval '40 days' WHERE email = 'fp-citus-busy@anonymous.local';
SQL
) || failed=1
job=$(echo "$out" | sed -n 's/^job=//p')

# Users kept on the coordinator (distribute(distribute_users => false), for applications with
# foreign keys to users), in a database of its own on the same nodes (test/citus/keep_users.py).
KEEP=sp_users_citus_keep
for port in "$P" "$((P + 1))" "$((P + 2))"; do
  psql -X -q -p "$port" -d postgres -c "CREATE DATABASE $KEEP" || failed=1
  psql -X -q -p "$port" -d "$KEEP" -c "CREATE EXTENSION citus" || failed=1
done
psql -X -q -d "$KEEP" -v ON_ERROR_STOP=1 >/dev/null <<SQL || failed=1
SELECT citus_set_coordinator_host('localhost', $P);
SELECT citus_add_node('localhost', $((P + 1)));
SELECT citus_add_node('localhost', $((P + 2)));
CREATE EXTENSION sp_users;
SQL
SP_USERS_CITUS_DB=$KEEP /usr/bin/python3 test/citus/keep_users.py "$PGHOST" "$P" "$((P + 1))" "$((P + 2))" || failed=1

# A third worker: distribute() again gives it its banned_ips placement and pinned functions; a
# rebalance moves session shards onto it with 60 sessions in place: every node stays exact.
psql -X -q -v ON_ERROR_STOP=1 -c "WITH u AS (SELECT id FROM sp_users.create_user('rb-user', 'rb-user@example.com'))
  SELECT sp_users.start_session(u.id, 'rb-' || i) FROM u, generate_series(1, 60) i" >/dev/null || failed=1
scripts/citus add-worker >/dev/null
out=$(psql -X -At -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'layout=' || placement FROM sp_users.distribute() WHERE relation = 'sp_users.banned_ips'::regclass;
SELECT rebalance_table_shards(rebalance_strategy => 'by_shard_count'); -- every table split into shards; moves before it returns
SELECT sp_users.ban_ip('192.0.2.77', 'after the new worker', NULL) IS NOT NULL;
SQL
) || failed=1
# (the user's id taken first: with users split into shards, Citus would send a call whose argument
# is a subquery over users to the shards whole, each answering from its own rows)
rb=$(psql -X -At -v ON_ERROR_STOP=1 <<'SQL'
SELECT id AS rb_user FROM sp_users.find_by_name('rb-user') \gset
SELECT 'rb=' || ((SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
                   WHERE s.logicalrelid = 'sp_users.user_sessions'::regclass AND n.nodeport = (SELECT max(nodeport) FROM pg_dist_node)) > 0)
       || ',' || (SELECT count(*) FROM sp_users.list_active_sessions(:'rb_user'))
       || ',' || (SELECT count(*) FILTER (WHERE sp_users.session_exists('rb-' || i)) FROM generate_series(1, 60) i)
       || ',' || (SELECT count(*) FILTER (WHERE sp_users.touch_session('rb-' || i)) FROM generate_series(1, 60) i)
       || ',' || (SELECT active_sessions FROM sp_users.find_with_sessions(:'rb_user'))
       || ',' || (SELECT count(DISTINCT s.logicalrelid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
                   WHERE s.logicalrelid IN ('sp_users.users'::regclass, 'sp_users.user_emails'::regclass, 'sp_users.user_names'::regclass)
                     AND n.nodeport = (SELECT max(nodeport) FROM pg_dist_node))
       || ',' || (SELECT count(*) FROM sp_users.find_by_email('RB-user@example.com') WHERE id = :'rb_user')
       || ',' || (SELECT sp_users.count_users() = (SELECT count(*) FROM sp_users.users WHERE status <> 'deleted'))
       || ',' || (SELECT count(*) FROM sp_users.create_user_if_absent('rb-user', 'rb-other@example.com'));
SQL
) || failed=1
[ "$rb" = "rb=true,60,60,60,60,3,1,true,0" ] &&
  echo "ok - the rebalance moved session, user, email and name shards to the third worker; all 60 sessions found, active, touched; the user found by email, its name still taken ($rb)" ||
  { echo "not ok - after the rebalance (session shards on w3, listed, exist, touched, counted; user tables on w3, found by email, counted, name taken: $rb)"; failed=1; }
w3=$(scripts/citus psql w3 -At -c "SELECT 'w3=' || sp_users.is_banned('192.0.2.77') || ',' || sp_users.is_banned('192.0.2.78') || ',' || (SELECT count(*) FROM pg_proc WHERE pronamespace = 'sp_users'::regnamespace AND prosecdef AND proconfig IS NULL AND prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c'))") || failed=1
grep -q '^layout=reference$' <<<"$out" && [ "$w3" = "w3=true,false,0" ] &&
  echo "ok - a third worker: banned_ips placed there, is_banned exact, definer functions pinned ($w3)" ||
  { echo "not ok - a third worker ($w3; $out)"; failed=1; }

echo "waiting for pg_cron on the coordinator (at most 80 s) ..."
for _ in $(seq 1 80); do
  [ "$(psql -X -At -c "SELECT count(*) FROM cron.job_run_details WHERE jobid = ${job:-0} AND status = 'succeeded'")" -ge 1 ] && break
  sleep 1
done
res=$(psql -X -At -c "SELECT (SELECT count(*) FROM cron.job_run_details WHERE jobid = ${job:-0} AND status = 'succeeded') || ',' ||
                              (SELECT string_agg(split_part(email, '@', 1), ' ' ORDER BY email) FROM sp_users.users WHERE 'anonymous' = ANY (roles)) || ',' ||
                              (SELECT count(*) FROM sp_users.job_runs WHERE enforce AND rows_affected >= 1)") || failed=1
case "$res" in
  [1-9]*,"fp-citus-busy fp-citus-new",[1-9]*) echo "ok - pg_cron on the coordinator ran the clean-up: the expired anonymous user is gone; the recent one and an old one with an active session on a worker stay ($res)" ;;
  *) echo "not ok - pg_cron clean-up on the coordinator (succeeded runs, anonymous left, job_runs: $res)"; failed=1 ;;
esac
psql -X -q -c "SELECT sp_users.unschedule_anonymous_cleanup()" >/dev/null || failed=1

exit $failed
