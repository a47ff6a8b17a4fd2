#!/usr/bin/env bash
# Differential test of incremental ban sets under churn (issue 13). Two writers change bans in a
# narrow address space for a while — bans and repeat bans of addresses and covering networks,
# unbans, expiries to the second, several changes in one transaction with a savepoint rolled back,
# ban_ips imports, cleanup_expired_bans, now and then a TRUNCATE — while one long-lived reader
# compares is_banned with plain SQL over the same space in REPEATABLE READ transactions (where
# both must see exactly the transaction's snapshot, whatever commits meanwhile). After the churn
# the same reader and a fresh backend compare in READ COMMITTED. The reader must have followed
# through the change log (refreshes), not by rebuilding on every change.
set -euo pipefail
DB=sp_users_churn_test
SECS=${BAN_CHURN_SECONDS:-15}
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
q() { psql -X -At -q -v ON_ERROR_STOP=1 -d $DB "$@"; }
W=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q >/dev/null <<'SQL'
CREATE EXTENSION sp_users;
-- The probes: every address of 10.0.0.0/22 and 2001:db8::/120, and some networks inside them.
CREATE TABLE public.probes AS
SELECT host('10.0.0.0'::inet + i) AS a FROM generate_series(0, 1023) i
UNION ALL SELECT host('2001:db8::'::inet + i) FROM generate_series(0, 255) i
UNION ALL SELECT '10.0.' || i || '.0/24' FROM generate_series(0, 3) i;
SQL

# Writers: a random address or a /26../30 network of 10.0.0.0/22, or an IPv6 one.
PICK='\set n random(0, 1023)
\set m random(26, 30)
\set v6 random(0, 4)'
ADDR="CASE WHEN :v6 = 0 THEN host('2001:db8::'::inet + (:n % 256)) ELSE host('10.0.0.0'::inet + :n) END"
NET="CASE WHEN :v6 = 0 THEN host(network(set_masklen('2001:db8::'::inet + (:n % 256), 124))) || '/124' ELSE host(network(set_masklen('10.0.0.0'::inet + :n, :m))) || '/' || :m END"
cat > "$W/ban.sql" <<EOF
$PICK
SELECT 1 FROM sp_users.ban_ip($ADDR, 'churn', make_interval(secs => 0.001 + random() * 6));
EOF
cat > "$W/ban_net.sql" <<EOF
$PICK
SELECT 1 FROM sp_users.ban_ip($NET, 'churn net', CASE WHEN random() < 0.2 THEN NULL ELSE make_interval(secs => 0.001 + random() * 6) END);
EOF
cat > "$W/unban.sql" <<EOF
$PICK
SELECT sp_users.unban_ip($ADDR);
SELECT sp_users.unban_ip($NET);
EOF
cat > "$W/expire.sql" <<EOF
UPDATE sp_users.banned_ips SET expires_at = now() + make_interval(secs => (random() * 4)::int - 2)
 WHERE ip_address = (SELECT ip_address FROM sp_users.banned_ips ORDER BY random() LIMIT 1);
EOF
cat > "$W/xact.sql" <<EOF
$PICK
BEGIN;
SELECT 1 FROM sp_users.ban_ip($ADDR, 'in xact', '1 hour');
SAVEPOINT s;
SELECT 1 FROM sp_users.ban_ip($NET, 'undone', NULL);
ROLLBACK TO s;
SELECT sp_users.unban_ip(host('10.0.0.0'::inet + ((:n * 7) % 1024)));
COMMIT;
EOF
cat > "$W/import.sql" <<EOF
$PICK
SELECT count(*) FROM sp_users.ban_ips(host('10.0.0.0'::inet + :n) || E'\n' || host('10.0.0.0'::inet + ((:n * 3) % 1024)) || E' # feed\nbad\n' || host(network(set_masklen('10.0.0.0'::inet + :n, 29))) || '/29', 'feed', '3 seconds');
EOF
cat > "$W/cleanup.sql" <<EOF
SELECT sp_users.cleanup_expired_bans();
EOF
cat > "$W/truncate.sql" <<EOF
TRUNCATE sp_users.banned_ips;
EOF

