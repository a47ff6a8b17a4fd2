// The ban set cache. Exactness argument (docs/ban-cache.md):
//  * every statement that changes sp_users.banned_ips logs the networks it touched in
//    sp_users.ban_changes (with its top-level xid) and queues a relcache invalidation for the
//    sequence sp_users.ban_set_signal (a relation no plan references, so plans over banned_ips stay
//    valid); PostgreSQL delivers it to every backend at commit (to none on abort), to the changing
//    backend at its next command, and replays both on hot standbys;
//  * each lookup first drains pending invalidations (a lock-free flag check when none are queued);
//  * the set shows banned_ips as of one snapshot: the newest at the time of the call (read
//    committed, like a VOLATILE function's query) or the transaction's (repeatable read / serializable, then trusted only inside
//    that transaction). To move it to a newer snapshot S, the backend reads the log rows visible in
//    S of the transactions the set's snapshot did not show (xid >= its xmax, or in its running list,
//    or its own) and re-reads only those networks in S: a change costs work proportional to what
//    changed. Every change to a network logs it in the same transaction, so networks not logged
//    are the same in both snapshots. A full rebuild happens only on first use, after TRUNCATE,
//    when the log was pruned past the set's snapshot, or when the table was replaced;
//  * a transaction that changed bans itself answers by an index lookup until it ends (its own
//    uncommitted changes may still roll back to a savepoint);
//  * inside a parallel query (leader or worker, where no new snapshot may be taken) the set is built
//    from the query's own snapshot and trusted only while that snapshot is the active one.
#include "pg/ban_cache.hpp"

#include "pg/address_pg.hpp"
#include "pg/citus.hpp"
#include "pg/kept_statement.hpp"
#include "pg/pg_headers.hpp"
#include "pg/shared_ban_set.hpp"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "access/transam.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

#include <vector>

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

// The relations behind the set, looked up by name once and again after DDL on any of them. The log
// relations are absent in a 0.1.0 / 0.2.0 schema: then every change means a full rebuild.
struct Catalog {
    Oid table = InvalidOid, signal = InvalidOid, pkey = InvalidOid;
    Oid shell = InvalidOid; // sp_users.banned_ips itself; `table` is its Citus placement, if any
    Oid log = InvalidOid, log_xid_idx = InvalidOid, horizon = InvalidOid;
    Oid owner = InvalidOid;
    AttrNumber ip_att = InvalidAttrNumber, expires_att = InvalidAttrNumber;
    bool incremental() const noexcept { return OidIsValid(log) && OidIsValid(log_xid_idx) && OidIsValid(horizon) && OidIsValid(pkey); }
};

// What the set's snapshot did not show yet, as full xids: the next refresh reads the log rows of
// exactly these transactions (xid >= xmax, or in `unseen`). `lowest` is the oldest of them, which
// the log must still hold.
struct Base {
    bool known = false;
    uint64 xmax = 0, lowest = 0;
    std::vector<uint64> unseen; // running at the snapshot (xip and subxip), and our own top xid
};

struct State {
    sp::core::BanSet set;
    Catalog cat;
    Oid built_from = InvalidOid;            // banned_ips the set was built from
    Oid built_filenode = InvalidOid;        // and its file: TRUNCATE (not MVCC-safe) replaces it
    bool valid = false;                     // no invalidation since the set's snapshot
    Scope scope = Scope::Latest;
    SnapshotKey built_snapshot;
    LocalTransactionId built_lxid = InvalidLocalTransactionId;
    Base base;
    // Shared mode (sp_users preloaded): `set` holds only the changes since the shared base of this
    // generation (kErased for networks the base has but the table no longer does); 0 = private set.
    uint64 shared_gen = 0;
    uint64 shared_bytes = 0, shared_entries = 0;
    long publishes = 0;
    LocalTransactionId own_change_lxid = InvalidLocalTransactionId;
    unsigned long invalidations = 0;        // bumped by the callback; detects one during a refresh
    long rebuilds = 0, refreshes = 0, changes_applied = 0;
    double last_rebuild_ms = 0;
    bool budget_armed = false;              // schemas without the log: fallback budget granted
    double fallback_budget_ms = 0;          // fallback time left before the next rebuild
    long fallback_lookups = 0;
    SPIPlanPtr fallback_plan = nullptr;
};

