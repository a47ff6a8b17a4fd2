#!/usr/bin/env bash
# is_banned benchmark: pgbench -M prepared -c 2 -j 2, same duration for every query, one run.
# Prints tps per query and ratios to SELECT 1 and to the address-expression baseline.
#   bench/bans.sh [seconds per query, default 20]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER=${1:-20}
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
echo "running pgbench, ${SECONDS_PER}s per query ..."
t_select1=$(run select1 select1.sql)
t_expr=$(run expr expr.sql)
t_banned=$(run is_banned is_banned.sql)
t_seed=$(run seed seed.sql)
t_gist=$(run gist gist.sql)

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
echo "(pgbench -M prepared -c 2 -j 2 -T $SECONDS_PER; logs in $OUT)"
