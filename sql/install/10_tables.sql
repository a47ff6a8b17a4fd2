-- Tables. Every column users may read is in SPEC.md; constraints enforce what the functions promise.

CREATE TABLE sp_users.users (
    id              uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    name            text NOT NULL,
    email           text NOT NULL,
    full_name       text,
    display_name    text,
    status          sp_users.user_status NOT NULL DEFAULT 'active',
    email_verified  boolean NOT NULL DEFAULT false,
    roles           sp_users.user_role[] NOT NULL DEFAULT '{user}',
    is_bot          boolean NOT NULL DEFAULT false,
    is_scanner      boolean NOT NULL DEFAULT false,
    avatar_url      text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- email before name: an INSERT checks unique indexes in oid order, and create_user reports a
    -- taken email first (src/pg/request_writes.cpp)
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_name_key UNIQUE (name),
    CONSTRAINT users_name_check CHECK (name OPERATOR(pg_catalog.<>) '' AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 255),
    CONSTRAINT users_email_normalized CHECK (email OPERATOR(pg_catalog.=) sp_users.normalize_email(email)),
    CONSTRAINT users_email_check CHECK (sp_users.email_problem(email) IS NULL),
    CONSTRAINT users_roles_check CHECK (sp_users._roles_valid(roles))
);
CREATE INDEX users_created_at_idx ON sp_users.users (created_at);
CREATE INDEX users_roles_idx ON sp_users.users USING gin (roles);
COMMENT ON TABLE sp_users.users IS 'Users. Email is stored trimmed and lower-cased (CHECK); roles are a non-empty set; status ''deleted'' is a soft delete.';

CREATE TABLE sp_users.user_sessions (
    session_id        text PRIMARY KEY,
    user_id           uuid REFERENCES sp_users.users (id) ON DELETE SET NULL,
    ip_address        inet,
    user_agent        text,
    device_type       text,
    fingerprint_hash  text,
    user_type         text NOT NULL DEFAULT 'anon',
    started_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_activity_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ended_at          timestamptz,
    expires_at        timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.+) interval '7 days',
    revoked_at        timestamptz,
    CONSTRAINT user_sessions_session_id_check CHECK (session_id OPERATOR(pg_catalog.<>) '' AND pg_catalog.length(session_id) OPERATOR(pg_catalog.<=) 255),
    CONSTRAINT user_sessions_user_type_check CHECK (user_type OPERATOR(pg_catalog.=) ANY (ARRAY['anon', 'registered']))
);
CREATE INDEX user_sessions_user_idx ON sp_users.user_sessions (user_id, last_activity_at DESC);
CREATE INDEX user_sessions_open_expiry_idx ON sp_users.user_sessions (expires_at) WHERE ended_at IS NULL;
COMMENT ON TABLE sp_users.user_sessions IS 'Sessions. Active = ended_at IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()).';

CREATE TABLE sp_users.banned_ips (
    ip_address              inet PRIMARY KEY,
    reason                  text NOT NULL,
    banned_at               timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at              timestamptz,
    ban_count               integer NOT NULL DEFAULT 1,
    last_offense_path       text,
    last_user_agent         text,
    -- Derived, so it can never disagree with expires_at (the seed kept an expiry on "permanent" bans).
    is_permanent            boolean GENERATED ALWAYS AS (expires_at IS NULL) STORED,
    source_fingerprint      text,
    ban_source              text NOT NULL DEFAULT 'manual',
    associated_session_ids  text[] NOT NULL DEFAULT '{}',
    -- One spelling per address or network, as sp_users.normalize_ip produces it.
    CONSTRAINT banned_ips_canonical CHECK (
        ip_address OPERATOR(pg_catalog.=) pg_catalog.network(ip_address)::inet
        AND NOT (pg_catalog.family(ip_address) OPERATOR(pg_catalog.=) 6
                 AND pg_catalog.masklen(ip_address) OPERATOR(pg_catalog.>=) 96
                 AND ip_address OPERATOR(pg_catalog.<<=) inet '::ffff:0.0.0.0/96')),
    CONSTRAINT banned_ips_ban_count_check CHECK (ban_count OPERATOR(pg_catalog.>) 0)
);
CREATE INDEX banned_ips_network_idx ON sp_users.banned_ips USING gist (ip_address inet_ops);
CREATE INDEX banned_ips_banned_at_idx ON sp_users.banned_ips (banned_at DESC);
CREATE INDEX banned_ips_source_idx ON sp_users.banned_ips (ban_source, banned_at DESC);
CREATE INDEX banned_ips_fingerprint_idx ON sp_users.banned_ips (source_fingerprint) WHERE source_fingerprint IS NOT NULL;
CREATE INDEX banned_ips_expires_idx ON sp_users.banned_ips (expires_at) WHERE expires_at IS NOT NULL;
COMMENT ON TABLE sp_users.banned_ips IS 'IP bans: single addresses or networks. Active = expires_at IS NULL OR expires_at > now(). Change it through the sp_users functions or directly: a trigger keeps every backend''s ban cache exact either way.';

