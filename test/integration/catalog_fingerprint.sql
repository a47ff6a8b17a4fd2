-- Everything the sp_users extension puts in a database's catalog, one sorted line per fact, so two
-- databases (a fresh install and an upgraded one) can be compared with diff. OIDs and attnums
-- never appear: an upgrade may drop and re-add things in another order.
WITH ext AS (
    SELECT e.oid, e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'sp_users'
), member AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), tbl AS (
    SELECT c.oid, c.oid::pg_catalog.regclass::text AS name FROM pg_catalog.pg_class c, member m
     WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.objid = c.oid
), fact(line) AS (
    -- \dx+ sp_users: the members
    SELECT 'member ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid) FROM member m
    UNION ALL
    SELECT 'extension ' || e.extversion || ' relocatable=' || e.extrelocatable || ' schema=' || e.extnamespace::pg_catalog.regnamespace::text
      FROM pg_catalog.pg_extension e WHERE e.extname = 'sp_users'
    UNION ALL -- tables pg_dump dumps, with their filters
    SELECT 'config ' || c.cfg::pg_catalog.regclass::text || ' ' || coalesce(c.cond, '')
      FROM pg_catalog.pg_extension e,
           LATERAL ROWS FROM (pg_catalog.unnest(e.extconfig), pg_catalog.unnest(e.extcondition)) AS c(cfg, cond)
     WHERE e.extname = 'sp_users'
    UNION ALL -- functions and procedures: whole definition, ACL, comment
    SELECT 'function ' || p.oid::pg_catalog.regprocedure::text || E'\n' || pg_catalog.pg_get_functiondef(p.oid)
           || E'\n acl ' || coalesce(p.proacl::text, 'default') || E'\n owner ' || p.proowner::pg_catalog.regrole::text
           || E'\n comment ' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '<none>')
      FROM pg_catalog.pg_proc p, member m
     WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid
    UNION ALL -- relations: kind, options, ACL, comment
    SELECT 'relation ' || t.name || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
           || ' options=' || coalesce(c.reloptions::text, '') || ' rls=' || c.relrowsecurity
           || ' acl=' || coalesce(c.relacl::text, 'default') || ' owner=' || c.relowner::pg_catalog.regrole::text
           || ' comment=' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '<none>')
      FROM tbl t JOIN pg_catalog.pg_class c ON c.oid = t.oid
    UNION ALL -- columns, in their visible order
    SELECT 'column ' || t.name || ' #' || pg_catalog.row_number() OVER (PARTITION BY t.oid ORDER BY a.attnum) || ' ' || a.attname
           || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
           || ' generated=' || a.attgenerated::text || ' identity=' || a.attidentity::text
           || ' collation=' || coalesce(NULLIF(a.attcollation, 0)::pg_catalog.regcollation::text, '-')
           || ' acl=' || coalesce(a.attacl::text, 'default')
           || ' comment=' || coalesce(pg_catalog.col_description(t.oid, a.attnum), '<none>')
      FROM tbl t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = t.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'constraint ' || t.name || ' ' || co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid)
           || ' deferrable=' || co.condeferrable || ' validated=' || co.convalidated
      FROM tbl t JOIN pg_catalog.pg_constraint co ON co.conrelid = t.oid
    UNION ALL
    SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid) || ' options=' || coalesce(ic.reloptions::text, '')
           || ' comment=' || coalesce(pg_catalog.obj_description(i.indexrelid, 'pg_class'), '<none>')
      FROM tbl t JOIN pg_catalog.pg_index i ON i.indrelid = t.oid JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    UNION ALL
    SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(tg.oid) || ' enabled=' || tg.tgenabled::text
      FROM tbl t JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal
    UNION ALL
    SELECT 'policy ' || t.name || ' ' || po.polname || ' ' || po.polcmd::text || ' ' || coalesce(pg_catalog.pg_get_expr(po.polqual, po.polrelid), '')
      FROM tbl t JOIN pg_catalog.pg_policy po ON po.polrelid = t.oid
    UNION ALL -- sequences: their parameters (not their position)
    SELECT 'sequence ' || s.seqrelid::pg_catalog.regclass::text || ' ' || s.seqtypid::pg_catalog.regtype::text || ' ' || s.seqstart
           || ' ' || s.seqincrement || ' ' || s.seqmin || ' ' || s.seqmax || ' ' || s.seqcache || ' ' || s.seqcycle
      FROM tbl t JOIN pg_catalog.pg_sequence s ON s.seqrelid = t.oid
    UNION ALL -- types: enum labels in their order, ACL, comment
    SELECT 'type ' || ty.oid::pg_catalog.regtype::text || ' kind=' || ty.typtype::text
           || ' labels=' || coalesce((SELECT pg_catalog.string_agg(en.enumlabel, ',' ORDER BY en.enumsortorder)
                                        FROM pg_catalog.pg_enum en WHERE en.enumtypid = ty.oid), '')
           || ' acl=' || coalesce(ty.typacl::text, 'default')
           || ' comment=' || coalesce(pg_catalog.obj_description(ty.oid, 'pg_type'), '<none>')
      FROM pg_catalog.pg_type ty, member m
     WHERE m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = ty.oid
    UNION ALL -- event triggers: event, tags, function, enabled
    SELECT 'event trigger ' || et.evtname || ' on ' || et.evtevent || ' tags=' || coalesce(et.evttags::text, '')
           || ' function=' || et.evtfoid::pg_catalog.regprocedure::text || ' enabled=' || et.evtenabled::text
           || ' owner=' || et.evtowner::pg_catalog.regrole::text
      FROM pg_catalog.pg_event_trigger et, member m
     WHERE m.classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass AND m.objid = et.oid
    UNION ALL -- the schema
    SELECT 'schema ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, 'default')
           || ' comment=' || coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '<none>')
      FROM pg_catalog.pg_namespace n, ext WHERE n.oid = ext.extnamespace
)
SELECT line FROM fact ORDER BY line COLLATE "C";