State& state() noexcept {
    static State s;
    return s;
}

void on_relcache_invalidation(Datum, Oid relid) {
    State& s = state();
    const Catalog& c = s.cat;
    bool ours = relid == InvalidOid || relid == c.table || relid == c.shell || relid == c.pkey || relid == c.log ||
                relid == c.log_xid_idx || relid == c.horizon;
    if (ours || (OidIsValid(c.signal) && relid == c.signal)) {
        s.valid = false;
        ++s.invalidations;
    }
    // DDL, or a dropped table: look the relations up again. Also sent by VACUUM and ANALYZE
    // (pg_class statistics), so this runs in the middle of a load, whenever a lock is taken:
    // loads work on their own copy of the catalog (resolve returns one), never on s.cat.
    if (ours) s.cat = Catalog{};
}

// PostgreSQL side: the relations by name (syscache lookups), remembered until DDL on them. A
// copy: the invalidation callback may clear s.cat while the caller still opens relations.
Catalog resolve(State& s) {
    if (OidIsValid(s.cat.table)) return s.cat;
    Oid nsp = get_namespace_oid("sp_users", true);
    Oid rel = OidIsValid(nsp) ? get_relname_relid("banned_ips", nsp) : InvalidOid;
    if (!OidIsValid(rel))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("sp_users.banned_ips does not exist"),
                        errhint("Run CREATE EXTENSION sp_users in this database.")));
    Catalog c;
    c.shell = rel;
    // Under Citus (sp_users.distribute()) banned_ips is a reference table: its rows and the
    // triggers that log their changes are in this node's placement.
    c.table = sp::pg::citus::local_relation(rel);
    c.signal = get_relname_relid("ban_set_signal", nsp);
    c.pkey = get_relname_relid("banned_ips_pkey", nsp);
    if (OidIsValid(c.pkey)) c.pkey = sp::pg::citus::local_relation(c.pkey);
    c.log = get_relname_relid("ban_changes", nsp);
    c.log_xid_idx = get_relname_relid("ban_changes_xid_idx", nsp);
    c.horizon = get_relname_relid("ban_changes_horizon", nsp);
    c.ip_att = get_attnum(c.table, "ip_address");
    c.expires_att = get_attnum(c.table, "expires_at");
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for relation %u", rel);
    c.owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
    ReleaseSysCache(tup);
    s.cat = c;
    return s.cat;
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
    if (s.built_from == InvalidOid) return false;
    switch (s.scope) {
    case Scope::Latest: return s.valid;
    // The transaction's snapshot never changes: commits after it do not concern this transaction.
    case Scope::Transaction: return s.valid || s.built_lxid == MyProc->lxid;
    case Scope::ActiveSnapshot:
        return s.built_lxid == MyProc->lxid && ActiveSnapshotSet() && key_of(GetActiveSnapshot()) == s.built_snapshot;
    }
    return false;
}

// A 32-bit xid of a live snapshot as a full xid: it lies less than 2^31 behind the next xid.
uint64 widen(TransactionId xid, FullTransactionId next) {
    uint64 epoch = EpochFromFullTransactionId(next);
    if (xid > XidFromFullTransactionId(next)) --epoch;
    return (epoch << 32) | xid;
}

