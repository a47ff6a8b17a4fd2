#!/usr/bin/env bash
# Nothing lost on dump/restore: fill every sp_users table, pg_dump, restore into a new database,
# compare every row of every table, the identity sequence, and what the functions answer.
set -euo pipefail
SRC=sp_users_dump_src
DST=sp_users_dump_dst
DUMP=$(mktemp)
trap 'rm -f "$DUMP"' EXIT
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST" -c "CREATE DATABASE $SRC"
psql -X -q -v ON_ERROR_STOP=1 -d $SRC <<'SQL' >/dev/null
CREATE EXTENSION sp_users;
CREATE TABLE public.audit (id serial PRIMARY KEY, actor text);
SELECT sp_users.register_user_reference('public.audit', 'actor');
SELECT sp_users.create_user('user' || i, 'user' || i || '@example.com', 'Full ' || i) FROM generate_series(1, 50) i;
SELECT sp_users.create_anonymous('fp-' || i) FROM generate_series(1, 20) i;
SELECT sp_users.promote_to_admin('user1');
SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('user2', 'user3')));
SELECT sp_users.start_session(id, 'sess-' || name, '198.51.100.' || (row_number() OVER ()), 'agent') FROM sp_users.users WHERE status <> 'deleted';
SELECT sp_users.end_session('sess-user4');
SELECT sp_users.ban_ip('203.0.113.' || i, 'reason ' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE interval '1 day' END, 'waf', 'fp', '/p', 'ua', 'sess-user5')
  FROM generate_series(1, 30) i;
SELECT sp_users.ban_ip('10.0.0.0/8', 'network', '2 days');
SELECT sp_users.ban_ip('2001:db8::/32', 'v6 network', NULL);
INSERT INTO public.audit (actor) SELECT id::text FROM sp_users.users LIMIT 10;
CALL sp_users.run_anonymous_cleanup(30, false);
CALL sp_users.run_anonymous_cleanup(30, true);
SQL
pg_dump -Fc -d $SRC -f "$DUMP"
createdb $DST
pg_restore -d $DST "$DUMP"

snapshot() {
  psql -X -At -d "$1" <<'SQL'
SELECT 'users ' || md5(string_agg(u::text, '|' ORDER BY u.id)) FROM sp_users.users u;
SELECT 'user_sessions ' || md5(string_agg(s::text, '|' ORDER BY s.session_id)) FROM sp_users.user_sessions s;
SELECT 'banned_ips ' || md5(string_agg(b::text, '|' ORDER BY b.ip_address)) FROM sp_users.banned_ips b;
SELECT 'job_runs ' || md5(string_agg(j::text, '|' ORDER BY j.id)) FROM sp_users.job_runs j;
SELECT 'user_references ' || md5(string_agg(r::text, '|' ORDER BY r.tbl::text)) FROM sp_users.user_references r;
SELECT 'job_runs_id_seq ' || last_value || ' ' || is_called FROM sp_users.job_runs_id_seq;
SELECT 'counts ' || count(*) FROM sp_users.users;
SELECT 'stats ' || row(s.*)::text FROM sp_users.get_stats() s;
SELECT 'breakdown ' || row(b.*)::text FROM sp_users.count_with_breakdown() b;
SELECT 'is_banned ' || sp_users.is_banned('203.0.113.3') || sp_users.is_banned('10.9.9.9') || sp_users.is_banned('2001:db8::5') || sp_users.is_banned('203.0.113.200');
SQL
}
a=$(snapshot $SRC); b=$(snapshot $DST)
echo "$a"
if [ "$a" != "$b" ]; then diff <(echo "$a") <(echo "$b"); echo "FAIL: restored database differs"; exit 1; fi
[ "$(psql -X -At -d $DST -c "SELECT count(*) FROM sp_users.banned_ips")" = 32 ] || { echo "FAIL: bans missing"; exit 1; }
next_src=$(psql -X -At -d $SRC -c "SELECT nextval('sp_users.job_runs_id_seq')"); next_dst=$(psql -X -At -d $DST -c "SELECT nextval('sp_users.job_runs_id_seq')")
[ "$next_src" = "$next_dst" ] || { echo "FAIL: identity sequence not restored ($next_src vs $next_dst)"; exit 1; }
psql -X -q -d postgres -c "DROP DATABASE $SRC" -c "DROP DATABASE $DST"
echo "dump_restore: 3 passed, 0 failed (every row of users, user_sessions, banned_ips, job_runs, user_references; sequence; functions)"
