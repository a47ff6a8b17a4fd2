#!/usr/bin/env bash
# Every function an application calls, against the hand-written statement it replaces (issue 12):
# on 100 000 users, 200 000 sessions and 20 000 bans, `pgbench -n -M prepared -c 2 -j 2 -T <seconds>`
# runs each sp_users call and its hand-written counterpart on the same tables, the two runs of a
# pair back to back, for <rounds> rounds (the order alternates, sp_users first in odd rounds);
# prints one table of median tps, the median of the per-round ratios and the goal (0.9 for request-path calls, 0.8 for
# listing and administration calls), the data sizes and the command, and writes it to
# bench/out/api.md. The scripts are bench/api/<function>.sp.sql and .hand.sql; every argument is
# computed from a random number (bench/api/load.sql says how), with the same expression on both
# sides so its cost cancels. Before and after every run of a function that writes, bench/api/reset.sql puts
# the tables back to the loaded state, so every run starts on equal tables.
# The default method runs the two scripts of a function in ONE pgbench run, interleaved at random
# (`-f sp.sql@1 -f hand.sql@1`), and compares the mean latency of their transactions from the
# per-transaction log: both sides then see the same machine at the same moment, which back-to-back
# runs on this VM did not (consecutive 5-second runs of one script differ by up to 15 %). With
# 2 clients on 2 CPUs each client and its backend take turns on one CPU, so a call's latency is
# the CPU it costs plus the round trip, and the ratio hand/sp of mean latencies is the ratio of the
# tps each would reach alone. API_METHOD=pairs measures the old way (back-to-back runs, ratio of
# tps). With API_ROLE set, the mixed method runs both scripts as the login role api_bench, which
# holds those sp_users roles for the calls and, for the hand-written statements, the table
# privileges an application writing its own SQL would need (the calls never use them).
# It is a benchmark, not a test: it exits 0 unless the setup fails; the last line names the
# functions below their goal.
#   bench/api.sh [seconds per run, default 5] [rounds, default 3] [function ...]
# Environment: PGDEV_DIR / PGDEV_PORT choose the private cluster (scripts/pgdev); API_REUSE=1 keeps
# an already loaded database (only if it was made with the installed extension scripts); API_ROLE='<role> ...' runs the sp_users calls as the login role
# api_bench, a member of those roles (e.g. 'sp_users_app sp_users_readonly'), instead of the superuser.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

SECONDS_PER=5 ROUNDS=3
if [[ ${1:-} =~ ^[0-9]+$ ]]; then SECONDS_PER=$1; shift; fi
if [[ ${1:-} =~ ^[0-9]+$ ]]; then ROUNDS=$1; shift; fi
DB=sp_users_api
OUT=bench/out/api; mkdir -p "$OUT"
API_ROLE=${API_ROLE:-}
METHOD=${API_METHOD:-mixed}
case $METHOD in mixed | pairs) ;; *) echo "bench/api.sh: API_METHOD is mixed or pairs" >&2; exit 2 ;; esac

