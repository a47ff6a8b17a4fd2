#!/usr/bin/env bash
# Crash safety: kill -9 the postmaster while bans, merges, user creation and the clean-up are in
# flight, restart, and check: no half-merged pair, ban counts equal the committed ban ledger, no
# session or row pointing at a missing user, statistics equal plain SQL, is_banned equals SQL.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=$(pg_config --bindir)
DATA=${PGDEV_DIR:?run from scripts/test-all}/data
DB=sp_users_crash
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
fail() { echo "FAIL: $*"; exit 1; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d $DB <<'SQL' >/dev/null || fail "setup"
CREATE EXTENSION sp_users;
CREATE TABLE public.items (id bigserial PRIMARY KEY, user_id uuid NOT NULL REFERENCES sp_users.users (id));
CREATE TABLE public.ban_ledger (ip text NOT NULL);
CREATE TABLE public.pairs (n int PRIMARY KEY, src uuid, dst uuid);
INSERT INTO public.pairs SELECT i, (sp_users.create_user('src' || i, 'src' || i || '@example.com')).id,
                                   (sp_users.create_user('dst' || i, 'dst' || i || '@example.com')).id FROM generate_series(1, 300) i;
INSERT INTO public.items (user_id) SELECT x.u FROM (SELECT src AS u FROM public.pairs UNION ALL SELECT dst FROM public.pairs) x, generate_series(1, 40);
INSERT INTO sp_users.users (name, email, roles, created_at)
SELECT 'old' || i, 'old' || i || '@anonymous.local', '{anonymous}', now() - interval '90 days' FROM generate_series(1, 20000) i;
SQL
SQL_ITEMS_OK=$(psql -X -At -d $DB -c "SELECT count(*) FROM public.items")
[ "$SQL_ITEMS_OK" = 24000 ] || fail "setup items $SQL_ITEMS_OK"

# Writers: merges one pair per transaction; bans with a ledger row in the same transaction; user creation; the clean-up.
psql -X -q -d $DB -c "DO \$\$ DECLARE p record; BEGIN FOR p IN SELECT * FROM public.pairs ORDER BY n LOOP
    PERFORM sp_users.merge_users(p.src, p.dst); COMMIT; END LOOP; END \$\$" >/dev/null 2>&1 &
ban=$(mktemp); printf "\\\\set k random(1, 50)\nBEGIN;\nSELECT sp_users.ban_ip('192.0.2.' || :k, 'crash', '1 hour', escalate => true);\nINSERT INTO public.ban_ledger VALUES ('192.0.2.' || :k);\nSELECT sp_users.create_user('c' || txid_current() || '_' || :k, 'c' || txid_current() || '_' || :k || '@example.com');\nCOMMIT;\n" > "$ban"
pgbench -n -c 2 -j 2 -T 30 -f "$ban" $DB >/dev/null 2>&1 &
psql -X -q -d $DB -c "SET sp_users.cleanup_pause_factor = 0" -c "CALL sp_users.run_anonymous_cleanup(30, true, 500)" >/dev/null 2>&1 &
sleep 3

pid=$(head -1 "$DATA/postmaster.pid")
kill -9 "$pid" || fail "could not kill the postmaster"
echo "ok - killed the postmaster (pid $pid) with writes in flight"
wait 2>/dev/null
rm -f "$ban"
for i in $(seq 1 60); do
  as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/../server.log" -w -t 60 start >/dev/null 2>&1 && break
  sleep 1   # old backends still attached to shared memory: they exit once they see the postmaster gone
done
psql -X -At -d $DB -c "SELECT 1" >/dev/null || fail "server did not come back"
echo "ok - restarted after crash recovery"

q() { psql -X -At -d $DB -c "$1"; }
merged=$(q "SELECT count(*) FROM public.pairs p WHERE NOT EXISTS (SELECT 1 FROM sp_users.users WHERE id = p.src)")
half=$(q "SELECT count(*) FROM public.pairs p WHERE
            (EXISTS (SELECT 1 FROM sp_users.users WHERE id = p.src) AND (
                 (SELECT count(*) FROM public.items WHERE user_id = p.src) <> 40 OR (SELECT count(*) FROM public.items WHERE user_id = p.dst) <> 40))
         OR (NOT EXISTS (SELECT 1 FROM sp_users.users WHERE id = p.src) AND (SELECT count(*) FROM public.items WHERE user_id = p.dst) <> 80)")
[ "$half" = 0 ] || fail "$half half-merged pairs"
echo "ok - $merged pairs merged before the crash, none half-merged"
[ "$(q "SELECT count(*) FROM public.items")" = 24000 ] || fail "items lost"
bad_bans=$(q "SELECT count(*) FROM (SELECT l.ip, count(*) AS n FROM public.ban_ledger l GROUP BY l.ip) l
                FULL JOIN sp_users.banned_ips b ON b.ip_address = l.ip::inet WHERE b.ban_count IS DISTINCT FROM l.n")
[ "$bad_bans" = 0 ] || fail "$bad_bans addresses whose ban_count differs from the committed ledger"
echo "ok - every ban_count equals its committed ledger ($(q "SELECT count(*) FROM public.ban_ledger") bans)"
orphans=$(q "SELECT (SELECT count(*) FROM sp_users.user_sessions s WHERE s.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sp_users.users u WHERE u.id = s.user_id))
               + (SELECT count(*) FROM public.items i WHERE NOT EXISTS (SELECT 1 FROM sp_users.users u WHERE u.id = i.user_id))")
[ "$orphans" = 0 ] || fail "$orphans orphaned rows"
echo "ok - no orphaned rows"
stats_ok=$(q "SELECT (SELECT row(total, active, admins, anonymous, bots)::text FROM sp_users.get_stats())
                   = (SELECT row(count(*), count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE 'admin' = ANY (roles)),
                                 count(*) FILTER (WHERE 'anonymous' = ANY (roles)), count(*) FILTER (WHERE is_bot))::text
                        FROM sp_users.users WHERE status <> 'deleted')")
[ "$stats_ok" = t ] || fail "statistics differ from plain SQL after the crash"
echo "ok - statistics equal plain SQL after recovery"
banned_ok=$(q "SELECT bool_and(sp_users.is_banned('192.0.2.' || k) = EXISTS (SELECT 1 FROM sp_users.banned_ips b WHERE b.ip_address >>= ('192.0.2.' || k)::inet
                                                                             AND (b.expires_at IS NULL OR b.expires_at > now())))
                 FROM generate_series(1, 60) k")
[ "$banned_ok" = t ] || fail "is_banned differs from SQL after the crash"
echo "ok - is_banned equals SQL after recovery"
psql -X -q -d postgres -c "DROP DATABASE $DB"
echo "crash: 7 passed, 0 failed"
