#!/usr/bin/env bash
# A backend killed in the middle of a large merge (pg_terminate_backend) leaves nothing moved.
set -euo pipefail
DB=sp_users_merge_kill
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d $DB <<'SQL'
CREATE EXTENSION sp_users;
CREATE TABLE public.events (id bigserial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id));
CREATE TABLE public.likes (id bigserial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id));
INSERT INTO sp_users.users (id, name, email) VALUES
    ('00000000-0000-0000-0000-0000000000a1', 'src', 'src@example.com'),
    ('00000000-0000-0000-0000-0000000000b2', 'dst', 'dst@example.com');
INSERT INTO public.events (user_id) SELECT '00000000-0000-0000-0000-0000000000a1' FROM generate_series(1, 600000);
INSERT INTO public.likes (user_id) SELECT '00000000-0000-0000-0000-0000000000a1' FROM generate_series(1, 600000);
SQL
psql -X -q -d $DB -c "SET application_name = 'sp_merge_victim'" \
     -c "SELECT sp_users.merge_users('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2')" \
     > /tmp/sp_merge_victim.log 2>&1 &
victim=$!
# Wait until the merge is moving rows (its backend holds the source's row lock), then kill it.
for i in $(seq 1 100); do
  busy=$(psql -X -At -d $DB -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sp_merge_victim' AND state = 'active' AND query LIKE '%merge_users%'")
  [ "$busy" = 1 ] && break
  sleep 0.05
done
sleep 0.3
killed=$(psql -X -At -d $DB -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sp_merge_victim'")
wait $victim || true
[ "$killed" = t ] || { echo "FAIL: could not terminate the merging backend"; exit 1; }
grep -q "terminating connection" /tmp/sp_merge_victim.log || { cat /tmp/sp_merge_victim.log; echo "FAIL: the merge was not interrupted (finished too fast?)"; exit 1; }
state=$(psql -X -At -d $DB -c "SELECT (SELECT count(*) FROM sp_users.users WHERE name = 'src') || ',' ||
                                      (SELECT count(*) FROM public.events WHERE user_id = '00000000-0000-0000-0000-0000000000a1') || ',' ||
                                      (SELECT count(*) FROM public.likes WHERE user_id = '00000000-0000-0000-0000-0000000000a1') || ',' ||
                                      (SELECT count(*) FROM public.events WHERE user_id = '00000000-0000-0000-0000-0000000000b2')")
[ "$state" = "1,600000,600000,0" ] || { echo "FAIL: after the kill: $state (want source present, 600000+600000 rows unmoved, 0 moved)"; exit 1; }
echo "ok - killed mid-merge: source still there, 1 200 000 rows unmoved, none moved"
# And the same merge then succeeds.
moved=$(psql -X -At -d $DB -c "SELECT total_rows FROM sp_users.merge_users('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2')")
[ "$moved" = 1200000 ] || { echo "FAIL: the retried merge moved $moved rows"; exit 1; }
echo "ok - the retried merge moves all 1 200 000 rows"
psql -X -q -d postgres -c "DROP DATABASE $DB"
echo "merge_kill: 2 passed, 0 failed"
