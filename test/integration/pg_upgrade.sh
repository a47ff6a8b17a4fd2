#!/usr/bin/env bash
# pg_upgrade of a cluster holding sp_users data (issue 15). This machine has only PostgreSQL 15,
# so the upgrade is 15 -> 15, but the procedure is the one a major upgrade runs: a new cluster made
# by initdb, both stopped, pg_upgrade (schema by pg_dump --binary-upgrade, data files copied), the
# new cluster started. Afterwards the users, sessions, bans, counters (with unfolded deltas) and the
# pg_cron schedule are there; statistics and ban answers equal plain SQL in a fresh and in a
# long-lived session, and a ban made after the upgrade reaches that session incrementally (the ban
# change log's transaction ids stay comparable: pg_upgrade carries the xid epoch over).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=$(pg_config --bindir)
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

DB=sp_users_upgrade
BASE=/tmp/sp_users-pgupgrade-$$
OLD_PORT=${PGUPGRADE_TEST_PORT:-54823}
NEW_PORT=$((OLD_PORT + 1))
old_env() { PGDEV_DIR=$BASE/old PGDEV_PORT=$OLD_PORT PGDEV_DB=$DB PGDEV_CRON_DB=$DB "$@"; }
# The new cluster is made empty (pg_upgrade refuses user data in it): its pg_cron points at
# postgres until the upgrade has brought the database over.
new_env() { PGDEV_DIR=$BASE/new PGDEV_PORT=$NEW_PORT PGDEV_DB=postgres PGDEV_CRON_DB=${NEW_CRON_DB:-postgres} "$@"; }
cleanup() { old_env "$ROOT/scripts/pgdev" stop >/dev/null 2>&1 || true; new_env "$ROOT/scripts/pgdev" stop >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$BASE"; }
trap cleanup EXIT
mkdir -p "$BASE"; [ "$(id -u)" = 0 ] && chown postgres: "$BASE"
old_env "$ROOT/scripts/pgdev" start --fresh >/dev/null
new_env "$ROOT/scripts/pgdev" start --fresh >/dev/null
new_env "$ROOT/scripts/pgdev" stop >/dev/null
export PGUSER=postgres
old() { psql -X -At -q -v ON_ERROR_STOP=1 -h "$BASE/old/run" -p $OLD_PORT -d $DB "$@"; }
new() { psql -X -At -q -v ON_ERROR_STOP=1 -h "$BASE/new/run" -p $NEW_PORT -d $DB "$@"; }

old >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION sp_users;
CREATE EXTENSION pg_cron;
SELECT count(*) FROM (SELECT sp_users.create_user('u' || i, 'u' || i || '@example.com') FROM generate_series(1, 300) i) x;
SELECT count(*) FROM (SELECT sp_users.create_anonymous('fp' || i) FROM generate_series(1, 40) i) x;
UPDATE sp_users.users SET created_at = now() - (abs(hashtext(name)) % 60) * interval '1 day' - interval '1 minute', is_bot = name LIKE 'u1_';
SELECT sp_users.bulk_update_status(ARRAY(SELECT id FROM sp_users.users WHERE name LIKE 'u2%'), 'suspended');
SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name LIKE 'u3_'));
SELECT count(*) FROM (SELECT sp_users.start_session(id, 's-' || name) FROM sp_users.users WHERE name LIKE 'u4%') x;
SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host('10.9.0.0'::inet + i * 7), chr(10)) FROM generate_series(1, 500) i), 'feed', '1 day');
SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host('172.20.0.0'::inet + i * 256) || '/24', chr(10)) FROM generate_series(1, 30) i), 'nets', NULL);
SELECT sp_users.unban_ip('10.9.0.7');
SELECT sp_users.schedule_anonymous_cleanup('17 3 * * *', 45);
SQL
old -f "$ROOT/test/integration/exactness.sql"
[ "$(old -c "SELECT public.mismatches()")" = exact ] || fail "not exact before the upgrade"
deltas=$(old -c "SELECT count(*) FROM sp_users.user_count_deltas")
before=$(old -c "SELECT row(s.*)::text FROM sp_users.get_stats() s" -c "SELECT count(*) FROM sp_users.banned_ips" -c "SELECT count(*) FROM sp_users.user_sessions" -c "SELECT count(*) FROM sp_users.users" | tr '\n' ' ')
[ "$deltas" -gt 0 ] || fail "no unfolded counter deltas to carry over"

old_env "$ROOT/scripts/pgdev" stop >/dev/null
( cd "$BASE" && as_owner "$PGBIN/pg_upgrade" -b "$PGBIN" -B "$PGBIN" -d "$BASE/old/data" -D "$BASE/new/data" \
    -p $OLD_PORT -P $NEW_PORT -s "$BASE" -U postgres > "$BASE/pg_upgrade.log" 2>&1 ) || { tail -30 "$BASE/pg_upgrade.log"; fail "pg_upgrade"; }
ok "pg_upgrade of a cluster holding sp_users (and pg_cron) data"

NEW_CRON_DB=$DB new_env "$ROOT/scripts/pgdev" start >/dev/null
after=$(new -c "SELECT row(s.*)::text FROM sp_users.get_stats() s" -c "SELECT count(*) FROM sp_users.banned_ips" -c "SELECT count(*) FROM sp_users.user_sessions" -c "SELECT count(*) FROM sp_users.users" | tr '\n' ' ')
[ "$after" = "$before" ] || fail "data differ: before $before, after $after"
[ "$(new -c "SELECT count(*) FROM sp_users.user_count_deltas")" = "$deltas" ] || fail "counter deltas not carried over"
[ "$(new -c "SELECT public.mismatches()")" = exact ] || fail "not exact after the upgrade: $(new -c "SELECT public.mismatches()")"
ok "after the upgrade: users, sessions, bans and counters as before; statistics and ban answers equal plain SQL"

out=$(new -v ON_ERROR_STOP=0 2>&1 <<SQL
SELECT 'fresh:' || sp_users.is_banned('10.9.0.14') || ',' || sp_users.is_banned('10.9.0.7') || ',' || sp_users.is_banned('172.20.3.3');
\! psql -X -q -h "$BASE/new/run" -p $NEW_PORT -d $DB -c "SELECT sp_users.ban_ip('198.51.100.0/24', 'after upgrade', '1 hour')" -c "SELECT sp_users.unban_ip('10.9.0.14')" -c "SELECT sp_users.create_user('after', 'after@example.com')" >/dev/null
SELECT 'long_lived:' || sp_users.is_banned('198.51.100.7') || ',' || sp_users.is_banned('10.9.0.14') || ',' || public.mismatches();
SELECT 'cache:' || rebuilds || ',' || (changes_applied >= 2) FROM sp_users.ban_cache_info();
SELECT 'compacted:' || (sp_users.compact_user_counts() >= 0) || ',' || public.mismatches();
SELECT 'schedule:' || status || ',' || (message LIKE '%17 3 * * *%') FROM sp_users.cleanup_status() WHERE source = 'schedule';
SQL
)
grep -q ERROR <<<"$out" && fail "after the upgrade: $out"
expect() { grep -qx "$1" <<<"$out" || fail "expected '$1' in: $out"; }
expect "fresh:true,false,true"
expect "long_lived:true,false,exact"
expect "cache:1,true"
expect "compacted:true,exact"
ok "a long-lived session on the upgraded cluster follows new bans incrementally (one build, then the change log)"
expect "schedule:active,true"
ok "the pg_cron schedule of the clean-up survives the upgrade"
echo "pg_upgrade: $passed checks passed"
