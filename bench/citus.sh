#!/usr/bin/env bash
# What the Citus layout of sp_users.distribute() costs per call, against a single node on the same
# machine (issue 17). One Citus cluster of this machine (scripts/citus: coordinator + 2 workers, own
# directory /tmp/sp_users-citus-bench, ports 54860-54862, started fresh, stopped and removed at exit):
#   * sp_users_citus on the coordinator: citus + sp_users, bench/api/load.sql (100 000 users,
#     200 000 sessions, 20 000 bans), then sp_users.distribute() (banned_ips a reference table with a
#     placement on every node; user_sessions split into 32 shards by session_id on the workers; the
#     other tables stay on the coordinator). Also read on worker 1.
#   * sp_users_single on the SAME coordinator server: plain sp_users WITHOUT the citus extension, same
#     load = the single-node baseline (same server, same settings; Citus' hooks do nothing in a
#     database without the extension).
# Method: pgbench connects to one database per run, so the two sides cannot be interleaved in one
# run (as bench/api.sh does). Instead each measurement starts TWO pgbench processes at the same moment,
# one per database, each `pgbench -n -M prepared -c 1 -j 1 -T <seconds> -l`, same script, so both see
# the same machine at the same moment; the mean latency of each side comes from its per-transaction
# log, and the ratio single-node µs / Citus µs (1.0 = same cost, 0.5 = twice as slow) is the ratio
# of the tps each would reach alone. <rounds> rounds (each side on the other CPU every round); the
# table gives the median ratio, every round's ratio (the spread) and the median of the per-round
# differences Citus µs - single µs ("extra µs per call"). Each side's pgbench and its backend are pinned
# to one CPU and the other side to the other (taskset; swapped every round): unpinned, which of the
# four processes shared a CPU changed from run to run and moved one side's mean latency by up to 60 %
# with the same script on both sides. A control row runs the single-node side against a copy of its
# own database the same way (A/A): its spread is the method's noise. Calls: the bench/api/<function>.sp.sql
# scripts (ban calls, and the request path on the coordinator-local tables); functions that write run
# between two resets of both databases (bench/api/reset.sql, with bench_meta's load time inlined as a
# psql variable, since Citus refuses a local-table subquery in a statement on a reference table; the
# pristine-ban copy bench_bans_orig is a reference table in sp_users_citus for the same reason); around
# ban_ip, banned_ips is also rebuilt from that copy in load order on both sides, since the side with
# more ban_ip calls otherwise reshaped its GiST index more and answered get_ban faster afterwards.
# Routing cost, for an on-paper estimate of a multi-machine layout: bench_kv(id bigint primary key,
# v text) with 100 000 rows, hash-distributed by id (create_distributed_table, default shard count) in
# sp_users_citus and a plain table in sp_users_single, `SELECT v FROM bench_kv WHERE id = :r` (a
# router query to one worker over TCP, with Citus' default citus.node_conninfo = 'sslmode=require',
# and again with 'sslmode=disable'); bench_ref, the same as a reference table, read on the coordinator
# (its local placement). Both pgbench processes share the 2 CPUs with every server process the Citus
# side wakes (a worker backend for a routed query, all three nodes for a 2PC write), so the Citus
# side's extra CPU also slows the single side a little: the ratios are per call, on a busy machine.
# It is a benchmark, not a test: it exits 0 unless the setup fails; a call that fails shows ERR.
#   bench/citus.sh [seconds per run, default 5] [rounds, default 3]
# Writes the table to stdout and bench/out/citus.md; logs in bench/out/citus/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)
CMDLINE="bench/citus.sh $*"

