-- The C++ <-> PostgreSQL error boundary: C++ exceptions and PostgreSQL errors raised under C++
-- frames come back as ordinary SQL errors, destructors run, and the backend keeps serving.
CREATE EXTENSION sp_users;
CREATE SCHEMA guard_test;
CREATE FUNCTION guard_test.selftest(kind text) RETURNS bigint
    AS '$libdir/sp_users', 'sp_users_guard_selftest' LANGUAGE C STRICT;

SELECT guard_test.selftest('destroyed') AS destroyed_before \gset
SELECT guard_test.selftest('std_exception');
SELECT guard_test.selftest('bad_alloc');
SELECT guard_test.selftest('unknown');
SELECT guard_test.selftest('huge_vector');
-- A PostgreSQL error under C++ frames keeps its SQLSTATE (22012 = division_by_zero).
\set VERBOSITY sqlstate
SELECT guard_test.selftest('pg_error');
\set VERBOSITY default
-- Five unwinds plus the witness of the first 'destroyed' call: every destructor ran.
SELECT guard_test.selftest('destroyed') - :destroyed_before AS destructors_run;
-- Errors inside a transaction roll it back like any SQL error; the session goes on.
BEGIN;
SELECT guard_test.selftest('std_exception');
SELECT 1 AS in_failed_transaction;
ROLLBACK;
SELECT pg_backend_pid() = pg_backend_pid() AS backend_still_serving, sp_users.is_banned('192.0.2.1') AS is_banned_works;
DROP SCHEMA guard_test CASCADE;
DROP EXTENSION sp_users;
