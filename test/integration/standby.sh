#!/usr/bin/env bash
# Hot standby: a streaming replica of the test cluster (pg_basebackup, Unix socket, own port).
# On the standby, is_banned / get_ban / finders / listings work read-only; one long-lived standby
# backend sees a ban committed on the primary right after replay (its ban cache is invalidated by
# the replayed commit record), and an unban likewise; writes fail with the ordinary read-only error.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=$(pg_config --bindir)
PRIMARY_HOST=$PGHOST PRIMARY_PORT=$PGPORT
SB_DIR=${PGDEV_DIR:?run from scripts/test-all}/standby
SB_PORT=$((PRIMARY_PORT + 10))
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_standby() { [ -f "$SB_DIR/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$SB_DIR/data" -m immediate stop >/dev/null 2>&1 || true; }
trap stop_standby EXIT

DB=sp_users_standby
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d $DB <<'SQL' >/dev/null
CREATE EXTENSION sp_users;
SELECT sp_users.create_user('ada', 'ada@example.com');
SELECT sp_users.ban_ip('203.0.113.0/24', 'net', '1 day');
SELECT sp_users.ban_ip('192.0.2.1', 'one', NULL);
SQL

stop_standby; rm -rf "$SB_DIR"; mkdir -p "$SB_DIR/run"
[ "$(id -u)" = 0 ] && chown -R postgres: "$SB_DIR"
as_owner "$PGBIN/pg_basebackup" -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -D "$SB_DIR/data" -R -X stream -c fast
cat >> "$SB_DIR/data/postgresql.conf" <<CONF
port = $SB_PORT
unix_socket_directories = '$SB_DIR/run'
hot_standby = on
CONF
as_owner "$PGBIN/pg_ctl" -D "$SB_DIR/data" -l "$SB_DIR/server.log" -w -t 60 start >/dev/null
sb() { psql -X -At -h "$SB_DIR/run" -p "$SB_PORT" -d $DB "$@"; }

# Runs SQL on the primary, then waits until the standby shows a marker committed after it (commits
# replay in order, so the marker proves the SQL's commit was replayed too).
psql -X -q -d $DB -c "CREATE TABLE public.replay_marker (n bigint)"
cat > "$SB_DIR/on_primary" <<SH
#!/usr/bin/env bash
set -e
psql -X -q -At -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -d $DB -c "\$1" >/dev/null
marker=\$(psql -X -q -At -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -d $DB -c "INSERT INTO public.replay_marker SELECT (random() * 1e15)::bigint RETURNING n")
for i in \$(seq 1 100); do
  [ "\$(psql -X -At -h "$SB_DIR/run" -p "$SB_PORT" -d $DB -c "SELECT count(*) FROM public.replay_marker WHERE n = \$marker")" = 1 ] && exit 0
  sleep 0.1
done
echo "standby did not replay marker \$marker within 10 s" >&2; exit 1
SH
chmod +x "$SB_DIR/on_primary"
"$SB_DIR/on_primary" "SELECT 1"
[ "$(sb -c "SELECT pg_is_in_recovery()")" = t ] || { echo "FAIL: not a standby"; exit 1; }

# One standby session for the whole story, so its ban cache must follow replayed invalidations.
out=$(sb -v ON_ERROR_STOP=0 2>&1 <<SQL
SELECT 'before:' || sp_users.is_banned('203.0.113.50') || ',' || sp_users.is_banned('198.51.100.9') || ',' || sp_users.is_banned('192.0.2.1');
SELECT 'get_ban:' || ip_address FROM sp_users.get_ban('203.0.113.50');
SELECT 'finder:' || name FROM sp_users.find_by_email('ADA@example.com');
SELECT 'count:' || sp_users.count_users() || ',' || sp_users.count_active_bans() || ',' || (SELECT count(*) FROM sp_users.list_active_bans());
\! "$SB_DIR/on_primary" "SELECT sp_users.ban_ip('198.51.100.9', 'replicated', '1 hour')"
SELECT 'after_ban:' || sp_users.is_banned('198.51.100.9');
\! "$SB_DIR/on_primary" "SELECT sp_users.unban_ip('192.0.2.1')"
SELECT 'after_unban:' || sp_users.is_banned('192.0.2.1');
\! "$SB_DIR/on_primary" "BEGIN; SELECT sp_users.ban_ip('198.51.100.10', 'rolled back', '1 hour'); ROLLBACK"
SELECT 'rolled_back:' || sp_users.is_banned('198.51.100.10');
SELECT 'cache:' || rebuilds FROM sp_users.ban_cache_info();
\! "$SB_DIR/on_primary" "BEGIN; SELECT sp_users.ban_ip('198.51.100.20', 'a', '1 hour'); SELECT sp_users.ban_ip('198.51.100.21', 'b', '1 hour'); SAVEPOINT s; SELECT sp_users.ban_ip('198.51.100.22', 'undone', '1 hour'); ROLLBACK TO s; SELECT sp_users.unban_ip('198.51.100.9'); COMMIT"
SELECT 'one_xact:' || sp_users.is_banned('198.51.100.20') || ',' || sp_users.is_banned('198.51.100.21') || ',' || sp_users.is_banned('198.51.100.22') || ',' || sp_users.is_banned('198.51.100.9');
\! "$SB_DIR/on_primary" "SELECT sp_users.ban_ip('198.51.100.0/24', 'covering', '1 hour'); UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 minute' WHERE ip_address = '198.51.100.20'; SELECT sp_users.cleanup_expired_bans()"
SELECT 'covered_expired:' || sp_users.is_banned('198.51.100.99') || ',' || sp_users.is_banned('198.51.100.22') || ',' || (SELECT count(*) FROM sp_users.banned_ips WHERE ip_address = '198.51.100.20');
\! "$SB_DIR/on_primary" "SELECT count(*) FROM sp_users.ban_ips(E'192.0.2.200\\n192.0.2.0/30 # feed\\nbad-line', 'feed', '1 day')"
SELECT 'bulk:' || sp_users.is_banned('192.0.2.200') || ',' || sp_users.is_banned('192.0.2.3') || ',' || sp_users.is_banned('192.0.2.4');
SELECT 'incremental:' || rebuilds || ',' || (refreshes >= 4) FROM sp_users.ban_cache_info();
\! "$SB_DIR/on_primary" "TRUNCATE sp_users.banned_ips"
SELECT 'truncated:' || sp_users.is_banned('192.0.2.200') || ',' || sp_users.is_banned('203.0.113.50') || ',' || (SELECT rebuilds FROM sp_users.ban_cache_info());
\! "$SB_DIR/on_primary" "SELECT sp_users.ban_ip('203.0.113.50', 'after truncate', NULL)"
SELECT 'after_truncate:' || sp_users.is_banned('203.0.113.50');
SELECT sp_users.ban_ip('198.51.100.11', 'on standby', '1 hour');
SELECT sp_users.create_user('bob', 'bob@example.com');
SELECT 'still_serving:' || sp_users.is_banned('203.0.113.50');
SQL
)
echo "$out"
expect() { grep -qxF "$1" <<<"$out" || { echo "FAIL: expected line '$1'"; exit 1; }; echo "ok - $2"; }
expect "before:true,false,true" "is_banned on the standby (network, miss, permanent)"
expect "get_ban:203.0.113.0/24" "get_ban on the standby"
expect "finder:ada" "finders on the standby"
expect "count:1,2,2" "counts and listings on the standby"
expect "after_ban:true" "a ban committed on the primary is seen by the same standby backend after replay"
expect "after_unban:false" "an unban likewise"
expect "rolled_back:false" "a rolled-back ban never appears"
expect "one_xact:true,true,false,false" "several changes in one transaction, one rolled back to a savepoint, an unban"
expect "covered_expired:true,true,0" "a ban covering earlier ones, an expiry and cleanup_expired_bans"
expect "bulk:true,true,false" "a ban_ips import"
expect "incremental:1,true" "the standby's set followed all of it incrementally (no rebuild after the first)"
expect "truncated:false,false,2" "TRUNCATE on the primary: the standby set rebuilds once"
expect "after_truncate:true" "and follows incrementally again"
[ "$(echo "$out" | grep -c "cannot execute .* in a read-only transaction")" = 2 ] || { echo "FAIL: writes did not fail with the read-only error"; exit 1; }
echo "ok - writes fail with the ordinary read-only error"
expect "still_serving:true" "the standby backend keeps serving after the errors"
if grep -q "terminated by signal" "$SB_DIR/server.log"; then echo "FAIL: standby backend crashed"; exit 1; fi
psql -X -q -d postgres -c "DROP DATABASE $DB"
echo "standby: 15 passed, 0 failed"
