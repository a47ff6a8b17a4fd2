-- Anonymous users and the batched clean-up procedure (CALL needs autocommit, so it lives here).
CREATE EXTENSION sp_users;
\set VERBOSITY terse
SELECT email, roles, name ~ '^anonymous_[0-9a-f]{8}$' AS name_format FROM sp_users.create_anonymous('FP-1');
SELECT (SELECT id FROM sp_users.create_anonymous(' fp-1 ')) = (SELECT id FROM sp_users.create_anonymous('FP-1')) AS same_user;
SELECT sp_users.create_anonymous('');
SELECT sp_users.create_anonymous(NULL);

-- 9 old anonymous users: live, ended, revoked and expired sessions; one too young; one registered.
INSERT INTO sp_users.users (name, email, roles, created_at)
SELECT 'old' || i, 'old' || i || '@anonymous.local', '{anonymous}', now() - interval '31 days' FROM generate_series(1, 9) i;
INSERT INTO sp_users.users (name, email, roles, created_at) VALUES
    ('young', 'young@anonymous.local', '{anonymous}', now() - interval '29 days'),
    ('member', 'member@example.com', '{user}', now() - interval '400 days');
INSERT INTO sp_users.user_sessions (session_id, user_id, ended_at, revoked_at, expires_at)
SELECT s, (SELECT id FROM sp_users.users WHERE name = n), e, r, x FROM (VALUES
    ('live',    'old1', NULL::timestamptz, NULL::timestamptz, now() + interval '1 day'),
    ('forever', 'old2', NULL, NULL, NULL),
    ('ended',   'old3', now(), NULL, now() + interval '1 day'),
    ('revoked', 'old4', NULL, now(), now() + interval '1 day'),
    ('expired', 'old5', NULL, NULL, now() - interval '1 second')) AS v(s, n, e, r, x);

SELECT sp_users.count_old_anonymous() AS would_go;
CALL sp_users.run_anonymous_cleanup(enforce => false);
SELECT count(*) AS users_after_dry_run FROM sp_users.users;
CALL sp_users.run_anonymous_cleanup(retention_days => 30, batch_size => 3);
SELECT regexp_replace(name, '^anonymous_[0-9a-f]{8}$', 'anonymous_<8 hex>') AS name FROM sp_users.users ORDER BY 1;
SELECT session_id, user_id IS NULL AS orphaned, ended_at IS NOT NULL AS ended FROM sp_users.user_sessions ORDER BY 1;
SELECT job_name, enforce, rows_affected, batches, details->>'dry_run' AS dry_run, details->>'sessions_ended' AS sessions_ended,
       finished_at >= started_at AS finished
  FROM sp_users.job_runs ORDER BY id;
CALL sp_users.run_anonymous_cleanup(retention_days => -1);
CALL sp_users.run_anonymous_cleanup(batch_size => 0);
BEGIN;
CALL sp_users.run_anonymous_cleanup();
ROLLBACK;

-- Scheduling without pg_cron in this database: a clear error with a HINT.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT sp_users.schedule_anonymous_cleanup();
SELECT sp_users.unschedule_anonymous_cleanup();
DROP EXTENSION sp_users;
