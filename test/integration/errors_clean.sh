#!/usr/bin/env bash
# User-facing errors read cleanly (issue 14): psql with default verbosity shows the message (and
# hint) of each sp_users error and no CONTEXT of internal helper frames; a bad email names the rule.
set -euo pipefail
DB=sp_users_errors_clean
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -d $DB -c "CREATE EXTENSION sp_users" -c "SELECT count(*) FROM sp_users.create_user('ada', 'ada@example.com')" \
  -c "SELECT count(*) FROM sp_users.start_session(NULL, 'dup-session')" >/dev/null
# statement | SQLSTATE | expected message
while IFS='|' read -r sql state message; do
  [ -z "$sql" ] && continue
  out=$(psql -X -q -d $DB -v VERBOSITY=default -c "\\set VERBOSITY default" -c "$sql" 2>&1 || true)
  state_got=$(psql -X -q -d $DB -c "\\set VERBOSITY verbose" -c "$sql" 2>&1 | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' | head -1 || true)
  grep -qF "ERROR:  $message" <<<"$out" || fail "$sql: expected message '$message', got: $out"
  [ "$state_got" = "$state" ] || fail "$sql: expected SQLSTATE $state, got '$state_got'"
  if grep -q "^CONTEXT:" <<<"$out"; then fail "$sql shows a CONTEXT: $out"; fi
  ok "$state $message"
done <<'CASES'
SELECT sp_users.get_activity('00000000-0000-0000-0000-000000000001')|P0002|user not found: 00000000-0000-0000-0000-000000000001
SELECT sp_users.start_session('00000000-0000-0000-0000-000000000001')|P0002|user not found: 00000000-0000-0000-0000-000000000001
SELECT sp_users.update_email('00000000-0000-0000-0000-000000000001', 'x@example.com')|P0002|user not found: 00000000-0000-0000-0000-000000000001
SELECT sp_users.get_roles('00000000-0000-0000-0000-000000000001')|P0002|user not found: 00000000-0000-0000-0000-000000000001
SELECT sp_users.merge_users('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002')|P0002|user not found
SELECT sp_users.create_user('ada2', ' ADA@example.com')|23505|user already exists with email: ada@example.com
SELECT sp_users.create_user('ada', 'other@example.com')|23505|user already exists with name: ada
SELECT * FROM sp_users.list_users(-1)|22023|lim must not be negative (got -1)
SELECT * FROM sp_users.list_users(20, NULL)|22023|off must not be NULL
SELECT sp_users.ban_ip('192.0.2.1', 'x', '-1 hour')|22023|duration must be positive (got -01:00:00)
SELECT sp_users.ban_ip('1.2.3.4.5', 'x', '1 hour')|22P02|invalid IP address or network: "1.2.3.4.5"
SELECT sp_users.revoke_role((SELECT id FROM sp_users.users WHERE name = 'ada'), 'user')|22023|cannot revoke role user: it is the last role of user
SELECT sp_users.create_user('carol', 'carol@@')|23514|invalid email address "carol@@": it must contain exactly one @
SELECT sp_users.create_user('x', 'x@')|23514|invalid email address "x@": it has nothing after the @
SELECT sp_users.create_user('ab', 'a b@example.com')|23514|invalid email address "a b@example.com": it contains white space or a control character
SELECT sp_users.create_user_if_absent('xyz', 'x@y@z')|23514|invalid email address "x@y@z": it must contain exactly one @
SELECT sp_users.update_email((SELECT id FROM sp_users.users WHERE name = 'ada'), E'a@b\nc')|23514|invalid email address "a@b
SELECT sp_users.create_user('', 'empty-name@example.com')|23514|invalid user name: it must not be empty
SELECT sp_users.create_user(repeat('n', 256), 'long-name@example.com')|23514|invalid user name: it has 256 characters, at most 255 are allowed
SELECT sp_users.start_session(NULL, repeat('s', 300))|23514|invalid session id: it has 300 characters, at most 255 are allowed
SELECT sp_users.start_session(NULL, '')|23514|invalid session id: it must not be empty
SELECT sp_users.is_banned('010.1.1.1')|22P02|invalid IP address or network: "010.1.1.1" (an IPv4 octet with a leading zero is ambiguous
SELECT sp_users.create_user(NULL, 'null-name@example.com')|23502|null value in column "name" of relation "users" violates not-null constraint
SELECT sp_users.start_session(NULL, 'dup-session')|23505|duplicate key value violates unique constraint "user_sessions_pkey"
SELECT sp_users.start_session(NULL, 'long-session', expires_in => '100000000 years')|22008|timestamp out of range
SELECT sp_users.create_anonymous('has space')|23514|invalid email address "has space@anonymous.local" from the fingerprint: it contains white space
CASES
[ "$(psql -X -At -d $DB -c "SELECT sp_users.email_problem('user@localhost') IS NULL")" = t ] || fail "user@localhost must stay valid"
ok "user@localhost is a valid email"
psql -X -q -d postgres -c "DROP DATABASE $DB"
echo "errors_clean: $passed passed, 0 failed"
