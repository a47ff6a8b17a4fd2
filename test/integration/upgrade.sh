#!/usr/bin/env bash
# Upgrade 0.1.0 → current: install 0.1.0 as shipped, fill it the way a live 0.1.0 database looks
# (counter shards written by several backends, zero counters left by a clean-up, unfolded deltas),
# ALTER EXTENSION sp_users UPDATE, then: every row intact, every answer unchanged, the counters
# folded, the changed functions working; the catalog identical to a fresh install; and the whole
# pgTAP suite passing on an upgraded database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OLD=0.1.0
NEW=$(sed -n "s/^default_version = '\(.*\)'/\1/p" sp_users.control)
UP=sp_users_upgraded
FRESH=sp_users_fresh
TAP=sp_users_upgraded_tap
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$@"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $UP" -c "DROP DATABASE IF EXISTS $FRESH" -c "DROP DATABASE IF EXISTS $TAP" \
     -c "CREATE DATABASE $UP" -c "CREATE DATABASE $FRESH" -c "CREATE DATABASE $TAP"

q $UP -q -c "CREATE EXTENSION sp_users VERSION '$OLD'"
[ "$(q $UP -c "SELECT extversion FROM pg_extension WHERE extname = 'sp_users'")" = "$OLD" ] || fail "0.1.0 did not install"
ok "the frozen $OLD script installs with the current library"

q $UP -q >/dev/null <<'SQL'
CREATE TABLE public.audit (id serial PRIMARY KEY, actor text);
SELECT sp_users.register_user_reference('public.audit', 'actor');
CREATE TABLE public.orders (id serial PRIMARY KEY, user_id uuid REFERENCES sp_users.users(id));
SELECT sp_users.create_user('user' || i, 'user' || i || '@example.com', 'Full ' || i) FROM generate_series(1, 50) i;
SELECT sp_users.promote_to_admin('user1');
SELECT sp_users.bulk_delete(ARRAY(SELECT id FROM sp_users.users WHERE name IN ('user2', 'user3')));
SELECT sp_users.start_session(id, 'sess-' || name, '198.51.100.' || (row_number() OVER ()), 'agent') FROM sp_users.users WHERE status = 'active';
SELECT sp_users.end_session('sess-user4');
SELECT sp_users.ban_ip('203.0.113.' || i, 'reason ' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE interval '1 day' END, 'waf', 'fp', '/p', 'ua', 'sess-user5')
  FROM generate_series(1, 30) i;
SELECT sp_users.ban_ip('10.0.0.0/8', 'network', '2 days');
SELECT sp_users.ban_ip('2001:db8::/32', 'v6 network', NULL);
INSERT INTO public.audit (actor) SELECT id::text FROM sp_users.users LIMIT 10;
INSERT INTO public.orders (user_id) SELECT id FROM sp_users.users WHERE name LIKE 'user1%';
SELECT sp_users.merge_users((SELECT id FROM sp_users.users WHERE name = 'user11'), (SELECT id FROM sp_users.users WHERE name = 'user12'));
SELECT sp_users.create_anonymous('old-fp-' || i) FROM generate_series(1, 40) i;
UPDATE sp_users.users SET created_at = now() - interval '40 days' WHERE email LIKE 'old-fp-%';
SQL
q $UP -q -c "SET sp_users.cleanup_pause_factor = 0" -c "CALL sp_users.run_anonymous_cleanup(30, true)" 2>/dev/null
# Several backends write, as a pooled application does; each folds its deltas into its own shard
# after 512 of them (the 0.1.0 trigger, unchanged). A flag set and reset between two folds leaves
# a zero counter, as 0.1.0 did.
for b in 1 2 3 4 5 6; do
  q $UP -q -c "UPDATE sp_users.users SET is_bot = true WHERE name = 'user$((20 + b))'" \
           -c "UPDATE sp_users.users SET is_bot = false WHERE name = 'user$((20 + b))'" \
           -c "SELECT count(sp_users.create_user('w${b}_' || i, 'w${b}_' || i || '@example.com')) FROM generate_series(1, 520) i" >/dev/null
done
# And a few changes whose deltas are still unfolded when the upgrade runs.
q $UP -q -c "SELECT sp_users.create_anonymous('fresh-fp-' || i) FROM generate_series(1, 7) i" >/dev/null

