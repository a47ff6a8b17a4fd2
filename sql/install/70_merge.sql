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
'Moves every row that points at source to target — in every table of the database with a single-column foreign key to sp_users.users(id), whatever its schema, and in every column registered with register_user_reference — then deletes source, in one transaction. Both users are locked in id order first, tables are processed in a fixed order, so concurrent merges cannot deadlock each other. When a moved row would violate a unique index that has the user column as a key column (the target already has its counterpart; partial indexes, expression keys and NULLS NOT DISTINCT included), the target''s row is kept and the source''s is deleted, counted under tables->''dropped_duplicates''. Returns sessions moved, total rows moved, and tables: {"schema.table.column": rows moved} (zeros included). Per column, set_merge_policy makes a merge delete the source''s rows instead (counted under tables->''deleted_with_source'') or refuse while there are any (keep: 2BP01). Source = target raises 22023; a missing (or deleted) user P0002.';

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

-- Merge policies (issue 16): what a merge does with the source's rows, per referencing column.
CREATE TABLE sp_users.merge_policies (
    tbl     regclass NOT NULL,
    col     name NOT NULL,
    policy  text NOT NULL,
    PRIMARY KEY (tbl, col),
    CONSTRAINT merge_policies_policy_check CHECK (policy OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'keep']))
);
COMMENT ON TABLE sp_users.merge_policies IS 'Merge policy per column that holds a user id (by foreign key or registered), when it is not move: delete (the source''s rows go with the source: credentials such as OAuth links, WebAuthn or API keys) or keep (a merge is refused while the source has rows there). Set with set_merge_policy.';
-- Dumped except the row the extension itself inserts (sp_users.account_failures), which CREATE EXTENSION makes.
SELECT pg_catalog.pg_extension_config_dump('sp_users.merge_policies', 'WHERE tbl::text <> ''sp_users.account_failures''');

CREATE FUNCTION sp_users.set_merge_policy(tbl regclass, col name, policy text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attnum smallint;
BEGIN
    IF tbl IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'tbl and col must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF policy IS NULL OR policy NOT IN ('move', 'delete', 'keep') THEN
        RAISE EXCEPTION 'policy must be move, delete or keep (got %)', coalesce(policy, 'NULL') USING ERRCODE = '22023';
    END IF;
    -- 'move' is the default: it only removes the row, also one whose column is gone (renamed,
    -- dropped, or the table created again), which merges refuse to run with.
    IF policy = 'move' THEN
        DELETE FROM sp_users.merge_policies p WHERE p.tbl = set_merge_policy.tbl AND p.col = set_merge_policy.col;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    SELECT a.attnum INTO attnum FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % does not exist in table %', col, tbl USING ERRCODE = '42703';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint c
                    WHERE c.contype = 'f' AND c.conrelid = tbl AND c.confrelid = 'sp_users.users'::regclass AND c.conkey = ARRAY[attnum])
       AND NOT EXISTS (SELECT 1 FROM sp_users.user_references r WHERE r.tbl = set_merge_policy.tbl AND r.col = set_merge_policy.col)
       AND NOT (tbl = ANY (ARRAY['sp_users.user_sessions'::regclass, 'sp_users.account_failures'::regclass]) AND col = 'user_id') THEN -- followed without their keys on Citus
        RAISE EXCEPTION 'column % of table % holds no user id a merge follows', col, tbl USING ERRCODE = '22023',
            HINT = 'A merge follows single-column foreign keys to sp_users.users(id) and columns registered with sp_users.register_user_reference.';
    END IF;
    IF policy = 'move' THEN
        DELETE FROM sp_users.merge_policies p WHERE p.tbl = set_merge_policy.tbl AND p.col = set_merge_policy.col;
    ELSE
        INSERT INTO sp_users.merge_policies AS p VALUES (tbl, col, policy)
        ON CONFLICT ON CONSTRAINT merge_policies_pkey DO UPDATE SET policy = EXCLUDED.policy;
    END IF;
END
$$;
COMMENT ON FUNCTION sp_users.set_merge_policy(regclass, name, text) IS
'Sets what merge_users and promote_anonymous do with the source''s rows in a column that holds a user id (a single-column foreign key to sp_users.users(id), or a column registered with register_user_reference): move (the default: they pass to the target), delete (they are deleted with the source and counted under tables->''deleted_with_source'': credentials such as OAuth links, WebAuthn or API keys, device certificates) or keep (the merge is refused with 2BP01 while the source has rows there). 42703 for a missing column, 22023 for a column no merge follows or another policy. Setting move removes the policy, also one whose column no longer exists (merges refuse to run while such an entry remains).';

CREATE FUNCTION sp_users.list_user_references()
RETURNS TABLE (tbl regclass, col name, found_by text, policy text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.tbl, x.col, string_agg(x.found_by, ', ' ORDER BY x.found_by),
           coalesce((SELECT p.policy FROM sp_users.merge_policies p WHERE p.tbl = x.tbl AND p.col = x.col), 'move')
      FROM (SELECT c.conrelid::regclass AS tbl, a.attname AS col, 'foreign key' AS found_by
              FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             WHERE c.contype = 'f' AND c.confrelid = 'sp_users.users'::regclass AND cardinality(c.conkey) = 1 AND c.conparentid = 0
            UNION ALL
            SELECT r.tbl, r.col, 'registered' FROM sp_users.user_references r
            UNION ALL -- on Citus, where the foreign keys cannot exist
            SELECT 'sp_users.user_sessions'::regclass, 'user_id', 'sp_users.distribute()' WHERE sp_users._sessions_distributed()
            UNION ALL
            SELECT 'sp_users.account_failures'::regclass, 'user_id', 'sp_users.distribute()' WHERE sp_users._users_distributed()) x
     GROUP BY x.tbl, x.col
     ORDER BY x.tbl::text, x.col
$$;
COMMENT ON FUNCTION sp_users.list_user_references() IS 'Every column a merge follows (found by a foreign key to sp_users.users(id) and/or registered; on Citus sp_users.user_sessions.user_id and, with users distributed, sp_users.account_failures.user_id, whose foreign keys sp_users.distribute() replaces), with its merge policy (move, delete or keep).';
