#!/usr/bin/env bash
# Ban checks while bans keep arriving (issue 13). Data: 1 000 000 address bans + 100 000 /24
# network bans, a third expired. Two clients run `pgbench -M prepared -c 2 -j 2` on one query
# while a third client writes new bans at a fixed rate (`pgbench -R`) into the table that query
# reads. Each query runs in ONE pgbench run together with the round trip that only builds the
# address (`-f expr.sql@1 -f <query>.sql@1`, interleaved at random, under that query's churn), and
# is compared with it by the mean latency of their transactions in pgbench's per-transaction log:
# both sides see the same churn on the same machine at the same moment (back-to-back runs on this
# VM differed by up to 12 % with nothing changed). With 2 clients on 2 CPUs, latency ratio =
# throughput ratio. The ratio is the median over the rounds (the script order alternates):
#   is_banned     sp_users.is_banned(<address>)            churn: sp_users.ban_ip on new addresses
#   ip4r GiST     iprange >>= on an ip4r copy of the bans  churn: INSERT into that copy
#   seed          EXISTS on the seed's text-keyed table    churn: upsert into that table
# A new connection's first is_banned builds the set (or, preloaded, finds the shared one): every
# measurement starts two new connections, so that cost is inside the figures.
# Then: the ban set's memory per backend, ban_ip against the hand-written upsert, the bulk import
# of a 100 000-line blocklist with sp_users.ban_ips, and an exactness check by a session that
# lived through all the churn.
#   bench/bans_churn.sh [seconds per measurement, default 8] [rates, default "0 10 100 1000"] [rounds, default 7]
# ip4r (postgresql-15-ip4r) is installed for the benchmark only; sp_users does not use it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-8}
RATES=${2:-"0 10 100 1000"}
ROUNDS=${3:-7}
DB=sp_users_churn
OUT=bench/out/bans_churn; mkdir -p "$OUT"
if ! [ -e "$(pg_config --sharedir)/extension/ip4r.control" ]; then
  apt-get install -y postgresql-15-ip4r >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y postgresql-15-ip4r >/dev/null; }
fi
scripts/pgdev start >/dev/null
eval "$(scripts/pgdev env)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
echo "loading 1.1 M bans ..."
psql -X -q -d $DB -v net_mask=24 -f bench/bans_load.sql >/dev/null
psql -X -q -d $DB <<'SQL'
CREATE EXTENSION ip4r;
CREATE TABLE public.ip4r_bans (r iprange NOT NULL, expires_at timestamptz);
INSERT INTO public.ip4r_bans SELECT ip_address::cidr::iprange, expires_at FROM sp_users.banned_ips;
CREATE INDEX ip4r_bans_r ON public.ip4r_bans USING gist (r);
VACUUM ANALYZE public.ip4r_bans;
SQL

ADDR="host('0.0.0.0'::inet + ((:r::bigint * 2654435761) % 4294967296))"
NEW="host('100.64.0.0'::inet + :n)" # new bans: 100.64.0.0/10, never in the loaded data
printf '\\set r random(1, 2000000)\nSELECT %s;\n' "$ADDR" > "$OUT/expr.sql"
printf '\\set r random(1, 2000000)\nSELECT sp_users.is_banned(%s);\n' "$ADDR" > "$OUT/is_banned.sql"
printf '\\set r random(1, 2000000)\nSELECT EXISTS(SELECT 1 FROM public.ip4r_bans WHERE r >>= (%s)::ipaddress AND (expires_at IS NULL OR expires_at > now()));\n' "$ADDR" > "$OUT/ip4r.sql"
printf '\\set r random(1, 2000000)\nSELECT EXISTS(SELECT 1 FROM public.seed_banned_ips WHERE ip_address = %s AND (expires_at IS NULL OR expires_at > now()));\n' "$ADDR" > "$OUT/seed.sql"
printf '\\set n random(1, 4000000)\nSELECT 1 FROM sp_users.ban_ip(%s, %s, interval %s, %s);\n' "$NEW" "'churn'" "'1 hour'" "'bench'" > "$OUT/churn_ban_ip.sql"
printf '\\set n random(1, 4000000)\nINSERT INTO public.ip4r_bans VALUES ((%s)::ipaddress::iprange, now() + interval %s);\n' "$NEW" "'1 hour'" > "$OUT/churn_ip4r.sql"
printf '\\set n random(1, 4000000)\nINSERT INTO public.seed_banned_ips VALUES (%s, now() + interval %s) ON CONFLICT (ip_address) DO UPDATE SET expires_at = EXCLUDED.expires_at;\n' "$NEW" "'1 hour'" > "$OUT/churn_seed.sql"
declare -A CHURN=([expr]=churn_ban_ip [is_banned]=churn_ban_ip [ip4r]=churn_ip4r [seed]=churn_seed)

