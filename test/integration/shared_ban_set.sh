#!/usr/bin/env bash
# The shared ban set (issue 13): a cluster of its own with sp_users in shared_preload_libraries.
# Every backend of the database reads one base in shared memory plus a private overlay of the
# changes since it: memory per connection stays small whatever the ban list's size, answers stay
# exact (the churn differential and the parallel-plan test run again on this cluster), a set too
# large for sp_users.shared_ban_set_size falls back to per-backend sets with a WARNING, and
# DROP / CREATE EXTENSION in one backend still answers right.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }

export PGDEV_DIR=/tmp/sp_users-shared-$$ PGDEV_PORT=${SHARED_TEST_PORT:-54818} PGDEV_PRELOAD=sp_users PGDEV_CRON_DB=postgres
export PGDEV_CONF="sp_users.shared_ban_set_size = '32MB'
max_connections = 60"
trap '"$ROOT/scripts/pgdev" stop >/dev/null 2>&1 || true; rm -rf "$PGDEV_DIR"' EXIT
"$ROOT/scripts/pgdev" start --fresh >/dev/null
eval "$("$ROOT/scripts/pgdev" env)"
DB=sp_users_shared
q() { psql -X -At -q -v ON_ERROR_STOP=1 -d $DB "$@"; }

[ "$(psql -X -At -d postgres -c 'SHOW sp_users.shared_ban_set_size')" = 32MB ] || fail "the setting is not there"
psql -X -q -d postgres -c "CREATE DATABASE $DB"
q >/dev/null <<'SQL'
CREATE EXTENSION sp_users;
SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host('10.0.0.0'::inet + i * 3), chr(10)) FROM generate_series(1, 50000) i), 'load', '1 day');
SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host(network(set_masklen('172.16.0.0'::inet + i * 256, 24))) || '/24', chr(10)) FROM generate_series(1, 5000) i), 'nets', NULL);
SQL

# Twenty connections hold it at once: one base, twenty small overlays.
cat > "$PGDEV_DIR/mem.sql" <<'SQL'
SELECT (sp_users.is_banned('10.0.0.3') AND sp_users.is_banned('172.16.1.9') AND NOT sp_users.is_banned('10.0.0.4'))::int AS right \gset
INSERT INTO public.mem SELECT pg_backend_pid(), :right = 1, entries, memory_bytes, shared_bytes FROM sp_users.ban_cache_info();
SELECT pg_sleep(0.5);
SQL
q -c "CREATE TABLE public.mem (pid int, answers_right boolean, entries bigint, memory_bytes bigint, shared_bytes bigint)"
pgbench -n -c 20 -j 2 -t 1 -f "$PGDEV_DIR/mem.sql" $DB > "$PGDEV_DIR/mem.log" 2>&1 || { cat "$PGDEV_DIR/mem.log"; fail "pgbench"; }
read -r n right maxmem shared_distinct shared entries < <(q -F ' ' -c "SELECT count(*), bool_and(answers_right), max(memory_bytes), count(DISTINCT shared_bytes), max(shared_bytes), max(entries) FROM public.mem")
[ "$n" = 20 ] && [ "$right" = t ] || fail "$n connections, answers right: $right"
[ "$shared_distinct" = 1 ] && [ "$shared" -gt 1000000 ] || fail "the connections do not share one base ($shared_distinct distinct, $shared bytes)"
[ "$maxmem" -lt 65536 ] || fail "a connection holds $maxmem bytes of its own"
ok "20 connections share one base of $shared bytes for $entries bans; each holds at most $maxmem bytes of its own"

# A change reaches every connection through its overlay; no connection rebuilds.
out=$(q <<'SQL'
SELECT sp_users.is_banned('192.0.2.1');
\! psql -X -q -d sp_users_shared -c "SELECT 1 FROM sp_users.ban_ip('192.0.2.0/24', 'x', '1 hour')" >/dev/null
SELECT sp_users.is_banned('192.0.2.1');
\! psql -X -q -d sp_users_shared -c "SELECT sp_users.unban_ip('10.0.0.3')" >/dev/null
SELECT sp_users.is_banned('10.0.0.3');
SELECT rebuilds || ' ' || (shared_bytes > 0) || ' ' || (memory_bytes < 65536) FROM sp_users.ban_cache_info();
SQL
)
[ "$(echo $out)" = "f t f 0 true true" ] || fail "a long-lived connection on the shared base: $out"
ok "a long-lived connection sees a ban and an unban through its overlay, without a rebuild"

# DROP / CREATE EXTENSION in the same backend: the old base is not used for the new table.
out=$(q <<'SQL'
SELECT sp_users.is_banned('10.0.0.6');
DROP EXTENSION sp_users;
CREATE EXTENSION sp_users;
SELECT sp_users.is_banned('10.0.0.6');
SELECT 1 FROM sp_users.ban_ip('10.0.0.6', 'again', '1 hour');
SELECT sp_users.is_banned('10.0.0.6');
SQL
)
[ "$(echo $out)" = "t f 1 t" ] || fail "DROP / CREATE EXTENSION: $out"
ok "DROP / CREATE EXTENSION in one backend: a new base for the new table"

# Exactness under churn and in parallel plans, on the shared set (the set serves one database: the
# first to use it, until it is dropped).
psql -X -q -d postgres -c "DROP DATABASE $DB"
bash "$ROOT/test/integration/ban_churn.sh" | tee "$PGDEV_DIR/churn.out" | sed 's/^/    /'
grep -q "on the shared set" "$PGDEV_DIR/churn.out" || fail "the churn test did not run on the shared set"
ok "the churn differential passes on the shared set"
bash "$ROOT/test/integration/parallel.sh" | sed 's/^/    /'
ok "the parallel-plan test passes with sp_users preloaded"

# Too small: a WARNING, per-backend sets, still exact.
"$ROOT/scripts/pgdev" stop >/dev/null
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_owner sed -i "s/^sp_users.shared_ban_set_size = .*/sp_users.shared_ban_set_size = '1MB'/" "$PGDEV_DIR/data/postgresql.conf"
"$ROOT/scripts/pgdev" start >/dev/null
psql -X -q -d postgres -c "CREATE DATABASE $DB"
q -c "CREATE EXTENSION sp_users"
warn=$(q -c "SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host('10.1.0.0'::inet + i), chr(10)) FROM generate_series(1, 60000) i), 'big', '1 day')" \
         -c "SELECT sp_users.is_banned('10.1.0.9')" 2>&1 | grep -c "shared ban set needs" || true)
[ "$warn" -ge 1 ] || fail "no WARNING when the set does not fit"
out=$(q -c "SELECT sp_users.is_banned('10.1.0.9')::text || '|' || sp_users.is_banned('10.2.0.9')" \
        -c "SELECT shared_bytes || '|' || (rebuilds > 0) FROM sp_users.ban_cache_info()" | tr '\n' '|')
[ "$out" = "true|false|0|true|" ] || fail "too small: $out"
ok "a set too large for sp_users.shared_ban_set_size: a WARNING, then per-backend sets, still exact"

if grep -q "terminated by signal" "$PGDEV_DIR/server.log"; then fail "a backend crashed"; fi
echo "shared_ban_set: $passed passed, 0 failed"
