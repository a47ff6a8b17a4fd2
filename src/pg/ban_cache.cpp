// The ban set cache. Exactness argument (see docs/ban-cache.md):
//  * every change to sp_users.banned_ips fires a statement trigger that queues a relcache
//    invalidation for the sequence sp_users.ban_set_signal (a relation no plan references, so
//    plans over banned_ips stay valid; with a 0.1.0/0.2.0 schema, for the table itself);
//    PostgreSQL delivers it to every backend at commit (to none on abort), to the changing
//    backend at its next command, and replays it on hot standbys;
//  * each lookup first drains pending invalidations (a lock-free flag check when none are queued);
//  * the set is rebuilt from the newest snapshot (read committed) or from the transaction snapshot
//    (repeatable read / serializable, and then only trusted inside that transaction), so it shows
//    exactly what a plain SELECT in the same place would; inside a parallel query (leader or
//    worker, where no new snapshot may be taken) from the query's own snapshot, and then trusted
//    only while that snapshot is the active one;
//  * after an invalidation, calls are answered by an index lookup under the same snapshot rules
//    until the time they took equals the last rebuild's (ski rental): a small set is rebuilt at
//    once, a large one under constant churn is not rebuilt on every change.
#include "pg/ban_cache.hpp"

#include "pg/address_pg.hpp"
#include "pg/pg_headers.hpp"

namespace sp::pg::ban_cache {

namespace {

// What a snapshot shows, as far as visibility goes: with the same xmax no transaction can have
// started below it since, so the same xcnt means the same running set.
struct SnapshotKey {
    TransactionId xmin = InvalidTransactionId, xmax = InvalidTransactionId;
    uint32 xcnt = 0;
    int32 subxcnt = 0;
    bool suboverflowed = false;
    CommandId curcid = 0;
    bool operator==(const SnapshotKey& o) const noexcept {
        return xmin == o.xmin && xmax == o.xmax && xcnt == o.xcnt && subxcnt == o.subxcnt &&
               suboverflowed == o.suboverflowed && curcid == o.curcid;
    }
};
SnapshotKey key_of(Snapshot snap) noexcept {
    return SnapshotKey{snap->xmin, snap->xmax, snap->xcnt, snap->subxcnt, snap->suboverflowed, snap->curcid};
}

// How long a built set may be trusted: until an invalidation (built from the newest snapshot), for
// the building transaction (a repeatable-read snapshot), or while the parallel query's snapshot is
// the active one.
enum class Scope { Latest, Transaction, ActiveSnapshot };

struct State {
    sp::core::BanSet set;
    Oid table_oid = InvalidOid;
    Oid signal_oid = InvalidOid;           // sp_users.ban_set_signal, when the schema has it
    bool valid = false;
    Scope scope = Scope::Latest;
    SnapshotKey built_snapshot;
    LocalTransactionId built_lxid = InvalidLocalTransactionId;
    unsigned long invalidations = 0;       // bumped by the callback; detects one during a rebuild
    long rebuilds = 0;
    double last_rebuild_ms = 0;
    bool budget_armed = false;             // a fallback budget was granted since the last rebuild
    double fallback_budget_ms = 0;         // fallback time left before the next rebuild
    long fallback_lookups = 0;
    SPIPlanPtr fallback_plan = nullptr;
};

State& state() noexcept {
    static State s;
    return s;
}

void on_relcache_invalidation(Datum, Oid relid) {
    State& s = state();
    if (relid == InvalidOid || relid == s.table_oid || (OidIsValid(s.signal_oid) && relid == s.signal_oid)) {
        s.valid = false;
        s.table_oid = InvalidOid; // the table may have been dropped; look it up again
        s.signal_oid = InvalidOid;
        ++s.invalidations;
    }
}

struct Loaded {
    sp::core::BanEntry* entries;
    std::size_t count;
    TimestampTz now;
    MemoryContext context;
};

// PostgreSQL side: the table's oid (remembered for the callback) and its owner.
Oid resolve_table(State& s, Oid* owner) {
    Oid nsp = get_namespace_oid("sp_users", true);
    Oid rel = OidIsValid(nsp) ? get_relname_relid("banned_ips", nsp) : InvalidOid;
    if (!OidIsValid(rel))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("sp_users.banned_ips does not exist"),
                        errhint("Run CREATE EXTENSION sp_users in this database.")));
    s.table_oid = rel;
    s.signal_oid = get_relname_relid("ban_set_signal", nsp);
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for relation %u", rel);
    *owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
    ReleaseSysCache(tup);
    return rel;
}

