// The change log behind incremental ban sets (docs/ban-cache.md). The statement triggers on
// sp_users.banned_ips (and, under session_replication_role = replica, the row trigger) write the networks a statement touched into sp_users.ban_changes, inside the
// changing transaction, and queue the invalidation that makes every backend look there at commit.
// Writers also prune the log now and then. A schema without the log (0.1.0, 0.2.0) only gets the
// invalidation, and backends then rebuild their whole set.
#include "pg/ban_cache.hpp"
#include "pg/kept_statement.hpp"
#include "pg/trigger_check.hpp"

extern "C" {
#include "utils/datum.h"
#include "utils/tuplestore.h"
}

using sp::pg::KeptStatement;
using sp::pg::pg_call;
using sp::pg::run_kept;
using sp::pg::set_kept_args;

namespace {

// The transition tables are named by the install script; another name means the trigger was not
// made by it, and then only "everything changed" is safe to log.
KeptStatement log_inserted{"INSERT INTO sp_users.ban_changes (ip_address) SELECT n.ip_address FROM new_rows n", 0, {}};
KeptStatement log_updated{"INSERT INTO sp_users.ban_changes (ip_address)"
                          " SELECT o.ip_address FROM old_rows o UNION SELECT n.ip_address FROM new_rows n",
                          0, {}};
KeptStatement log_deleted{"INSERT INTO sp_users.ban_changes (ip_address) SELECT o.ip_address FROM old_rows o", 0, {}};
KeptStatement log_everything{"INSERT INTO sp_users.ban_changes (ip_address) VALUES (NULL)", 0, {}};
KeptStatement log_one{"INSERT INTO sp_users.ban_changes (ip_address) VALUES ($1)", 1, {INETOID}};

// Rows are kept for at least one prune period: a backend that looked at the log within the last
// minute never finds its changes pruned. SKIP LOCKED: a writer never waits for another's prune.
KeptStatement prune_due{"SELECT h.prune_next_below FROM sp_users.ban_changes_horizon h"
                        " WHERE h.pruned_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '60 seconds')"
                        " FOR UPDATE SKIP LOCKED",
                        0, {}};
KeptStatement prune_advance{"UPDATE sp_users.ban_changes_horizon"
                            "   SET pruned_below = $1,"
                            "       prune_next_below = pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()),"
                            "       pruned_at = pg_catalog.now()",
                            1, {XID8OID}};
KeptStatement prune_delete{"DELETE FROM sp_users.ban_changes c WHERE c.xid OPERATOR(pg_catalog.<) $1", 1, {XID8OID}};

TimestampTz next_prune_check = 0;

bool named(const char* actual, const char* expected) { return actual != nullptr && strcmp(actual, expected) == 0; }

bool is_empty(Tuplestorestate* ts) { return ts == nullptr || tuplestore_tuple_count(ts) == 0; }

void prune_if_due(FunctionCallInfo fcinfo) {
    TimestampTz now = GetCurrentTimestamp();
    if (now < next_prune_check) return;
    next_prune_check = TimestampTzPlusMilliseconds(now, 10 * 1000);
    if (run_kept(prune_due, fcinfo) != 1) return;
    bool isnull = false;
    Datum below = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    LOCAL_FCINFO(args, 1);
    set_kept_args<1>(args, {below}, {isnull});
    run_kept(prune_advance, args);
    run_kept(prune_delete, args);
}

// Runs `body` inside SPI as the table's owner: whoever changes banned_ips needs no privilege on
// the log.
template <typename F>
void as_owner(TriggerData* td, F&& body) {
    Oid saved_user;
    int saved_sec;
    GetUserIdAndSecContext(&saved_user, &saved_sec);
    SetUserIdAndSecContext(td->tg_relation->rd_rel->relowner, saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    body();
    SPI_finish();
    SetUserIdAndSecContext(saved_user, saved_sec);
}

void log_changes(FunctionCallInfo fcinfo, TriggerData* td) {
    const TriggerEvent ev = td->tg_event;
    const Trigger* trig = td->tg_trigger;
    KeptStatement* log = &log_everything;
    if (TRIGGER_FIRED_BY_INSERT(ev) && td->tg_newtable && named(trig->tgnewtable, "new_rows"))
        log = &log_inserted;
    else if (TRIGGER_FIRED_BY_UPDATE(ev) && td->tg_newtable && td->tg_oldtable && named(trig->tgnewtable, "new_rows") &&
             named(trig->tgoldtable, "old_rows"))
        log = &log_updated;
    else if (TRIGGER_FIRED_BY_DELETE(ev) && td->tg_oldtable && named(trig->tgoldtable, "old_rows"))
        log = &log_deleted;
    as_owner(td, [&] {
        if (log != &log_everything && SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER) elog(ERROR, "SPI_register_trigger_data failed");
        run_kept(*log, fcinfo);
        prune_if_due(fcinfo);
    });
}

// One row of a row-level trigger: its network, and the new one if an UPDATE changed it.
void log_row(FunctionCallInfo fcinfo, TriggerData* td) {
    TupleDesc desc = td->tg_relation->rd_att;
    int col = SPI_fnumber(desc, "ip_address");
    if (col <= 0 || TupleDescAttr(desc, col - 1)->atttypid != INETOID)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("sp_users._ban_log_row(): column ip_address of sp_users.banned_ips has an unexpected type")));
    LOCAL_FCINFO(args, 1);
    bool isnull = false;
    Datum first = heap_getattr(td->tg_trigtuple, col, desc, &isnull);
    as_owner(td, [&] {
        set_kept_args<1>(args, {first}, {isnull});
        run_kept(log_one, args);
        if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
            bool new_null = false;
            Datum second = heap_getattr(td->tg_newtuple, col, desc, &new_null);
            if (new_null != isnull || (!isnull && !datumIsEqual(first, second, false, -1))) {
                set_kept_args<1>(args, {second}, {new_null});
                run_kept(log_one, args);
            }
        }
        prune_if_due(fcinfo);
    });
}