# function | goal | w = writes (reset after each run) | the hand-written statement, short
FUNCTIONS=(
  "is_banned|0.9|-|EXISTS (banned_ips WHERE ip_address >>= \$1::inet AND active) (GiST)"
  "get_ban|0.9|-|banned_ips WHERE ip_address >>= \$1::inet AND active ORDER BY masklen DESC LIMIT 1"
  "session_exists|0.9|-|EXISTS (user_sessions WHERE session_id = \$1 AND active)"
  "touch_session|0.9|w|UPDATE user_sessions SET last_activity_at = now() WHERE session_id = \$1 AND active"
  "end_session|0.9|w|UPDATE user_sessions SET ended_at = now() WHERE session_id = \$1 AND ended_at IS NULL"
  "start_session|0.9|w|INSERT INTO user_sessions SELECT …, user_type from roles FROM users WHERE id = \$1 AND not deleted RETURNING *"
  "find_by_id|0.9|-|users WHERE id = \$1 AND status <> 'deleted'"
  "find_by_email|0.9|-|users WHERE email = lower(btrim(\$1)) AND status <> 'deleted'"
  "find_by_name|0.9|-|users WHERE name = \$1 AND status <> 'deleted'"
  "find_user|0.9|-|the client picks by id / by email / by name (a third each)"
  "find_authenticated_user|0.9|-|users WHERE id = \$1 AND status = 'active'"
  "get_roles|0.9|-|SELECT roles FROM users WHERE id = \$1 AND status <> 'deleted'"
  "is_temporary_anonymous|0.9|-|SELECT roles @> '{anonymous}' FROM users WHERE id = \$1 AND status <> 'deleted'"
  "create_user|0.9|w|INSERT INTO users (name, email, …) VALUES (…, lower(btrim(\$2)), …) RETURNING *"
  "create_user_if_absent|0.9|w|INSERT INTO users … ON CONFLICT DO NOTHING RETURNING * (half existing)"
  "create_anonymous|0.9|w|WITH found (by email), INSERT … WHERE NOT EXISTS found ON CONFLICT DO NOTHING (half existing)"
  "ban_ip|0.9|w|INSERT INTO banned_ips … ON CONFLICT (ip_address) DO UPDATE (upsert rules) RETURNING * (half repeats)"
  "list_users|0.8|-|users WHERE status <> 'deleted' ORDER BY created_at DESC, id LIMIT 20 OFFSET \$1"
  "search_users|0.8|-|users WHERE not deleted AND strpos(lower(name|email|full_name), q) > 0 ORDER BY … LIMIT 20 (q = lower(\$1), once)"
  "list_active_sessions|0.8|-|user_sessions WHERE user_id = \$1 AND active ORDER BY last_activity_at DESC (no user check)"
  "list_active_bans|0.8|-|banned_ips WHERE active ORDER BY banned_at DESC, ip_address LIMIT 100"
  "count_active_bans|0.8|-|SELECT count(*) FROM banned_ips WHERE active"
  "get_activity|0.8|-|users LEFT JOIN user_sessions WHERE id = \$1 AND not deleted GROUP BY id"
  "find_with_sessions|0.8|-|users LEFT JOIN user_sessions, count(session_id) FILTER (active), max(last_activity_at) GROUP BY id"
)
declare -A GOAL WRITES HAND
ALL=()
for entry in "${FUNCTIONS[@]}"; do
  IFS='|' read -r f goal w hand <<<"$entry"
  ALL+=("$f"); GOAL[$f]=$goal; WRITES[$f]=$w; HAND[$f]=$hand
done
SELECTED=("$@")
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${ALL[@]}")
for f in "${SELECTED[@]}"; do
  if [ -z "${GOAL[$f]:-}" ]; then echo "bench/api.sh: unknown function $f (known: ${ALL[*]})" >&2; exit 2; fi
done

scripts/pgdev start >/dev/null
eval "$(scripts/pgdev env)"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# The installed extension script, so a reused database is only reused with the SQL it was made with.
SCRIPT_MD5=$(cat "$(pg_config --sharedir)"/extension/sp_users--*.sql | md5sum | cut -c1-32)
if [ "${API_REUSE:-}" = 1 ] && [ "$(q -c "SELECT script_md5 FROM public.bench_meta" 2>/dev/null)" = "$SCRIPT_MD5" ]; then
  echo "reusing the loaded database $DB"
  psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f bench/api/reset.sql
else
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  # synchronous_commit = off for this database (scripts/pgdev's cluster has it anyway), so the
  # commit's WAL flush does not hide the CPU the calls cost.
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER DATABASE $DB SET synchronous_commit = off"
  q -c "CREATE EXTENSION sp_users"
  echo "loading 100 000 users, 200 000 sessions, 20 000 bans ..."
  psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f bench/api/load.sql
  q -c "ALTER TABLE public.bench_meta ADD COLUMN script_md5 text" -c "UPDATE public.bench_meta SET script_md5 = '$SCRIPT_MD5'"
fi
# No autovacuum or autoanalyze on the benchmark's tables: started by the launcher once a minute,
# they ran during whichever side happened to be measured then (CPU, I/O and a replan after each
# analyze). bench/api/reset.sql vacuums them between the runs of writing functions instead.
q <<'SQL'
DO $$
DECLARE t regclass;
BEGIN
  FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname IN ('sp_users', 'public') LOOP
    EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)', t);
  END LOOP;