shape() {
  q "$1" <<'SQL'
SELECT count(*) FILTER (WHERE shard <> -1), count(*) FILTER (WHERE n = 0),
       (SELECT count(*) FROM (SELECT 1 FROM sp_users.user_counts GROUP BY day, status, roles, is_bot HAVING count(*) > 1) k),
       (SELECT count(*) FROM sp_users.user_count_deltas), count(*)
  FROM sp_users.user_counts
SQL
}
IFS='|' read -r sharded zeros split deltas rows_before <<<"$(shape $UP)"
[ "$zeros" -gt 0 ] && [ "$split" -gt 0 ] && [ "$deltas" -gt 0 ] ||
  fail "the 0.1.0 database lacks the state the upgrade must handle (zero counters $zeros, split keys $split, deltas $deltas)"
ok "0.1.0 state: $rows_before counter rows, $split keys split over shards, $zeros zero counters, $deltas unfolded deltas"

snapshot() {
  q "$1" <<'SQL'
SELECT 'users ' || md5(string_agg(u::text, '|' ORDER BY u.id)) FROM sp_users.users u;
SELECT 'user_sessions ' || md5(string_agg(s::text, '|' ORDER BY s.session_id)) FROM sp_users.user_sessions s;
SELECT 'banned_ips ' || md5(string_agg(b::text, '|' ORDER BY b.ip_address)) FROM sp_users.banned_ips b;
SELECT 'job_runs ' || md5(string_agg(j::text, '|' ORDER BY j.id)) FROM sp_users.job_runs j;
SELECT 'user_references ' || md5(string_agg(r::text, '|' ORDER BY r.tbl::text)) FROM sp_users.user_references r;
SELECT 'audit ' || md5(string_agg(a::text, '|' ORDER BY a.id)) FROM public.audit a;
SELECT 'orders ' || md5(string_agg(o::text, '|' ORDER BY o.id)) FROM public.orders o;
SELECT 'job_runs_id_seq ' || last_value || ' ' || is_called FROM sp_users.job_runs_id_seq;
SELECT 'stats ' || row(s.*)::text FROM sp_users.get_stats() s;
SELECT 'breakdown ' || row(b.*)::text FROM sp_users.count_with_breakdown() b;
SELECT 'by_status ' || string_agg(s.status || '=' || s.count, ',') FROM sp_users.count_by_status() s;
SELECT 'by_role ' || string_agg(r.role || '=' || r.count, ',') FROM sp_users.count_by_role() r;
SELECT 'anonymous ' || sp_users.count_old_anonymous(30) || ' ' || sp_users.count_old_anonymous(1);
SELECT 'is_banned ' || sp_users.is_banned('203.0.113.3') || sp_users.is_banned('10.9.9.9') || sp_users.is_banned('2001:db8::5') || sp_users.is_banned('203.0.113.200');
SELECT 'ban ' || row(b.*)::text FROM sp_users.get_ban('203.0.113.3') b;
SELECT 'finders ' || (sp_users.find_by_email('USER5@example.com')).name || ' ' || (sp_users.find_by_name('user6')).email;
SELECT 'sessions ' || count(*) FROM sp_users.list_active_sessions((SELECT id FROM sp_users.users WHERE name = 'user7'));
SQL
}
before=$(snapshot $UP)
q $UP -q -c "ALTER EXTENSION sp_users UPDATE"
[ "$(q $UP -c "SELECT extversion FROM pg_extension WHERE extname = 'sp_users'")" = "$NEW" ] || fail "not at $NEW after ALTER EXTENSION UPDATE"
ok "ALTER EXTENSION sp_users UPDATE: $OLD -> $NEW"

after=$(snapshot $UP)
if [ "$before" != "$after" ]; then diff <(echo "$before") <(echo "$after") || true; fail "data or answers changed by the upgrade"; fi
ok "every row of every table, the sequence and every answer are unchanged ($(echo "$before" | wc -l) checks)"

IFS='|' read -r sharded zeros split deltas rows_after <<<"$(shape $UP)"
[ "$sharded" = 0 ] && [ "$zeros" = 0 ] && [ "$split" = 0 ] && [ "$deltas" = 0 ] ||
  fail "counters not folded by the upgrade (sharded $sharded, zeros $zeros, split $split, deltas $deltas)"
ok "the upgrade folded the counters: $rows_before rows -> $rows_after, one per key, no zero"

# The changed functions of the new version, on the upgraded data.
q $UP -q >/dev/null <<'SQL'
SELECT sp_users.create_user('after' || i, 'after' || i || '@example.com') FROM generate_series(1, 20) i;
SELECT sp_users.update_status(id, 'suspended') FROM sp_users.users WHERE name LIKE 'after1%';
SQL
q $UP -c "SELECT sp_users.compact_user_counts()" >/dev/null
expected_stats="SELECT row(count(*), count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'suspended'),
                           count(*) FILTER (WHERE 'anonymous' = ANY (roles)), min(created_at), max(created_at))::text
                  FROM sp_users.users WHERE status <> 'deleted'"
