#!/usr/bin/env bash
# Logical replication (issue 15): two clusters of their own, a publication of sp_users' source
# tables on the first, CREATE EXTENSION + CREATE SUBSCRIPTION on the second. One long-lived
# subscriber session (it called is_banned before anything was replicated) follows the initial copy
# and streamed bans, unbans, bulk imports, expiry, TRUNCATE, users created / updated / soft- and
# hard-deleted / merged and sessions; after every step its is_banned answers and every statistic
# equal plain SQL. check_replication() reports a wrong setup on both sides. Then a blue-green
# switch-over: writes stop, the subscription is dropped, the subscriber becomes the primary, takes
# writes (statement triggers again) and schedules the clean-up — everything still exact.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }

DB=sp_users_logical
BASE=/tmp/sp_users-logical-$$
PUB_PORT=${LOGICAL_TEST_PORT:-54820}
SUB_PORT=$((PUB_PORT + 1))
pub_env() { PGDEV_DIR=$BASE/pub PGDEV_PORT=$PUB_PORT PGDEV_DB=$DB PGDEV_PRELOAD='' PGDEV_CRON_DB=postgres PGDEV_CONF="wal_level = logical" "$@"; }
sub_env() { PGDEV_DIR=$BASE/sub PGDEV_PORT=$SUB_PORT PGDEV_DB=$DB PGDEV_CRON_DB=$DB PGDEV_CONF="wal_level = logical
max_logical_replication_workers = 8" "$@"; }
cleanup() { pub_env "$ROOT/scripts/pgdev" stop >/dev/null 2>&1 || true; sub_env "$ROOT/scripts/pgdev" stop >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$BASE"; }
trap cleanup EXIT
pub_env "$ROOT/scripts/pgdev" start --fresh >/dev/null
sub_env "$ROOT/scripts/pgdev" start --fresh >/dev/null
export PGUSER=postgres
pub() { psql -X -At -q -v ON_ERROR_STOP=1 -h "$BASE/pub/run" -p $PUB_PORT -d $DB "$@"; }
sub() { psql -X -At -q -v ON_ERROR_STOP=1 -h "$BASE/sub/run" -p $SUB_PORT -d $DB "$@"; }

# The publisher, with data before the subscription exists (the initial copy carries it).
pub >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION sp_users;
SELECT count(*) FROM (SELECT sp_users.create_user('u' || i, 'u' || i || '@example.com') FROM generate_series(1, 150) i) x;
SELECT count(*) FROM (SELECT sp_users.create_anonymous('fp' || i) FROM generate_series(1, 30) i) x;
UPDATE sp_users.users SET is_bot = true WHERE name LIKE 'u1_';
UPDATE sp_users.users SET created_at = now() - (abs(hashtext(name)) % 90) * interval '1 day' - interval '1 minute';
SELECT sp_users.bulk_update_status(ARRAY(SELECT id FROM sp_users.users WHERE name LIKE 'u2_'), 'suspended');
SELECT sp_users.assign_role(id, 'admin') FROM sp_users.users WHERE name IN ('u3', 'u4');
SELECT count(*) FROM (SELECT sp_users.start_session(id, 's-' || name, '10.1.0.' || (row_number() OVER ())::int % 250) FROM sp_users.users WHERE name LIKE 'u5%') x;
SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host('10.9.0.0'::inet + i * 7), chr(10)) FROM generate_series(1, 200) i), 'feed', '1 day');
SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host('172.20.0.0'::inet + i * 256) || '/24', chr(10)) FROM generate_series(1, 20) i), 'nets', NULL);
SELECT sp_users.ban_ip('192.0.2.1', 'expired', '1 hour');
SELECT count(*) FROM generate_series(1, 5) i, LATERAL sp_users.record_failure('login', '10.77.0.' || i, (SELECT id FROM sp_users.users WHERE name = 'u7' AND i > 0)) f;
UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 minute' WHERE ip_address = '192.0.2.1';
CREATE TABLE public.replay_marker (n bigint PRIMARY KEY);
CREATE PUBLICATION sp_users_pub FOR TABLE sp_users.users, sp_users.user_sessions, sp_users.banned_ips,
    sp_users.account_failures, sp_users.address_failures, public.replay_marker;
