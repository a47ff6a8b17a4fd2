"""Bans on Citus after sp_users.distribute(): banned_ips a reference table, is_banned exact on the
coordinator and on every worker, in new and long-lived sessions, as bans come and go through any
node. Run by test/integration/citus.sh against scripts/citus' cluster (argv: socket dir, ports)."""
import psycopg2

from cluster import PORTS, check, connect, finish

NAMES = ["coordinator"] + [f"worker {i}" for i in range(1, len(PORTS))]


def q(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def one(conn, sql, args=None):
    return q(conn, sql, args)[0][0]


def error_of(conn, sql, args=None):
    try:
        q(conn, sql, args)
        return None
    except psycopg2.Error as e:
        return e.pgcode


coord = connect(PORTS[0])
# Sessions that live through everything below, opened before distribute().
long_lived = [connect(p) for p in PORTS]
for c in long_lived:
    one(c, "SELECT sp_users.is_banned('192.0.2.1')")

check(error_of(long_lived[1], "SELECT * FROM sp_users.distribute()") == "0A000", "distribute() on a worker: 0A000")

q(coord, "SELECT sp_users.ban_ip('192.0.2.1', 'before distribute', NULL)")
q(coord, "SELECT sp_users.ban_ip('198.51.100.0/24', 'a network', '1 hour')")
layout = dict(q(coord, "SELECT relation::text, placement FROM sp_users.distribute()"))
check(layout.get("sp_users.banned_ips") == "reference", f"distribute(): banned_ips is a reference table ({layout.get('sp_users.banned_ips')})")
check(layout.get("sp_users.users") == "distributed" and layout.get("sp_users.user_emails") == "distributed"
      and layout.get("sp_users.user_names") == "distributed",
      f"distribute(): users, user_emails and user_names split into shards ({layout.get('sp_users.users')})")
check(layout.get("sp_users.user_sessions") == "distributed", f"distribute(): user_sessions is distributed ({layout.get('sp_users.user_sessions')})")
check(dict(q(coord, "SELECT relation::text, placement FROM sp_users.distribute()")) == layout, "distribute() again: same layout, no error")
check(one(coord, "SELECT count(*) FROM ONLY sp_users.banned_ips") == 2, "the bans made before distribute() are kept")


def agree(conn, label):
    """is_banned against plain SQL over the placement, for addresses in and around every ban."""
    rows = q(conn, """
        SELECT p.a, sp_users.is_banned(p.a),
               EXISTS (SELECT 1 FROM sp_users.banned_ips b
                        WHERE b.ip_address >>= p.a::inet AND (b.expires_at IS NULL OR b.expires_at > now()))
          FROM (SELECT DISTINCT host(b.ip_address) AS a FROM sp_users.banned_ips b
                UNION SELECT host(b.ip_address + 1) FROM sp_users.banned_ips b
                 WHERE family(b.ip_address) = 4 AND b.ip_address < '255.255.255.255'
                UNION SELECT unnest(ARRAY['192.0.2.1', '192.0.2.2', '198.51.100.77', '203.0.113.5', '2001:db8::1', '10.1.2.3'])) p""")
    wrong = [r for r in rows if r[1] != r[2]]
    check(not wrong and rows, f"{label}: is_banned agrees with SQL on {len(rows)} addresses {wrong[:3]}")


def everywhere(addr, expected, label):
    fresh = [connect(p) for p in PORTS]
    for conns, kind in ((fresh, "new session"), (long_lived, "long-lived session")):
        got = [one(c, "SELECT sp_users.is_banned(%s)", (addr,)) for c in conns]
        check(all(g == expected for g in got), f"{label}: is_banned({addr}) = {expected} on every node, {kind} ({got})")
    for c in fresh:
        c.close()


everywhere("192.0.2.1", True, "after distribute()")
everywhere("198.51.100.9", True, "network ban after distribute()")
everywhere("203.0.113.5", False, "never banned")
for c, n in zip(long_lived, NAMES):
    agree(c, n)

# A ban through the coordinator, escalated: seen by get_ban on a worker.
q(coord, "SELECT sp_users.ban_ip('203.0.113.5', 'first', '1 hour')")
row = q(coord, "SELECT ban_count, expires_at - banned_at FROM sp_users.ban_ip('203.0.113.5', 'again', '1 hour', escalate => true)")[0]
check(row[0] == 2 and str(row[1]) == "2:00:00", f"ban_ip escalates through the coordinator (count 2, 2 hours: {row})")
got = q(long_lived[1], "SELECT ban_count, reason FROM sp_users.get_ban('203.0.113.5')")
check(got == [(2, "again")], f"get_ban on a worker sees it ({got})")
everywhere("203.0.113.5", True, "ban through the coordinator")

# A ban through a worker (Citus routes the write to every placement).
q(long_lived[2 if len(PORTS) > 2 else 1], "SELECT sp_users.ban_ip('2001:db8::/64', 'from a worker', NULL)")
everywhere("2001:db8::1", True, "ban through a worker")

# Unban through a worker; a rolled-back ban is seen nowhere.
q(long_lived[1], "SELECT sp_users.unban_ip('192.0.2.1')")
everywhere("192.0.2.1", False, "unban through a worker")
coord.autocommit = False
q(coord, "SELECT sp_users.ban_ip('10.1.2.3', 'rolled back', NULL)")
check(one(coord, "SELECT sp_users.is_banned('10.1.2.3')") is True, "own uncommitted ban seen by its transaction")
coord.rollback()
coord.autocommit = True
everywhere("10.1.2.3", False, "rolled-back ban")

# A blocklist through the coordinator.
blocklist = "\n".join(f"100.64.{i // 256}.{i % 256}" for i in range(1000)) + "\nnot-an-address\n"
bad = q(coord, "SELECT line, entry FROM sp_users.ban_ips(%s, 'list', '1 day')", (blocklist,))
check(bad == [(1001, "not-an-address")], f"ban_ips through the coordinator reports the bad line ({bad})")
everywhere("100.64.3.231", True, "blocklist")
check(all(one(c, "SELECT sp_users.count_active_bans()") == one(coord, "SELECT sp_users.count_active_bans()") for c in long_lived),
      "count_active_bans is the same on every node")
for c, n in zip(long_lived, NAMES):
    agree(c, n + " after the changes")

# Direct DML and TRUNCATE on the reference table are followed too.
q(coord, "UPDATE sp_users.banned_ips SET expires_at = now() - interval '1 second' WHERE ip_address = '203.0.113.5'")
everywhere("203.0.113.5", False, "expired by a direct UPDATE")
q(coord, "TRUNCATE sp_users.banned_ips")
everywhere("100.64.3.231", False, "after TRUNCATE")
everywhere("2001:db8::1", False, "after TRUNCATE")

finish("citus bans")
