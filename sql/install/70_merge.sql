-- Merges. The work is C++ (src/pg/merge.cpp + src/core/merge_plan): catalog discovery of every
-- column that holds a user id, ordered locking, row moves, collision policy.

CREATE FUNCTION sp_users._merge(source uuid, target uuid, require_anonymous boolean,
                                OUT sessions bigint, OUT total_rows bigint, OUT tables jsonb)
AS 'MODULE_PATHNAME', 'sp_users_merge'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION sp_users._merge(uuid, uuid, boolean) IS 'Internal: the C++ merge behind merge_users and promote_anonymous.';

CREATE FUNCTION sp_users.merge_users(source uuid, target uuid, OUT sessions bigint, OUT total_rows bigint, OUT tables jsonb)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM sp_users._merge($1, $2, false) $$;
COMMENT ON FUNCTION sp_users.merge_users(uuid, uuid) IS
'Moves every row that points at source to target — in every table of the database with a single-column foreign key to sp_users.users(id), whatever its schema, and in every column registered with register_user_reference — then deletes source, in one transaction. Both users are locked in id order first, tables are processed in a fixed order, so concurrent merges cannot deadlock each other. When a moved row would violate a unique index that has the user column as a key column (the target already has its counterpart; partial indexes, expression keys and NULLS NOT DISTINCT included), the target''s row is kept and the source''s is deleted, counted under tables->''dropped_duplicates''. Returns sessions moved, total rows moved, and tables: {"schema.table.column": rows moved} (zeros included). Source = target raises 22023; a missing (or deleted) user P0002.';

CREATE FUNCTION sp_users.promote_anonymous(source uuid, target uuid, OUT sessions bigint, OUT total_rows bigint, OUT tables jsonb)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM sp_users._merge($1, $2, true) $$;
COMMENT ON FUNCTION sp_users.promote_anonymous(uuid, uuid) IS
'merge_users for the sign-up case: moves an anonymous visitor''s sessions and data to the account it registered (or logged in) as. Raises 22023 "user ... is not anonymous; use an explicit admin merge instead" unless source has role anonymous.';

CREATE FUNCTION sp_users.register_user_reference(tbl regclass, col name) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        PERFORM sp_users._fail('22023', 'tbl and col must not be NULL');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped) THEN
        PERFORM sp_users._fail('42703', format('column %s does not exist in table %s', col, tbl));
    END IF;
    INSERT INTO sp_users.user_references (tbl, col) VALUES (tbl, col) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION sp_users.register_user_reference(regclass, name) IS
'Registers a column that holds a user id without a foreign key (any type a uuid can be cast to and from, e.g. uuid or text), so merges move it too. Idempotent; 42703 when the column does not exist.';

CREATE FUNCTION sp_users.unregister_user_reference(tbl regclass, col name) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ DELETE FROM sp_users.user_references r WHERE r.tbl = $1 AND r.col = $2 $$;
COMMENT ON FUNCTION sp_users.unregister_user_reference(regclass, name) IS 'Forgets a registered user-id column (no-op when it was not registered).';