CREATE TABLE sp_users.job_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name       text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at    timestamptz,
    enforce        boolean NOT NULL,
    rows_affected  bigint NOT NULL DEFAULT 0,
    batches        integer NOT NULL DEFAULT 0,
    details        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX job_runs_job_started_idx ON sp_users.job_runs (job_name, started_at DESC);
COMMENT ON TABLE sp_users.job_runs IS 'One row per clean-up run: job, start and end, enforce (false = dry run), rows deleted (or that would be), batches, details.';

CREATE TABLE sp_users.user_references (
    tbl  regclass NOT NULL,
    col  name NOT NULL,
    PRIMARY KEY (tbl, col)
);
COMMENT ON TABLE sp_users.user_references IS 'Columns that hold a user id without a foreign key, registered with register_user_reference; merges move them too.';

-- Under sp_users.distribute() Citus splits users into shards by id, and a unique index holds only
-- within a shard: these hold each taken email and each taken name once, split by their own key, so
-- two sign-ups with one email meet on one shard whatever their user ids (docs/scaling.md). sp_users'
-- functions write them with the user, in one transaction. Empty and unused on a single server.
CREATE TABLE sp_users.user_emails (
    email    text PRIMARY KEY,
    user_id  uuid NOT NULL
);
COMMENT ON TABLE sp_users.user_emails IS 'Citus only (sp_users.distribute()): the user holding each email, distributed by email, so that emails stay unique across the shards of users. Written by sp_users'' functions; empty on a single server.';
CREATE TABLE sp_users.user_names (
    name     text PRIMARY KEY,
    user_id  uuid NOT NULL
);
COMMENT ON TABLE sp_users.user_names IS 'Citus only (sp_users.distribute()): the user holding each name, distributed by name, so that names stay unique across the shards of users. Written by sp_users'' functions; empty on a single server.';

-- The tables hold user data: pg_dump must dump their rows although they belong to the extension.
SELECT pg_catalog.pg_extension_config_dump('sp_users.users', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.user_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.banned_ips', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.job_runs', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.job_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.user_references', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.user_emails', '');
SELECT pg_catalog.pg_extension_config_dump('sp_users.user_names', '');

-- updated_at is the database's job, whoever updates the row.
CREATE FUNCTION sp_users._touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := greatest(statement_timestamp(), OLD.updated_at);
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION sp_users._touch_updated_at() IS 'Trigger: sets users.updated_at on every update.';
CREATE TRIGGER users_touch_updated_at BEFORE UPDATE ON sp_users.users
    FOR EACH ROW EXECUTE FUNCTION sp_users._touch_updated_at();

-- A soft-deleted user keeps no live session.
CREATE FUNCTION sp_users._revoke_sessions_of_deleted() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE sp_users.user_sessions
       SET revoked_at = now()
     WHERE user_id = NEW.id AND ended_at IS NULL AND revoked_at IS NULL;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION sp_users._revoke_sessions_of_deleted() IS 'Trigger: revokes the open sessions of a user whose status becomes deleted.';
CREATE TRIGGER users_revoke_sessions_on_delete AFTER UPDATE OF status ON sp_users.users
    FOR EACH ROW WHEN (NEW.status = 'deleted' AND OLD.status IS DISTINCT FROM 'deleted')
    EXECUTE FUNCTION sp_users._revoke_sessions_of_deleted();

