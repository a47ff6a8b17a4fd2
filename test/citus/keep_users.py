"""distribute(distribute_users => false): users stay on the coordinator, for applications whose own
tables keep foreign keys to sp_users.users(id) (Citus keeps none from a coordinator table to a
distributed one). Sessions are split into shards; the foreign key from sessions to users is
replaced by a lock in start_session and two triggers on users. Runs in its own database of the
cluster (SP_USERS_CITUS_DB), set up by test/integration/citus.sh.
argv: socket dir, coordinator port, worker ports."""
from cluster import PORTS, check, connect, error, finish, one, rows

coord = connect(PORTS[0])
rows(coord, "CREATE SCHEMA shop")
rows(coord, "CREATE TABLE shop.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "user_id uuid NOT NULL REFERENCES sp_users.users (id) ON DELETE CASCADE)")
state, msg = error(coord, "SELECT * FROM sp_users.distribute()")
check(state == "0A000" and "shop.orders" in msg, f"distribute() refuses to split users while a table of yours references them, naming it ({state} {msg})")
layout = dict(rows(coord, "SELECT relation::text, placement FROM sp_users.distribute(distribute_users => false)"))
check(layout.get("sp_users.users") == "coordinator" and layout.get("sp_users.user_sessions") == "distributed"
      and layout.get("sp_users.user_emails") == "coordinator",
      f"distribute(distribute_users => false): users on the coordinator, sessions split ({layout.get('sp_users.users')}, {layout.get('sp_users.user_sessions')})")
check(one(coord, "SELECT count(*) FROM pg_constraint WHERE conname IN ('users_email_key', 'users_name_key')") == 2,
      "users keeps its unique keys on email and name")

buyer = one(coord, "SELECT id FROM sp_users.create_user('buyer', 'buyer@example.com')")
other = one(coord, "SELECT id FROM sp_users.create_anonymous('keep-fp')")
rows(coord, "INSERT INTO shop.orders (user_id) VALUES (%s), (%s)", (other, other))
rows(coord, "SELECT sp_users.start_session(%s, 'keep-' || i) FROM generate_series(1, 6) i", (other,))
m = rows(coord, "SELECT sessions, tables->>'shop.orders.user_id' FROM sp_users.promote_anonymous(%s, %s)", (other, buyer))
check(m == [(6, "2")], f"a merge moves the sessions from their shards and the application's orders ({m})")
state, _ = error(coord, "SELECT sp_users.create_user('buyer2', 'BUYER@example.com')")
check(state == "23505", f"a taken email: 23505 from the coordinator's unique index ({state})")
held = one(coord, "SELECT id FROM sp_users.create_user('held', 'held@example.com')")
rows(coord, "SELECT sp_users.start_session(%s, 'keep-held')", (held,))
state, msg = error(coord, "UPDATE sp_users.users SET id = gen_random_uuid() WHERE id = %s", (held,))
check(state == "23503" and "user_sessions_user_id_fkey" in msg, f"changing the id of a user with sessions: 23503 as on one server ({state} {msg})")
rows(coord, "SELECT sp_users.delete_user(%s)", (held,))
rows(coord, "DELETE FROM sp_users.users WHERE id = %s", (buyer,))
left = rows(coord, "SELECT count(*), count(user_id) FROM sp_users.user_sessions WHERE session_id LIKE 'keep-%%' AND session_id <> 'keep-held'")
orders = one(coord, "SELECT count(*) FROM shop.orders")
check(left == [(6, 0)] and orders == 0, f"a direct DELETE of the user: its sessions stay with user_id NULL, its orders cascade away ({left}, {orders})")
check(one(coord, "SELECT count(*) FROM sp_users.users") == 0 and
      dict(rows(coord, "SELECT relation::text, placement FROM sp_users.distribute(false)")) == layout,
      "distribute(false) again: the same layout")
finish("users kept on the coordinator")