SQL

# The subscriber: the extension, public.mismatches() (compares with plain SQL), the marker table.
sub >/dev/null <<'SQL'
CREATE EXTENSION sp_users;
CREATE EXTENSION pg_cron;
CREATE TABLE public.replay_marker (n bigint PRIMARY KEY);
SQL
sub -f "$ROOT/test/integration/exactness.sql"
out=$(sub -c "SELECT side || '|' || item || '|' || ok FROM sp_users.check_replication()")
[ "$out" = "node|logical replication|true" ] || fail "check_replication before subscribing: $out"
sub -c "SELECT sp_users.schedule_anonymous_cleanup()" >/dev/null

# Runs SQL on the publisher, then waits until the subscriber shows a marker committed after it
# (the apply worker commits in the publisher's commit order).
cat > "$BASE/on_pub" <<SH
#!/usr/bin/env bash
set -e
psql -X -q -At -v ON_ERROR_STOP=1 -h "$BASE/pub/run" -p $PUB_PORT -d $DB -c "\$1" >/dev/null
marker=\$(psql -X -q -At -h "$BASE/pub/run" -p $PUB_PORT -d $DB -c "INSERT INTO public.replay_marker SELECT (random() * 1e15)::bigint RETURNING n")
for i in \$(seq 1 300); do
  [ "\$(psql -X -At -h "$BASE/sub/run" -p $SUB_PORT -d \${SUBDB:-$DB} -c "SELECT count(*) FROM public.replay_marker WHERE n = \$marker")" = 1 ] && exit 0
  sleep 0.1
done
echo "subscriber did not apply marker \$marker within 30 s" >&2; exit 1
SH
chmod +x "$BASE/on_pub"

