#!/usr/bin/env bash
# Statistics benchmark, one run: 1 000 000 users with a realistic mix; median of 5 timings each of
# (a) the seed's SQL (get_stats query + its three breakdown queries) and (b) sp_users.get_stats()
# + sp_users.count_with_breakdown(); statistics read time on a 16-shard counter layout vs the
# layout compact_user_counts() folds it to; then create_user throughput with the counter triggers on vs
# off (pgbench -c 2 -j 2, alternating, 10 s each, twice), and the same in one backend without round trips.
#   bench/stats.sh [users, default 1000000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
USERS=${1:-1000000}
DB=sp_users_bench_stats
OUT=bench/out/stats; mkdir -p "$OUT"
scripts/pgdev start >/dev/null
eval "$(scripts/pgdev env)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
echo "loading $USERS users ..."
psql -X -q -v ON_ERROR_STOP=1 -d $DB <<SQL
CREATE EXTENSION sp_users;
SELECT setseed(0.5);
INSERT INTO sp_users.users (name, email, status, roles, is_bot, created_at)
SELECT 'user' || i, 'user' || i || '@example.com',
       CASE WHEN r < 0.85 THEN 'active' WHEN r < 0.90 THEN 'inactive' WHEN r < 0.94 THEN 'suspended'
            WHEN r < 0.97 THEN 'pending' WHEN r < 0.99 THEN 'deleted' ELSE 'temporary' END::sp_users.user_status,
       CASE WHEN i % 100 = 0 THEN '{user,admin}' WHEN i % 5 = 0 THEN '{anonymous}' ELSE '{user}' END::sp_users.user_role[],
       i % 33 = 0,
       now() - random() * interval '1100 days'
  FROM (SELECT i, random() AS r FROM generate_series(1, $USERS) i) s;
VACUUM ANALYZE sp_users.users;
SELECT count(*) AS counter_rows FROM sp_users.user_counts;
SQL

psql -X -q -d $DB <<'SQL' 2>&1 | sed -n 's/^NOTICE:  //p' | tee "$OUT/timings.txt"
DO $$
DECLARE
    t timestamptz;
    seed_stats float8[] := '{}'; seed_breakdown float8[] := '{}'; ours_stats float8[] := '{}'; ours_breakdown float8[] := '{}';
    med float8[];
BEGIN
    FOR i IN 1..5 LOOP
        t := clock_timestamp();
        PERFORM count(*), count(*) FILTER (WHERE created_at > now() - interval '24 hours'),
                count(*) FILTER (WHERE created_at > now() - interval '7 days'), count(*) FILTER (WHERE created_at > now() - interval '30 days'),
                count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'suspended'),
                count(*) FILTER (WHERE 'admin' = ANY (roles)), count(*) FILTER (WHERE 'anonymous' = ANY (roles)),
                count(*) FILTER (WHERE is_bot), min(created_at), max(created_at)
           FROM sp_users.users WHERE status <> 'deleted';
        seed_stats := seed_stats || extract(epoch FROM clock_timestamp() - t) * 1000;
        t := clock_timestamp();
        PERFORM count(*) FROM sp_users.users WHERE status <> 'deleted';
        PERFORM status, count(*) FROM sp_users.users WHERE status <> 'deleted' GROUP BY status ORDER BY 2 DESC;
        PERFORM r, count(*) FROM sp_users.users, unnest(roles) r WHERE status <> 'deleted' GROUP BY r ORDER BY 2 DESC;
        seed_breakdown := seed_breakdown || extract(epoch FROM clock_timestamp() - t) * 1000;
        t := clock_timestamp();
        PERFORM * FROM sp_users.get_stats();
        ours_stats := ours_stats || extract(epoch FROM clock_timestamp() - t) * 1000;
        t := clock_timestamp();
        PERFORM * FROM sp_users.count_with_breakdown();
        ours_breakdown := ours_breakdown || extract(epoch FROM clock_timestamp() - t) * 1000;
    END LOOP;
    SELECT ARRAY[percentile_cont(0.5) WITHIN GROUP (ORDER BY a), percentile_cont(0.5) WITHIN GROUP (ORDER BY b),
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY c), percentile_cont(0.5) WITHIN GROUP (ORDER BY d)]
      INTO med FROM unnest(seed_stats, seed_breakdown, ours_stats, ours_breakdown) AS x(a, b, c, d);
    RAISE NOTICE '%', format('%-46s %10s', 'median of 5 runs', 'ms');
    RAISE NOTICE '%', format('%-46s %10s', '(a) seed get_stats SQL', round(med[1]::numeric, 2));
    RAISE NOTICE '%', format('%-46s %10s', '(a) seed breakdown SQL (3 queries)', round(med[2]::numeric, 2));
    RAISE NOTICE '%', format('%-46s %10s', '(b) sp_users.get_stats()', round(med[3]::numeric, 2));
    RAISE NOTICE '%', format('%-46s %10s', '(b) sp_users.count_with_breakdown()', round(med[4]::numeric, 2));
    RAISE NOTICE '%', format('%-46s %10s', 'speed-up (a) / (b)', round(((med[1] + med[2]) / (med[3] + med[4]))::numeric, 1) || 'x');