// Every change becomes visible to every backend's ban set (and every standby's) at commit, through
// PostgreSQL's transactional invalidation carried by the relcache entry of sp_users.ban_set_signal,
// so that no plan over banned_ips is invalidated by a ban.
void signal_change(Relation rel) {
    sp::pg::ban_cache::note_own_change();
    // A schema older than 0.3.0 has no signal relation: the table itself carries the signal.
    Oid signal = get_relname_relid("ban_set_signal", RelationGetNamespace(rel));
    if (OidIsValid(signal))
        CacheInvalidateRelcacheByRelid(signal);
    else
        CacheInvalidateRelcache(rel);
}

} // namespace

// Statement-level triggers on sp_users.banned_ips (INSERT, UPDATE, DELETE with transition tables;
// TRUNCATE): log what changed, signal every ban set.
SP_FUNCTION(sp_users_ban_set_invalidate) {
    pg_call([&] {
        static const sp::pg::TriggerShape shape{"sp_users._ban_set_invalidate()", "banned_ips", true, true,
                                                 sp::pg::kEvInsert | sp::pg::kEvUpdate | sp::pg::kEvDelete | sp::pg::kEvTruncate,
                                                 false};
        TriggerData* td = sp::pg::checked_trigger(fcinfo, shape);
        Relation rel = td->tg_relation;
        if (OidIsValid(get_relname_relid("ban_changes", RelationGetNamespace(rel)))) {
            // Nothing to log or signal when transition tables say no row changed (e.g. the UPDATE
            // half of an INSERT ... ON CONFLICT that inserted).
            const bool has_transition = td->tg_newtable != nullptr || td->tg_oldtable != nullptr;
            if (has_transition && is_empty(td->tg_newtable) && is_empty(td->tg_oldtable)) return;
            log_changes(fcinfo, td);
        }
        signal_change(rel);
    });
    return PointerGetDatum(nullptr);
}

// Row-level AFTER INSERT / UPDATE / DELETE on sp_users.banned_ips, ENABLE REPLICA: fires only
// where the statement triggers do not (session_replication_role = replica, as in logical
// replication's apply worker, which fires no statement triggers, and its initial table copy).
SP_FUNCTION(sp_users_ban_log_row) {
    pg_call([&] {
        static const sp::pg::TriggerShape shape{"sp_users._ban_log_row()", "banned_ips", false, true,
                                                 sp::pg::kEvInsert | sp::pg::kEvUpdate | sp::pg::kEvDelete, false};
        TriggerData* td = sp::pg::checked_trigger(fcinfo, shape);
        log_row(fcinfo, td);
        signal_change(td->tg_relation);
    });
    return PointerGetDatum(nullptr);
}
