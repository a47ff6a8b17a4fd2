#!/usr/bin/env bash
# (A prepared statement whose *result* is an sp_users type, such as user_role[], fails after a
# reinstall with PostgreSQL's own "cached plan must not change result type": the type was
# recreated. The statements here return built-in types, as an application's usually do.)
# One long-lived backend keeps prepared statements and per-backend state (the ban set, its saved
# lookup plan, compiled PL/pgSQL) across DROP EXTENSION / CREATE EXTENSION and across
# ALTER EXTENSION UPDATE 0.2.0 -> current. Every answer afterwards must be the new database's,
# never the old one's, and no call may fail with an internal error.
set -euo pipefail
DB=sp_users_reinstall
NEW=$(sed -n "s/^default_version = '\(.*\)'/\1/p" sp_users.control)
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"

coproc LONG { psql -X -At -q -v ON_ERROR_STOP=0 -d $DB 2>&1; }
ask() { echo "$1" >&"${LONG[1]}"; echo "SELECT 'END';" >&"${LONG[1]}"; local line out=""; while read -r line <&"${LONG[0]}"; do [ "$line" = END ] && break; out+="$line"$'\n'; done; printf %s "$out"; }

FILL="SELECT count(*) FROM (SELECT sp_users.create_user('ann', 'ann@example.com')) a;
      SELECT count(*) FROM (SELECT sp_users.start_session((SELECT id FROM sp_users.users WHERE name = 'ann'), 's1', expires_in => '1 hour')) s;
      SELECT count(*) FROM (SELECT sp_users.ban_ip('203.0.113.0/24', 'net', '1 hour')) b;"
PREPARE="PREPARE q_user(text) AS SELECT coalesce((SELECT name FROM sp_users.find_by_email(\$1)), '-');
         PREPARE q_user_any(text) AS SELECT coalesce((SELECT name FROM sp_users.find_user(\$1)), '-');
         PREPARE q_sess(text) AS SELECT sp_users.session_exists(\$1);
         PREPARE q_touch(text) AS SELECT sp_users.touch_session(\$1);
         PREPARE q_ban(text) AS SELECT sp_users.is_banned(\$1);
         PREPARE q_get_ban(text) AS SELECT coalesce((SELECT reason FROM sp_users.get_ban(\$1)), '-');
         PREPARE q_roles(text) AS SELECT sp_users.get_roles((SELECT id FROM sp_users.users WHERE name = \$1))::text;"
PROBE="EXECUTE q_user('ANN@example.com'); EXECUTE q_user_any('ann'); EXECUTE q_sess('s1'); EXECUTE q_touch('s1');
       EXECUTE q_ban('203.0.113.9'); EXECUTE q_get_ban('203.0.113.9'); EXECUTE q_roles('ann');"
BEFORE=$'ann\nann\nt\nt\nt\nnet\n{user}'
EMPTY=$'-\n-\nf\nf\nf\n-\n'

check() { # label expected actual
  [ "$2" = "$3" ] || fail "$1: expected $(tr '\n' ' ' <<<"$2"), got $(tr '\n' ' ' <<<"$3")"
  ok "$1"
}

ask "CREATE EXTENSION sp_users;" >/dev/null
ask "$FILL" >/dev/null
ask "$PREPARE" >/dev/null
for i in 1 2 3 4 5 6; do out=$(ask "$PROBE"); done # past the custom-plan phase: generic plans cached
check "prepared statements answer on the first install" "$BEFORE" "$out"

ask "DROP EXTENSION sp_users CASCADE; CREATE EXTENSION sp_users;" >/dev/null
out=$(ask "$PROBE")
# get_roles on a missing user raises P0002: the last line is that error, not a stale answer.
check "after DROP/CREATE EXTENSION: the new, empty database's answers" "$EMPTY" "$(head -6 <<<"$out")"$'\n'
grep -q "user not found" <<<"$out" || fail "get_roles after reinstall: $out"
ok "get_roles after reinstall raises P0002 for the vanished user"
ask "$FILL" >/dev/null
out=$(ask "$PROBE")
check "after refilling: answers from the new tables" "$BEFORE" "$out"
# create_user remembers which unique index an INSERT checks first: the new tables' indexes now.
dup_errors() { # (the coprocess is not reachable from a pipeline's subshell: capture, then filter)
  local out; out=$(ask "SELECT sp_users.create_user('ann', 'ANN@example.com'); SELECT sp_users.create_user('ann', 'other@example.com');")
  grep -o 'user already exists with [a-z]*: [^ ]*' <<<"$out" | tr '\n' ' '
}
[ "$(dup_errors)" = "user already exists with email: ann@example.com user already exists with name: ann " ] || fail "create_user after reinstall: $(dup_errors)"
ok "create_user after reinstall names the taken email, then the taken name"
ask "SELECT sp_users.unban_ip('203.0.113.0/24');" >/dev/null
[ "$(ask "EXECUTE q_ban('203.0.113.9'); EXECUTE q_get_ban('203.0.113.9');")" = $'f\n-' ] || fail "unban after reinstall not seen"
ok "the ban set follows the new table (unban seen)"

# ALTER EXTENSION UPDATE in the same backend, from the previous release.
ask "DROP EXTENSION sp_users CASCADE; CREATE EXTENSION sp_users VERSION '0.2.0';" >/dev/null
ask "$FILL" >/dev/null
out=$(ask "$PROBE")
check "0.2.0 answers through the same prepared statements" "$BEFORE" "$out"
ask "ALTER EXTENSION sp_users UPDATE;" >/dev/null
[ "$(ask "SELECT extversion FROM pg_extension WHERE extname = 'sp_users';")" = "$NEW" ] || fail "update did not reach $NEW"
out=$(ask "$PROBE")
check "after ALTER EXTENSION UPDATE to $NEW: same answers" "$BEFORE" "$out"
ask "SELECT sp_users.end_session('s1'); SELECT count(*) FROM (SELECT sp_users.ban_ip('198.51.100.1', 'x', '1 hour')) b;" >/dev/null
[ "$(ask "EXECUTE q_sess('s1'); EXECUTE q_ban('198.51.100.1');")" = $'f\nt' ] || fail "changes after the update not seen"
ok "changes after the update are seen by the same backend"
[ "$(dup_errors)" = "user already exists with email: ann@example.com user already exists with name: ann " ] || fail "create_user after the update: $(dup_errors)"
ok "create_user after the update (name index rebuilt) names the taken email, then the taken name"
echo "\\q" >&"${LONG[1]}"; wait "$LONG_PID" 2>/dev/null || true
echo "reinstall: $passed passed, 0 failed"