END $$;
SQL

# Counter layout: what 16 writing backends leave (each key split over 16 shards, keys with fewer
# users than shards leave zero counters), then compact_user_counts() folds it back to one row per
# key. Statistics read time measured on both layouts in this run.
psql -X -q -d $DB <<'SQL' 2>&1 | sed -n 's/^NOTICE:  //p' | tee -a "$OUT/timings.txt"
CREATE FUNCTION pg_temp.read_ms() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t timestamptz; ms float8[] := '{}';
BEGIN
    FOR i IN 1..5 LOOP
        t := clock_timestamp();
        PERFORM * FROM sp_users.get_stats();
        PERFORM * FROM sp_users.count_with_breakdown();
        ms := ms || extract(epoch FROM clock_timestamp() - t) * 1000;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY m) FROM unnest(ms) m);
END $$;
CREATE TEMP TABLE layout (name text, rows bigint, ms float8);
WITH c AS (DELETE FROM sp_users.user_counts RETURNING *)
INSERT INTO sp_users.user_counts (day, status, roles, is_bot, shard, n)
SELECT c.day, c.status, c.roles, c.is_bot, s, c.n / 16 + CASE WHEN s < c.n % 16 THEN 1 ELSE 0 END
  FROM c, generate_series(0, 15) s;
VACUUM sp_users.user_counts;
INSERT INTO layout SELECT 'sharded', (SELECT count(*) FROM sp_users.user_counts), pg_temp.read_ms();
CREATE FUNCTION pg_temp.compact_ms() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t timestamptz := clock_timestamp();
BEGIN PERFORM sp_users.compact_user_counts(); RETURN extract(epoch FROM clock_timestamp() - t) * 1000; END $$;
INSERT INTO layout SELECT 'compaction', NULL, pg_temp.compact_ms();
VACUUM sp_users.user_counts;
INSERT INTO layout SELECT 'folded', (SELECT count(*) FROM sp_users.user_counts), pg_temp.read_ms();
DO $$
DECLARE s layout; c layout; f layout;
BEGIN
    SELECT * INTO s FROM layout WHERE name = 'sharded';
    SELECT * INTO c FROM layout WHERE name = 'compaction';
    SELECT * INTO f FROM layout WHERE name = 'folded';
    RAISE NOTICE '%', format('%-46s %10s', 'get_stats + breakdown, 16 shards: ' || s.rows || ' rows', round(s.ms::numeric, 2));
    RAISE NOTICE '%', format('%-46s %10s', 'compact_user_counts() folding them', round(c.ms::numeric, 1));
    RAISE NOTICE '%', format('%-46s %10s', 'get_stats + breakdown, folded: ' || f.rows || ' rows', round(f.ms::numeric, 2));
    RAISE NOTICE '%', format('%-46s %10s', 'speed-up from folding', round((s.ms / f.ms)::numeric, 1) || 'x');