ours_stats="SELECT row(total, active, suspended, anonymous, oldest_user, newest_user)::text FROM sp_users.get_stats()"
[ "$(q $UP -c "$expected_stats")" = "$(q $UP -c "$ours_stats")" ] || fail "get_stats differs from SQL after compaction"
[ "$(shape $UP | cut -d'|' -f1-4)" = "0|0|0|0" ] || fail "compact_user_counts left shards, zeros or deltas: $(shape $UP)"
ok "compact_user_counts ($NEW) folds new writes; get_stats equals SQL"
q $UP -c "SELECT sp_users.rebuild_user_counts()" >/dev/null
[ "$(q $UP -c "$expected_stats")" = "$(q $UP -c "$ours_stats")" ] || fail "get_stats differs from SQL after rebuild"
[ "$(shape $UP | cut -d'|' -f1-3)" = "0|0|0" ] || fail "rebuild_user_counts left sharded rows: $(shape $UP)"
ok "rebuild_user_counts ($NEW) writes folded counters; get_stats equals SQL"
q $UP -q -c "SELECT sp_users.create_anonymous('older-fp-' || i) FROM generate_series(1, 9) i" \
         -c "UPDATE sp_users.users SET created_at = now() - interval '45 days' WHERE email LIKE 'older-fp-%'" >/dev/null
q $UP -q -c "SET sp_users.cleanup_pause_factor = 0" -c "CALL sp_users.run_anonymous_cleanup(30, true)" 2>/dev/null
[ "$(q $UP -c "SELECT count(*) FROM sp_users.users WHERE email LIKE 'older-fp-%'")" = 0 ] || fail "clean-up did not delete"
[ "$(q $UP -c "SELECT count(*) FROM sp_users.user_counts WHERE n = 0")" = 0 ] || fail "clean-up left zero counters"
[ "$(q $UP -c "$expected_stats")" = "$(q $UP -c "$ours_stats")" ] || fail "get_stats differs from SQL after the clean-up"
ok "run_anonymous_cleanup ($NEW) deletes and leaves no zero counter behind"

# The catalog of an upgraded database equals a fresh install's.
q $FRESH -q -c "CREATE EXTENSION sp_users"
fresh=$(q $FRESH -f test/integration/catalog_fingerprint.sql)
upgraded=$(q $UP -f test/integration/catalog_fingerprint.sql)
[ "$(echo "$fresh" | grep -c '^function ')" -gt 40 ] || fail "fingerprint found too few functions"
if [ "$fresh" != "$upgraded" ]; then diff <(echo "$fresh") <(echo "$upgraded") || true; fail "upgraded catalog differs from a fresh $NEW install"; fi
ok "upgraded catalog = fresh $NEW catalog ($(echo "$fresh" | grep -c '^member ') members, $(echo "$fresh" | grep -c '^function ') function definitions, $(echo "$fresh" | grep -c '^column ') columns, ACLs, comments)"