END $$;
SQL
SYNC=$(q -c "SHOW synchronous_commit")
if [ "$SYNC" != off ]; then echo "bench/api.sh: synchronous_commit is $SYNC in $DB, expected off" >&2; exit 1; fi
EXTVER=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'sp_users'")
PGVER=$(q -c "SELECT version()" | sed 's/ on .*//')
SIZES=$(q <<'SQL'
SELECT format('users %s (%s active, %s anonymous, %s deleted); sessions %s (%s active); bans %s (%s addresses, %s networks; %s active)',
  (SELECT count(*) FROM sp_users.users), (SELECT count(*) FROM sp_users.users WHERE status = 'active'),
  (SELECT count(*) FROM sp_users.users WHERE roles @> '{anonymous}'), (SELECT count(*) FROM sp_users.users WHERE status = 'deleted'),
  (SELECT count(*) FROM sp_users.user_sessions),
  (SELECT count(*) FROM sp_users.user_sessions WHERE ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())),
  (SELECT count(*) FROM sp_users.banned_ips), (SELECT count(*) FROM sp_users.banned_ips WHERE masklen(ip_address) IN (32, 128)),
  (SELECT count(*) FROM sp_users.banned_ips WHERE masklen(ip_address) NOT IN (32, 128)),
  (SELECT count(*) FROM sp_users.banned_ips WHERE expires_at IS NULL OR expires_at > now()));
SQL
)

SP_USER=postgres
if [ -n "$API_ROLE" ]; then
  SP_USER=api_bench
  psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'api_bench') THEN CREATE ROLE api_bench LOGIN; END IF;
END \$\$;
GRANT ${API_ROLE//[ ]/, } TO api_bench;
SQL
  if [ "$METHOD" = mixed ]; then # the hand-written side in the same run needs the tables (and the CHECKs' functions)
    q -c "GRANT USAGE ON SCHEMA sp_users TO api_bench" \
      -c "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sp_users TO api_bench" \
      -c "GRANT USAGE ON ALL SEQUENCES IN SCHEMA sp_users TO api_bench" \
      -c "DO \$\$ DECLARE p regprocedure; BEGIN FOR p IN SELECT DISTINCT d.refobjid::regprocedure
            FROM pg_constraint c JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
                 AND d.refclassid = 'pg_proc'::regclass WHERE c.connamespace = 'sp_users'::regnamespace
          LOOP EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO api_bench', p); END LOOP; END \$\$"
  fi
fi

CMD="pgbench -n -M prepared -c 2 -j 2 -T $SECONDS_PER -f bench/api/<function>.{sp,hand}.sql $DB"
declare -A TPS
run() { # function side round -> tps, or ERR when a client failed
  local f=$1 side=$2 round=$3 user=postgres rc=0 log t
  [ "$side" = sp ] && user=$SP_USER
  log="$OUT/$f.$side.$round.log"
  # Writers start from the loaded tables and a fresh checkpoint, so no run pays the full-page
  # writes of a checkpoint that happened to start during it (the other side then did not).
  if [ "${WRITES[$f]}" = w ]; then psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f bench/api/reset.sql >>"$OUT/reset.log" 2>&1; fi
  pgbench -n -M prepared -c 2 -j 2 -T "$SECONDS_PER" -U "$user" -f "bench/api/$f.$side.sql" "$DB" >"$log" 2>&1 || rc=$?
  t=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log" | awk '{ printf "%.0f", $1 }')
  if [ $rc -ne 0 ] || [ -z "$t" ] || grep -q 'aborted' "$log"; then echo ERR; else echo "$t"; fi
  if [ "${WRITES[$f]}" = w ]; then psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f bench/api/reset.sql >>"$OUT/reset.log" 2>&1; fi
}

CMD_MIXED="pgbench -n -M prepared -c 2 -j 2 -T $SECONDS_PER -l -f bench/api/<function>.sp.sql@1 -f bench/api/<function>.hand.sql@1 $DB"
declare -A US
mixed_run() { # function round -> "<sp mean µs> <hand mean µs>", or "ERR ERR" when a client failed
  local f=$1 round=$2 rc=0 prefix="$OUT/$f.mixed.$round" first=sp second=hand
  local log="$prefix.log"
  # Which script pgbench numbers 0 alternates between rounds; the choice per transaction is random.
  ((round % 2)) || { first=hand; second=sp; }
  if [ "${WRITES[$f]}" = w ]; then psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f bench/api/reset.sql >>"$OUT/reset.log" 2>&1; fi
  rm -f "$prefix".[0-9]*
  pgbench -n -M prepared -c 2 -j 2 -T "$SECONDS_PER" -U "$SP_USER" -l --log-prefix="$prefix" \
    -f "bench/api/$f.$first.sql@1" -f "bench/api/$f.$second.sql@1" "$DB" >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ] || grep -q 'aborted' "$log" || ! ls "$prefix".[0-9]* >/dev/null 2>&1; then
    echo "ERR ERR"
  else
    # Per-transaction log: client, transaction, latency (µs), script number, epoch s, µs.
    cat "$prefix".[0-9]* | awk -v first="$first" '{ n[$4]++; t[$4] += $3 }
      END { a = t[0] / n[0]; b = t[1] / n[1]; if (first == "sp") printf "%.2f %.2f\n", a, b; else printf "%.2f %.2f\n", b, a }'
  fi
  rm -f "$prefix".[0-9]*
  if [ "${WRITES[$f]}" = w ]; then psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f bench/api/reset.sql >>"$OUT/reset.log" 2>&1; fi
}