SECONDS_PER=5 ROUNDS=3
if [[ ${1:-} =~ ^[0-9]+$ ]]; then SECONDS_PER=$1; shift; fi
if [[ ${1:-} =~ ^[0-9]+$ ]]; then ROUNDS=$1; shift; fi
[ $# -eq 0 ] || { echo "usage: bench/citus.sh [seconds per run] [rounds]" >&2; exit 2; }
[ "$SECONDS_PER" -ge 1 ] && [ "$ROUNDS" -ge 1 ] || { echo "bench/citus.sh: seconds and rounds must be >= 1" >&2; exit 2; }

export SP_USERS_CITUS_DIR=/tmp/sp_users-citus-bench SP_USERS_CITUS_PORT=54860
SOCK=$SP_USERS_CITUS_DIR/run
C=$SP_USERS_CITUS_PORT W1=$((SP_USERS_CITUS_PORT + 1)) W2=$((SP_USERS_CITUS_PORT + 2))
CDB=sp_users_citus SDB=sp_users_single
OUT=bench/out/citus
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.sql "$OUT"/*.ssl "$OUT"/*.explain

cleanup() {
  local p
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  scripts/citus stop >/dev/null 2>&1 || true
  rm -rf "$SP_USERS_CITUS_DIR"
}
trap cleanup EXIT

echo "starting a Citus cluster (coordinator + 2 workers) in $SP_USERS_CITUS_DIR, ports $C-$W2 ..."
scripts/citus start --fresh 2 >"$OUT/cluster.log" 2>&1 || { cat "$OUT/cluster.log" >&2; exit 1; }
export PGHOST=$SOCK PGUSER=postgres
q() { # q <port> <db> [psql args]
  local port=$1 db=$2; shift 2
  psql -X -q -At -v ON_ERROR_STOP=1 -p "$port" -d "$db" "$@"
}

echo "loading sp_users_citus and sp_users_single (100 000 users, 200 000 sessions, 20 000 bans each) ..."
q "$C" postgres -c "CREATE DATABASE $SDB"
q "$C" "$SDB" -c "CREATE EXTENSION sp_users"
q "$C" "$CDB" -c "CREATE EXTENSION sp_users"
q "$C" "$SDB" -f bench/api/load.sql >"$OUT/load.single.log" 2>&1 & load_s=$!
q "$C" "$CDB" -f bench/api/load.sql >"$OUT/load.citus.log" 2>&1 & load_c=$!
rc=0; wait $load_s || rc=1; wait $load_c || rc=1
[ $rc = 0 ] || { cat "$OUT"/load.*.log >&2; echo "bench/citus.sh: load failed" >&2; exit 1; }
q "$C" "$CDB" -c "SELECT relation::text || ': ' || placement FROM sp_users.distribute()" >"$OUT/distribute.log" 2>&1 ||
  { cat "$OUT/distribute.log" >&2; exit 1; }
grep -qx 'sp_users.banned_ips: reference' "$OUT/distribute.log" || { echo "bench/citus.sh: distribute() did not make banned_ips a reference table" >&2; cat "$OUT/distribute.log" >&2; exit 1; }
grep -qx 'sp_users.user_sessions: distributed' "$OUT/distribute.log" || { echo "bench/citus.sh: distribute() did not distribute user_sessions" >&2; cat "$OUT/distribute.log" >&2; exit 1; }
grep -qx 'sp_users.users: distributed' "$OUT/distribute.log" || { echo "bench/citus.sh: distribute() did not distribute users" >&2; cat "$OUT/distribute.log" >&2; exit 1; }
q "$C" "$CDB" >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT create_reference_table('public.bench_bans_orig');
SELECT truncate_local_data_after_distributing_table('public.bench_bans_orig');
CREATE TABLE public.bench_kv (id bigint PRIMARY KEY, v text);
SELECT create_distributed_table('public.bench_kv', 'id');
INSERT INTO public.bench_kv SELECT n, md5(n::text) FROM generate_series(1, 100000) n;
CREATE TABLE public.bench_ref (id bigint PRIMARY KEY, v text);
SELECT create_reference_table('public.bench_ref');
INSERT INTO public.bench_ref SELECT n, md5(n::text) FROM generate_series(1, 100000) n;
VACUUM ANALYZE public.bench_kv, public.bench_ref;
SQL
q "$C" "$SDB" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE public.bench_kv (id bigint PRIMARY KEY, v text);
INSERT INTO public.bench_kv SELECT n, md5(n::text) FROM generate_series(1, 100000) n;
CREATE TABLE public.bench_ref (id bigint PRIMARY KEY, v text);
INSERT INTO public.bench_ref SELECT n, md5(n::text) FROM generate_series(1, 100000) n;
VACUUM ANALYZE public.bench_kv, public.bench_ref;
SQL
# No autovacuum on the benchmark's tables (as bench/api.sh): in sp_users_citus, Citus carries the
# setting to every placement.
for db in "$CDB" "$SDB"; do
  q "$C" "$db" <<'SQL'
DO $$
DECLARE t regclass;
BEGIN
  FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname IN ('sp_users', 'public') LOOP
    EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)', t);
  END LOOP;
END $$;
SQL
done

# reset.sql with bench_meta's load time as a psql variable (same script on both sides).
RESET_SQL=$OUT/reset.sql
sed -e "s/(SELECT loaded_at FROM public\.bench_meta)/:'bench_loaded_at'::timestamptz/g" \
    -e '/^SET client_min_messages/a SELECT loaded_at AS bench_loaded_at FROM public.bench_meta \\gset' \
    bench/api/reset.sql >"$RESET_SQL"
grep -q 'FROM public.bench_meta)' "$RESET_SQL" && { echo "bench/citus.sh: bench/api/reset.sql changed; adapt the sed" >&2; exit 1; }
# After ban_ip, banned_ips is also rebuilt from the pristine copy in load order: its GiST index is
# otherwise reshaped by the side's inserts and deletes, and the single-node side (about 12 times as
# many ban_ip calls per run) then answered get_ban in half the time of the freshly loaded index.
BANS_SQL=$OUT/bans_restore.sql
cat >"$BANS_SQL" <<'SQL'
\set ON_ERROR_STOP on
SET client_min_messages = warning;
BEGIN;
TRUNCATE sp_users.banned_ips;
INSERT INTO sp_users.banned_ips (ip_address, reason, banned_at, expires_at, ban_count, last_offense_path, last_user_agent,
                                 source_fingerprint, ban_source, associated_session_ids)
SELECT ip_address, reason, banned_at, expires_at, ban_count, last_offense_path, last_user_agent,
       source_fingerprint, ban_source, associated_session_ids FROM public.bench_bans_orig;
COMMIT;
VACUUM (FREEZE, ANALYZE) sp_users.banned_ips;
CHECKPOINT;
SQL
reset_all() { # [bans]
  { q "$C" "$SDB" -f "$RESET_SQL" && q "$C" "$CDB" -f "$RESET_SQL" &&
    { [ "${1:-}" != bans ] || { q "$C" "$SDB" -f "$BANS_SQL" && q "$C" "$CDB" -f "$BANS_SQL"; }; } &&
    q "$W1" "$CDB" -c CHECKPOINT && q "$W2" "$CDB" -c CHECKPOINT; } >>"$OUT/reset.log" 2>&1
}
reset_all bans || { tail -5 "$OUT/reset.log" >&2; echo "bench/citus.sh: bench/api/reset.sql fails (see $OUT/reset.log)" >&2; exit 1; }

cat >"$OUT/kv.sql" <<'SQL'
\set r random(1, 100000)
SELECT v FROM public.bench_kv WHERE id = :r;
SQL
cat >"$OUT/ref.sql" <<'SQL'
\set r random(1, 100000)
SELECT v FROM public.bench_ref WHERE id = :r;
SQL

# Checks: both databases hold the same data; the kv query is a one-task router query.
SIZES_SQL="SELECT format('users %s (%s active, %s anonymous, %s deleted); sessions %s (%s active); bans %s (%s addresses, %s networks; %s active); bench_kv %s, bench_ref %s',
  (SELECT count(*) FROM sp_users.users), (SELECT count(*) FROM sp_users.users WHERE status = 'active'),
  (SELECT count(*) FROM sp_users.users WHERE roles @> '{anonymous}'), (SELECT count(*) FROM sp_users.users WHERE status = 'deleted'),
  (SELECT count(*) FROM sp_users.user_sessions),
  (SELECT count(*) FROM sp_users.user_sessions WHERE ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())),
  (SELECT count(*) FROM sp_users.banned_ips), (SELECT count(*) FROM sp_users.banned_ips WHERE masklen(ip_address) IN (32, 128)),
  (SELECT count(*) FROM sp_users.banned_ips WHERE masklen(ip_address) NOT IN (32, 128)),
  (SELECT count(*) FROM sp_users.banned_ips WHERE expires_at IS NULL OR expires_at > now()),
  (SELECT count(*) FROM public.bench_kv), (SELECT count(*) FROM public.bench_ref))"
SIZES=$(q "$C" "$SDB" -c "$SIZES_SQL")
SIZES_C=$(q "$C" "$CDB" -c "$SIZES_SQL")
[ "$SIZES" = "$SIZES_C" ] || { echo "bench/citus.sh: the databases differ: single: $SIZES / citus: $SIZES_C" >&2; exit 1; }
W1_BANS=$(q "$W1" "$CDB" -c "SELECT count(*) FROM sp_users.banned_ips")
[ "$W1_BANS" = 20000 ] || { echo "bench/citus.sh: worker 1 sees $W1_BANS bans, expected 20000" >&2; exit 1; }
q "$C" "$CDB" -c "EXPLAIN (COSTS OFF) SELECT v FROM public.bench_kv WHERE id = 42" >"$OUT/kv.explain" 2>&1 || true
grep -q 'Task Count: 1' "$OUT/kv.explain" || { echo "bench/citus.sh: bench_kv by id is not a one-task router query:" >&2; cat "$OUT/kv.explain" >&2; exit 1; }
SHARDS=$(q "$C" "$CDB" -c "SELECT count(*) || ' shards on ' || count(DISTINCT nodeport) || ' workers' FROM citus_shards WHERE table_name = 'public.bench_kv'::regclass")
# Definer functions distribute() gave a SET search_path (none of them has one on a single node).
PINNED=$(q "$C" "$CDB" -c "SELECT string_agg(p.proname, ', ' ORDER BY p.proname) FROM pg_proc p
  WHERE p.pronamespace = 'sp_users'::regnamespace AND p.prosecdef AND p.proname NOT LIKE '\_%'
    AND EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
    AND p.proname IN ('is_banned','get_ban','list_active_bans','count_active_bans','ban_ip','session_exists','touch_session','end_session','list_active_sessions','find_with_sessions','find_by_id','find_by_email','create_user','start_session')")
SYNC_S=$(q "$C" "$SDB" -c "SHOW synchronous_commit"); SYNC_C=$(q "$C" "$CDB" -c "SHOW synchronous_commit")
CONNINFO=$(q "$C" "$CDB" -c "SHOW citus.node_conninfo")
SSL_W=$(q "$W1" "$CDB" -c "SHOW ssl")
PGVER=$(q "$C" "$SDB" -c "SELECT version()" | sed 's/ on .*//')
EXTVER=$(q "$C" "$SDB" -c "SELECT extversion FROM pg_extension WHERE extname = 'sp_users'")
CITUSVER=$(q "$C" "$CDB" -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'")

set_conninfo() { # sslmode for new coordinator backends' connections to the workers
  if [ "$1" = default ]; then q "$C" "$CDB" -c "ALTER SYSTEM RESET citus.node_conninfo" >/dev/null
  else q "$C" "$CDB" -c "ALTER SYSTEM SET citus.node_conninfo = '$1'" >/dev/null; fi
  q "$C" "$CDB" -c "SELECT pg_reload_conf()" >/dev/null
  local want=$1 i; [ "$want" = default ] && want=$CONNINFO
  for i in $(seq 50); do [ "$(q "$C" "$CDB" -c "SHOW citus.node_conninfo")" = "$want" ] && return 0; sleep 0.1; done
  echo "bench/citus.sh: citus.node_conninfo did not become $want" >&2; return 1
}

# A copy of the single-node database: the A/A control row measures the method's own noise.
q "$C" postgres -c "CREATE DATABASE ${SDB}_copy TEMPLATE $SDB"

# id | call | where | script | "Citus" side's port | its database | w = writes (wbans: also rebuild banned_ips) | sslmode for Citus' connections
ROWS=(
  "control|session_exists (A/A control)|single node vs a copy of it (\`${SDB}_copy\`), not Citus: the method's noise|bench/api/session_exists.sp.sql|$C|${SDB}_copy|-|"
  "is_banned|is_banned|coordinator (own placement of the reference table)|bench/api/is_banned.sp.sql|$C|$CDB|-|"
  "is_banned.w1|is_banned|worker 1 (own placement) vs single node|bench/api/is_banned.sp.sql|$W1|$CDB|-|"
  "get_ban|get_ban|coordinator (own placement)|bench/api/get_ban.sp.sql|$C|$CDB|-|"
  "list_active_bans|list_active_bans|coordinator (own placement)|bench/api/list_active_bans.sp.sql|$C|$CDB|-|"
  "count_active_bans|count_active_bans|coordinator (SQL on the reference table: Citus planner, local execution)|bench/api/count_active_bans.sp.sql|$C|$CDB|-|"
  "ban_ip|ban_ip|coordinator, write through Citus (2PC to all 3 placements)|bench/api/ban_ip.sp.sql|$C|$CDB|wbans|"
  "session_exists|session_exists|sessions distributed: routed to the session's shard on a worker|bench/api/session_exists.sp.sql|$C|$CDB|-|"
  "session_exists.hand|session_exists's hand-written statement (bench/api)|the same statement written by hand, on both sides|bench/api/session_exists.hand.sql|$C|$CDB|-|"
  "touch_session|touch_session|sessions distributed: routed update|bench/api/touch_session.sp.sql|$C|$CDB|w|"
  "touch_session.hand|touch_session's hand-written statement (bench/api)|the same statement written by hand, on both sides|bench/api/touch_session.hand.sql|$C|$CDB|w|"
  "end_session|end_session|sessions distributed: routed update|bench/api/end_session.sp.sql|$C|$CDB|w|"
  "start_session|start_session|user locked on its shard, session inserted on its own|bench/api/start_session.sp.sql|$C|$CDB|w|"
  "list_active_sessions|list_active_sessions|sessions distributed: a user's sessions from every shard|bench/api/list_active_sessions.sp.sql|$C|$CDB|-|"
  "list_active_sessions.hand|list_active_sessions's hand-written statement (bench/api)|the same statement written by hand, on both sides|bench/api/list_active_sessions.hand.sql|$C|$CDB|-|"
  "find_with_sessions|find_with_sessions|the user routed to its shard, session figures from every shard|bench/api/find_with_sessions.sp.sql|$C|$CDB|-|"
  "find_by_id|find_by_id|users distributed: routed to the user's shard|bench/api/find_by_id.sp.sql|$C|$CDB|-|"
  "find_by_id.hand|find_by_id's hand-written statement (bench/api)|the same statement written by hand, on both sides|bench/api/find_by_id.hand.sql|$C|$CDB|-|"
  "find_by_email|find_by_email|the email's claim (routed by email), then the user (routed by id)|bench/api/find_by_email.sp.sql|$C|$CDB|-|"
  "find_by_email.hand|find_by_email's hand-written statement (bench/api)|the same statement written by hand, on both sides: every shard|bench/api/find_by_email.hand.sql|$C|$CDB|-|"
  "create_user|create_user|email and name claimed on their shards, the user on its own: two-phase commit|bench/api/create_user.sp.sql|$C|$CDB|w|"
  "create_user.hand|create_user's hand-written statement (bench/api)|the same statement written by hand, on both sides: one routed insert, email not unique across shards|bench/api/create_user.hand.sql|$C|$CDB|w|"
  "kv|\`SELECT v FROM bench_kv WHERE id = :r\`|distributed table: coordinator routes to 1 worker over TCP, SSL (default sslmode=require)|$OUT/kv.sql|$C|$CDB|-|"
  "kv.nossl|\`SELECT v FROM bench_kv WHERE id = :r\`|distributed table, routed over TCP, citus.node_conninfo = 'sslmode=disable'|$OUT/kv.sql|$C|$CDB|-|sslmode=disable"
  "ref|\`SELECT v FROM bench_ref WHERE id = :r\`|reference table, read on the coordinator (local placement)|$OUT/ref.sql|$C|$CDB|-|"
)

# Each side's pgbench and its backend share one CPU, the other side the other CPU (swapped every
# round): left to the scheduler, which pairs of the four processes shared a CPU changed from run to
# run and moved a side's mean latency by up to 60 % when both sides ran the same script.
PIN=no; [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null && PIN=yes
backend_pid() { # port db -> pid of that database's pgbench backend
  q "$1" postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND datname = '$2' AND backend_type = 'client backend' ORDER BY backend_start DESC LIMIT 1"
}
pin_backend() { # port db cpu -> pins the backend once it exists; "pinned" or "unpinned"
  local i pid
  for i in $(seq 200); do
    pid=$(backend_pid "$1" "$2" 2>/dev/null) || pid=
    if [ -n "$pid" ] && taskset -pc "$3" "$pid" >/dev/null 2>&1; then echo pinned; return; fi
    sleep 0.01
  done
  echo unpinned
}
wait_idle() { # no pgbench backend left from the previous run (one is pinned by its database's name)
  local i
  for i in $(seq 100); do
    [ "$(q "$C" postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")" = 0 ] &&
      [ "$(q "$W1" postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")" = 0 ] && return 0
    sleep 0.05
  done
}

declare -A US_S US_C N_S N_C SSLSEEN
UNPINNED=()
pair_run() { # id script port db writes sslmode round -> "<single µs> <citus µs> <single n> <citus n> <pinning>", or ERR
  local id=$1 script=$2 port=$3 db=$4 w=$5 ssl=$6 round=$7
  local ps="$OUT/$id.single.$round" pc="$OUT/$id.citus.$round" rc_s=0 rc_c=0 pid_s pid_c cpu_s=0 cpu_c=1 pin_s=- pin_c=-
  ((round % 2)) || { cpu_s=1; cpu_c=0; }
  [ "$w" = - ] || reset_all "${w#w}" || echo "bench/citus.sh: reset failed around $id (see $OUT/reset.log)" >&2
  [ -n "$ssl" ] && set_conninfo "$ssl" >&2
  wait_idle
  rm -f "$ps".[0-9]* "$pc".[0-9]*
  local args=(-n -M prepared -c 1 -j 1 -T "$SECONDS_PER" -l -f "$script") tsk_s=() tsk_c=()
  [ $PIN = yes ] && { tsk_s=(taskset -c "$cpu_s"); tsk_c=(taskset -c "$cpu_c"); }
  "${tsk_s[@]}" pgbench "${args[@]}" --log-prefix="$ps" -p "$C" "$SDB" >"$ps.log" 2>&1 & pid_s=$!
  "${tsk_c[@]}" pgbench "${args[@]}" --log-prefix="$pc" -p "$port" "$db" >"$pc.log" 2>&1 & pid_c=$!
  if [ $PIN = yes ]; then
    pin_s=$(pin_backend "$C" "$SDB" "$cpu_s"); pin_c=$(pin_backend "$port" "$db" "$cpu_c")
  fi
  if [[ $id == kv* ]]; then # are Citus' connections to the workers for the query encrypted? (sampled mid-run)
    sleep "$(awk -v s="$SECONDS_PER" 'BEGIN { print s / 2 }')"
    local n
    n=$(for p in "$W1" "$W2"; do q "$p" "$CDB" -c "SELECT count(*) FILTER (WHERE s.ssl) || '/' || count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.query LIKE '%bench_kv%' AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()" 2>/dev/null; done | tr '\n' ' ')
    echo "$n" >"$pc.ssl"
  fi
  wait "$pid_s" || rc_s=$?
  wait "$pid_c" || rc_c=$?
  [ -n "$ssl" ] && set_conninfo default >&2
  [ "$w" = - ] || reset_all "${w#w}" || echo "bench/citus.sh: reset failed around $id (see $OUT/reset.log)" >&2
  local out_s out_c n_s n_c
  read -r out_s n_s < <(mean "$ps" "$rc_s")
  read -r out_c n_c < <(mean "$pc" "$rc_c")
  rm -f "$ps".[0-9]* "$pc".[0-9]*
  echo "$out_s $out_c $n_s $n_c $pin_s/$pin_c"
}
mean() { # log prefix, pgbench's exit code -> "<mean µs> <transactions>" or "ERR 0"
  if [ "$2" -ne 0 ] || grep -qE 'aborted|ERROR' "$1.log" || ! ls "$1".[0-9]* >/dev/null 2>&1; then echo "ERR 0"
  else cat "$1".[0-9]* | awk '{ n++; t += $3 } END { if (n) printf "%.2f %d\n", t / n, n; else print "ERR 0" }'; fi
}

# Per row: 2 runs of SECONDS_PER at once, plus resets for writers.
echo "$SIZES"
echo "running ${#ROWS[@]} measurements x $ROUNDS rounds of ${SECONDS_PER}s, both sides at once (about $(( ${#ROWS[@]} * ROUNDS * (SECONDS_PER + 2) / 60 + 1 )) min) ..."
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
  for row in "${ROWS[@]}"; do
    IFS='|' read -r id call where script port db w ssl <<<"$row"
    read -r s c ns nc pins < <(pair_run "$id" "$script" "$port" "$db" "$w" "$ssl" "$round")
    s=${s:-ERR} c=${c:-ERR}
    US_S[$id]+="$s "; US_C[$id]+="$c "; N_S[$id]+="$ns "; N_C[$id]+="$nc "
    [ "$pins" = pinned/pinned ] || [ $PIN = no ] || UNPINNED+=("$id round $round: ${pins:-?}")
    [ -f "$OUT/$id.citus.$round.ssl" ] && SSLSEEN[$id]+="$(cat "$OUT/$id.citus.$round.ssl")"
    printf 'round %d/%d  %-18s single %9s µs  citus %9s µs\n' "$round" "$ROUNDS" "$id" "$s" "$c"
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { # values... -> median, or ERR if any run failed
  case " $* " in *" ERR "*) echo ERR; return ;; esac
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ERRORS=()
{
  echo "| call | where | ratio median | rounds | extra µs per call | single µs | Citus µs |"
  echo "|---|---|---:|---|---:|---:|---:|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r id call where script port db w ssl <<<"$row"
    read -r -a ss <<<"${US_S[$id]}"; read -r -a cc <<<"${US_C[$id]}"
    if [[ " ${US_S[$id]} ${US_C[$id]} " = *" ERR "* ]]; then
      err=$(grep -hiE 'error|abort' "$OUT/$id".*.log 2>/dev/null | head -1 | cut -c1-200)
      printf '| %s | %s | ERR | | | %s | %s |\n' "$call" "$where" "${US_S[$id]% }" "${US_C[$id]% }"
      ERRORS+=("$id: ${err:-see $OUT/$id.*.log}")
      continue
    fi
    ratios=() diffs=()
    for ((i = 0; i < ${#ss[@]}; i++)); do
      ratios+=("$(awk -v s="${ss[$i]}" -v c="${cc[$i]}" 'BEGIN { printf "%.2f", s / c }')")
      diffs+=("$(awk -v s="${ss[$i]}" -v c="${cc[$i]}" 'BEGIN { printf "%.1f", c - s }')")
    done
    printf '| %s | %s | %.2f | %s | %+.1f | %.1f | %.1f |\n' "$call" "$where" "$(median "${ratios[@]}")" "${ratios[*]}" \
      "$(median "${diffs[@]}")" "$(median "${ss[@]}")" "$(median "${cc[@]}")"
  done
  echo
  echo "Method: for each call and round, two \`pgbench -n -M prepared -c 1 -j 1 -T $SECONDS_PER -l -f <script>\` processes"
  echo "started at the same moment, one against \`$SDB\` (single node: sp_users without the citus extension, on the Citus"
  echo "coordinator's server, same settings) and one against \`$CDB\` (after \`sp_users.distribute()\`; port $C = coordinator, $W1 = worker 1),"
  echo "so both see the same machine at the same moment; µs = mean latency of a side's transactions in its per-transaction log"
  echo "(client round trip included). ratio = single µs / Citus µs (1.0 = same cost, 0.5 = twice as slow), median over $ROUNDS round(s);"
  echo "rounds = each round's ratio (the spread); extra µs per call = median of the rounds' (Citus µs - single µs); single/Citus µs = medians."
  if [ $PIN = yes ]; then
    echo "Each side's pgbench and its backend are pinned to one CPU (taskset), the other side to the other CPU, swapped every round;"
    echo "processes the Citus side wakes besides its backend (worker backends of a routed query or a 2PC write) are not pinned and take"
    echo "CPU from either side, so part of Citus' extra CPU slows the single side too. The A/A control row runs the single-node side"
    echo "against a copy of its database the same way: its spread is the method's own noise."
  else
    echo "No CPU pinning (taskset missing or 1 CPU). The A/A control row runs the single-node side against a copy of its database: its spread is the method's own noise."
  fi
  [ ${#UNPINNED[@]} -eq 0 ] || echo "Runs where a backend could not be pinned: ${UNPINNED[*]}."
  echo "Writers (ban_ip, touch_session, end_session, create_user, start_session) run between two resets of both databases (bench/api/reset.sql,"
  echo "the load time inlined: $RESET_SQL; bench_bans_orig is a reference table in $CDB); around ban_ip, banned_ips is also rebuilt"
  echo "from that pristine copy in load order ($BANS_SQL): otherwise the side with more ban_ip calls reshapes its GiST index more"
  echo "(single node: about 12 times the calls), and get_ban on that side later took half the time of a freshly loaded index."
  echo "Scripts: bench/api/<call>.sp.sql; bench_kv / bench_ref: \`\\set r random(1, 100000)\` then the query shown."
  echo "Command: \`$CMDLINE\` ($SECONDS_PER s per run, $ROUNDS round(s)); $(date -u '+%Y-%m-%d %H:%M UTC'); $PGVER, Citus $CITUSVER, sp_users $EXTVER, $(nproc) CPUs;"
  echo "load average $LOAD_START at the start, $LOAD_END at the end (other clusters of the machine run too)."
  echo "Data (each database): $SIZES (bench/api/load.sql); bench_kv: $SHARDS; bench_ref and banned_ips: a placement on the coordinator and both workers."
  echo "Cluster: scripts/citus, coordinator + 2 workers on this machine (fsync off, synchronous_commit = $SYNC_C in $CDB, $SYNC_S in $SDB);"
  echo "Citus' node connections: citus.node_conninfo = '$CONNINFO' (default), worker ssl = $SSL_W (Citus' self-signed certificate)."
  echo "Encrypted/all Citus connections on worker 1, worker 2, sampled mid-run: default: ${SSLSEEN[kv]:-?}; sslmode=disable: ${SSLSEEN[kv.nossl]:-?}."
  echo "Definer functions that distribute() gave SET search_path = pg_catalog, pg_temp in $CDB (not in $SDB), among those measured: ${PINNED:-none}."
  echo "Per round (single µs / Citus µs, transactions single / Citus):"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r id _ <<<"$row"
    echo "    $id: ${US_S[$id]}/ ${US_C[$id]}; n ${N_S[$id]}/ ${N_C[$id]}"
  done
} >"$OUT/table.md"
cp "$OUT/table.md" bench/out/citus.md
echo
cat bench/out/citus.md
if [ ${#ERRORS[@]} -gt 0 ]; then echo; echo "errors:"; printf '  %s\n' "${ERRORS[@]}"; fi
echo "total $(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s; logs in $OUT"