END $$;
SQL

psql -X -q -d $DB -c "CREATE SEQUENCE bench_seq"
printf "SELECT sp_users.create_user('n' || nextval('bench_seq'), 'n' || currval('bench_seq') || '@example.com');\n" > "$OUT/create_user.sql"
run() { pgbench -n -M prepared -c 2 -j 2 -T 10 -f "$OUT/create_user.sql" $DB 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'; }
triggers() { psql -X -q -d $DB -c "ALTER TABLE sp_users.users $1 TRIGGER users_count_insert"; }
on1=$(run); triggers DISABLE; off1=$(run); triggers ENABLE; on2=$(run); triggers DISABLE; off2=$(run); triggers ENABLE
psql -X -q -At -d $DB -c "SELECT sp_users.rebuild_user_counts()" >/dev/null
awk -v a="$on1" -v b="$on2" -v c="$off1" -v d="$off2" 'BEGIN {
    on = (a + b) / 2; off = (c + d) / 2;
    printf "%-46s %10.0f\n", "create_user tps, counters maintained", on;
    printf "%-46s %10.0f\n", "create_user tps, counter triggers disabled", off;
    printf "%-46s %9.1f%%\n", "throughput cost of the counters", (1 - on / off) * 100 }' | tee -a "$OUT/timings.txt"

# The same cost without client round trips or pgbench scheduling (which make the tps above swing
# by ±10 % between runs on a small VM): in one backend, rounds of 2 000 create_user calls with
# the counter trigger on and off, alternating, one transaction per round; medians per call.
psql -X -q -d $DB <<'SQL' 2>&1 | sed -n 's/^NOTICE:  //p' | tee -a "$OUT/timings.txt"
CREATE TEMP TABLE cu_times (variant text, us float8);
CREATE PROCEDURE pg_temp.cu_rounds(rounds int, per_round int) LANGUAGE plpgsql AS $$
DECLARE t timestamptz; tag text;
BEGIN
    FOR r IN 1..rounds LOOP
        FOREACH tag IN ARRAY ARRAY['on', 'off'] LOOP
            EXECUTE format('ALTER TABLE sp_users.users %s TRIGGER users_count_insert', CASE WHEN tag = 'on' THEN 'ENABLE' ELSE 'DISABLE' END);
            COMMIT;
            t := clock_timestamp();
            FOR i IN 1..per_round LOOP
                PERFORM sp_users.create_user('ip_' || tag || r || '_' || i, 'ip_' || tag || r || '_' || i || '@example.com');
            END LOOP;
            COMMIT;
            INSERT INTO cu_times VALUES (tag, extract(epoch FROM clock_timestamp() - t) * 1e6 / per_round);
            COMMIT;
        END LOOP;
    END LOOP;
    ALTER TABLE sp_users.users ENABLE TRIGGER users_count_insert;
    COMMIT;
END $$;
CALL pg_temp.cu_rounds(8, 2000);
DO $$
DECLARE t_on float8; t_off float8;
BEGIN
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY us) INTO t_on FROM cu_times WHERE variant = 'on';
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY us) INTO t_off FROM cu_times WHERE variant = 'off';
    RAISE NOTICE '%', format('%-46s %10s', 'create_user in-process, counters (us/call)', round(t_on::numeric, 1));
    RAISE NOTICE '%', format('%-46s %10s', 'create_user in-process, no counters (us/call)', round(t_off::numeric, 1));
    RAISE NOTICE '%', format('%-46s %9s%%', 'in-process cost of the counters', round(((t_on - t_off) / t_off * 100)::numeric, 1));
END $$;
SQL