// The snapshot a plain SELECT here would use for our purpose: the newest one in read committed
// (it contains every commit whose invalidation we processed), the transaction's otherwise. A
// parallel query may not take a new snapshot (leader or worker): there, the query's own.
Snapshot lookup_snapshot(Scope* scope) {
    if (IsInParallelMode() && ActiveSnapshotSet()) {
        *scope = Scope::ActiveSnapshot;
        return GetActiveSnapshot();
    }
    *scope = IsolationUsesXactSnapshot() ? Scope::Transaction : Scope::Latest;
    return *scope == Scope::Transaction ? GetTransactionSnapshot() : GetLatestSnapshot();
}

bool set_usable(const State& s) {
    if (!s.valid) return false;
    switch (s.scope) {
    case Scope::Latest: return true;
    case Scope::Transaction: return s.built_lxid == MyProc->lxid;
    case Scope::ActiveSnapshot:
        return s.built_lxid == MyProc->lxid && ActiveSnapshotSet() && key_of(GetActiveSnapshot()) == s.built_snapshot;
    }
    return false;
}

// PostgreSQL side of the fallback: one index lookup (primary key or GiST >>=) as the table owner.
bool lookup_by_index(State& s, const sp::core::Address& addr, TimestampTz now) {
    Oid owner;
    resolve_table(s, &owner);
    Oid saved_user;
    int saved_sec;
    GetUserIdAndSecContext(&saved_user, &saved_sec);
    SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    if (s.fallback_plan == nullptr) {
        Oid types[2] = {INETOID, TIMESTAMPTZOID};
        SPIPlanPtr plan = SPI_prepare("SELECT EXISTS (SELECT 1 FROM sp_users.banned_ips b "
                                      " WHERE b.ip_address OPERATOR(pg_catalog.>>=) $1 "
                                      "   AND (b.expires_at IS NULL OR b.expires_at OPERATOR(pg_catalog.>) $2))",
                                      2, types);
        if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(plan);
        s.fallback_plan = plan;
    }
    Datum values[2] = {InetPGetDatum(inet_from_address(addr)), TimestampTzGetDatum(now)};
    Scope scope;
    int rc = SPI_execute_snapshot(s.fallback_plan, values, nullptr, lookup_snapshot(&scope), InvalidSnapshot, true, false, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "sp_users: ban lookup failed");
    bool isnull = false;
    bool banned = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    SPI_finish();
    SetUserIdAndSecContext(saved_user, saved_sec);
    return banned;
}

