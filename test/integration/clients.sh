#!/usr/bin/env bash
# The Node.js and Python examples run their request flow against the private cluster; the output
# is compared line by line (twice: the second run shows the 23505 "email taken" branch). They
# connect as a login role that holds only sp_users_app.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DB=sp_users_clients
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -d $DB -c "CREATE EXTENSION sp_users"
# As an application connects: a login role holding only sp_users_app (no table privilege).
psql -X -q -d $DB -c "DROP ROLE IF EXISTS sp_users_clients_app" -c "CREATE ROLE sp_users_clients_app LOGIN" \
     -c "GRANT sp_users_app TO sp_users_clients_app"
export PGDATABASE=$DB PGUSER=sp_users_clients_app

expected() { # $1 = node|python, $2 = first|second
  local ip=$([ "$1" = node ] && echo 198.51.100.23 || echo 198.51.100.24)
  local abusive=$([ "$1" = node ] && echo 203.0.113.66 || echo 203.0.113.67)
  local email="$1.demo@example.com"
  local total=$([ "$1" = node ] && echo 1 || echo 2)
  echo "client banned: $([ "$1" = node ] && echo false || echo False)"
  echo "anonymous user: anonymous_XXXXXXXX roles=$([ "$1" = node ] && echo '{anonymous}' || echo '{anonymous}')"
  echo "session for $ip: anon"
  echo "banned $abusive (ban #$([ "$2" = first ] && echo 1 || echo 2))"
  echo "abusive banned: $([ "$1" = node ] && echo true || echo True)"
  if [ "$2" = first ]; then echo "registered $email"; else echo "email taken (23505): logged in as $email"; fi
  echo "promoted: 1 session(s) moved, 1 row(s) in total"
  echo "error 22P02 as expected"
  echo "error P0002 as expected"
  echo "stats: total=$total anonymous=0"
}
check() { # name, run, output
  local got
  got=$(echo "$3" | sed -E 's/anonymous_[0-9a-f]{8}/anonymous_XXXXXXXX/')
  if [ "$got" != "$(expected "$1" "$2")" ]; then
    diff <(expected "$1" "$2") <(echo "$got") || true
    echo "FAIL: $1 ($2 run)"; exit 1
  fi
  echo "ok - $1 example, $2 run"
}

# Node.js: install the pg package from npm as a user would.
(cd "$ROOT/examples/node" && npm install --no-audit --no-fund --silent >/dev/null)
check node first "$(node "$ROOT/examples/node/flow.js")"
check node second "$(node "$ROOT/examples/node/flow.js")"
# Python: Debian's python3-psycopg2 (so Debian's interpreter).
check python first "$(/usr/bin/python3 "$ROOT/examples/python/flow.py")"
check python second "$(/usr/bin/python3 "$ROOT/examples/python/flow.py")"
PGUSER=postgres psql -X -q -d postgres -c "DROP DATABASE $DB" -c "DROP ROLE sp_users_clients_app"
echo "clients: 4 passed, 0 failed"