// PostgreSQL side of Base: the snapshot's unseen transactions, into palloc'd memory.
struct RawBase {
    uint64 xmax;
    uint64* unseen;
    int count;
};
RawBase raw_base_of(Snapshot snap) {
    FullTransactionId next = ReadNextFullTransactionId();
    RawBase b{widen(snap->xmax, next), nullptr, 0};
    int cap = int(snap->xcnt) + (snap->subxcnt > 0 ? snap->subxcnt : 0) + 1;
    b.unseen = static_cast<uint64*>(palloc(sizeof(uint64) * std::size_t(cap)));
    for (uint32 i = 0; i < snap->xcnt; ++i) b.unseen[b.count++] = widen(snap->xip[i], next);
    // Hot standby snapshots list every running xid in subxip.
    for (int32 i = 0; i < snap->subxcnt; ++i) b.unseen[b.count++] = widen(snap->subxip[i], next);
    FullTransactionId own = GetTopFullTransactionIdIfAny();
    if (FullTransactionIdIsValid(own)) b.unseen[b.count++] = U64FromFullTransactionId(own);
    return b;
}

void adopt_base(Base& base, const RawBase& raw) {
    base.known = false;
    base.unseen.assign(raw.unseen, raw.unseen + raw.count);
    base.xmax = raw.xmax;
    base.lowest = raw.xmax;
    for (uint64 x : base.unseen) base.lowest = x < base.lowest ? x : base.lowest;
    base.known = true;
}

// Runs as the table owner, so callers need no privilege on banned_ips or the log.
struct AsOwner {
    Oid saved_user;
    int saved_sec;
};
AsOwner become_owner(const Catalog& c) {
    AsOwner a;
    GetUserIdAndSecContext(&a.saved_user, &a.saved_sec);
    SetUserIdAndSecContext(c.owner, a.saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    return a;
}
void restore_user(const AsOwner& a) { SetUserIdAndSecContext(a.saved_user, a.saved_sec); }

// PostgreSQL side of the fallback: one index lookup (primary key or GiST >>=) as the table owner.
bool lookup_by_index(State& s, const sp::core::Address& addr, TimestampTz now) {
    const Catalog c = resolve(s);
    AsOwner who = become_owner(c);
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
    int rc = 0;
    sp::pg::citus::with_catalog_path([&] {
        rc = SPI_execute_snapshot(s.fallback_plan, values, nullptr, lookup_snapshot(&scope), InvalidSnapshot, true, false, 1);
    });
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "sp_users: ban lookup failed");
    bool isnull = false;
    bool banned = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    SPI_finish();
    restore_user(who);
    return banned;
}

struct Loaded {
    sp::core::BanEntry* entries;
    bool* present;        // for a refresh: whether the network still has a row
    std::size_t count;
    std::size_t capacity;
    TimestampTz now;
    MemoryContext context;
    RawBase base;
    Oid table;            // banned_ips as read (its oid)
    Oid filenode;         // banned_ips' file when read
    Scope scope;
    SnapshotKey snapshot;
    bool need_rebuild;    // a refresh found TRUNCATE logged or the log pruned past the base
    bool not_newer;       // the snapshot here does not contain the base's: cannot move forward
};

void loaded_init(Loaded& out, bool with_present) {
    out.context = AllocSetContextCreate(CurrentMemoryContext, "sp_users ban load", ALLOCSET_DEFAULT_SIZES);
    out.capacity = 1024;
    out.count = 0;
    out.entries = static_cast<sp::core::BanEntry*>(MemoryContextAllocHuge(out.context, out.capacity * sizeof(sp::core::BanEntry)));
    out.present = with_present ? static_cast<bool*>(MemoryContextAllocHuge(out.context, out.capacity)) : nullptr;
    out.now = GetCurrentTransactionStartTimestamp();
    out.need_rebuild = false;
    out.not_newer = false;
}

void loaded_reserve(Loaded& out, std::size_t more) {
    if (out.count + more <= out.capacity) return;
    while (out.count + more > out.capacity) out.capacity *= 2;
    out.entries = static_cast<sp::core::BanEntry*>(repalloc_huge(out.entries, out.capacity * sizeof(sp::core::BanEntry)));
    if (out.present) out.present = static_cast<bool*>(repalloc_huge(out.present, out.capacity));
}