# One subscriber session for the whole story: its ban set and statistics must follow every
# applied change without reconnecting.
out=$(sub -v ON_ERROR_STOP=0 2>&1 <<SQL
SELECT 'before:' || sp_users.is_banned('198.51.100.7') || ',' || sp_users.is_banned('10.9.0.7') || ',' || (SELECT total FROM sp_users.get_stats());
CREATE SUBSCRIPTION sp_users_sub CONNECTION 'host=$BASE/pub/run port=$PUB_PORT dbname=$DB user=postgres' PUBLICATION sp_users_pub;
\! for i in \$(seq 1 300); do [ "\$(psql -X -At -h $BASE/sub/run -p $SUB_PORT -d $DB -c "SELECT bool_and(ok) FROM sp_users.check_replication() WHERE item LIKE '%initial copy'")" = t ] && exit 0; sleep 0.1; done; exit 1
\! "$BASE/on_pub" "SELECT 1"
SELECT 'copied:' || public.mismatches() || ',' || sp_users.is_banned('10.9.0.7') || ',' || (SELECT total FROM sp_users.get_stats()) || ',' || (SELECT rebuilds FROM sp_users.ban_cache_info());
SELECT 'check_cron:' || string_agg(item || '=' || ok, ';' ORDER BY item) FROM sp_users.check_replication() WHERE NOT ok;
SELECT sp_users.schedule_anonymous_cleanup() > 0;
SELECT sp_users.unschedule_anonymous_cleanup();
SELECT 'check_sub:' || bool_and(ok) || ',' || count(*) FROM sp_users.check_replication();
\! "$BASE/on_pub" "SELECT sp_users.ban_ip('198.51.100.0/24', 'streamed', '1 hour')"
SELECT 'ban:' || sp_users.is_banned('198.51.100.7') || ',' || public.mismatches();
\! "$BASE/on_pub" "SELECT sp_users.unban_ip('10.9.0.7'); SELECT sp_users.ban_ip('10.9.0.14', 'again', '1 day', escalate => true)"
SELECT 'unban:' || sp_users.is_banned('10.9.0.7') || ',' || public.mismatches();
\! "$BASE/on_pub" "SELECT count(*) FROM sp_users.ban_ips((SELECT string_agg(host('203.0.113.0'::inet + i), chr(10)) FROM generate_series(1, 100) i), 'bulk', '2 hours'); SELECT sp_users.cleanup_expired_bans()"
SELECT 'bulk:' || sp_users.is_banned('203.0.113.9') || ',' || public.mismatches() || ',' || (SELECT count(*) FROM sp_users.banned_ips WHERE ip_address = '192.0.2.1');
\! "$BASE/on_pub" "BEGIN; SELECT sp_users.ban_ip('198.51.100.200', 'rolled back', '1 hour'); ROLLBACK"
\! "$BASE/on_pub" "SELECT count(*) FROM (SELECT sp_users.create_user('n' || i, 'n' || i || '@example.com') FROM generate_series(1, 5) i) x; SELECT sp_users.update_status(id, 'suspended') FROM sp_users.users WHERE name = 'n1'; SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('n2', 'u60'))); SELECT sp_users.delete_user(id) FROM sp_users.users WHERE name = 'n3'; SELECT sp_users.assign_role(id, 'admin') FROM sp_users.users WHERE name = 'n4'"
SELECT 'users:' || public.mismatches() || ',' || (SELECT total FROM sp_users.get_stats()) || ',' || (SELECT count(*) FROM sp_users.users WHERE name = 'n3');
\! "$BASE/on_pub" "SELECT sessions FROM sp_users.merge_users((SELECT id FROM sp_users.users WHERE name = 'u50'), (SELECT id FROM sp_users.users WHERE name = 'u51')); SELECT sessions FROM sp_users.promote_anonymous((SELECT id FROM sp_users.users WHERE 'anonymous' = ANY (roles) ORDER BY name LIMIT 1), (SELECT id FROM sp_users.users WHERE name = 'u52')); SELECT sp_users.end_session('s-u53'); SELECT sp_users.start_session((SELECT id FROM sp_users.users WHERE name = 'u54'), 's-new')"
SELECT 'locked:' || (sp_users.account_locked_until((SELECT id FROM sp_users.users WHERE name = 'u7')) IS NOT NULL) || ',' || (SELECT count(*) FROM sp_users.address_failures);
SELECT 'merged:' || public.mismatches() || ',' || (SELECT count(*) FROM sp_users.users WHERE name = 'u50') || ',' || (SELECT count(*) FROM sp_users.user_sessions s JOIN sp_users.users u ON u.id = s.user_id WHERE u.name = 'u51') || ',' || sp_users.session_exists('s-u53') || ',' || sp_users.session_exists('s-new');
\! "$BASE/on_pub" "TRUNCATE sp_users.banned_ips"
SELECT 'truncated_bans:' || sp_users.is_banned('198.51.100.7') || ',' || sp_users.is_banned('172.20.1.1') || ',' || public.mismatches();
\! "$BASE/on_pub" "SELECT sp_users.ban_ip('198.51.100.0/24', 'again', NULL); TRUNCATE sp_users.users CASCADE"
SELECT 'truncated_users:' || sp_users.is_banned('198.51.100.7') || ',' || (SELECT total FROM sp_users.get_stats()) || ',' || public.mismatches();
\! "$BASE/on_pub" "SELECT count(*) FROM (SELECT sp_users.create_user('b' || i, 'b' || i || '@example.com') FROM generate_series(1, 40) i) x; SELECT count(*) FROM (SELECT sp_users.create_anonymous('afp' || i) FROM generate_series(1, 10) i) x; UPDATE sp_users.users SET created_at = now() - interval '40 days' WHERE 'anonymous' = ANY (roles)"
SELECT 'refilled:' || public.mismatches() || ',' || (SELECT total FROM sp_users.get_stats());
SQL
)
grep -q ERROR <<<"$out" && fail "subscriber session: $out"
expect() { grep -qx "$1" <<<"$out" || fail "expected '$1' in: $out"; }
expect "before:false,false,0"
expect "copied:exact,true,180,1"
ok "initial copy: the long-lived session's ban set and every statistic equal plain SQL (180 users)"
expect "check_cron:scheduled clean-up=false"
expect "check_sub:true,7"
grep -q "WARNING:  the clean-up is scheduled (pg_cron job [0-9]*) in a database that receives sp_users.users from a logical subscription" <<<"$out" || fail "no WARNING when scheduling on a subscriber: $out"
ok "the clean-up scheduled on a subscriber: a WARNING when scheduling, flagged by check_replication; unscheduled, every check passes"
expect "ban:true,exact"
expect "unban:false,exact"
expect "bulk:true,exact,0"
ok "streamed ban, unban, escalation, bulk import and expiry reach the long-lived session's ban set"
expect "users:exact,182,0"
expect "merged:exact,0,2,false,true"
expect "locked:true,5"
ok "streamed sign-ups, status changes, soft and hard deletes, a merge, a promotion, sessions and a lockout: statistics exact"
expect "truncated_bans:false,false,exact"
expect "truncated_users:true,0,exact"
expect "refilled:exact,50"
ok "replicated TRUNCATE of banned_ips and users: ban set rebuilt, counters emptied, then refilled exactly"
echo "$out" | sed 's/^/# /' | grep -E "^# (before|copied|ban|merged):"

