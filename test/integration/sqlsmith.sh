#!/usr/bin/env bash
# A short, seeded SQLsmith run as each sp_users role (scripts/sqlsmith): random statements built
# around the extension's functions, as smith_admin, smith_app and smith_readonly (members of one
# sp_users role each), parallel workers forced. Fails on a crashed backend, an XX-class error, a
# statement ignoring its timeout, or when fewer than 15 % of the statements ran an sp_users function
# (the focusing on sp_users must not break silently). At most about 55 s (3 x 16 s plus set-up);
# 43 s on the 2-core development machine.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${PGDEV_DIR:?run from scripts/test-all}"
DB=sp_users_sqlsmith
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Each role stops after 1 000 statements or 16 s, whichever comes first (SQLsmith's statements run
# under a 1 s statement_timeout; a few of them reach it).
"$ROOT/scripts/sqlsmith" --db $DB --role all --seed 11 --max-queries 1000 --timeout 16 --min-calls 15 \
    --out "$PGDEV_DIR/sqlsmith" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

summaries=$(grep -c '^sqlsmith: role=' "$out")
[ "$summaries" = 3 ] || { echo "FAIL: expected 3 role summaries, got $summaries"; status=1; }
for role in sp_users_admin sp_users_app sp_users_readonly; do
  # every role reached a good share of the functions it may call (0.3.0: admin 80, app 40, readonly 39)
  line=$(grep "^sqlsmith: role=$role " "$out")
  functions=$(sed -n 's/.* functions=\([0-9]*\).*/\1/p' <<<"$line")
  min=$([ $role = sp_users_admin ] && echo 40 || echo 15)
  [ "${functions:-0}" -ge $min ] || { echo "FAIL: $role ran ${functions:-0} distinct sp_users functions (at least $min expected)"; status=1; }
done
[ $status = 0 ] && psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
[ $status = 0 ] && echo "sqlsmith: 3 roles, no crash, no internal error" || echo "sqlsmith: FAILED"
exit $status