# A session that lives through every measurement and checks exactness at the end.
exec 3> >(psql -X -q -At -d $DB > "$OUT/long_lived.out" 2>&1)
echo "SELECT count(*) FROM generate_series(1, 1000) i WHERE sp_users.is_banned(host('100.64.0.0'::inet + i * 3989));" >&3

mixed() { # query rate round -> "<address µs> <query µs> <address µs> <query µs> <query's slowest call, ms>":
          # means over the whole run, then without the run's first second (warm-up), then the slowest call
  local q=$1 rate=$2 round=$3 churn_pid= prefix="$OUT/$1.$2.$3" first=expr second=$1
  ((round % 2)) || { first=$q; second=expr; }
  if [ "$rate" -gt 0 ]; then
    pgbench -n -c 1 -j 1 -R "$rate" -T $((SECS + 3)) -f "$OUT/${CHURN[$q]}.sql" $DB > "$prefix.churn.log" 2>&1 &
    churn_pid=$!
    sleep 1
  fi
  rm -f "$prefix".[0-9]*
  pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -l --log-prefix="$prefix" -f "$OUT/$first.sql@1" -f "$OUT/$second.sql@1" $DB > "$prefix.log" 2>&1 || true
  [ -n "$churn_pid" ] && wait "$churn_pid"
  # A client that failed is a finding, not a slow run: named in the summary.
  if grep -q 'aborted\|ERROR' "$prefix.log" "$prefix.churn.log" 2>/dev/null; then
    echo "$q at $rate bans/s, round $round: $(grep -h 'aborted\|ERROR' "$prefix.log" "$prefix.churn.log" 2>/dev/null | head -1)" >> "$OUT/failed_runs"
  fi
  # Per-transaction log: client, transaction, latency (µs), script number, epoch s, µs.
  # The first second holds each new connection's first is_banned (the set's full build, or with
  # sp_users preloaded its catch-up from the shared base): reported apart, as the slowest call.
  local start
  start=$(head -qn1 "$prefix".[0-9]* 2>/dev/null | awk '{ s = $5 * 1e6 + $6 - $3; if (NR == 1 || s < m) m = s } END { printf "%.0f", m }')
  cat "$prefix".[0-9]* 2>/dev/null | awk -v first="$first" -v start="${start:-0}" '
    { n[$4]++; t[$4] += $3; if ($3 > mx[$4]) mx[$4] = $3
      if ($5 * 1e6 + $6 >= start + 1e6) { sn[$4]++; st[$4] += $3 } }
    END { if (!n[0] || !n[1] || !sn[0] || !sn[1]) { print "ERR ERR ERR ERR ERR"; exit }
          e = (first == "expr") ? 0 : 1; q = 1 - e
          printf "%.2f %.2f %.2f %.2f %.1f\n", t[e] / n[e], t[q] / n[q], st[e] / sn[e], st[q] / sn[q], mx[q] / 1000 }'
  rm -f "$prefix".[0-9]*
}
rm -f "$OUT/failed_runs"
median() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
churn_rate() { # achieved writes per second in the churn logs of one query and rate
  cat "$OUT"/$1.$2.*.churn.log 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tr '\n' ' '
}

declare -A L R RA M
echo "measuring: ${SECS}s per run, $ROUNDS rounds per rate, rates: $RATES"
for rate in $RATES; do
  for round in $(seq 1 "$ROUNDS"); do
    order="is_banned ip4r seed"; [ $((round % 2)) = 0 ] && order="seed ip4r is_banned"
    for q in $order; do
      read -r a b sa sb mx < <(mixed "$q" "$rate" "$round")
      L[expr.$q.$rate]+="$sa "; L[$q.$rate]+="$sb "; M[$q.$rate]+="$mx "
      R[$q.$rate]+="$(awk -v a="$sa" -v b="$sb" 'BEGIN { if (a == "ERR" || b == "ERR") print "ERR"; else printf "%.4f", a / b }') "
      RA[$q.$rate]+="$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "ERR" || b == "ERR") print "ERR"; else printf "%.4f", a / b }') "
    done
  done
  echo "  rate $rate done"
done

echo "SELECT count(*) FILTER (WHERE sp_users.is_banned(a) IS DISTINCT FROM EXISTS (SELECT 1 FROM sp_users.banned_ips b WHERE b.ip_address >>= a::inet AND (b.expires_at IS NULL OR b.expires_at > now()))) || ' disagreements on ' || count(*) || ' addresses (' || count(*) FILTER (WHERE sp_users.is_banned(a)) || ' banned)' FROM (SELECT host('100.64.0.0'::inet + i * 1337) AS a FROM generate_series(1, 3000) i UNION ALL SELECT host('0.0.0.0'::inet + ((i::bigint * 2654435761) % 4294967296)) FROM generate_series(1, 3000) i) s;" >&3
echo "SELECT 'refreshes ' || refreshes || ', networks re-read ' || changes_applied || ', full rebuilds ' || rebuilds FROM sp_users.ban_cache_info();" >&3
exec 3>&-
for _ in $(seq 1 120); do [ "$(wc -l < "$OUT/long_lived.out")" -ge 3 ] && break; sleep 1; done