# A publication that carries a derived table, or misses a source table, is reported.
out=$(pub -c "CREATE PUBLICATION wrong_pub FOR TABLE sp_users.users, sp_users.user_counts WITH (publish = 'insert, update')" -c "SELECT item || '=' || ok || CASE WHEN detail LIKE '%subscribers ignore%' THEN ' (ignored)' ELSE '' END FROM sp_users.check_replication() WHERE item LIKE 'publication wrong_pub%' ORDER BY item" 2>/dev/null | tr '\n' ' ')
[ "$out" = "publication wrong_pub: derived tables=true (ignored) publication wrong_pub: node configuration=true publication wrong_pub: operations=false publication wrong_pub: source tables=false " ] || fail "publisher check: $out"
[ "$(pub -c "SELECT bool_and(ok) FROM sp_users.check_replication() WHERE item LIKE 'publication sp_users_pub%' OR item = 'wal_level'")" = t ] || fail "the right publication is not reported right"
pub -c "DROP PUBLICATION wrong_pub"
ok "check_replication on the publisher: a missing source table and missing operations fail, a published derived table is reported as ignored"

# A publication FOR ALL TABLES carries the derived tables too. The publisher keeps working (its
# prunes, folds and unbans delete from tables without a key: replica identity FULL), and a
# subscriber of it skips the derived rows and derives its own: statistics not doubled, the initial
# copy finishes (ban_changes_horizon's single row does not collide), ban answers exact.
pub -c "CREATE PUBLICATION all_pub FOR ALL TABLES" 2>/dev/null
pub >/dev/null <<'SQL'
SELECT count(*) FROM (SELECT sp_users.create_user('w' || i, 'w' || i || '@example.com') FROM generate_series(1, 600) i) x;
SELECT sp_users.ban_ip('198.18.0.0/24', 'all', '1 hour');
SELECT sp_users.ban_ip('198.18.2.0/24', 'all', '1 hour');
SELECT sp_users.unban_ip('198.18.2.0/24');
SELECT sp_users.compact_user_counts();
SQL
ok "a FOR ALL TABLES publication: the publisher's bans, unbans, sign-ups with counter folds and compaction still work"
sub -d postgres -c "CREATE DATABASE all_db"
psql -X -q -h "$BASE/sub/run" -p $SUB_PORT -d all_db -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<SQL
CREATE EXTENSION sp_users;
CREATE TABLE public.replay_marker (n bigint PRIMARY KEY);
\i $ROOT/test/integration/exactness.sql
CREATE SUBSCRIPTION all_sub CONNECTION 'host=$BASE/pub/run port=$PUB_PORT dbname=$DB user=postgres' PUBLICATION all_pub;
SQL
alldb() { psql -X -At -q -v ON_ERROR_STOP=1 -h "$BASE/sub/run" -p $SUB_PORT -d all_db "$@"; }
for i in $(seq 1 300); do [ "$(alldb -c "SELECT bool_and(ok) FROM sp_users.check_replication() WHERE item LIKE '%initial copy'")" = t ] && break; sleep 0.2; done
SUBDB=all_db "$BASE/on_pub" "SELECT sp_users.ban_ip('198.18.1.0/24', 'all', '1 hour'); SELECT sp_users.create_user('x1', 'x1@example.com')"
out=$(alldb -c "SELECT public.mismatches() || ',' || (SELECT total FROM sp_users.get_stats()) || ',' || sp_users.is_banned('198.18.1.5') || ',' || (SELECT count(*) FROM sp_users.ban_changes_horizon)" \
            -c "SELECT string_agg(item || '=' || ok, ';' ORDER BY item) FROM sp_users.check_replication() WHERE NOT ok OR item LIKE '%derived%'")