// PostgreSQL side of a rebuild: read every ban not yet expired at now() into a palloc'd array.
void load_rows(State& s, Loaded& out, bool for_shared = false) {
    const Catalog c = resolve(s);
    loaded_init(out, false);
    // A shared base also serves transactions that started before this one (their now() is
    // earlier): keep what expired in the last hour; lookups compare with now() anyway.
    if (for_shared) out.now -= USECS_PER_HOUR;
    out.base.count = -1;
    // Locked before the snapshot is taken, held to the end of the transaction as a SELECT would:
    // the file read is the one a plain SELECT here reads (TRUNCATE swaps it, visibly to all).
    Relation rel = table_open(c.table, AccessShareLock);
    out.table = c.table;
    out.filenode = rel->rd_node.relNode;
    Snapshot snap = lookup_snapshot(&out.scope);
    if (for_shared) { // a base for everybody: the newest snapshot, whatever this transaction uses
        snap = GetLatestSnapshot();
        out.scope = Scope::Latest;
    }
    PushActiveSnapshot(snap);
    out.snapshot = key_of(GetActiveSnapshot());
    if (c.incremental()) out.base = raw_base_of(GetActiveSnapshot());

    // A plain sequential scan of the table (no SQL, no executor): twice as fast as a cursor.
    TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, nullptr);
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    uint64 rows = 0;
    while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        if ((++rows & 16383) == 0) CHECK_FOR_INTERRUPTS();
        bool isnull = false;
        Datum exp = slot_getattr(slot, c.expires_att, &isnull);
        TimestampTz expires = isnull ? sp::core::kNeverExpires : DatumGetTimestampTz(exp);
        if (expires <= out.now) continue;
        Datum ip = slot_getattr(slot, c.ip_att, &isnull);
        if (isnull) continue;
        loaded_reserve(out, 1);
        sp::core::BanEntry& e = out.entries[out.count++];
        e.net = address_from_inet(DatumGetInetPP(ip));
        e.expires_at = expires;
    }
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
    table_close(rel, NoLock);
    PopActiveSnapshot();
}

// One network's row in banned_ips under the active snapshot, through the primary key.
void read_network(const Catalog& c, Relation table, Relation pkey, Datum ip, Loaded& out) {
    ScanKeyData key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_NETWORK_EQ, ip);
    SysScanDesc scan = systable_beginscan_ordered(table, pkey, GetActiveSnapshot(), 1, &key);
    HeapTuple row = systable_getnext_ordered(scan, ForwardScanDirection);
    loaded_reserve(out, 1);
    sp::core::BanEntry& e = out.entries[out.count];
    e.net = address_from_inet(DatumGetInetPP(ip));
    e.expires_at = sp::core::kNeverExpires;
    out.present[out.count] = HeapTupleIsValid(row);
    if (HeapTupleIsValid(row)) {
        bool isnull = false;
        Datum exp = heap_getattr(row, c.expires_att, RelationGetDescr(table), &isnull);
        if (!isnull) e.expires_at = DatumGetTimestampTz(exp);
    }
    ++out.count;
    systable_endscan_ordered(scan);
}

// Every log row with key `key` (xid >= x, or xid = x) visible in the active snapshot: the network
// is re-read, or the whole refresh gives up when the row says TRUNCATE.
void scan_log(const Catalog& c, Relation log, Relation idx, Relation table, Relation pkey, StrategyNumber strategy,
              RegProcedure proc, uint64 xid, Loaded& out) {
    ScanKeyData key;
    ScanKeyInit(&key, 1, strategy, proc, Int64GetDatum(int64(xid)));
    SysScanDesc scan = systable_beginscan_ordered(log, idx, GetActiveSnapshot(), 1, &key);
    HeapTuple row;
    while (!out.need_rebuild && HeapTupleIsValid(row = systable_getnext_ordered(scan, ForwardScanDirection))) {
        bool isnull = false;
        Datum ip = heap_getattr(row, 2, RelationGetDescr(log), &isnull);
        if (isnull) {
            out.need_rebuild = true;
            break;
        }
        // The same network may be logged many times: reading it again gives the same answer.
        read_network(c, table, pkey, datumCopy(ip, false, -1), out);
        if ((out.count & 1023) == 0) CHECK_FOR_INTERRUPTS();
    }
    systable_endscan_ordered(scan);
}