printf '\n%-8s %-22s %8s %10s %10s %10s %10s %9s\n' "bans/s" query "µs/call" "address µs" "vs address" "whole run" "slowest ms" "writes/s"
for rate in $RATES; do
  for q in is_banned ip4r seed; do
    label=$(case $q in is_banned) echo "sp_users.is_banned";; ip4r) echo "ip4r GiST iprange >>=";; seed) echo "seed text-key EXISTS";; esac)
    w=$( [ "$rate" -gt 0 ] && median $(churn_rate $q "$rate") || echo 0)
    awk -v r="$rate" -v n="$label" -v t="$(median ${L[$q.$rate]})" -v e="$(median ${L[expr.$q.$rate]})" -v x="$(median ${R[$q.$rate]})" \
        -v xa="$(median ${RA[$q.$rate]})" -v m="$(median ${M[$q.$rate]})" -v w="$w" -v all="${R[$q.$rate]}" \
      'BEGIN { printf "%-8s %-22s %8.2f %10.2f %10.2f %10.2f %10.1f %9.0f   rounds: %s\n", r, n, t, e, x, xa, m, w, all }'
  done
done
echo "(vs address: the run without its first second; whole run: every call, the first calls of the two new"
echo " connections included; slowest ms: the slowest call of the query in a run, median over the rounds)"
echo
if [ -s "$OUT/failed_runs" ]; then echo "RUNS WITH FAILED CLIENTS ($(wc -l < "$OUT/failed_runs")):"; sed 's/^/  /' "$OUT/failed_runs"; else echo "no client failed in any run"; fi
echo "long-lived session after all the churn: $(sed -n 2p "$OUT/long_lived.out"); $(sed -n 3p "$OUT/long_lived.out")"

# Memory: one backend's ban set (per-backend sets: N connections hold N copies).
mem=$(psql -X -At -d $DB -c "SELECT sp_users.is_banned('1.1.1.1')" -c "SELECT entries || ' active entries, ' || pg_size_pretty(memory_bytes) || ' per backend (full build ' || round(last_rebuild_ms::numeric) || ' ms)' FROM sp_users.ban_cache_info()" | tail -1)
echo "ban set: $mem"

# Ingest: ban_ip against the hand-written upsert on the same table (bench/api/ban_ip.*.sql).
psql -X -q -d $DB -f bench/api/reset.sql >/dev/null 2>&1 || true
declare -A I
for round in $(seq 1 "$ROUNDS"); do
  for k in hand sp; do
    pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -f bench/api/ban_ip.$k.sql $DB > "$OUT/ingest.$k.$round.log" 2>&1
    I[$k]+="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/ingest.$k.$round.log") "
  done
done
echo
awk -v s="$(median ${I[sp]})" -v h="$(median ${I[hand]})" 'BEGIN { printf "ingest: sp_users.ban_ip %.0f tps, hand-written INSERT ... ON CONFLICT DO UPDATE %.0f tps: %.2fx\n", s, h, s / h }'

# Bulk import: a 100 000-line blocklist (90 000 addresses, 9 990 networks, 10 bad lines, comments)
# on top of the 1.1 M bans, against the hand-written set-based upsert of the same entries.
psql -X -q -At -d $DB <<'SQL' | sed 's/^/bulk: /'
\set QUIET on
CREATE TEMP TABLE list AS
SELECT string_agg(CASE WHEN i % 10000 = 0 THEN 'not-an-address-' || i
                       WHEN i % 10 = 0 THEN host(network(set_masklen('198.18.0.0'::inet + i * 256, 24))) || '/24 ; SBL' || i
                       ELSE host('100.128.0.0'::inet + i * 7) || '  # feed' END, E'\n' ORDER BY i) AS body
  FROM generate_series(1, 100000) i;
