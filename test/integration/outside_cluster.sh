#!/usr/bin/env bash
# The setup scripts leave the machine's own PostgreSQL alone (issue 14): they install packages and
# touch only the clusters they make. Two clusters are started outside the scripts — one registered
# with Debian's tools (pg_createcluster + pg_ctlcluster: what `service postgresql` and systemd
# manage) and one plain initdb + pg_ctl — with a row of data each. Then:
#  * no line of scripts/ runs a service manager or a cluster tool (systemctl, service, invoke-rc.d,
#    update-rc.d, pg_ctlcluster, pg_dropcluster, pg_createcluster, pg_conftool, pkill, killall);
#  * scripts/deps, made to find a package missing (dpkg-query and apt-get replaced by stand-ins, as
#    are sudo and every service manager and cluster tool, which only record that they were called):
#    it runs apt-get update and apt-get install of that package, and nothing else;
#  * the real scripts/deps and scripts/demo (on a private cluster of their own, own port and
#    directory, started by the demo and stopped here), and scripts/pgdev start --fresh / stop as
#    scripts/test-all uses it;
# and both outside clusters are still up with the same postmaster pid and start time, the same
# configuration files and the same data. Only the clusters this test made are stopped, at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# The clusters here are reached their own way (Debian's socket directory, ports below), not through
# the caller's PG* environment (scripts/test-all points it at its own cluster).
unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS PGSERVICE
ROOT=$(pwd)
VER=15
NAME=sp_users_outside
PORT=${SP_OUTSIDE_PORT:-54863}
PLAIN_PORT=$((PORT + 1))
DEMO_PORT=$((PORT + 2))
TAG=$(printf %s "$ROOT" | md5sum | cut -c1-10)
PLAIN=/tmp/sp_users-outside-plain-$TAG
DEMO_DIR=/tmp/sp_users-outside-demo-$TAG
STUBS=$(mktemp -d /tmp/sp_users-outside-stubs.XXXXXX)
MARK=sp_users-test-cluster
PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
passed=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