# The reader: REPEATABLE READ comparisons for as long as the writers run, in one backend.
COMPARE="SELECT count(*) FILTER (WHERE sp_users.is_banned(p.a) IS DISTINCT FROM EXISTS (
           SELECT 1 FROM sp_users.banned_ips b WHERE b.ip_address >>= p.a::inet AND (b.expires_at IS NULL OR b.expires_at > now())))
  FROM public.probes p;"
reader_script="$W/reader.sql"
{
  echo "\\set QUIET on"
  echo "SELECT sp_users.is_banned('10.0.0.1');"
  echo "SELECT now() + interval '$SECS seconds' AS stop_at \\gset"
  echo "CREATE TEMP TABLE rr (n int);"
  for _ in $(seq 1 2000); do
    echo "SELECT clock_timestamp() < :'stop_at' AS go \\gset"
    echo "\\if :go"
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ;"
    echo "INSERT INTO rr ${COMPARE%;};"
    echo "INSERT INTO rr ${COMPARE%;};"
    echo "COMMIT;"
    echo "\\endif"
  done
  echo "SELECT 'rr ' || count(*) || ' ' || coalesce(sum(n), 0) FROM rr;"
  echo "SELECT pg_sleep(1);" # the writers have stopped
  echo "SELECT 'rc ' || n FROM (${COMPARE%;}) x(n);"
  echo "SELECT 'cache ' || rebuilds || ' ' || refreshes || ' ' || changes_applied || ' ' || shared_bytes || ' ' || publishes FROM sp_users.ban_cache_info();"
} > "$reader_script"

q -f "$reader_script" > "$W/reader.out" 2>&1 &
reader=$!
pgbench -n -c 2 -j 2 -T "$SECS" -f "$W/ban.sql@400" -f "$W/ban_net.sql@150" -f "$W/unban.sql@150" -f "$W/expire.sql@100" \
        -f "$W/xact.sql@100" -f "$W/import.sql@50" -f "$W/cleanup.sql@30" -f "$W/truncate.sql@1" $DB > "$W/writers.log" 2>&1 ||
  { cat "$W/writers.log"; fail "the writers failed"; }
wait $reader || { cat "$W/reader.out"; fail "the reader failed"; }
writes=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$W/writers.log")

read -r _ rr_xacts rr_bad < <(grep '^rr ' "$W/reader.out")
[ "${rr_xacts:-0}" -ge 10 ] || { cat "$W/reader.out"; fail "the reader ran only ${rr_xacts:-0} comparisons"; }
[ "$rr_bad" = 0 ] || fail "REPEATABLE READ: is_banned disagreed with plain SQL $rr_bad times over $rr_xacts comparisons"
ok "REPEATABLE READ under churn: is_banned = plain SQL in $rr_xacts comparisons of $(q -c 'SELECT count(*) FROM public.probes') probes ($writes writer transactions)"
[ "$(sed -n 's/^rc //p' "$W/reader.out")" = 0 ] || fail "READ COMMITTED after the churn: the long-lived reader disagrees"
ok "READ COMMITTED after the churn: the long-lived reader agrees with plain SQL"
read -r _ rebuilds refreshes applied shared publishes < <(grep '^cache ' "$W/reader.out")
[ "$refreshes" -gt 0 ] && [ "$applied" -gt 0 ] || fail "the reader never refreshed incrementally (rebuilds $rebuilds, refreshes $refreshes)"
[ $((rebuilds + publishes)) -lt "$refreshes" ] || fail "the reader rebuilt $rebuilds (published $publishes) times for $refreshes refreshes"
mode="a private set"; [ "$shared" -gt 0 ] && mode="the shared set ($shared bytes)"
ok "the reader followed the log on $mode: $refreshes refreshes re-reading $applied networks, $rebuilds private rebuilds, $publishes shared bases published (first use and TRUNCATEs)"
[ "$(q -c "SELECT n FROM (${COMPARE%;}) x(n)")" = 0 ] || fail "a fresh backend disagrees"
ok "a fresh backend agrees"
[ "$(q -c "SELECT count(*) FROM sp_users.ban_changes WHERE ip_address IS NOT NULL")" -gt 0 ] || fail "the change log is empty"
ok "the change log holds the churn's networks"
psql -X -q -d postgres -c "DROP DATABASE $DB"
echo "ban_churn: $passed passed, 0 failed"
