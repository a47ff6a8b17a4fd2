#!/usr/bin/env bash
# pgbench: 4 clients create, update and delete users (alone and in multi-statement transactions)
# while compact_user_counts() runs among them. No client may fail (a deadlock or a serialization
# error would), and afterwards every statistic equals plain SQL and one compaction leaves one
# counter row per key.
set -euo pipefail
DB=sp_users_counters_hammer
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -d $DB -c "CREATE EXTENSION sp_users" -c "CREATE SEQUENCE public.hseq"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/create.sql" <<'SQL'
SELECT sp_users.create_user('h' || nextval('public.hseq'), 'h' || currval('public.hseq') || '@example.com');
SQL
cat > "$dir/change.sql" <<'SQL'
\set k random(1, 3000)
\set s random(1, 3)
\set b random(0, 1)
BEGIN;
SELECT sp_users.create_user('h' || nextval('public.hseq'), 'h' || currval('public.hseq') || '@example.com');
UPDATE sp_users.users SET status = (ARRAY['active', 'inactive', 'suspended'])[:s]::sp_users.user_status, is_bot = (:b = 1) WHERE name = 'h' || :k;
UPDATE sp_users.users SET roles = ARRAY['user', 'admin']::sp_users.user_role[] WHERE name = 'h' || (:k + 1);
COMMIT;
SQL
cat > "$dir/delete.sql" <<'SQL'
\set k random(1, 3000)
DELETE FROM sp_users.users WHERE name = 'h' || :k;
SQL
cat > "$dir/compact.sql" <<'SQL'
SELECT sp_users.compact_user_counts();
SQL
pgbench -n -c 4 -j 2 -T 8 -f "$dir/create.sql@6" -f "$dir/change.sql@3" -f "$dir/delete.sql@1" -f "$dir/compact.sql@1" $DB \
  > "$dir/log" 2>&1 || { cat "$dir/log"; echo "FAIL: pgbench"; exit 1; }
grep -E "^(number of transactions actually processed|number of failed)" "$dir/log"
grep -q "^number of failed transactions: 0 " "$dir/log" || { cat "$dir/log"; echo "FAIL: failed transactions"; exit 1; }
grep -q "aborted" "$dir/log" && { cat "$dir/log"; echo "FAIL: a client aborted"; exit 1; }

check() {
  psql -X -At -v ON_ERROR_STOP=1 -d $DB <<'SQL'
SELECT (SELECT row(s.total, s.created_24h, s.active, s.suspended, s.admins, s.anonymous, s.bots, s.oldest_user, s.newest_user)::text
          FROM sp_users.get_stats() s)
     = (SELECT row(count(*), count(*) FILTER (WHERE created_at > now() - interval '24 hours'),
                   count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'suspended'),
                   count(*) FILTER (WHERE 'admin' = ANY (roles)), count(*) FILTER (WHERE 'anonymous' = ANY (roles)),
                   count(*) FILTER (WHERE is_bot), min(created_at), max(created_at))::text
          FROM sp_users.users WHERE status <> 'deleted')
   AND (SELECT string_agg(status || '=' || count, ',' ORDER BY status) FROM sp_users.count_by_status())
     = (SELECT string_agg(status || '=' || n, ',' ORDER BY status)
          FROM (SELECT status, count(*) AS n FROM sp_users.users WHERE status <> 'deleted' GROUP BY status) x)
   AND (SELECT string_agg(role || '=' || count, ',' ORDER BY role) FROM sp_users.count_by_role())
     = (SELECT string_agg(r || '=' || n, ',' ORDER BY r)
          FROM (SELECT r, count(*) AS n FROM sp_users.users, unnest(roles) r WHERE status <> 'deleted' GROUP BY r) x);
SQL
}
[ "$(check)" = t ] || { echo "FAIL: statistics differ from SQL after the hammer"; exit 1; }
before=$(psql -X -At -d $DB -c "SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE shard <> -1) || ' in writer shards' FROM sp_users.user_counts")
psql -X -q -At -d $DB -c "SELECT sp_users.compact_user_counts()" >/dev/null
shape=$(psql -X -At -d $DB -c "SELECT count(*) FILTER (WHERE shard <> -1 OR n = 0) || ' ' || (SELECT count(*) FROM sp_users.user_count_deltas)
                                   || ' ' || (count(*) = count(DISTINCT (day, status, roles, is_bot))) FROM sp_users.user_counts")
[ "$shape" = "0 0 true" ] || { echo "FAIL: after a quiet compaction: $shape (sharded-or-zero rows, deltas, one row per key)"; exit 1; }
[ "$(check)" = t ] || { echo "FAIL: statistics differ from SQL after compaction"; exit 1; }
users=$(psql -X -At -d $DB -c "SELECT count(*) FROM sp_users.users")
psql -X -q -d postgres -c "DROP DATABASE $DB"
echo "counters_hammer: 3 passed, 0 failed ($users users; counters before the last compaction: $before)"