// Whether `snap` shows every transaction the base's snapshot shows: a transaction below the base's
// xmax that the base did not list as unseen must not be running in `snap`. Always true for a
// snapshot taken after the base's; checked because a repeatable-read or parallel-query snapshot
// may be older than a shared base another backend published.
bool contains_base(Snapshot snap, const Base& base) {
    FullTransactionId next = ReadNextFullTransactionId();
    if (widen(snap->xmax, next) < base.xmax) return false;
    auto listed = [&](uint64 x) {
        for (uint64 u : base.unseen)
            if (u == x) return true;
        return false;
    };
    for (uint32 i = 0; i < snap->xcnt; ++i) {
        uint64 x = widen(snap->xip[i], next);
        if (x < base.xmax && !listed(x)) return false;
    }
    for (int32 i = 0; i < snap->subxcnt; ++i) {
        uint64 x = widen(snap->subxip[i], next);
        if (x < base.xmax && !listed(x)) return false;
    }
    return true;
}

// PostgreSQL side of an incremental refresh: the networks changed by the transactions `base`
// lists, as banned_ips shows them in the snapshot a plain SELECT here would use. Direct index
// scans: no SQL is parsed or planned on this path.
void load_changes(State& s, const Base& base, Loaded& out) {
    Catalog c = resolve(s);
    loaded_init(out, true);
    // Locks first, then the snapshot, as a SELECT does; held to the end of the transaction.
    Relation table = table_open(c.table, AccessShareLock);
    // Taking the lock processed the invalidations queued meanwhile; one may have replaced an index
    // (REINDEX CONCURRENTLY gives banned_ips_pkey a new oid): its oid as of now, under the lock.
    c = resolve(s);
    if (c.table != RelationGetRelid(table)) elog(ERROR, "sp_users.banned_ips was replaced during the call; retry");
    Relation pkey = index_open(c.pkey, AccessShareLock);
    Relation log = table_open(c.log, AccessShareLock);
    Relation idx = index_open(c.log_xid_idx, AccessShareLock);
    Relation horizon = table_open(c.horizon, AccessShareLock);
    out.table = c.table;
    out.filenode = table->rd_node.relNode;
    Snapshot snap = lookup_snapshot(&out.scope);
    PushActiveSnapshot(snap);
    out.snapshot = key_of(GetActiveSnapshot());
    out.base = raw_base_of(GetActiveSnapshot());
    if (!contains_base(GetActiveSnapshot(), base)) out.not_newer = true;

    // TRUNCATE shows at once even to snapshots that do not see its commit (it is not MVCC-safe),
    // and its log record may be one of those: a new file means rebuild.
    if (out.filenode != s.built_filenode) out.need_rebuild = true;

    // Pruned past what we still need: rebuild.
    if (!out.need_rebuild) {
        SysScanDesc hs = systable_beginscan(horizon, InvalidOid, false, GetActiveSnapshot(), 0, nullptr);
        HeapTuple h = systable_getnext(hs);
        bool isnull = true;
        Datum pruned_below = HeapTupleIsValid(h) ? heap_getattr(h, 2, RelationGetDescr(horizon), &isnull) : Datum(0);
        if (isnull || uint64(DatumGetInt64(pruned_below)) > base.lowest) out.need_rebuild = true;
        systable_endscan(hs);
    }

    if (out.not_newer) out.need_rebuild = true; // (the caller tells the two apart)
    if (!out.need_rebuild)
        scan_log(c, log, idx, table, pkey, BTGreaterEqualStrategyNumber, F_XID8GE, base.xmax, out);
    for (uint64 x : base.unseen) {
        if (out.need_rebuild) break;
        if (x < base.xmax) scan_log(c, log, idx, table, pkey, BTEqualStrategyNumber, F_XID8EQ, x, out);
    }

    table_close(horizon, NoLock);
    index_close(idx, NoLock);
    table_close(log, NoLock);
    index_close(pkey, NoLock);
    table_close(table, NoLock);
    PopActiveSnapshot();
}

