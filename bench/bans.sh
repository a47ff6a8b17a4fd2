#!/usr/bin/env bash
# is_banned benchmark: pgbench -M prepared -c 2 -j 2, same duration for every query, in 3
# interleaved rounds (this VM's throughput drifts by ±10 % between runs); prints the median tps per
# query and the ratios to SELECT 1 and to the address-expression baseline, then a noise-free figure:
# the time one backend spends per is_banned call on top of building the address (1 M calls).
#   bench/bans.sh [seconds per query and round, default 10]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER=${1:-10}
DB=sp_users_bench
OUT=bench/out/bans; mkdir -p "$OUT"
scripts/pgdev start >/dev/null
eval "$(scripts/pgdev env)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
echo "loading ban data ..."
psql -X -d $DB -f bench/bans_load.sql

# The address expression: r in 1..2 000 000 hits an address ban for r <= 1 000 000 (2/3 of them
# active) and otherwise a random address (a few % inside a banned network).
ADDR="host('0.0.0.0'::inet + ((:r::bigint * 2654435761) % 4294967296))"
printf 'SELECT 1;\n' > "$OUT/select1.sql"
printf '\\set r random(1, 2000000)\nSELECT %s;\n' "$ADDR" > "$OUT/expr.sql"
printf '\\set r random(1, 2000000)\nSELECT sp_users.is_banned(%s);\n' "$ADDR" > "$OUT/is_banned.sql"
printf '\\set r random(1, 2000000)\nSELECT EXISTS(SELECT 1 FROM public.seed_banned_ips WHERE ip_address = %s AND (expires_at IS NULL OR expires_at > now()));\n' "$ADDR" > "$OUT/seed.sql"
printf '\\set r random(1, 2000000)\nSELECT EXISTS(SELECT 1 FROM sp_users.banned_ips WHERE ip_address >>= (%s)::inet AND (expires_at IS NULL OR expires_at > now()));\n' "$ADDR" > "$OUT/gist.sql"

run() { # name script -> tps
  pgbench -n -M prepared -c 2 -j 2 -T "$SECONDS_PER" -f "$OUT/$2" $DB > "$OUT/$1.log" 2>&1
  sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/$1.log"
}
echo "running pgbench, ${SECONDS_PER}s per query, 3 interleaved rounds ..."
declare -A all
for round in 1 2 3; do
  for q in select1 expr is_banned seed gist; do all[$q]+="$(run $q $q.sql) "; done
done
median() { echo $1 $2 $3 | tr ' ' '\n' | sort -n | sed -n 2p; }
t_select1=$(median ${all[select1]}); t_expr=$(median ${all[expr]}); t_banned=$(median ${all[is_banned]})
t_seed=$(median ${all[seed]}); t_gist=$(median ${all[gist]})

# In one backend, no round trips: 1 M addresses with and without the ban check.
per_call=$(psql -X -At -d $DB <<'SQL' | tail -1
SELECT sp_users.is_banned('1.1.1.1');
DO $$
DECLARE t timestamptz; base float8 := 1e9; banned float8 := 1e9; n bigint;
BEGIN
  FOR r IN 1..3 LOOP
    t := clock_timestamp();
    SELECT count(*) FILTER (WHERE x IS NOT NULL) INTO n FROM (SELECT host('0.0.0.0'::inet + ((i * 2654435761) % 4294967296)) x FROM generate_series(1, 1000000) i) s;
    base := least(base, extract(epoch FROM clock_timestamp() - t));
    t := clock_timestamp();
    SELECT count(*) FILTER (WHERE sp_users.is_banned(x)) INTO n FROM (SELECT host('0.0.0.0'::inet + ((i * 2654435761) % 4294967296)) x FROM generate_series(1, 1000000) i) s;
    banned := least(banned, extract(epoch FROM clock_timestamp() - t));
  END LOOP;
  PERFORM set_config('bench.per_call', round(((banned - base) * 1e6 / 1e6)::numeric, 3)::text, false);
END $$;
SELECT current_setting('bench.per_call');
SQL
)
cache=$(psql -X -At -d $DB -c "SELECT sp_users.is_banned('1.1.1.1'); SELECT entries || ' entries, ' || pg_size_pretty(memory_bytes) || ', rebuilt in ' || round(last_rebuild_ms::numeric) || ' ms' FROM sp_users.ban_cache_info()" | tail -1)

printf '\n%-44s %10s %10s %12s\n' query tps "vs SELECT 1" "vs address"
row() { awk -v n="$1" -v t="$2" -v a="$t_select1" -v b="$t_expr" 'BEGIN { printf "%-44s %10.0f %10.2f %12.2f\n", n, t, t / a, t / b }'; }
row "SELECT 1" "$t_select1"
row "SELECT <address expression>" "$t_expr"
row "SELECT sp_users.is_banned(<address>)" "$t_banned"
row "seed: EXISTS on text-keyed table" "$t_seed"
row "inet GiST >>= on banned_ips" "$t_gist"
echo
echo "ban set per backend: $cache"
echo "per is_banned call in one backend, beyond building the address: ${per_call} µs (best of 3 × 1 M calls)"
awk -v p="$per_call" -v t="$t_expr" 'BEGIN { printf "that is %.1f %% of one round trip of the address baseline (%.1f µs per client at 2 clients)\n", p / (2e6 / t) * 100, 2e6 / t }'
echo "(pgbench -M prepared -c 2 -j 2 -T $SECONDS_PER, median of 3 interleaved rounds; logs in $OUT)"
