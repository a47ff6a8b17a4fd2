-- pgTAP: a hostile schema first on the caller's search_path changes nothing the extension does.
-- The request-path functions carry no SET search_path (it costs a quarter of a cheap call), so
-- every name in them must be schema-qualified. This test puts look-alikes of every function,
-- operator and aggregate they use in a schema first on the path, and temp tables named like the
-- sp_users tables and like the types they use (pg_temp is searched first for relations and
-- types), then calls every rewritten function in four rounds: first under the hostile path (the
-- PL/pgSQL bodies are compiled there), then under the normal path, then under the hostile path
-- again (the cached plans were made under another path), then after the plans were invalidated
-- (ANALYZE, a new index, ALTER TABLE). No look-alike may ever run and every answer must be true.
BEGIN;
SELECT no_plan();

CREATE SCHEMA evil;
CREATE TABLE evil.calls (what text);
CREATE FUNCTION evil.log(what text) RETURNS void LANGUAGE sql AS $$ INSERT INTO evil.calls VALUES (what) $$;
-- Functions and aggregates.
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('lower'); RETURN 'hijacked@evil'; END $$;
CREATE FUNCTION evil.btrim(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('btrim2'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.btrim(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('btrim'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('now'); RETURN 'infinity'; END $$;
CREATE FUNCTION evil.statement_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('statement_timestamp'); RETURN 'infinity'; END $$;
CREATE FUNCTION evil.strpos(text, text) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('strpos'); RETURN 1; END $$;
CREATE FUNCTION evil.replace(text, text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('replace'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('gen_random_uuid'); RETURN '00000000-0000-0000-0000-000000000000'; END $$;
CREATE FUNCTION evil.left(text, integer) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('left'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.cardinality(anyarray) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('cardinality'); RETURN 0; END $$;
CREATE FUNCTION evil.masklen(inet) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('masklen'); RETURN 0; END $$;
CREATE FUNCTION evil.count_step(bigint) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('count'); RETURN 0; END $$;
CREATE AGGREGATE evil.count(*) (SFUNC = evil.count_step, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION evil.max_step(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('max'); RETURN 'infinity'; END $$;
CREATE AGGREGATE evil.max(timestamptz) (SFUNC = evil.max_step, STYPE = timestamptz);
-- Operators, with exactly the argument types the functions compare (an exact match in an earlier
-- schema wins over pg_catalog's polymorphic or identical one).
CREATE FUNCTION evil.op(text, anyelement, anyelement) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log($1); RETURN true; END $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('text =', $1, $2) $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.uuid_eq(uuid, uuid) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('uuid =', $1, $2) $$;
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.uuid_eq);
CREATE FUNCTION evil.status_ne(sp_users.user_status, sp_users.user_status) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('status <>', $1, $2) $$;
CREATE OPERATOR evil.<> (LEFTARG = sp_users.user_status, RIGHTARG = sp_users.user_status, FUNCTION = evil.status_ne);
CREATE FUNCTION evil.status_eq(sp_users.user_status, sp_users.user_status) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('status =', $1, $2) $$;
CREATE OPERATOR evil.= (LEFTARG = sp_users.user_status, RIGHTARG = sp_users.user_status, FUNCTION = evil.status_eq);
CREATE FUNCTION evil.ts_gt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('timestamptz >', $1, $2) $$;
CREATE OPERATOR evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_gt);
CREATE FUNCTION evil.ts_plus(timestamptz, interval) RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('timestamptz +'); RETURN 'infinity'; END $$;
CREATE OPERATOR evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = evil.ts_plus);
CREATE FUNCTION evil.iv_le(interval, interval) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('interval <=', $1, $2) $$;
CREATE OPERATOR evil.<= (LEFTARG = interval, RIGHTARG = interval, FUNCTION = evil.iv_le);
CREATE FUNCTION evil.int_lt(integer, integer) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('integer <', $1, $2) $$;
CREATE OPERATOR evil.< (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.int_lt);
CREATE FUNCTION evil.int_plus(integer, integer) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('integer +'); RETURN 0; END $$;
CREATE OPERATOR evil.+ (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.int_plus);
CREATE FUNCTION evil.int_minus(integer, integer) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('integer -'); RETURN 0; END $$;
CREATE OPERATOR evil.- (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.int_minus);
CREATE FUNCTION evil.int_gt(integer, integer) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('integer >', $1, $2) $$;
CREATE OPERATOR evil.> (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.int_gt);
CREATE FUNCTION evil.text_cat(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('text ||'); RETURN 'hijacked'; END $$;
CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_cat);
CREATE FUNCTION evil.arr_cat(text[], text) RETURNS text[] LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('text[] ||'); RETURN '{}'; END $$;
CREATE OPERATOR evil.|| (LEFTARG = text[], RIGHTARG = text, FUNCTION = evil.arr_cat);
CREATE FUNCTION evil.roles_contain(sp_users.user_role[], sp_users.user_role[]) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('roles @>', $1, $2) $$;
CREATE OPERATOR evil.@> (LEFTARG = sp_users.user_role[], RIGHTARG = sp_users.user_role[], FUNCTION = evil.roles_contain);
CREATE FUNCTION evil.inet_supeq(inet, inet) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('inet >>=', $1, $2) $$;
CREATE OPERATOR evil.>>= (LEFTARG = inet, RIGHTARG = inet, FUNCTION = evil.inet_supeq);
CREATE FUNCTION evil.text_match(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.op('text ~', $1, $2) $$;
CREATE OPERATOR evil.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_match);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT ALL ON evil.calls TO PUBLIC;

-- The fixture.
SELECT id AS mallory FROM sp_users.create_user('mallory', 'mallory@example.com', 'Mallory Evil') \gset
SELECT sp_users.start_session(:'mallory', 'm-active', '192.0.2.1', expires_in => '1 hour');
SELECT sp_users.start_session(:'mallory', 'm-expired', expires_in => '1 hour');
UPDATE sp_users.user_sessions SET expires_at = now() - interval '1 second' WHERE session_id = 'm-expired';
SELECT sp_users.ban_ip('203.0.113.50', 'exact', '1 hour');
SELECT sp_users.ban_ip('198.51.100.0/24', 'network', '1 hour');

-- One round: every rewritten function, each answer recorded as text. Written with qualified
-- names only, so the look-alikes cannot reach the test itself.
CREATE TEMP TABLE got (round integer, label pg_catalog.text, value pg_catalog.text);
CREATE FUNCTION pg_temp.round(r integer, mallory uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p pg_catalog.text := 'r' OPERATOR(pg_catalog.||) r::pg_catalog.text;
    v pg_catalog.text;
    u sp_users.users;
    s sp_users.user_sessions;
    b sp_users.banned_ips;
BEGIN
    u := sp_users.create_user(p OPERATOR(pg_catalog.||) 'x', '  ' OPERATOR(pg_catalog.||) p OPERATOR(pg_catalog.||) 'X@Example.COM ');
    INSERT INTO pg_temp.got VALUES (r, 'create_user normalises the email', u.email);
    SELECT pg_catalog.count(*)::pg_catalog.text INTO v FROM sp_users.create_user_if_absent(p OPERATOR(pg_catalog.||) 'x', 'other@example.com');
    INSERT INTO pg_temp.got VALUES (r, 'create_user_if_absent sees the taken name', v);
    INSERT INTO pg_temp.got VALUES (r, 'find_by_email', (SELECT f.name FROM sp_users.find_by_email(' MALLORY@example.com') f));
    INSERT INTO pg_temp.got VALUES (r, 'find_by_email misses', (SELECT pg_catalog.count(*)::pg_catalog.text FROM sp_users.find_by_email('nobody@example.com')));
    INSERT INTO pg_temp.got VALUES (r, 'find_by_id', (SELECT f.name FROM sp_users.find_by_id(mallory) f));
    INSERT INTO pg_temp.got VALUES (r, 'find_by_id misses', (SELECT pg_catalog.count(*)::pg_catalog.text FROM sp_users.find_by_id('00000000-0000-0000-0000-000000000000')));
    INSERT INTO pg_temp.got VALUES (r, 'find_by_name', (SELECT f.email FROM sp_users.find_by_name('mallory') f));
    INSERT INTO pg_temp.got VALUES (r, 'find_user by email', (SELECT f.name FROM sp_users.find_user('Mallory@Example.com') f));
    INSERT INTO pg_temp.got VALUES (r, 'find_user by id', (SELECT f.name FROM sp_users.find_user(mallory::pg_catalog.text) f));
    INSERT INTO pg_temp.got VALUES (r, 'find_authenticated_user', (SELECT f.name FROM sp_users.find_authenticated_user(mallory) f));
    INSERT INTO pg_temp.got VALUES (r, 'get_roles', sp_users.get_roles(mallory)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'is_temporary_anonymous', sp_users.is_temporary_anonymous(mallory)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'find_with_sessions', (SELECT f.active_sessions::pg_catalog.text FROM sp_users.find_with_sessions(mallory) f));
    INSERT INTO pg_temp.got VALUES (r, 'get_activity', (sp_users.get_activity(mallory)).session_count::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'list_users', (SELECT pg_catalog.count(*)::pg_catalog.text FROM sp_users.list_users(100, 0)));
    INSERT INTO pg_temp.got VALUES (r, 'search_users', (SELECT pg_catalog.string_agg(f.name, ',') FROM sp_users.search_users('EVIL', 10) f));
    INSERT INTO pg_temp.got VALUES (r, 'search_users misses', (SELECT pg_catalog.count(*)::pg_catalog.text FROM sp_users.search_users('zzz', 10)));
    s := sp_users.start_session(mallory, NULL, ' 192.0.2.9 ', expires_in => '1 hour');
    INSERT INTO pg_temp.got VALUES (r, 'start_session id', (s.session_id OPERATOR(pg_catalog.~~) 'sess\_%' AND pg_catalog.length(s.session_id) OPERATOR(pg_catalog.=) 37)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'start_session expiry', (s.expires_at OPERATOR(pg_catalog.<) 'infinity'::pg_catalog.timestamptz)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'start_session type and address', s.user_type OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) pg_catalog.host(s.ip_address));
    INSERT INTO pg_temp.got VALUES (r, 'start_session without a user',
        (SELECT a.user_type OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) (a.user_id IS NULL)::pg_catalog.text OPERATOR(pg_catalog.||) ' '
                OPERATOR(pg_catalog.||) pg_catalog.host(a.ip_address) FROM sp_users.start_session(NULL, NULL, ' 192.0.2.10 ') a));
    BEGIN
        PERFORM sp_users.create_user('mallory', ' Mallory@Example.com');
    EXCEPTION WHEN unique_violation THEN
        INSERT INTO pg_temp.got VALUES (r, 'create_user with a taken name and email', SQLERRM);
    END;
    INSERT INTO pg_temp.got VALUES (r, 'session_exists', sp_users.session_exists(s.session_id)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'session_exists expired', sp_users.session_exists('m-expired')::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'touch_session', sp_users.touch_session(s.session_id)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'touch_session expired', sp_users.touch_session('m-expired')::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'list_active_sessions', (SELECT pg_catalog.count(*)::pg_catalog.text FROM sp_users.list_active_sessions(mallory)));
    INSERT INTO pg_temp.got VALUES (r, 'end_session', sp_users.end_session(s.session_id)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'end_session again', sp_users.end_session(s.session_id)::pg_catalog.text);
    b := sp_users.ban_ip('192.0.2.' OPERATOR(pg_catalog.||) (100 OPERATOR(pg_catalog.+) r)::pg_catalog.text, 'r', '1 hour', session_id => 'sx');
    b := sp_users.ban_ip(pg_catalog.host(b.ip_address), 'again', '1 hour', session_id => 'sy', escalate => true);
    INSERT INTO pg_temp.got VALUES (r, 'ban_ip repeat', b.ban_count::pg_catalog.text OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) b.associated_session_ids::pg_catalog.text
                                                      OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) (b.expires_at OPERATOR(pg_catalog.<) 'infinity'::pg_catalog.timestamptz)::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'get_ban network', (SELECT f.reason FROM sp_users.get_ban('198.51.100.7') f));
    INSERT INTO pg_temp.got VALUES (r, 'get_ban misses', (SELECT pg_catalog.count(*)::pg_catalog.text FROM sp_users.get_ban('192.0.2.250')));
    INSERT INTO pg_temp.got VALUES (r, 'is_banned', sp_users.is_banned('203.0.113.50')::pg_catalog.text OPERATOR(pg_catalog.||) sp_users.is_banned('203.0.113.51')::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'list_active_bans', (SELECT pg_catalog.count(*)::pg_catalog.text FROM sp_users.list_active_bans(100)));
    INSERT INTO pg_temp.got VALUES (r, 'count_active_bans', sp_users.count_active_bans()::pg_catalog.text);
    u := sp_users.create_anonymous(' FP-' OPERATOR(pg_catalog.||) p);
    INSERT INTO pg_temp.got VALUES (r, 'create_anonymous', (u.email OPERATOR(pg_catalog.=) ('fp-' OPERATOR(pg_catalog.||) p OPERATOR(pg_catalog.||) '@anonymous.local')
                                                          AND u.name OPERATOR(pg_catalog.~) '^anonymous_[0-9a-f]{8}$')::pg_catalog.text);
    INSERT INTO pg_temp.got VALUES (r, 'create_anonymous again', ((sp_users.create_anonymous('fp-' OPERATOR(pg_catalog.||) p)).id OPERATOR(pg_catalog.=) u.id)::pg_catalog.text);
END
$$;

-- Round 1: hostile path from the first call (PL/pgSQL bodies compiled under it), with temp
-- tables shadowing the sp_users tables and the type names text, uuid and inet.
SET LOCAL search_path = evil, pg_catalog, public;
CREATE TEMP TABLE users (id int);
CREATE TEMP TABLE user_sessions (id int);
CREATE TEMP TABLE banned_ips (id int);
CREATE TEMP TABLE text (id int);
CREATE TEMP TABLE uuid (id int);
CREATE TEMP TABLE inet (id int);
SELECT pg_temp.round(1, :'mallory');
RESET search_path;
-- Round 2: the normal path (plans are made again under it).
DROP TABLE pg_temp.users, pg_temp.user_sessions, pg_temp.banned_ips, pg_temp.text, pg_temp.uuid, pg_temp.inet;
SELECT pg_temp.round(2, :'mallory');
-- Round 3: the caller switches to the hostile path; the cached plans were made under another one.
SET LOCAL search_path = evil, pg_catalog, public;
CREATE TEMP TABLE users (id int);
CREATE TEMP TABLE user_sessions (id int);
CREATE TEMP TABLE banned_ips (id int);
SELECT pg_temp.round(3, :'mallory');
-- Round 4: the plans are invalidated while the hostile path is in place.
ANALYZE sp_users.users;
CREATE INDEX search_path_test_idx ON sp_users.user_sessions (user_agent);
ALTER TABLE sp_users.banned_ips ALTER COLUMN last_offense_path SET DEFAULT 'search_path test'; -- (a change Citus also supports)
SELECT pg_temp.round(4, :'mallory');
RESET search_path;
DROP TABLE pg_temp.users, pg_temp.user_sessions, pg_temp.banned_ips;

SELECT is(g.value, e.expected, format('round %s: %s', g.round, g.label))
  FROM pg_temp.got g
  JOIN (VALUES ('create_user normalises the email', NULL),
               ('create_user_if_absent sees the taken name', '0'),
               ('find_by_email', 'mallory'), ('find_by_email misses', '0'),
               ('find_by_id', 'mallory'), ('find_by_id misses', '0'),
               ('find_by_name', 'mallory@example.com'),
               ('find_user by email', 'mallory'), ('find_user by id', 'mallory'),
               ('find_authenticated_user', 'mallory'),
               ('get_roles', '{user}'), ('is_temporary_anonymous', 'false'),
               ('find_with_sessions', NULL), ('get_activity', NULL),
               ('list_users', NULL), ('search_users', 'mallory'), ('search_users misses', '0'),
               ('start_session id', 'true'), ('start_session expiry', 'true'),
               ('start_session type and address', 'registered 192.0.2.9'),
               ('start_session without a user', 'anon true 192.0.2.10'),
               ('create_user with a taken name and email', 'user already exists with email: mallory@example.com'),
               ('session_exists', 'true'), ('session_exists expired', 'false'),
               ('touch_session', 'true'), ('touch_session expired', 'false'),
               ('list_active_sessions', NULL),
               ('end_session', 'true'), ('end_session again', 'false'),
               ('ban_ip repeat', '2 {sx,sy} true'),
               ('get_ban network', 'network'), ('get_ban misses', '0'),
               ('is_banned', 'truefalse'),
               ('list_active_bans', NULL), ('count_active_bans', NULL),
               ('create_anonymous', 'true'), ('create_anonymous again', 'true')) AS e(label, expected)
    ON e.label = g.label
 WHERE e.expected IS NOT NULL
 ORDER BY g.round, g.label;
-- Answers that depend on the round: the same law in every round.
SELECT is(g.value, 'r' || g.round || 'x@example.com', format('round %s: create_user normalises the email', g.round))
  FROM pg_temp.got g WHERE g.label = 'create_user normalises the email' ORDER BY g.round;
SELECT is(g.value, '1', format('round %s: find_with_sessions counts the active sessions (m-active; earlier rounds ended theirs)', g.round))
  FROM pg_temp.got g WHERE g.label = 'find_with_sessions' ORDER BY g.round;
SELECT is(g.value, (g.round + 1)::text, format('round %s: get_activity counts every session', g.round))
  FROM pg_temp.got g WHERE g.label = 'get_activity' ORDER BY g.round;
SELECT is(g.value, '2', format('round %s: list_active_sessions (m-active and this round''s)', g.round))
  FROM pg_temp.got g WHERE g.label = 'list_active_sessions' ORDER BY g.round;
SELECT is(g.value, (2 * g.round)::text, format('round %s: list_users', g.round))
  FROM pg_temp.got g WHERE g.label = 'list_users' ORDER BY g.round;
SELECT is(g.value, (2 + g.round)::text, format('round %s: %s', g.round, g.label))
  FROM pg_temp.got g WHERE g.label IN ('list_active_bans', 'count_active_bans') ORDER BY g.round, g.label;
SELECT is((SELECT count(DISTINCT round)::int FROM pg_temp.got), 4, 'all four rounds ran');
SELECT is((SELECT count(*)::int FROM pg_temp.got), 4 * 37, 'every check ran in every round');
SELECT is((SELECT string_agg(DISTINCT what, ', ') FROM evil.calls), NULL, 'no look-alike was ever called');

SELECT * FROM finish();
ROLLBACK;