echo "$SIZES"
if [ "$METHOD" = mixed ]; then
  echo "running ${#SELECTED[@]} functions: $ROUNDS rounds of one ${SECONDS_PER}s run with both scripts (about $(( ${#SELECTED[@]} * ROUNDS * (SECONDS_PER + 2) / 60 + 1 )) min) ..."
else
  echo "running ${#SELECTED[@]} functions: $ROUNDS rounds of ${SECONDS_PER}s per side (about $(( ${#SELECTED[@]} * 2 * ROUNDS * (SECONDS_PER + 1) / 60 + 1 )) min) ..."
fi
for ((round = 1; round <= ROUNDS; round++)); do
  for f in "${SELECTED[@]}"; do
    if [ "$METHOD" = mixed ]; then
      read -r s h < <(mixed_run "$f" "$round")
      US[$f,sp]+="$s "; US[$f,hand]+="$h "
      printf 'round %d/%d  %-24s sp_users %-8s µs  hand %s µs\n' "$round" "$ROUNDS" "$f" "$s" "$h"
      continue
    fi
    if ((round % 2)); then order="sp hand"; else order="hand sp"; fi
    for side in $order; do TPS[$f,$side]+="$(run "$f" "$side" "$round") "; done
    printf 'round %d/%d  %-24s sp_users %-9s hand %s\n' "$round" "$ROUNDS" "$f" \
      "$(echo ${TPS[$f,sp]} | awk '{print $NF}')" "$(echo ${TPS[$f,hand]} | awk '{print $NF}')"
  done
done

