-- pgTAP: a hostile schema first on the caller's search_path, with look-alikes of lower(), btrim(),
-- now(), = and >, changes nothing the extension does: they are never called.
BEGIN;
SELECT no_plan();

CREATE SCHEMA evil;
CREATE TABLE evil.calls (what text);
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO evil.calls VALUES ('lower'); RETURN 'hijacked@evil'; END $$;
CREATE FUNCTION evil.btrim(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO evil.calls VALUES ('btrim'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN INSERT INTO evil.calls VALUES ('now'); RETURN 'infinity'; END $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO evil.calls VALUES ('='); RETURN true; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.ts_gt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO evil.calls VALUES ('>'); RETURN true; END $$;
CREATE OPERATOR evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_gt);
CREATE FUNCTION evil.uuid_eq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO evil.calls VALUES ('uuid ='); RETURN true; END $$;
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.uuid_eq);

-- Under the hostile path only sp_users runs; results are recorded as text and asserted afterwards
-- (pgTAP itself would be hijacked by the look-alike = ).
CREATE TEMP TABLE got (n serial, label text, value text);
SET LOCAL search_path = evil, pg_catalog, public;
INSERT INTO pg_temp.got (label, value) VALUES ('create_user normalises with the real lower/btrim', (sp_users.create_user('Mallory', '  Mallory@Example.COM ')).email);
INSERT INTO pg_temp.got (label, value) VALUES ('find_by_email compares with the real =', (SELECT pg_catalog.count(*)::text FROM sp_users.find_by_email('nobody@example.com')));
INSERT INTO pg_temp.got (label, value) VALUES ('find_by_email still finds', (SELECT name FROM sp_users.find_by_email('MALLORY@example.com')));
INSERT INTO pg_temp.got (label, value) VALUES ('find_by_id uses the real uuid =', (SELECT pg_catalog.count(*)::text FROM sp_users.find_by_id('00000000-0000-0000-0000-000000000000')));
SELECT sp_users.start_session((SELECT id FROM sp_users.find_by_name('Mallory')), 'm1', expires_in => '1 hour');
UPDATE sp_users.user_sessions SET expires_at = pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 second' WHERE session_id OPERATOR(pg_catalog.=) 'm1';
INSERT INTO pg_temp.got (label, value) VALUES ('expiry checked with the real now() and >', sp_users.session_exists('m1')::text);
SELECT sp_users.ban_ip('203.0.113.50', 'x', '1 hour');
INSERT INTO pg_temp.got (label, value) VALUES ('is_banned is not fooled', sp_users.is_banned('203.0.113.51')::text);
INSERT INTO pg_temp.got (label, value) VALUES ('is_banned finds the ban', sp_users.is_banned('203.0.113.50')::text);
INSERT INTO pg_temp.got (label, value) VALUES ('search_users is not fooled', (SELECT pg_catalog.count(*)::text FROM sp_users.search_users('zzz')));
INSERT INTO pg_temp.got (label, value) VALUES ('get_stats is not fooled', (sp_users.get_stats()).total::text);
INSERT INTO pg_temp.got (label, value) VALUES ('listings are not fooled', (SELECT pg_catalog.count(*)::text FROM sp_users.list_active_bans()));
INSERT INTO pg_temp.got (label, value) VALUES ('count_old_anonymous is not fooled', sp_users.count_old_anonymous(0)::text);
RESET search_path;

SELECT is(value, expected, label)
  FROM pg_temp.got JOIN (VALUES
        ('create_user normalises with the real lower/btrim', 'mallory@example.com'),
        ('find_by_email compares with the real =', '0'),
        ('find_by_email still finds', 'Mallory'),
        ('find_by_id uses the real uuid =', '0'),
        ('expiry checked with the real now() and >', 'false'),
        ('is_banned is not fooled', 'false'),
        ('is_banned finds the ban', 'true'),
        ('search_users is not fooled', '0'),
        ('get_stats is not fooled', '1'),
        ('listings are not fooled', '1'),
        ('count_old_anonymous is not fooled', '0')) AS e(l, expected) ON e.l = got.label
 ORDER BY n;
SELECT is((SELECT count(*)::int FROM pg_temp.got), 11, 'every check ran');
SELECT is((SELECT count(*)::int FROM evil.calls), 0, 'no look-alike was ever called');

SELECT * FROM finish();
ROLLBACK;
