#!/usr/bin/env bash
# What exact counters and ban sets cost a logical subscriber (issue 15). Two clusters of their own;
# the subscription is disabled while the publisher commits a workload, then enabled, and the CPU
# time the apply worker spends until the subscriber has applied it all (a marker committed last) is
# measured, with sp_users' replica-mode row triggers enabled ("exact") and disabled ("bare": what a
# subscriber without them would do, with counters and ban sets going wrong), alternating, same run.
# Ratio = bare / exact CPU: the apply speed kept with exact counters and ban sets.
#   bash bench/logical.sh [rounds] [rows]     defaults: 3 rounds, 20000 rows per workload
# Workloads: "bulk" = one INSERT of <rows> users and one of <rows> bans; "requests" = <rows>/10
# create_user + ban_ip calls, one transaction each (pgbench on the publisher).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${1:-3}
ROWS=${2:-20000}
DB=sp_users_bench
BASE=/tmp/sp_users-bench-logical-$$
PUB_PORT=${BENCH_PORT:-54830}
SUB_PORT=$((PUB_PORT + 1))
pub_env() { PGDEV_DIR=$BASE/pub PGDEV_PORT=$PUB_PORT PGDEV_DB=$DB PGDEV_PRELOAD='' PGDEV_CRON_DB=postgres PGDEV_CONF="wal_level = logical" "$@"; }
sub_env() { PGDEV_DIR=$BASE/sub PGDEV_PORT=$SUB_PORT PGDEV_DB=$DB PGDEV_PRELOAD='' PGDEV_CRON_DB=postgres PGDEV_CONF="wal_retrieve_retry_interval = '50ms'" "$@"; }
cleanup() { pub_env "$ROOT/scripts/pgdev" stop >/dev/null 2>&1 || true; sub_env "$ROOT/scripts/pgdev" stop >/dev/null 2>&1 || true; rm -rf "$BASE"; }
trap cleanup EXIT
pub_env "$ROOT/scripts/pgdev" start --fresh >/dev/null
sub_env "$ROOT/scripts/pgdev" start --fresh >/dev/null
export PGUSER=postgres
pub() { psql -X -At -q -v ON_ERROR_STOP=1 -h "$BASE/pub/run" -p $PUB_PORT -d $DB "$@"; }
sub() { psql -X -At -q -v ON_ERROR_STOP=1 -h "$BASE/sub/run" -p $SUB_PORT -d $DB "$@"; }

for side in pub sub; do
  $side >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION sp_users;
CREATE TABLE public.replay_marker (n bigint PRIMARY KEY);
SQL
done
pub -c "CREATE PUBLICATION p FOR TABLE sp_users.users, sp_users.user_sessions, sp_users.banned_ips, public.replay_marker"
sub -c "CREATE SUBSCRIPTION s CONNECTION 'host=$BASE/pub/run port=$PUB_PORT dbname=$DB user=postgres' PUBLICATION p" 2>/dev/null
until [ "$(sub -c "SELECT bool_and(srsubstate = 'r') FROM pg_subscription_rel")" = t ]; do sleep 0.2; done
cat > "$BASE/requests.sql" <<'SQL'
SELECT sp_users.create_user('r' || :client_id || '_' || nextval('public.seq'), 'r' || :client_id || '_' || currval('public.seq') || '@example.com');
SELECT sp_users.ban_ip(host('100.64.0.0'::inet + nextval('public.seq')), 'bench', '1 day');
SQL
pub -c "CREATE SEQUENCE public.seq"

n=0
# Disables the subscription, runs the workload on the publisher, enables it, waits until the
# subscriber has applied everything and prints the apply worker's CPU seconds.
apply_time() {
  local workload=$1 n=$2
  sub -c "ALTER SUBSCRIPTION s DISABLE"
  until [ "$(pub -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's' AND active")" = 0 ]; do sleep 0.1; done
  if [ "$workload" = bulk ]; then
    pub -c "INSERT INTO sp_users.users (name, email) SELECT 'b${n}_' || i, 'b${n}_' || i || '@example.com' FROM generate_series(1, $ROWS) i" \
        -c "INSERT INTO sp_users.banned_ips (ip_address, reason) SELECT '10.0.0.0'::inet + ($n * $ROWS + i), 'bulk' FROM generate_series(1, $ROWS) i"
  else
    pgbench -n -h "$BASE/pub/run" -p $PUB_PORT -c 2 -j 2 -t $((ROWS / 20)) -f "$BASE/requests.sql" $DB >/dev/null 2>&1
  fi
  pub -c "INSERT INTO public.replay_marker VALUES ($n)"
  sub -c "ALTER SUBSCRIPTION s ENABLE"
  until [ "$(sub -c "SELECT count(*) FROM public.replay_marker WHERE n = $n")" = 1 ]; do sleep 0.02; done
  # CPU seconds of the apply worker (started by ENABLE, so everything it used is this workload's):
  # steadier than wall time on a 2-core VM.
  local pid
  pid=$(sub -c "SELECT pid FROM pg_stat_subscription WHERE subname = 's' AND relid IS NULL")
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat"
}
set_triggers() {
  sub -c "ALTER TABLE sp_users.users $1 TRIGGER users_count_row" -c "ALTER TABLE sp_users.banned_ips $1 TRIGGER banned_ips_log_row"
}

echo "# logical apply: $ROWS rows per bulk workload, $((ROWS / 10)) calls per request workload, $ROUNDS rounds"
echo "# command: bash bench/logical.sh $ROUNDS $ROWS"
printf '%-9s %-6s %12s %12s %8s\n' workload round exact_cpu_s bare_cpu_s ratio
for workload in bulk requests; do
  ratios=()
  for r in $(seq 1 "$ROUNDS"); do
    n=$((n + 1)); set_triggers "ENABLE REPLICA"; exact=$(apply_time $workload $n)
    n=$((n + 1)); set_triggers DISABLE; bare=$(apply_time $workload $n)
    ratio=$(echo "$bare $exact" | awk '{printf "%.2f", $1 / $2}')
    ratios+=("$ratio")
    printf '%-9s %-6s %12s %12s %8s\n' $workload $r "$exact" "$bare" "$ratio"
  done
  med=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
  echo "# $workload: apply speed with exact counters and ban sets = ${med}x the bare apply (median of paired rounds)"
done
set_triggers "ENABLE REPLICA"
sub -c "SELECT sp_users.rebuild_user_counts()" >/dev/null