median() { # values... -> median, or ERR if any run failed
  case " $* " in *" ERR "*) echo ERR; return ;; esac
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
BELOW=()
declare -A RATIOS
verdict() { # function ratios... -> prints the row's ratio and ok/BELOW
  local f=$1; shift
  awk -v r="$(median "$@")" -v g="${GOAL[$f]}" 'BEGIN { printf "%.2f %s\n", r, (r + 1e-9 >= g ? "ok" : "BELOW") }'
}
if [ "$METHOD" = mixed ]; then {
  echo "| function | hand-written statement | sp_users µs/call | hand µs/call | ratio | goal | |"
  echo "|---|---|---:|---:|---:|---:|---|"
  for f in "${SELECTED[@]}"; do
    read -r -a sp_runs <<<"${US[$f,sp]}"; read -r -a hand_runs <<<"${US[$f,hand]}"
    if [[ " ${US[$f,sp]} " = *" ERR "* ]]; then
      printf '| %s | `%s` | ERR | ERR | | %s | ERROR (see %s) |\n' "$f" "${HAND[$f]}" "${GOAL[$f]}" "$OUT/$f.mixed.*.log"
      BELOW+=("$f (error)")
      continue
    fi
    # Per round hand/sp of the mean latencies (= sp tps / hand tps, each alone), then the median.
    ratios=(); for ((i = 0; i < ${#sp_runs[@]}; i++)); do ratios+=("$(awk -v s="${sp_runs[$i]}" -v h="${hand_runs[$i]}" 'BEGIN { printf "%.4f", h / s }')"); done
    RATIOS[$f]="${ratios[*]}"
    read -r ratio ok < <(verdict "$f" "${ratios[@]}")
    printf '| %s | `%s` | %.1f | %.1f | %s | %s | %s |\n' "$f" "${HAND[$f]}" "$(median "${sp_runs[@]}")" "$(median "${hand_runs[@]}")" "$ratio" "${GOAL[$f]}" "$ok"
    [ "$ok" = ok ] || BELOW+=("$f")
  done
  echo
  echo "Data: $SIZES (bench/api/load.sql)."
  echo "Command, per function: \`$CMD_MIXED\` (one run, the two scripts interleaved at random), rounds: $ROUNDS;"
  echo "bench/api/reset.sql before and after each run of a writing function. µs/call = mean latency of that script's"
  echo "transactions in pgbench's per-transaction log (the client's round trip included); ratio = median over the rounds of"
  echo "hand µs / sp_users µs, which is sp_users tps / hand tps if each ran alone (2 clients on 2 CPUs: one CPU per client and its backend)."
  if [ "$SP_USER" = postgres ]; then echo "Both sides run as \`postgres\` (superuser); synchronous_commit = $SYNC."
  else echo "Both sides run as \`$SP_USER\` (member of $API_ROLE; table privileges for the hand-written side); synchronous_commit = $SYNC."; fi
  echo "$PGVER, sp_users $EXTVER, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'); per-round µs/call:"
  for f in "${SELECTED[@]}"; do echo "    $f: sp_users ${US[$f,sp]}/ hand ${US[$f,hand]}/ ratios ${RATIOS[$f]:-}"; done
} >"$OUT/table.md"; else {
  echo "| function | hand-written statement | sp_users tps | hand tps | ratio | goal | |"
  echo "|---|---|---:|---:|---:|---:|---|"
  for f in "${SELECTED[@]}"; do
    s=$(median ${TPS[$f,sp]}); h=$(median ${TPS[$f,hand]})
    if [ "$s" = ERR ] || [ "$h" = ERR ]; then
      printf '| %s | `%s` | %s | %s | | %s | ERROR (see %s) |\n' "$f" "${HAND[$f]}" "$s" "$h" "${GOAL[$f]}" "$OUT/$f.*.log"
      BELOW+=("$f (error)")
      continue
    fi
    # The ratio of each round's two back-to-back runs, then their median: drift of the machine
    # between rounds (±30 % here) cancels within a pair.
    read -r -a sp_runs <<<"${TPS[$f,sp]}"; read -r -a hand_runs <<<"${TPS[$f,hand]}"
    ratios=(); for ((i = 0; i < ${#sp_runs[@]}; i++)); do ratios+=("$(awk -v s="${sp_runs[$i]}" -v h="${hand_runs[$i]}" 'BEGIN { printf "%.4f", s / h }')"); done
    RATIOS[$f]="${ratios[*]}"
    read -r ratio ok < <(verdict "$f" "${ratios[@]}")
    printf '| %s | `%s` | %.0f | %.0f | %s | %s | %s |\n' "$f" "${HAND[$f]}" "$s" "$h" "$ratio" "${GOAL[$f]}" "$ok"
    [ "$ok" = ok ] || BELOW+=("$f")
  done
  echo
  echo "Data: $SIZES (bench/api/load.sql)."
  echo "Command, per function and side: \`$CMD\`, rounds: $ROUNDS; the two sides of a pair back to back"
  echo "(sp_users first in odd rounds, hand-written first in even ones), median tps; bench/api/reset.sql after each run of a writing function."
  echo "sp_users calls run as \`$SP_USER\`$( [ "$SP_USER" = postgres ] && echo ' (superuser)' || echo " (member of $API_ROLE)" ), the hand-written statements as \`postgres\` (superuser, table access);"
  echo "synchronous_commit = $SYNC. Ratio = median over the rounds of (sp_users tps / hand tps) of the round's two back-to-back runs;"
  echo "the tps columns are the medians of each side."
  echo "$PGVER, sp_users $EXTVER, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'); per-run tps:"
  for f in "${SELECTED[@]}"; do echo "    $f: sp_users ${TPS[$f,sp]}/ hand ${TPS[$f,hand]}/ ratios ${RATIOS[$f]:-}"; done
} >"$OUT/table.md"; fi
cp "$OUT/table.md" bench/out/api.md
echo
cat bench/out/api.md
echo "total $(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s; logs in $OUT"
if [ ${#BELOW[@]} -eq 0 ]; then echo "below goal: none"; else echo "below goal: $(IFS=,; echo "${BELOW[*]}" | sed 's/,/, /g')"; fi