# Every function of the new version, through the whole pgTAP suite, on an upgraded database.
q $TAP -q -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION sp_users VERSION '$OLD'" -c "ALTER EXTENSION sp_users UPDATE"
pg_prove -d $TAP test/pgtap/*.sql >/tmp/sp_users_upgrade_tap.out 2>&1 || { cat /tmp/sp_users_upgrade_tap.out; fail "pgTAP on an upgraded database"; }
ok "pgTAP suite passes on a database upgraded from $OLD ($(grep -o 'Tests=[0-9]*' /tmp/sp_users_upgrade_tap.out))"

at_020() { # a database of its own with sp_users 0.2.0
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  q "$1" -q -c "CREATE EXTENSION sp_users VERSION '0.2.0'" >/dev/null
}

# 0.3.0's email rule on a 0.2.0 database that holds emails it now refuses: the rows are kept, the
# upgrade warns, the constraint checks new and changed rows only until the rows are fixed.
BAD=sp_users_upgraded_bad_emails
at_020 $BAD
q $BAD -q -c "SELECT count(*) FROM (SELECT sp_users.create_user('spaced', 'a b@example.com')) a" \
          -c "SELECT count(*) FROM (SELECT sp_users.create_user('twice', 'x@y@z')) b" \
          -c "SELECT count(*) FROM (SELECT sp_users.create_user('fine', 'fine@example.com')) c" >/dev/null
warning=$(q $BAD -c "ALTER EXTENSION sp_users UPDATE" 2>&1)
grep -q "2 users have an email that breaks the new rule" <<<"$warning" || fail "no warning about the 2 bad emails: $warning"
[ "$(q $BAD -c "SELECT count(*) FROM sp_users.users")" = 3 ] || fail "the upgrade lost users"
[ "$(q $BAD -c "SELECT convalidated FROM pg_constraint WHERE conname = 'users_email_check'")" = f ] || fail "constraint should be NOT VALID"
q $BAD -c "SELECT sp_users.create_user('new', 'new@@example.com')" >/dev/null 2>&1 && fail "a new bad email was accepted"
q $BAD -q -c "SELECT count(*) FROM (SELECT sp_users.update_email(id, 'spaced@example.com') FROM sp_users.users WHERE name = 'spaced') a" \
          -c "SELECT count(*) FROM (SELECT sp_users.update_email(id, 'twice@example.com') FROM sp_users.users WHERE name = 'twice') b" \
          -c "ALTER TABLE sp_users.users VALIDATE CONSTRAINT users_email_check" >/dev/null
[ "$(q $BAD -c "SELECT convalidated FROM pg_constraint WHERE conname = 'users_email_check'")" = t ] || fail "VALIDATE after the fix failed"
ok "0.2.0 rows breaking the 0.3.0 email rule are kept with a WARNING, new bad emails refused, VALIDATE once fixed"

# The upgrade rebuilds users_name_key so that an INSERT checks the email index first; a foreign key
# of the database's own on users(name) keeps it (with a WARNING): the upgrade must not fail, and
# create_user names the taken email first either way.
FK=sp_users_upgraded_name_fk
at_020 $FK
q $FK -q -c "SELECT count(*) FROM (SELECT sp_users.create_user('ada', 'ada@example.com')) a" \
         -c "CREATE TABLE public.profiles (username text REFERENCES sp_users.users (name) ON UPDATE CASCADE, bio text)" \
         -c "INSERT INTO public.profiles VALUES ('ada', 'hi')" >/dev/null
warning=$(q $FK -c "ALTER EXTENSION sp_users UPDATE" 2>&1) || fail "upgrade with a foreign key on users(name): $warning"
grep -q "users_name_key is kept" <<<"$warning" || fail "no warning about the kept name index: $warning"
[ "$(q $FK -c "SELECT extversion FROM pg_extension WHERE extname = 'sp_users'")" = "$NEW" ] || fail "not upgraded"
errs="$(q $FK -c "SELECT sp_users.create_user('ada', 'ADA@example.com')" 2>&1 || true) $(q $FK -c "SELECT sp_users.create_user('ada', 'other@example.com')" 2>&1 || true)"
errs=$(grep -o 'user already exists with [a-z]*: [^ ]*' <<<"$errs" | tr '\n' ' ' || true)
[ "$errs" = "user already exists with email: ada@example.com user already exists with name: ada " ] || fail "create_user after the upgrade: $errs"
ok "0.2.0 with a foreign key on users(name): the upgrade keeps the index with a WARNING; create_user names the email, then the name"
# Nor when the index is the table's replica identity or CLUSTER index (a rebuild would drop that).
RI=sp_users_upgraded_name_ri
at_020 $RI
q $RI -q -c "ALTER TABLE sp_users.users REPLICA IDENTITY USING INDEX users_name_key" -c "ALTER TABLE sp_users.users CLUSTER ON users_name_key" >/dev/null
warning=$(q $RI -c "ALTER EXTENSION sp_users UPDATE" 2>&1) || fail "upgrade with users_name_key as replica identity: $warning"
grep -q "users_name_key is kept" <<<"$warning" || fail "no warning about the kept name index: $warning"
[ "$(q $RI -c "SELECT i.indisreplident::text || i.indisclustered::text FROM pg_index i WHERE i.indexrelid = 'sp_users.users_name_key'::regclass")" = truetrue ] ||
  fail "the replica identity or CLUSTER mark was lost"
ok "0.2.0 with users_name_key as replica identity and CLUSTER index: kept (with a WARNING), both marks intact"

psql -X -q -d postgres -c "DROP DATABASE $UP" -c "DROP DATABASE $FRESH" -c "DROP DATABASE $TAP" -c "DROP DATABASE $BAD" -c "DROP DATABASE $FK" -c "DROP DATABASE $RI"
echo "upgrade: $passed passed, 0 failed"