expected_total=$(pub -c "SELECT count(*) FROM sp_users.users WHERE status <> 'deleted'")
[ "$out" = "exact,$expected_total,true,1
subscription all_sub: derived tables=true" ] || fail "FOR ALL TABLES subscriber: $out (publisher has $expected_total users)"
alldb -c "DROP SUBSCRIPTION all_sub"
pub -c "DROP PUBLICATION all_pub"
ok "a FOR ALL TABLES subscriber: initial copy finishes, derived rows skipped, statistics ($expected_total users) and bans exact"

# Blue-green switch-over: writes stop on the old primary, the subscriber has applied everything,
# the subscription goes, the subscriber takes writes and the clean-up.
out=$(sub -v ON_ERROR_STOP=0 2>&1 <<SQL
SELECT 'pre_switch:' || sp_users.is_banned('198.51.100.7') || ',' || public.mismatches();
\! "$BASE/on_pub" "SELECT 1"
DROP SUBSCRIPTION sp_users_sub;
SELECT 'switched:' || string_agg(side || '/' || ok, ';') FROM sp_users.check_replication();
SELECT 'write:' || (sp_users.create_user('after', 'after@example.com')).name;
SELECT sp_users.ban_ip('233.252.0.0/24', 'new primary', '1 hour') IS NOT NULL;
SELECT sp_users.unban_ip('198.51.100.0/24');
SELECT sp_users.merge_users((SELECT id FROM sp_users.users WHERE name = 'b1'), (SELECT id FROM sp_users.users WHERE name = 'b2')) IS NOT NULL;
SELECT 'after_writes:' || sp_users.is_banned('233.252.0.9') || ',' || sp_users.is_banned('198.51.100.7') || ',' || public.mismatches() || ',' || (SELECT total FROM sp_users.get_stats());
SELECT 'scheduled:' || (sp_users.schedule_anonymous_cleanup('*/5 * * * *', 30) > 0);
CALL sp_users.run_anonymous_cleanup(30);
SELECT 'cleaned:' || public.mismatches() || ',' || (SELECT anonymous FROM sp_users.get_stats()) || ',' || (SELECT total FROM sp_users.get_stats());
SELECT 'status:' || status FROM sp_users.cleanup_status() WHERE source = 'schedule';
SQL
)
grep -q ERROR <<<"$out" && fail "switch-over: $out"
expect "pre_switch:true,exact"
expect "switched:node/true"
expect "write:after"
expect "after_writes:true,false,exact,651"
ok "switch-over: the former subscriber takes sign-ups, bans, unbans and merges with exact statistics and ban set"
expect "scheduled:true"
expect "cleaned:exact,0,641"
expect "status:active"
ok "switch-over: the clean-up is scheduled on the new primary and a run leaves every statistic exact"
echo "# switch-over: $(echo "$out" | grep -E '^(after_writes|cleaned):' | tr '\n' ' ')"
echo "logical replication: $passed checks passed"