// PostgreSQL side of a rebuild: read every ban not yet expired at now() into a palloc'd array.
void load_rows(State& s, Loaded& out) {
    Oid owner;
    resolve_table(s, &owner);

    out.context = AllocSetContextCreate(CurrentMemoryContext, "sp_users ban load", ALLOCSET_DEFAULT_SIZES);
    std::size_t capacity = 1024;
    out.entries = static_cast<sp::core::BanEntry*>(MemoryContextAllocHuge(out.context, capacity * sizeof(sp::core::BanEntry)));
    out.count = 0;
    out.now = GetCurrentTransactionStartTimestamp();

    // Read as the table owner so callers need no privilege on banned_ips itself.
    Oid saved_user;
    int saved_sec;
    GetUserIdAndSecContext(&saved_user, &saved_sec);
    SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Snapshot snap = lookup_snapshot(&s.scope);
    s.built_snapshot = key_of(snap);
    PushActiveSnapshot(snap);

    Oid argtypes[1] = {TIMESTAMPTZOID};
    Datum values[1] = {TimestampTzGetDatum(out.now)};
    SPIPlanPtr plan = SPI_prepare("SELECT ip_address, expires_at FROM sp_users.banned_ips "
                                  "WHERE expires_at IS NULL OR expires_at OPERATOR(pg_catalog.>) $1",
                                  1, argtypes);
    if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    Portal portal = SPI_cursor_open(nullptr, plan, values, nullptr, true);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        SPI_cursor_fetch(portal, true, 10000);
        if (SPI_processed == 0) break;
        if (out.count + SPI_processed > capacity) {
            while (out.count + SPI_processed > capacity) capacity *= 2;
            out.entries = static_cast<sp::core::BanEntry*>(repalloc_huge(out.entries, capacity * sizeof(sp::core::BanEntry)));
        }
        for (uint64 i = 0; i < SPI_processed; ++i) {
            HeapTuple row = SPI_tuptable->vals[i];
            bool isnull = false;
            Datum ip = SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull);
            if (isnull) continue;
            Datum exp = SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull);
            sp::core::BanEntry& e = out.entries[out.count++];
            e.net = address_from_inet(DatumGetInetPP(ip));
            e.expires_at = isnull ? sp::core::kNeverExpires : DatumGetTimestampTz(exp);
        }
        SPI_freetuptable(SPI_tuptable);
    }
    SPI_cursor_close(portal);
    PopActiveSnapshot();
    SPI_finish();
    SetUserIdAndSecContext(saved_user, saved_sec);
}

} // namespace

void register_callbacks() noexcept {
    CacheRegisterRelcacheCallback(on_relcache_invalidation, PointerGetDatum(nullptr));
}

bool is_banned(const sp::core::Address& addr) {
    State& s = state();
    pg_call([] { AcceptInvalidationMessages(); });
    const TimestampTz now = GetCurrentTransactionStartTimestamp();
    if (set_usable(s)) return s.set.contains(addr, now); // raises nothing: no guard on the hot path

    // Ski rental: index lookups until they have cost as much as one rebuild, then rebuild.
    if (!s.budget_armed) {
        s.budget_armed = true;
        s.fallback_budget_ms = s.last_rebuild_ms;
    }
    instr_time start;
    INSTR_TIME_SET_CURRENT(start);
    if (s.fallback_budget_ms > 0) {
        bool banned = false;
        pg_call([&] { banned = lookup_by_index(s, addr, now); });
        instr_time elapsed;
        INSTR_TIME_SET_CURRENT(elapsed);
        INSTR_TIME_SUBTRACT(elapsed, start);
        s.fallback_budget_ms -= INSTR_TIME_GET_MILLISEC(elapsed);
        ++s.fallback_lookups;
        return banned;
    }

    unsigned long seen = s.invalidations;
    Loaded loaded{};
    pg_call([&] { load_rows(s, loaded); });
    s.set.build(loaded.entries, loaded.count, loaded.now);
    pg_call([&] { MemoryContextDelete(loaded.context); });
    instr_time elapsed;
    INSTR_TIME_SET_CURRENT(elapsed);
    INSTR_TIME_SUBTRACT(elapsed, start);

    s.built_lxid = MyProc->lxid;
    s.valid = (s.invalidations == seen); // an invalidation during the load means: rebuild next time
    s.budget_armed = false;
    ++s.rebuilds;
    s.last_rebuild_ms = INSTR_TIME_GET_MILLISEC(elapsed);
    return s.set.contains(addr, now);
}

Info info() noexcept {
    const State& s = state();
    return Info{long(s.set.size()), long(s.set.memory_bytes()), s.rebuilds, s.last_rebuild_ms, s.valid, s.fallback_lookups};
}

} // namespace sp::pg::ban_cache
