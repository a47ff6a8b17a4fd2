-- Users: the main flows as a user sees them in psql.
CREATE EXTENSION sp_users;
\set VERBOSITY terse

SELECT name, email, full_name, display_name, status, email_verified, roles
  FROM sp_users.create_user('alice', '  Alice@Example.COM ', 'Alice Liddell');
SELECT name, email, display_name FROM sp_users.create_user('bob', 'bob@example.com', 'Bob', 'bobby');
SELECT name, email FROM sp_users.create_user('carol_', 'carol@example.com', 'Carol 100%');
SELECT name, email FROM sp_users.create_user('Zoë', 'zoe@example.com', 'Zoë Ünicode');

-- A taken email or name is 23505 with the SPEC message.
SELECT sp_users.create_user('alice2', 'ALICE@example.com');
SELECT sp_users.create_user('alice', 'other@example.com');
-- ... while create_user_if_absent returns no row.
SELECT count(*) AS created FROM sp_users.create_user_if_absent('alice2', 'alice@example.com');
SELECT name FROM sp_users.create_user_if_absent('dave', 'dave@example.com');

-- Finders return zero or one row.
SELECT name FROM sp_users.find_by_email('  ALICE@EXAMPLE.COM');
SELECT name FROM sp_users.find_by_name('Zoë');
SELECT * FROM sp_users.find_by_email('nobody@example.com');
SELECT name FROM sp_users.find_user('bob@example.com');
SELECT name FROM sp_users.find_user('bob');
SELECT u.name FROM sp_users.find_by_name('bob') b, sp_users.find_user(b.id::text) u;
SELECT u.name FROM sp_users.find_by_name('bob') b, sp_users.find_user(upper(replace(b.id::text, '-', ''))) u;
SELECT name FROM sp_users.find_first_user();

-- Search: case-insensitive substring; % and _ are plain characters.
SELECT name FROM sp_users.search_users('ALI');
SELECT name FROM sp_users.search_users('%');
SELECT name FROM sp_users.search_users('_');
SELECT name FROM sp_users.search_users('ünic');

-- Updates.
SELECT name, email, email_verified FROM sp_users.update_email_verified((SELECT id FROM sp_users.find_by_name('bob')), true);
SELECT name, email, email_verified FROM sp_users.update_email((SELECT id FROM sp_users.find_by_name('bob')), ' Robert@Example.com');
SELECT sp_users.update_email((SELECT id FROM sp_users.find_by_name('bob')), 'alice@example.com');
SELECT name, full_name, display_name FROM sp_users.update_full_name((SELECT id FROM sp_users.find_by_name('bob')), 'Robert');
SELECT name, email, full_name, display_name, status
  FROM sp_users.update_user((SELECT id FROM sp_users.find_by_name('dave')), 'dave@example.org', 'Dave', 'D', 'inactive');
SELECT u.updated_at > u.created_at AS updated_at_moved FROM sp_users.find_by_name('dave') u;

-- Counting, listing, filters.
SELECT sp_users.count_users();
SELECT count(*) FROM sp_users.list_users(2, 1);
SELECT name FROM sp_users.list_by_filter(status => 'inactive');
SELECT sp_users.list_users(-1);
SELECT count(*) FROM sp_users.list_users(1000);

-- Soft delete hides a user everywhere; hard delete removes the row.
SELECT sp_users.bulk_delete(ARRAY[(SELECT id FROM sp_users.find_by_name('dave'))]);
SELECT count(*) AS dave_visible FROM sp_users.find_by_name('dave');
SELECT sp_users.count_users();
SELECT sp_users.bulk_update_status(ARRAY(SELECT id FROM sp_users.list_all_users()), 'suspended');
SELECT name, status FROM sp_users.list_all_users() ORDER BY name;
SELECT sp_users.delete_user((SELECT id FROM sp_users.find_by_name('carol_')));
SELECT sp_users.delete_user('00000000-0000-0000-0000-000000000000');

-- Export: one JSON object per user with every column.
SELECT e->>'name' AS name, e ? 'email_verified' AND e ? 'updated_at' AND e ? 'roles' AS all_columns
  FROM sp_users.export_users() e ORDER BY 1;

-- The email CHECK holds for direct writes too.
INSERT INTO sp_users.users (name, email) VALUES ('eve', 'Eve@Example.com');
DROP EXTENSION sp_users;