double elapsed_ms(const instr_time& start) {
    instr_time now;
    INSTR_TIME_SET_CURRENT(now);
    INSTR_TIME_SUBTRACT(now, start);
    return INSTR_TIME_GET_MILLISEC(now);
}

void finish_load(State& s, const Loaded& loaded, unsigned long seen) {
    s.scope = loaded.scope;
    s.built_snapshot = loaded.snapshot;
    s.built_lxid = MyProc->lxid;
    // An invalidation during the load means: refresh again next time. A set at a transaction
    // snapshot says nothing about later commits, which later transactions must see.
    s.valid = s.invalidations == seen && loaded.scope == Scope::Latest;
}

void rebuild(State& s, unsigned long seen) {
    instr_time start;
    INSTR_TIME_SET_CURRENT(start);
    Loaded loaded{};
    s.base.known = false;
    s.built_from = InvalidOid;
    s.shared_gen = 0;
    s.shared_bytes = s.shared_entries = 0;
    pg_call([&] { load_rows(s, loaded); });
    s.set.build(loaded.entries, loaded.count, loaded.now);
    if (loaded.base.count >= 0) adopt_base(s.base, loaded.base);
    pg_call([&] { MemoryContextDelete(loaded.context); });
    s.built_from = loaded.table;
    s.built_filenode = loaded.filenode;
    finish_load(s, loaded, seen);
    s.budget_armed = false;
    ++s.rebuilds;
    s.last_rebuild_ms = elapsed_ms(start);
}

// Brings the set forward through the log; false when only a rebuild can (nothing was changed).
enum class Refresh { Done, NeedRebuild, SnapshotTooOld };

Refresh refresh(State& s, unsigned long seen) {
    Loaded loaded{};
    pg_call([&] { load_changes(s, s.base, loaded); });
    if (loaded.need_rebuild) {
        pg_call([&] { MemoryContextDelete(loaded.context); });
        return loaded.not_newer ? Refresh::SnapshotTooOld : Refresh::NeedRebuild;
    }
    s.base.known = false;
    s.built_from = InvalidOid; // until every change is applied
    const bool overlay = s.shared_gen != 0;
    for (std::size_t i = 0; i < loaded.count; ++i) {
        const sp::core::BanEntry& e = loaded.entries[i];
        if (loaded.present[i] && e.expires_at > loaded.now)
            s.set.assign(e.net, e.expires_at);
        else if (overlay)
            s.set.assign(e.net, sp::core::kErased); // hides the base's entry
        else
            s.set.erase(e.net);
    }
    adopt_base(s.base, loaded.base);
    s.built_from = loaded.table;
    pg_call([&] { MemoryContextDelete(loaded.context); });
    finish_load(s, loaded, seen);
    ++s.refreshes;
    s.changes_applied += long(loaded.count);
    return Refresh::Done;
}


// ---- shared mode -------------------------------------------------------------------------

constexpr std::size_t kOverlayLimit = 65536; // beyond this many changes, publish a fresh base

void adopt_shared(State& s, const shared_bans::BaseInfo& info) {
    s.base.known = false;
    s.set.clear();
    s.base.unseen.assign(info.unseen, info.unseen + info.n_unseen);
    s.base.xmax = info.xmax;
    s.base.lowest = info.lowest;
    s.base.known = true;
    s.shared_gen = info.generation;
    s.shared_bytes = info.bytes;
    s.shared_entries = info.entries;
    s.built_from = info.table;
    s.built_filenode = info.filenode;
}