SELECT sp_users.is_banned('1.1.1.1');
CREATE TEMP TABLE t (what text, ms numeric);
DO $$
DECLARE t0 timestamptz; body text := (SELECT l.body FROM list l); rejected int;
BEGIN
  t0 := clock_timestamp();
  SELECT count(*) INTO rejected FROM sp_users.ban_ips(body, 'blocklist', interval '7 days', 'firehol');
  INSERT INTO t VALUES ('sp_users.ban_ips: 100 000 lines, ' || rejected || ' rejected', extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
SELECT what || ': ' || round(ms) || ' ms' FROM t;
SELECT 'is_banned right after, in a backend holding the set: ' || sp_users.is_banned('100.128.0.7') || ', ' ||
       (SELECT 'refreshes ' || refreshes || ', full rebuilds ' || rebuilds || ', last ' || round(last_rebuild_ms::numeric) || ' ms' FROM sp_users.ban_cache_info());
SQL

# Memory for 1 and 50 connections that have called is_banned, with and without sp_users preloaded:
# a cluster of its own (port 54819) with the same data, restarted between the two settings; and
# is_banned against the address under churn on the shared set.
MEMDIR=/tmp/sp_users-bench-mem
export PGDEV_DIR=$MEMDIR PGDEV_PORT=54819 PGDEV_PRELOAD=sp_users PGDEV_CRON_DB=postgres
export PGDEV_CONF="sp_users.shared_ban_set_size = '128MB'
max_connections = 70"
scripts/pgdev start --fresh >/dev/null
eval "$(scripts/pgdev env)"
psql -X -q -d postgres -c "CREATE DATABASE $DB"
psql -X -q -d $DB -v net_mask=24 -f bench/bans_load.sql >/dev/null
printf 'SELECT sp_users.is_banned(%s) \\gset\nINSERT INTO public.mem SELECT pg_backend_pid(), memory_bytes, shared_bytes FROM sp_users.ban_cache_info();\nSELECT pg_sleep(1);\n' "'1.1.1.1'" > "$OUT/mem.sql"
memory() { # label -> one line
  psql -X -q -d $DB -c "DROP TABLE IF EXISTS public.mem" -c "CREATE TABLE public.mem (pid int, memory_bytes bigint, shared_bytes bigint)"
  pgbench -n -c 1 -t 1 -f "$OUT/mem.sql" $DB >/dev/null 2>&1
  local one; one=$(psql -X -At -d $DB -c "SELECT pg_size_pretty(sum(memory_bytes) + max(shared_bytes)) FROM public.mem")
  psql -X -q -d $DB -c "TRUNCATE public.mem"
  pgbench -n -c 50 -j 2 -t 1 -f "$OUT/mem.sql" $DB >/dev/null 2>&1
  psql -X -At -d $DB -c "SELECT format('%-34s 1 connection: %s;  50 connections: %s (%s private in all, %s shared)', '$1', '$one', pg_size_pretty(sum(memory_bytes) + max(shared_bytes)), pg_size_pretty(sum(memory_bytes)), pg_size_pretty(max(shared_bytes))) FROM public.mem"
}
echo
echo "ban set memory (1.1 M bans, $(psql -X -At -d $DB -c "SELECT count(*) FROM sp_users.banned_ips WHERE expires_at IS NULL OR expires_at > now()") active):"
memory "preloaded (shared_ban_set_size 128MB)"
# shared mode under churn: address vs is_banned, rates 0 and 1000
declare -A SR SL SRA SM
for rate in 0 1000; do
  for round in $(seq 1 "$ROUNDS"); do
    read -r a b sa sb mx < <(mixed is_banned "$rate" "$round")
    SL[expr.$rate]+="$sa "; SL[is_banned.$rate]+="$sb "; SM[$rate]+="$mx "
    SR[$rate]+="$(awk -v a="$sa" -v b="$sb" 'BEGIN { if (a == "ERR" || b == "ERR") print "ERR"; else printf "%.4f", a / b }') "
    SRA[$rate]+="$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == "ERR" || b == "ERR") print "ERR"; else printf "%.4f", a / b }') "
  done
  awk -v r="$rate" -v a="$(median ${SL[expr.$rate]})" -v b="$(median ${SL[is_banned.$rate]})" -v x="$(median ${SR[$rate]})" -v xa="$(median ${SRA[$rate]})" \
      -v m="$(median ${SM[$rate]})" -v all="${SR[$rate]}" \
    'BEGIN { printf "  shared set, %4d bans/s: is_banned %.2f µs/call, address %.2f µs/call (medians): %.2fx, whole run %.2fx, slowest %.1f ms   rounds: %s\n", r, b, a, x, xa, m, all }'
done
scripts/pgdev stop >/dev/null
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_owner sed -i "s/^shared_preload_libraries = .*/shared_preload_libraries = ''/" "$MEMDIR/data/postgresql.conf"
scripts/pgdev start >/dev/null
memory "not preloaded (one set per backend)"
scripts/pgdev stop >/dev/null
rm -rf "$MEMDIR"
echo
echo "(per run: pgbench -n -M prepared -c 2 -j 2 -T $SECS -l -f expr.sql@1 -f <query>.sql@1, churn by a third client with pgbench -R; ratio = address µs / query µs, median over $ROUNDS rounds; logs in $OUT)"
