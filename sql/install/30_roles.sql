-- Roles and administration.

CREATE FUNCTION sp_users.get_roles(id uuid) RETURNS sp_users.user_role[]
AS 'MODULE_PATHNAME', 'sp_users_get_roles'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION sp_users.get_roles(uuid) IS 'The roles of a user; P0002 when it does not exist.';

CREATE FUNCTION sp_users.assign_role(id uuid, role sp_users.user_role) RETURNS sp_users.users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        PERFORM sp_users._fail('22023', 'role must not be NULL');
    END IF;
    RETURN sp_users.assign_roles(id, sp_users.get_roles(id) || role);
END
$$;
COMMENT ON FUNCTION sp_users.assign_role(uuid, sp_users.user_role) IS 'Adds a role (no-op when already held); P0002 when the user does not exist.';

CREATE FUNCTION sp_users.revoke_role(id uuid, role sp_users.user_role) RETURNS sp_users.users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remaining sp_users.user_role[];
BEGIN
    IF role IS NULL THEN
        PERFORM sp_users._fail('22023', 'role must not be NULL');
    END IF;
    remaining := array_remove(sp_users.get_roles(id), role);
    IF cardinality(remaining) = 0 THEN
        PERFORM sp_users._fail('22023', format('cannot revoke role %s: it is the last role of user %s', role, id),
                               'Assign another role first; every user holds at least one role.');
    END IF;
    RETURN sp_users.assign_roles(id, remaining);
END
$$;
COMMENT ON FUNCTION sp_users.revoke_role(uuid, sp_users.user_role) IS 'Removes a role (no-op when not held); revoking the last role raises 22023; P0002 when the user does not exist.';

CREATE FUNCTION sp_users.list_users_by_role(role text) RETURNS SETOF sp_users.users
LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role <> ALL (enum_range(NULL::sp_users.user_role)::text[]) THEN
        RETURN;
    END IF;
    RETURN QUERY -- PL/pgSQL: Citus (sp_users.distribute()) plans no statement of a SQL function with parameters
    SELECT u.* FROM sp_users.users u
     WHERE u.roles @> ARRAY[role::sp_users.user_role]
       AND u.status <> 'deleted'
     ORDER BY u.created_at DESC, u.id;
END
$$;
COMMENT ON FUNCTION sp_users.list_users_by_role(text) IS 'Users holding the role named by the text, newest first; an unknown role name returns no rows (no error).';

CREATE FUNCTION sp_users._change_admin(identifier text, promote boolean) RETURNS sp_users.admin_outcome
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target sp_users.users;
    updated sp_users.users;
    is_admin boolean;
BEGIN
    SELECT * INTO target FROM sp_users.find_user(identifier) LIMIT 1;
    IF target.id IS NULL THEN
        RETURN ROW('user_not_found', NULL, NULL)::sp_users.admin_outcome;
    END IF;
    -- Lock the row so two concurrent promotions report one 'promoted' and one 'already_admin'.
    SELECT * INTO target FROM sp_users.users u WHERE u.id = target.id AND u.status <> 'deleted' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ROW('user_not_found', NULL, NULL)::sp_users.admin_outcome;
    END IF;
    is_admin := target.roles @> ARRAY['admin'::sp_users.user_role];
    IF promote THEN
        IF is_admin THEN
            RETURN ROW('already_admin', target.id, target.roles)::sp_users.admin_outcome;
        END IF;
        updated := sp_users.assign_roles(target.id,
            array_remove(target.roles, 'anonymous') || ARRAY['admin', 'user']::sp_users.user_role[]);
        RETURN ROW('promoted', updated.id, updated.roles)::sp_users.admin_outcome;
    END IF;
    IF NOT is_admin THEN
        RETURN ROW('not_admin', target.id, target.roles)::sp_users.admin_outcome;
    END IF;
    updated := sp_users.assign_roles(target.id, array_remove(target.roles, 'admin') || 'user'::sp_users.user_role);
    RETURN ROW('demoted', updated.id, updated.roles)::sp_users.admin_outcome;
END
$$;
COMMENT ON FUNCTION sp_users._change_admin(text, boolean) IS 'Internal: the shared body of promote_to_admin and demote_from_admin.';

CREATE FUNCTION sp_users.promote_to_admin(identifier text) RETURNS sp_users.admin_outcome
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._change_admin($1, true) $$;
COMMENT ON FUNCTION sp_users.promote_to_admin(text) IS
'Gives admin (and user) to the user found by id, email or name (see find_user); an anonymous user loses role anonymous. Outcome: promoted, already_admin or user_not_found.';

CREATE FUNCTION sp_users.demote_from_admin(identifier text) RETURNS sp_users.admin_outcome
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sp_users._change_admin($1, false) $$;
COMMENT ON FUNCTION sp_users.demote_from_admin(text) IS
'Removes admin and makes sure the user keeps role user. Outcome: demoted, not_admin or user_not_found.';