-- The ban change log: one row per network a statement on banned_ips touched, written by the
-- triggers below inside the changing transaction (so it commits, rolls back and replicates with
-- the change). A backend brings its ban set forward by re-reading only the networks logged by
-- transactions its set's snapshot did not yet see (docs/ban-cache.md). ip_address NULL: anything
-- may have changed (TRUNCATE), rebuild. Writers prune rows older than one to two minutes.
CREATE TABLE sp_users.ban_changes (
    xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ip_address  inet
);
CREATE INDEX ban_changes_xid_idx ON sp_users.ban_changes (xid);
COMMENT ON TABLE sp_users.ban_changes IS 'Internal: networks changed in banned_ips, with the changing transaction (top-level xid). Written only by the banned_ips triggers; read by every backend''s ban set; pruned after one to two minutes.';

CREATE TABLE sp_users.ban_changes_horizon (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_below      xid8 NOT NULL,
    prune_next_below  xid8 NOT NULL,
    pruned_at         timestamptz NOT NULL
);
COMMENT ON TABLE sp_users.ban_changes_horizon IS 'Internal: ban_changes rows of transactions below pruned_below may be gone; a ban set whose snapshot is older rebuilds. The next prune removes rows below prune_next_below (a snapshot xmin taken at the last prune).';
INSERT INTO sp_users.ban_changes_horizon
VALUES (true, '0'::xid8, pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()), pg_catalog.now());

-- Every change to banned_ips (functions, plain DML, TRUNCATE) invalidates the ban caches, through
-- the relcache entry of this sequence: a relation no plan references, so a ban does not
-- invalidate every cached plan over banned_ips in every backend. It is never used as a sequence.
CREATE SEQUENCE sp_users.ban_set_signal;
COMMENT ON SEQUENCE sp_users.ban_set_signal IS 'Not a counter: the relation whose relcache invalidation tells every backend (and standby) that sp_users.banned_ips changed, so their ban sets follow. Never read or advanced.';

CREATE FUNCTION sp_users._ban_set_invalidate() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_ban_set_invalidate'
LANGUAGE C;
COMMENT ON FUNCTION sp_users._ban_set_invalidate() IS 'Trigger: logs the networks a statement changed in sp_users.ban_changes and queues a transactional invalidation of every backend''s ban set (delivered at commit, replayed on standbys), which then re-reads only those networks. TRUNCATE logs a full rebuild.';
CREATE TRIGGER banned_ips_log_insert AFTER INSERT ON sp_users.banned_ips REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
CREATE TRIGGER banned_ips_log_update AFTER UPDATE ON sp_users.banned_ips REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
CREATE TRIGGER banned_ips_log_delete AFTER DELETE ON sp_users.banned_ips REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
CREATE TRIGGER banned_ips_invalidate AFTER TRUNCATE ON sp_users.banned_ips
    FOR EACH STATEMENT EXECUTE FUNCTION sp_users._ban_set_invalidate();
-- A logical subscriber's apply worker (session_replication_role = replica) fires no statement
-- trigger and no ORIGIN trigger: there this row trigger, enabled for replica mode only, logs each
-- applied row (and each row of the initial table copy) instead. TRUNCATE fires in both modes.
CREATE FUNCTION sp_users._ban_log_row() RETURNS trigger
AS 'MODULE_PATHNAME', 'sp_users_ban_log_row'
LANGUAGE C;
COMMENT ON FUNCTION sp_users._ban_log_row() IS 'Trigger (row level, enabled only under session_replication_role = replica, as in logical replication''s apply worker): logs the network of each applied row in sp_users.ban_changes and queues the invalidation of every backend''s ban set, as the statement triggers do in origin mode.';
CREATE TRIGGER banned_ips_log_row AFTER INSERT OR UPDATE OR DELETE ON sp_users.banned_ips
    FOR EACH ROW EXECUTE FUNCTION sp_users._ban_log_row();
ALTER TABLE sp_users.banned_ips ENABLE REPLICA TRIGGER banned_ips_log_row;
ALTER TABLE sp_users.banned_ips ENABLE ALWAYS TRIGGER banned_ips_invalidate;
