"""A web request flow against sp_users with psycopg2 (Debian's python3-psycopg2).

Connection settings come from the usual PG* environment variables (scripts/pgdev env prints them).
"""
import psycopg2
import psycopg2.errorcodes as codes
import psycopg2.extras

CLIENT_IP = "::ffff:198.51.100.24"
ABUSIVE_IP = "203.0.113.67"


def main() -> None:
    conn = psycopg2.connect("")
    conn.autocommit = True  # each call is its own transaction, as in a web request
    cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)

    def one(sql, params=()):
        cur.execute(sql, params)
        return cur.fetchone()

    # 1. Every request: refuse banned clients first (the hot path).
    print(f"client banned: {one('SELECT sp_users.is_banned(%s)', (CLIENT_IP,))['is_banned']}")

    # 2. An anonymous visitor, identified by a device fingerprint.
    anon = one("SELECT * FROM sp_users.create_anonymous(%s)", ("python-demo-device",))
    print(f"anonymous user: {anon['name']} roles={anon['roles']}")
    session = one("SELECT * FROM sp_users.start_session(%s, NULL, %s, %s)", (anon["id"], CLIENT_IP, "python-example/1.0"))
    print(f"session for {session['ip_address']}: {session['user_type']}")

    # 3. An abusive address gets banned, with escalation for repeat offenders.
    ban = one("SELECT * FROM sp_users.ban_ip(%s, 'credential stuffing', '1 hour', 'python-example', escalate => true)", (ABUSIVE_IP,))
    print(f"banned {ban['ip_address']} (ban #{ban['ban_count']})")
    print(f"abusive banned: {one('SELECT sp_users.is_banned(%s)', (ABUSIVE_IP,))['is_banned']}")

    # 4. The visitor signs up. A taken email is SQLSTATE 23505: log in instead.
    try:
        account = one("SELECT * FROM sp_users.create_user(%s, %s, %s)", ("python_demo", "Python.Demo@Example.com", "Python Demo"))
        print(f"registered {account['email']}")
    except psycopg2.Error as err:
        if err.pgcode != codes.UNIQUE_VIOLATION:
            raise
        account = one("SELECT * FROM sp_users.find_by_email(%s)", ("python.demo@example.com",))
        print(f"email taken ({err.pgcode}): logged in as {account['email']}")

    # 5. The anonymous visitor's sessions and data follow the account.
    merged = one("SELECT * FROM sp_users.promote_anonymous(%s, %s)", (anon["id"], account["id"]))
    print(f"promoted: {merged['sessions']} session(s) moved, {merged['total_rows']} row(s) in total")

    # 6. Errors by SQLSTATE, not by message text.
    for sql, params, expected in (
        ("SELECT sp_users.is_banned(%s)", ("not-an-ip",), codes.INVALID_TEXT_REPRESENTATION),
        ("SELECT * FROM sp_users.get_roles(%s)", ("00000000-0000-0000-0000-000000000000",), codes.NO_DATA_FOUND),
    ):
        try:
            cur.execute(sql, params)
            print("unexpected success")
        except psycopg2.Error as err:
            print(f"error {err.pgcode}{' as expected' if err.pgcode == expected else ' UNEXPECTED'}")

    stats = one("SELECT * FROM sp_users.get_stats()")
    print(f"stats: total={stats['total']} anonymous={stats['anonymous']}")
    conn.close()


if __name__ == "__main__":
    main()