# The Debian cluster of this test: dropped, then the marker file (which pg_dropcluster leaves) too.
drop_cluster() {
  if pg_lsclusters -h 2>/dev/null | awk -v v="$VER" -v n="$NAME" '$1 == v && $2 == n { found = 1 } END { exit !found }'; then
    $SUDO pg_dropcluster "$VER" "$NAME" --stop
  fi
  $SUDO rm -f "/etc/postgresql/$VER/$NAME/$MARK"
  $SUDO rmdir "/etc/postgresql/$VER/$NAME" 2>/dev/null || true
}
made_debian=no
cleanup() {
  PGDEV_DIR=$DEMO_DIR PGDEV_PORT=$DEMO_PORT scripts/pgdev stop >/dev/null 2>&1 || true
  rm -rf "$DEMO_DIR" "$STUBS"
  if [ -f "$PLAIN/data/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$PLAIN/data" -m fast -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$PLAIN"
  if [ $made_debian = yes ]; then drop_cluster >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# 1. Nothing in scripts/ drives a service manager or another cluster.
if hits=$(grep -nE '^[^#]*(\b(systemctl|invoke-rc\.d|update-rc\.d|pg_ctlcluster|pg_dropcluster|pg_createcluster|pg_conftool|pkill|killall)\b|\bservice[[:space:]]+[[:alnum:]$])' scripts/*); then
  fail "scripts/ drives a service or another cluster:
$hits"
fi
ok "no line of scripts/ runs systemctl, service, invoke-rc.d, update-rc.d, pg_ctlcluster, pg_dropcluster, pg_createcluster, pg_conftool, pkill or killall"

# 2. The outside clusters, each with a row of data.
if [ -d "/etc/postgresql/$VER/$NAME" ]; then
  [ -f "/etc/postgresql/$VER/$NAME/$MARK" ] || fail "a cluster $VER/$NAME exists that this test did not make; it is left alone"
  drop_cluster # left by an interrupted run of this test
  [ ! -d "/etc/postgresql/$VER/$NAME" ] || fail "could not remove /etc/postgresql/$VER/$NAME, left by an earlier run"
fi
for p in "$PORT" "$PLAIN_PORT" "$DEMO_PORT"; do
  if pg_lsclusters -h | awk -v p="$p" '$3 == p { found = 1 } END { exit !found }' ||
     (command -v ss >/dev/null && ss -Hltn "sport = :$p" | grep -q .) || [ -e "/var/run/postgresql/.s.PGSQL.$p" ]; then
    fail "port $p is taken (SP_OUTSIDE_PORT chooses another range)"
  fi
done
# start.conf "auto" (the default): a cluster the machine's postgresql service manages.
$SUDO pg_createcluster "$VER" "$NAME" -p "$PORT" --locale=C.UTF-8 >/dev/null
made_debian=yes
$SUDO touch "/etc/postgresql/$VER/$NAME/$MARK"
$SUDO pg_ctlcluster "$VER" "$NAME" start
CONF=/etc/postgresql/$VER/$NAME
DEB_DATA=/var/lib/postgresql/$VER/$NAME

if [ -f "$PLAIN/data/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$PLAIN/data" -m fast -w stop >/dev/null 2>&1 || true; fi
rm -rf "$PLAIN"
mkdir -p "$PLAIN"
[ "$(id -u)" = 0 ] && chown postgres: "$PLAIN"
as_pg "$PGBIN/initdb" -D "$PLAIN/data" -U postgres --auth=trust --locale=C.UTF-8 >/dev/null
as_pg sh -c "printf '%s\n' \"listen_addresses = ''\" \"port = $PLAIN_PORT\" \"unix_socket_directories = '$PLAIN'\" >> '$PLAIN/data/postgresql.conf'"
as_pg "$PGBIN/pg_ctl" -D "$PLAIN/data" -l "$PLAIN/server.log" -w -t 60 start >/dev/null

q_deb() { as_pg psql -X -q -At -v ON_ERROR_STOP=1 -p "$PORT" -d postgres -c "$1"; }
q_plain() { as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$PLAIN" -p "$PLAIN_PORT" -U postgres -d postgres -c "$1"; }
q_deb "CREATE TABLE outside_marker AS SELECT 'debian cluster, untouched' AS note"
q_plain "CREATE TABLE outside_marker AS SELECT 'plain cluster, untouched' AS note"
state() {
  echo "debian pid $(as_pg head -1 "$DEB_DATA/postmaster.pid") started $(q_deb "SELECT pg_postmaster_start_time()") $(q_deb "TABLE outside_marker")"
  echo "debian $(pg_lsclusters -h | awk -v n="$NAME" '$2 == n { print $4 }')"
  (cd "$CONF" && as_pg sh -c 'md5sum postgresql.conf pg_hba.conf pg_ident.conf start.conf pg_ctl.conf environment; ls -la conf.d | md5sum')
  echo "plain pid $(as_pg head -1 "$PLAIN/data/postmaster.pid") started $(q_plain "SELECT pg_postmaster_start_time()") $(q_plain "TABLE outside_marker")"
  (cd "$PLAIN/data" && as_pg sh -c 'md5sum postgresql.conf pg_hba.conf pg_ident.conf; ls postgresql.auto.conf | xargs md5sum')
}
before=$(state)
ok "outside clusters up: $VER/$NAME (pg_createcluster, port $PORT) and a plain initdb one (port $PLAIN_PORT)"

# 3. scripts/deps when a package is missing: only apt-get, only for that package.
for tool in systemctl service invoke-rc.d update-rc.d pg_ctlcluster pg_dropcluster pg_createcluster pg_conftool pg_ctl pkill killall; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/forbidden.log"\nexit 0\n' "$tool" "$STUBS" > "$STUBS/$tool"
done
printf '#!/bin/sh\nexec "$@"\n' > "$STUBS/sudo"
printf '#!/bin/sh\necho "apt-get $*" >> "%s/apt.log"\nexit 0\n' "$STUBS" > "$STUBS/apt-get"
# Every package installed but one.
printf '#!/bin/sh\nfor last; do :; done\n[ "$last" = postgresql-15-cron ] && exit 1\nprintf "install ok installed"\n' > "$STUBS/dpkg-query"
chmod +x "$STUBS"/*
out=$(PATH="$STUBS:$PATH" scripts/deps 2>&1) || fail "scripts/deps failed with a package missing: $out"
[ ! -s "$STUBS/forbidden.log" ] || fail "scripts/deps ran, with a package missing: $(cat "$STUBS/forbidden.log")"
grep -qx "apt-get update -qq" "$STUBS/apt.log" && grep -qx "apt-get install -y -qq --no-install-recommends postgresql-15-cron" "$STUBS/apt.log" &&
  [ "$(wc -l < "$STUBS/apt.log")" = 2 ] || fail "unexpected apt-get calls: $(cat "$STUBS/apt.log")"
ok "scripts/deps with postgresql-15-cron missing: apt-get update and apt-get install postgresql-15-cron, no service manager, no cluster tool"

# 4. The real scripts: deps, the demo (its own cluster), and pgdev as scripts/test-all uses it.
scripts/deps >/dev/null || fail "scripts/deps"
rm -rf "$DEMO_DIR"
PGDEV_DIR=$DEMO_DIR PGDEV_PORT=$DEMO_PORT scripts/demo >"$STUBS/demo.out" 2>&1 || { tail -30 "$STUBS/demo.out"; fail "scripts/demo"; }
grep -q "^Done. The demo data is still there" "$STUBS/demo.out" || fail "scripts/demo did not finish: $(tail -5 "$STUBS/demo.out")"
[ "$(PGDEV_DIR=$DEMO_DIR PGDEV_PORT=$DEMO_PORT scripts/pgdev psql -At -c "SHOW cron.database_name")" = sp_users_dev ] ||
  fail "the demo cluster's pg_cron does not run in sp_users_dev"
PGDEV_DIR=$DEMO_DIR PGDEV_PORT=$DEMO_PORT scripts/pgdev psql -q -At -v ON_ERROR_STOP=1 \
  -c "SELECT sp_users.schedule_anonymous_cleanup()" -c "SELECT sp_users.unschedule_anonymous_cleanup()" >/dev/null ||
  fail "scheduling from scripts/pgdev psql on the demo cluster"
PGDEV_DIR=$DEMO_DIR PGDEV_PORT=$DEMO_PORT scripts/pgdev stop >/dev/null
PGDEV_DIR=$DEMO_DIR PGDEV_PORT=$DEMO_PORT PGDEV_CRON_DB=postgres scripts/pgdev start --fresh >/dev/null
PGDEV_DIR=$DEMO_DIR PGDEV_PORT=$DEMO_PORT scripts/pgdev stop >/dev/null
ok "scripts/deps, scripts/demo (own cluster on port $DEMO_PORT; scheduling from scripts/pgdev psql works), scripts/pgdev start --fresh and stop ran"

# 5. The outside clusters: same postmasters, same configuration, same data.
after=$(state)
if [ "$before" != "$after" ]; then diff <(echo "$before") <(echo "$after") || true; fail "an outside cluster was stopped, restarted or changed"; fi
ok "both outside clusters still up, same postmaster pid and start time, configuration files and data unchanged"
echo "outside_cluster: $passed passed, 0 failed"
