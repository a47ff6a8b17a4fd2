#!/usr/bin/env bash
# Brute-force protection (issue 16): sp_users.record_failure against the hand-written upsert into a
# counter table that does the same bookkeeping (the sliding window of an address's failure times;
# an account's count with reset time and growing lockout), same table shape and indexes, in one
# run: `pgbench -n -M prepared -c 2 -j 2 -T <seconds>`, the two sides of a pair back to back (the
# order alternating), ratio = median of the per-round ratios. 1 000 000 addresses and 100 000
# users drawn at random, policy 'login' (10 failures / 10 minutes per address, 5 per account).
#   bench/brute_force.sh [seconds per run, default 5] [rounds, default 5]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECS=${1:-5}
ROUNDS=${2:-5}
DB=sp_users_bruteforce
OUT=bench/out/brute_force; mkdir -p "$OUT"
scripts/pgdev start >/dev/null
eval "$(scripts/pgdev env)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
CREATE EXTENSION sp_users;
INSERT INTO sp_users.users (name, email) SELECT 'u' || i, 'u' || i || '@example.com' FROM generate_series(1, 100000) i;
CREATE TABLE public.ids (n int PRIMARY KEY, id uuid NOT NULL);
INSERT INTO public.ids SELECT row_number() OVER (ORDER BY id), id FROM sp_users.users;
-- The hand-written side: the same tables, keys and indexes as sp_users' own.
CREATE TABLE public.hand_address_failures (kind text NOT NULL, ip_address inet NOT NULL, recent timestamptz[] NOT NULL, PRIMARY KEY (ip_address, kind));
CREATE TABLE public.hand_account_failures (user_id uuid NOT NULL REFERENCES sp_users.users (id) ON DELETE CASCADE, kind text NOT NULL,
    failures integer NOT NULL, last_failure_at timestamptz NOT NULL, lockouts integer NOT NULL DEFAULT 0, locked_until timestamptz,
    PRIMARY KEY (user_id, kind));
CREATE INDEX ON public.hand_account_failures (locked_until DESC) WHERE locked_until IS NOT NULL;
VACUUM ANALYZE;
SQL

ADDR="host('10.0.0.0'::inet + :r)"
printf '\\set r random(1, 1000000)\nSELECT outcome FROM sp_users.record_failure('"'login'"', %s);\n' "$ADDR" > "$OUT/address.sp.sql"
cat > "$OUT/address.hand.sql" <<SQL
\\set r random(1, 1000000)
INSERT INTO public.hand_address_failures AS a (kind, ip_address, recent) VALUES ('login', ($ADDR)::inet, ARRAY[now()])
ON CONFLICT (ip_address, kind) DO UPDATE
   SET recent = ARRAY(SELECT s.t FROM (SELECT t FROM unnest(a.recent) t WHERE t > now() - interval '10 minutes' ORDER BY t DESC LIMIT 9) s ORDER BY s.t) || now()
RETURNING cardinality(recent);
SQL
printf '\\set u random(1, 100000)\nSELECT outcome FROM sp_users.record_failure('"'login'"', NULL, (SELECT id FROM public.ids WHERE n = :u));\n' > "$OUT/account.sp.sql"
cat > "$OUT/account.hand.sql" <<'SQL'
\set u random(1, 100000)
INSERT INTO public.hand_account_failures AS a (user_id, kind, failures, last_failure_at)
SELECT id, 'login', 1, now() FROM public.ids WHERE n = :u
ON CONFLICT (user_id, kind) DO UPDATE
   SET failures = CASE WHEN a.last_failure_at < now() - interval '12 hours' THEN 1
                       WHEN a.failures + 1 >= 5 THEN 0 ELSE a.failures + 1 END,
       lockouts = a.lockouts + CASE WHEN a.last_failure_at >= now() - interval '12 hours' AND a.failures + 1 >= 5 THEN 1 ELSE 0 END,
       locked_until = CASE WHEN a.last_failure_at >= now() - interval '12 hours' AND a.failures + 1 >= 5
                           THEN greatest(a.locked_until, now() + least(interval '1 minute' * power(2, a.lockouts), interval '15 minutes'))
                           ELSE a.locked_until END,
       last_failure_at = now()
RETURNING failures, locked_until;
SQL

reset() { psql -X -q -d $DB -c "TRUNCATE sp_users.address_failures, sp_users.account_failures, public.hand_address_failures, public.hand_account_failures" \
            -c "DELETE FROM sp_users.banned_ips" >/dev/null; }
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$1"; }
median() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "# record_failure vs the hand-written upsert: ${SECS}s per run, $ROUNDS rounds"
echo "# command: bash bench/brute_force.sh $SECS $ROUNDS"
for w in address account; do
  S="" H="" R=""
  for round in $(seq 1 "$ROUNDS"); do
    order="sp hand"; [ $((round % 2)) = 0 ] && order="hand sp"
    for side in $order; do
      reset
      pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -f "$OUT/$w.$side.sql" $DB > "$OUT/$w.$side.$round.log" 2>&1 || { cat "$OUT/$w.$side.$round.log"; exit 1; }
    done
    s=$(tps "$OUT/$w.sp.$round.log"); h=$(tps "$OUT/$w.hand.$round.log")
    S+="$s " H+="$h " R+="$(awk -v a="$s" -v b="$h" 'BEGIN { printf "%.3f", a / b }') "
  done
  printf '%-8s record_failure %8.0f tps, hand-written upsert %8.0f tps: %.2fx (goal 0.8)   rounds: %s\n' \
    $w "$(median $S)" "$(median $H)" "$(median $R)" "$R"
done
reset
# What the runs did: bans and lockouts made by the sp_users side of the last round.
pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -f "$OUT/account.sp.sql" $DB >/dev/null 2>&1
psql -X -At -d $DB -c "SELECT '# last account run: ' || count(*) || ' accounts with failures, ' || count(*) FILTER (WHERE locked_until IS NOT NULL) || ' locked' FROM sp_users.account_failures"
