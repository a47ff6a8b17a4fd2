-- Scale-out on Citus (docs/scaling.md). Citus is optional: nothing here runs, and no Citus name is
-- resolved, unless the citus extension exists in the database.

-- Citus runs a statement on a table it manages by deparsing it and parsing the text again on the
-- node holding the placement — also in this very backend, under the caller's search_path — and
-- its deparser leaves pg_catalog names unqualified. The definer functions of the request path carry
-- no SET search_path (it costs a quarter of a cheap call; every name in them is qualified), so on
-- a Citus node a caller's look-alike now() or count() would run with the owner's rights. This pins
-- search_path on every definer function that has none; distribute() runs it on every node.
CREATE FUNCTION sp_users._pin_search_paths() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f regprocedure;
    pinned integer := 0;
BEGIN
    FOR f IN SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace
                AND p.prosecdef
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) c(setting)
                                 WHERE c.setting OPERATOR(pg_catalog.~~) 'search\_path=%')
    LOOP
        EXECUTE pg_catalog.format('ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp', f);
        pinned := pinned OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN pinned;
END
$$;
COMMENT ON FUNCTION sp_users._pin_search_paths() IS
'Internal (sp_users.distribute(), on every Citus node): gives every SECURITY DEFINER function of sp_users without a SET search_path the setting search_path = pg_catalog, pg_temp, because Citus re-parses the statements it routes under the caller''s search_path. Returns how many it changed.';

CREATE FUNCTION sp_users.distribute()
RETURNS TABLE (relation regclass, placement text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Citus copies the triggers of banned_ips onto its placements only when asked to; they keep
-- every node's ban set exact (the trigger functions accept the placements of their table).
SET citus.enable_unsafe_triggers = on
AS $$
DECLARE
    failures text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'sp_users.distribute() needs Citus'
            USING ERRCODE = '0A000',
                  HINT = 'Run it on a Citus coordinator, after CREATE EXTENSION citus there. On a single server sp_users needs no distribution.';
    END IF;
    -- The coordinator must be in Citus' metadata (group 0): reference tables then have a placement
    -- on it, which its ban set reads.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n WHERE n.groupid OPERATOR(pg_catalog.=) 0) THEN
        RAISE EXCEPTION 'sp_users.distribute() must run on a Citus coordinator that is in the Citus metadata'
            USING ERRCODE = '0A000',
                  HINT = 'On the coordinator, run SELECT citus_set_coordinator_host(''<its host>'', <its port>); first.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'sp_users.distribute() must run on the Citus coordinator, not on a worker'
            USING ERRCODE = '0A000', HINT = 'Connect to the coordinator and call it there.';
    END IF;
    -- Definer functions pinned here and on every worker (idempotent; workers added later get theirs
    -- when distribute() runs again).
    PERFORM sp_users._pin_search_paths();
    SELECT pg_catalog.string_agg(r.nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) r.nodeport OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) r.result, '; ')
      INTO failures
      FROM pg_catalog.run_command_on_workers('SELECT sp_users._pin_search_paths()') r
     WHERE NOT r.success;
    IF failures IS NOT NULL THEN
        RAISE EXCEPTION 'sp_users.distribute() could not prepare every worker: %', failures
            USING ERRCODE = '55000', HINT = 'sp_users must be installed on every worker (Citus creates it there with CREATE EXTENSION on the coordinator).';
    END IF;
    -- Bans: a reference table, on every node. Read on every request, small, written rarely: each
    -- node answers is_banned from its own placement, with no network hop.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'sp_users.banned_ips'::pg_catalog.regclass) THEN
        PERFORM pg_catalog.create_reference_table('sp_users.banned_ips');
        -- The rows now live in the placements; the coordinator's own table is an empty shell.
        PERFORM pg_catalog.truncate_local_data_after_distributing_table('sp_users.banned_ips');
    END IF;
    -- A worker added since has no placement until Citus copies one: now, not at its first use.
    PERFORM pg_catalog.replicate_reference_tables();
    RETURN QUERY
        SELECT c.oid::pg_catalog.regclass,
               CASE WHEN p.logicalrelid IS NULL THEN 'coordinator'
                    WHEN p.partmethod OPERATOR(pg_catalog.=) 'n' AND p.repmodel OPERATOR(pg_catalog.=) 't' THEN 'reference'
                    WHEN p.partmethod OPERATOR(pg_catalog.=) 'n' THEN 'coordinator (Citus local table)'
                    ELSE 'distributed' END
          FROM pg_catalog.pg_class c
          LEFT JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) c.oid
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'sp_users'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p'])
           AND c.relname OPERATOR(pg_catalog.!~) '_[0-9]+$'
         ORDER BY c.relname;
END
$$;
COMMENT ON FUNCTION sp_users.distribute() IS
'Citus: run on the coordinator (in the Citus metadata) as the extension owner or a superuser. Makes banned_ips a reference table (a placement on every node, so is_banned, get_ban and list_active_bans answer from any node, each node''s ban set following its placement); the other tables stay on the coordinator. Idempotent; keeps the data. Also pins search_path on every definer function on every node (Citus re-parses routed statements under the caller''s search_path); run it again after adding a node or ALTER EXTENSION sp_users UPDATE. Returns each sp_users table and where it lives. 0A000 with a HINT without Citus, on a worker, or when the coordinator is not in the Citus metadata.';
