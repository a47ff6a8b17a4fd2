#!/usr/bin/env bash
# Merge benchmark, one run: a user with 100 000 sessions and 100 000 rows in each of three FK
# tables, merged by sp_users.merge_users vs the seed's plain sequence of UPDATEs + DELETE on an
# identical copy of the data. 3 rounds (order alternating), median time of each, and the ratio.
#   bench/merge.sh [rows per table, default 100000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROWS=${1:-100000}
DB=sp_users_bench_merge
scripts/pgdev start >/dev/null
eval "$(scripts/pgdev env)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d $DB <<SQL 2>&1 | sed -n 's/^NOTICE:  //p'
CREATE EXTENSION sp_users;
CREATE SCHEMA app;
CREATE TABLE app.orders   (id bigserial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id), total int);
CREATE TABLE app.events   (id bigserial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id) ON DELETE CASCADE, kind text);
CREATE TABLE app.comments (id bigserial PRIMARY KEY, user_id uuid REFERENCES sp_users.users (id) ON DELETE SET NULL, body text);
CREATE INDEX ON app.orders (user_id);
CREATE INDEX ON app.events (user_id);
CREATE INDEX ON app.comments (user_id);

CREATE FUNCTION pg_temp.fill(src uuid) RETURNS void LANGUAGE sql AS \$\$
    INSERT INTO sp_users.user_sessions (session_id, user_id) SELECT src || '-' || i, src FROM generate_series(1, $ROWS) i;
    INSERT INTO app.orders (user_id, total) SELECT src, i FROM generate_series(1, $ROWS) i;
    INSERT INTO app.events (user_id, kind) SELECT src, 'click' FROM generate_series(1, $ROWS) i;
    INSERT INTO app.comments (user_id, body) SELECT src, 'hello' FROM generate_series(1, $ROWS) i;
\$\$;

DO \$\$
DECLARE
    s1 uuid; d1 uuid; s2 uuid; d2 uuid; t timestamptz;
    plain float8[] := '{}'; ours float8[] := '{}';
    r record;
BEGIN
    FOR round IN 1..3 LOOP
        s1 := (sp_users.create_user('ms' || round, 'ms' || round || '@example.com')).id;
        d1 := (sp_users.create_user('md' || round, 'md' || round || '@example.com')).id;
        s2 := (sp_users.create_user('ps' || round, 'ps' || round || '@example.com')).id;
        d2 := (sp_users.create_user('pd' || round, 'pd' || round || '@example.com')).id;
        PERFORM pg_temp.fill(s1);
        PERFORM pg_temp.fill(s2);
        FOR side IN 1..2 LOOP
            IF (side = 1) = (round % 2 = 1) THEN
                t := clock_timestamp();
                UPDATE sp_users.user_sessions SET user_id = d2 WHERE user_id = s2;
                UPDATE app.orders SET user_id = d2 WHERE user_id = s2;
                UPDATE app.events SET user_id = d2 WHERE user_id = s2;
                UPDATE app.comments SET user_id = d2 WHERE user_id = s2;
                DELETE FROM sp_users.users WHERE id = s2;
                plain := plain || extract(epoch FROM clock_timestamp() - t) * 1000;
            ELSE
                t := clock_timestamp();
                SELECT * INTO r FROM sp_users.merge_users(s1, d1);
                ours := ours || extract(epoch FROM clock_timestamp() - t) * 1000;
                IF r.total_rows <> 4 * $ROWS THEN RAISE EXCEPTION 'merge moved % rows', r.total_rows; END IF;
            END IF;
        END LOOP;
    END LOOP;
    RAISE NOTICE '%', format('%-50s %s', 'rows moved per merge', 4 * $ROWS);
    RAISE NOTICE '%', format('%-50s %10s', 'seed: plain UPDATE sequence, median ms',
        round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest(plain) v)::numeric, 1));
    RAISE NOTICE '%', format('%-50s %10s', 'sp_users.merge_users, median ms',
        round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest(ours) v)::numeric, 1));
    RAISE NOTICE '%', format('%-50s %10s', 'ratio merge_users / plain',
        round(((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest(ours) v)
             / (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest(plain) v))::numeric, 2));
    RAISE NOTICE '%', format('%-50s %s / %s', 'all rounds (plain / merge_users, ms)', plain::numeric(10,1)[], ours::numeric(10,1)[]);
END \$\$;
SQL
