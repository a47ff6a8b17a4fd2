#!/usr/bin/env bash
# pgbench: 4 clients hammer create_anonymous with 5 fingerprints; afterwards exactly 5 users exist.
set -euo pipefail
DB=sp_users_hammer
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -d $DB -c "CREATE EXTENSION sp_users"
script=$(mktemp)
printf '\\set f random(1, 5)\nSELECT id FROM sp_users.create_anonymous(%s);\n' "'fp-' || :f" > "$script"
pgbench -n -c 4 -j 2 -T 5 -f "$script" $DB > "$script.log" 2>&1 || { cat "$script.log"; exit 1; }
rm -f "$script"
grep -E "^(number of transactions actually processed|number of failed)" "$script.log" || true
users=$(psql -X -At -d $DB -c "SELECT count(*) FROM sp_users.users")
psql -X -q -d postgres -c "DROP DATABASE $DB"
[ "$users" = 5 ] || { echo "FAIL: $users users for 5 fingerprints"; exit 1; }
echo "anonymous_hammer: 1 passed, 0 failed (5 users for 5 fingerprints)"