// Reads banned_ips at the newest snapshot and publishes it as the shared base, unless another
// backend published one meanwhile. False when the set does not fit (the database then uses
// per-backend sets) or the snapshot's running list is too long to publish.
bool publish_base(State& s, uint64 seen_generation) {
    instr_time start;
    INSTR_TIME_SET_CURRENT(start);
    Loaded loaded{};
    pg_call([&] { load_rows(s, loaded, true); });
    bool ok = false;
    pg_call([&] {
        if (loaded.base.count < 0 || loaded.base.count > shared_bans::kMaxUnseen) return;
        shared_bans::lock_build();
        shared_bans::BaseInfo cur;
        shared_bans::published(&cur);
        if (cur.generation != seen_generation) { // someone else was quicker: use theirs
            shared_bans::unlock_build();
            ok = true;
            return;
        }
        // Built on the heap of this function call, then copied into shared memory by publish().
        auto* info = static_cast<shared_bans::BaseInfo*>(palloc0(sizeof(shared_bans::BaseInfo)));
        info->database = MyDatabaseId;
        info->table = loaded.table;
        info->filenode = loaded.filenode;
        info->built_now = loaded.now;
        info->xmax = loaded.base.xmax;
        info->lowest = loaded.base.xmax;
        info->n_unseen = loaded.base.count;
        for (int i = 0; i < loaded.base.count; ++i) {
            info->unseen[i] = loaded.base.unseen[i];
            if (loaded.base.unseen[i] < info->lowest) info->lowest = loaded.base.unseen[i];
        }
        info->build_ms = elapsed_ms(start);
        ok = shared_bans::publish(loaded.entries, loaded.count, info);
        shared_bans::unlock_build();
        MemoryContextDelete(loaded.context);
    });
    if (ok) {
        ++s.publishes;
        s.last_rebuild_ms = elapsed_ms(start);
    }
    return ok;
}

// Brings this backend to the snapshot lookup_snapshot() picks, on the shared base. Otherwise says
// how to answer: privately (shared set unusable here) or by index (a snapshot older than the base,
// a parallel query that may not publish one).
enum class SharedOutcome { Ready, UseIndex, UsePrivate };

SharedOutcome bring_forward_shared(State& s, Oid table, unsigned long seen, TimestampTz now) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        bool usable = false;
        shared_bans::BaseInfo info;
        pg_call([&] {
            usable = shared_bans::usable_here();
            if (usable) shared_bans::published(&info);
        });
        if (!usable) return SharedOutcome::UsePrivate;
        const bool base_fits = info.generation != 0 && info.database == MyDatabaseId && info.table == table &&
                               info.built_now <= now;
        if (!base_fits) {
            if (IsInParallelMode()) return SharedOutcome::UseIndex; // no new snapshot may be taken
            if (info.generation != 0 && info.built_now > now) return SharedOutcome::UseIndex; // a newer base than this old transaction
            if (!publish_base(s, info.generation)) return SharedOutcome::UsePrivate;
            continue;
        }
        if (s.shared_gen != info.generation || !s.base.known) adopt_shared(s, info);
        switch (refresh(s, seen)) {
        case Refresh::Done:
            if (s.set.size() > kOverlayLimit && !IsInParallelMode() && s.scope == Scope::Latest) {
                // Everybody's overlay has grown: publish a fresh base (used from the next call).
                if (!publish_base(s, info.generation)) return SharedOutcome::UsePrivate;
            }
            return SharedOutcome::Ready;
        case Refresh::SnapshotTooOld:
            s.shared_gen = 0; // not adopted after all
            s.base.known = false;
            return SharedOutcome::UseIndex;
        case Refresh::NeedRebuild:
            s.shared_gen = 0;
            s.base.known = false;
            if (IsInParallelMode()) return SharedOutcome::UseIndex;
            if (!publish_base(s, info.generation)) return SharedOutcome::UsePrivate;
            continue;
        }
    }
    return SharedOutcome::UseIndex;
}

struct LayeredProbe {
    const sp::core::BanSet* overlay;
    const sp::core::Address* addr;
    TimestampTz now;
    bool banned;
};
void layered_probe(const sp::core::FlatBanSet& base, void* arg) {
    auto* p = static_cast<LayeredProbe*>(arg);
    p->banned = sp::core::layered_contains(base, *p->overlay, *p->addr, p->now);
}

// The shared base plus this backend's overlay; false in `same` when a newer base was published.
bool shared_contains(State& s, const sp::core::Address& addr, TimestampTz now, bool* same) {
    LayeredProbe probe{&s.set, &addr, now, false};
    pg_call([&] { *same = shared_bans::with_base(s.shared_gen, layered_probe, &probe); });
    return probe.banned;
}

} // namespace

void register_callbacks() noexcept {
    CacheRegisterRelcacheCallback(on_relcache_invalidation, PointerGetDatum(nullptr));
}

void note_own_change() noexcept { state().own_change_lxid = MyProc->lxid; }

bool is_banned(const sp::core::Address& addr) {
    State& s = state();
    pg_call([] { AcceptInvalidationMessages(); });
    const TimestampTz now = GetCurrentTransactionStartTimestamp();
    const bool own_changes = s.own_change_lxid == MyProc->lxid;
    if (!own_changes && set_usable(s)) {
        if (s.shared_gen == 0) return s.set.contains(addr, now); // raises nothing: no guard on the hot path
        bool same = false;
        bool banned = shared_contains(s, addr, now, &same);
        if (same) return banned;
        s.valid = false; // a new base was published: move onto it
        s.built_lxid = InvalidLocalTransactionId;
    }

    // Our own uncommitted changes (which a savepoint may still undo) are read from the table.
    bool incremental = false;
    Oid table = InvalidOid;
    pg_call([&] {
        const Catalog c = resolve(s);
        incremental = c.incremental();
        table = c.table;
    });
    if (!incremental && !own_changes) {
        // A schema without the log (0.1.0, 0.2.0): ski rental, index lookups until they have cost
        // as much as one rebuild, then rebuild.
        if (!s.budget_armed) {
            s.budget_armed = true;
            s.fallback_budget_ms = s.last_rebuild_ms;
        }
    }
    bool use_index = own_changes || (!incremental && s.fallback_budget_ms > 0);

    unsigned long seen = s.invalidations;
    if (!use_index && incremental) {
        switch (bring_forward_shared(s, table, seen, now)) {
        case SharedOutcome::Ready: {
            bool same = false;
            bool banned = shared_contains(s, addr, now, &same);
            if (same) return banned;
            use_index = true; // published again meanwhile: this once, ask the table
            break;
        }
        case SharedOutcome::UseIndex: use_index = true; break;
        case SharedOutcome::UsePrivate: break;
        }
    }
    if (use_index) {
        instr_time start;
        INSTR_TIME_SET_CURRENT(start);
        bool banned = false;
        pg_call([&] { banned = lookup_by_index(s, addr, now); });
        if (!own_changes && !incremental) s.fallback_budget_ms -= elapsed_ms(start);
        ++s.fallback_lookups;
        return banned;
    }

    // A private set: brought forward through the log, or rebuilt.
    const bool can_refresh = incremental && s.shared_gen == 0 && s.base.known && OidIsValid(s.built_from) &&
                             s.built_from == table && !IsInParallelMode();
    if (!can_refresh || refresh(s, seen) != Refresh::Done) rebuild(s, seen);
    return s.set.contains(addr, now);
}

Info info() noexcept {
    const State& s = state();
    const bool shared = s.shared_gen != 0;
    return Info{long(shared ? s.shared_entries + s.set.size() : s.set.size()), long(s.set.memory_bytes()), s.rebuilds,
                s.last_rebuild_ms, s.valid, s.fallback_lookups, s.refreshes, s.changes_applied,
                long(shared ? s.shared_bytes : 0), s.publishes};
}

} // namespace sp::pg::ban_cache
