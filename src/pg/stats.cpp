// Statistics. sp_users.user_counts holds, per (creation day, status, role set, bot flag, shard),
// how many users there are; sp_users.user_count_deltas holds changes not yet folded into it.
// Statement-level triggers on sp_users.users receive the statement's transition tables, fold them
// into +/- deltas per key in C++, and append one row per key to the delta table with a plain
// heap_insert (the table has no index, trigger or constraint: no executor start-up, no row lock,
// no waiting on other writers). Both tables are ordinary MVCC data written in the transaction that
// changes the users, so a reader that sums them sees exactly the counts that match the users its
// snapshot sees; an aborted statement takes its deltas with it. Every few hundred delta rows a
// writer folds the committed deltas into its own shard of user_counts (SKIP LOCKED, and only while
// no other open transaction holds that shard, so writers never wait for each other).
// compact_user_counts() also folds the writers' shards into one row per key (shard -1) and drops
// keys whose count is zero, so the statistics read one row per key however many backends wrote it.
#include "core/stats.hpp"
#include "pg/citus.hpp"
#include "pg/lookup.hpp"
#include "pg/pg_headers.hpp"
#include "pg/trigger_check.hpp"

#include <map>
#include <string>
#include <tuple>
#include <utility>

extern "C" {
#include "access/heapam.h"
#include "access/table.h"
#include "storage/lock.h"
#include "catalog/pg_enum.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/array.h"
#include "utils/jsonb.h"
}

using sp::pg::pg_call;
using sp::pg::SqlError;

namespace {

constexpr int kShards = 16;

struct Key {
    int32 day;
    Oid status;
    int16 roles;
    bool is_bot;
    bool operator<(const Key& o) const noexcept {
        return std::tie(day, status, roles, is_bot) < std::tie(o.day, o.status, o.roles, o.is_bot);
    }
    bool operator==(const Key& o) const noexcept { return day == o.day && status == o.status && roles == o.roles && is_bot == o.is_bot; }
};

// Role bit of an enum value: its position in sp_users.user_role (sort order 1, 2, 3, ...).
int16 role_bit(Oid role) {
    HeapTuple tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(role));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for enum value %u", role);
    float4 order = reinterpret_cast<Form_pg_enum>(GETSTRUCT(tup))->enumsortorder;
    ReleaseSysCache(tup);
    int pos = int(order) - 1;
    return pos >= 0 && pos < 15 ? int16(1 << pos) : 0;
}

// Where the key's columns are in a users row; checked against their types once per statement, so
// a row of any other shape is an error, never a misread.
struct KeyColumns {
    int created_at, status, is_bot, roles;
};

int column_of(TupleDesc desc, const char* name, Oid type) {
    int attnum = SPI_fnumber(desc, name);
    if (attnum <= 0 || TupleDescAttr(desc, attnum - 1)->atttypid != type)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("sp_users._count_statement(): column %s of sp_users.users has an unexpected type", name)));
    return attnum;
}

KeyColumns key_columns(TupleDesc desc) {
    Oid nsp = get_namespace_oid("sp_users", false);
    Oid status_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("user_status"), ObjectIdGetDatum(nsp));
    Oid role_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("user_role"), ObjectIdGetDatum(nsp));
    Oid role_array = OidIsValid(role_type) ? get_array_type(role_type) : InvalidOid;
    return KeyColumns{column_of(desc, "created_at", TIMESTAMPTZOID), column_of(desc, "status", status_type),
                      column_of(desc, "is_bot", BOOLOID), column_of(desc, "roles", role_array)};
}

// PostgreSQL side: the counter key of a users row.
Key key_of(HeapTuple tuple, TupleDesc desc, const KeyColumns& col) {
    Key k{};
    bool isnull = false;
    Datum created = heap_getattr(tuple, col.created_at, desc, &isnull);
    k.day = isnull ? 0 : sp::core::day_of(DatumGetTimestampTz(created));
    Datum status = heap_getattr(tuple, col.status, desc, &isnull);
    k.status = isnull ? InvalidOid : DatumGetObjectId(status);
    Datum bot = heap_getattr(tuple, col.is_bot, desc, &isnull);
    k.is_bot = !isnull && DatumGetBool(bot);
    Datum roles = heap_getattr(tuple, col.roles, desc, &isnull);
    if (!isnull) {
        ArrayType* arr = DatumGetArrayTypeP(roles);
        Datum* elems;
        bool* nulls;
        int count;
        deconstruct_array(arr, ARR_ELEMTYPE(arr), sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &count);
        for (int i = 0; i < count; ++i)
            if (!nulls[i]) k.roles = int16(k.roles | role_bit(DatumGetObjectId(elems[i])));
    }
    return k;
}

constexpr int kCompactEvery = 512; // delta rows a backend appends before it folds them

int& appended_since_compaction() {
    static int n = 0;
    return n;
}

// Folds the committed deltas nobody else is folding into this backend's shard of user_counts.
// Read committed only: under a transaction snapshot, deleting rows that a concurrent fold deleted
// would be a serialization failure for the user's statement.
const char* kCompactSql =
    "WITH d AS (DELETE FROM sp_users.user_count_deltas x WHERE x.ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
    "             SELECT y.ctid FROM sp_users.user_count_deltas y FOR UPDATE SKIP LOCKED)) "
    "           RETURNING x.day, x.status, x.roles, x.is_bot, x.n) "
    "INSERT INTO sp_users.user_counts AS c (day, status, roles, is_bot, shard, n) "
    "SELECT d.day, d.status, d.roles, d.is_bot, $1, pg_catalog.sum(d.n) FROM d GROUP BY 1, 2, 3, 4 "
    "ON CONFLICT (day, status, roles, is_bot, shard) DO UPDATE SET n = c.n OPERATOR(pg_catalog.+) EXCLUDED.n";

// Writers' shards (0..15) fold into this one; only compaction and rebuild_user_counts() write it.
constexpr int16 kFoldedShard = -1;

// Every counter row no writer holds locked moves into the folded shard of its key.
const char* kFoldShardsSql =
    "WITH s AS (DELETE FROM sp_users.user_counts x WHERE x.ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
    "             SELECT y.ctid FROM sp_users.user_counts y WHERE y.shard OPERATOR(pg_catalog.<>) $1 FOR UPDATE SKIP LOCKED)) "
    "           RETURNING x.day, x.status, x.roles, x.is_bot, x.n) "
    "INSERT INTO sp_users.user_counts AS c (day, status, roles, is_bot, shard, n) "
    "SELECT s.day, s.status, s.roles, s.is_bot, $1, pg_catalog.sum(s.n) FROM s GROUP BY 1, 2, 3, 4 "
    "ON CONFLICT (day, status, roles, is_bot, shard) DO UPDATE SET n = c.n OPERATOR(pg_catalog.+) EXCLUDED.n";
const char* kDropZerosSql =
    "DELETE FROM sp_users.user_counts c WHERE c.shard OPERATOR(pg_catalog.=) $1 AND c.n OPERATOR(pg_catalog.=) 0";

// Transaction-level locks in the advisory lock space, under a field4 of our own so they never
// collide with an application's pg_advisory_lock keys: `which` 0 is the shard fold (one at a time
// per database), s + 1 is writer shard s. Only ever tried, never waited for: a writer whose shard
// another open transaction holds defers its fold, so writers never wait for each other.
constexpr uint16 kLockClass = 0x5350; // "SP"
constexpr uint32 kFoldLock = 0;
uint32 shard_lock(int16 shard) { return uint32(shard) + 1; }
bool try_lock_counters(Oid counts_oid, uint32 which) {
    LOCKTAG tag;
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, counts_oid, which, kLockClass);
    return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}
Oid counts_relid() { return get_relname_relid("user_counts", get_namespace_oid("sp_users", false)); }

// PostgreSQL side: appends one key (and its sign) per row of a transition table.
void collect(Tuplestorestate* rows, TupleDesc desc, const KeyColumns& col, int sign, Key* keys, int* signs, int& count,
             int capacity) {
    if (rows == nullptr) return;
    TupleTableSlot* slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
    int reader = tuplestore_alloc_read_pointer(rows, 0);
    tuplestore_select_read_pointer(rows, reader);
    while (count < capacity && tuplestore_gettupleslot(rows, true, false, slot)) {
        bool should_free = false;
        HeapTuple tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
        keys[count] = key_of(tuple, desc, col);
        signs[count] = sign;
        ++count;
        if (should_free) heap_freetuple(tuple);
    }
    tuplestore_select_read_pointer(rows, 0);
    ExecDropSingleTupleTableSlot(slot);
}

bool only_replication_guard(Relation rel, Oid nsp) {
    if (rel->trigdesc == nullptr) return true;
    for (int i = 0; i < rel->trigdesc->numtriggers; ++i) {
        const Trigger& t = rel->trigdesc->triggers[i];
        const char* fn = get_func_name(t.tgfoid);
        if (fn == nullptr || strcmp(fn, "_ignore_replicated") != 0 || get_func_namespace(t.tgfoid) != nsp ||
            t.tgenabled != TRIGGER_FIRES_ON_REPLICA)
            return false;
    }
    return true;
}

// Appends one delta row per changed key, then every kCompactEvery rows folds the committed deltas
// into this backend's shard (read committed only, never waiting for another writer).
void record(const std::map<Key, int64>& folded, Relation rel) {
    const int16 shard = int16(MyProcPid % kShards);
    int appended = 0;
    pg_call([&] {
        Oid nsp = get_namespace_oid("sp_users", false);
        Oid deltas_oid = get_relname_relid("user_count_deltas", nsp);
        if (!OidIsValid(deltas_oid)) elog(ERROR, "sp_users.user_count_deltas does not exist");
        Relation deltas = table_open(deltas_oid, RowExclusiveLock);
        // A bare heap_insert is right only while the table has nothing else to maintain (the
        // replica-mode guard that drops replicated rows does not concern the node's own).
        if (RelationGetIndexList(deltas) != NIL || !only_replication_guard(deltas, nsp) || deltas->rd_att->constr != nullptr)
            elog(ERROR, "sp_users.user_count_deltas must have no index, trigger or constraint");
        for (const auto& [key, n] : folded) {
            if (n == 0) continue;
            Datum values[5] = {Int32GetDatum(key.day), ObjectIdGetDatum(key.status), Int16GetDatum(key.roles),
                               BoolGetDatum(key.is_bot), Int64GetDatum(n)};
            bool nulls[5] = {false, false, false, false, false};
            HeapTuple tuple = heap_form_tuple(RelationGetDescr(deltas), values, nulls);
            simple_heap_insert(deltas, tuple);
            heap_freetuple(tuple);
            ++appended;
        }
        table_close(deltas, NoLock);
    });
    appended_since_compaction() += appended;
    if (appended_since_compaction() >= kCompactEvery && !IsolationUsesXactSnapshot()) {
        bool done = false;
        pg_call([&] {
            if (!try_lock_counters(counts_relid(), shard_lock(shard))) return; // retried on the next statement
            Oid saved_user;
            int saved_sec;
            GetUserIdAndSecContext(&saved_user, &saved_sec);
            SetUserIdAndSecContext(rel->rd_rel->relowner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
            if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
            Oid types[1] = {INT2OID};
            Datum values[1] = {Int16GetDatum(shard)};
            if (SPI_execute_with_args(kCompactSql, 1, types, values, nullptr, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "sp_users: folding counter deltas failed");
            SPI_finish();
            SetUserIdAndSecContext(saved_user, saved_sec);
            done = true;
        });
        if (done) appended_since_compaction() = 0;
    }
}

} // namespace

// AFTER INSERT / UPDATE / DELETE ... REFERENCING ... FOR EACH STATEMENT on sp_users.users:
// fold the statement's rows into deltas per key, then one counter update per key.
SP_FUNCTION(sp_users_count_statement) {
    Relation rel = nullptr;
    Key* keys = nullptr;
    int* signs = nullptr;
    int count = 0;
    pg_call([&] {
        static const sp::pg::TriggerShape shape{"sp_users._count_statement()", "users", true, true,
                                                 sp::pg::kEvInsert | sp::pg::kEvUpdate | sp::pg::kEvDelete, true};
        TriggerData* td = sp::pg::checked_trigger(fcinfo, shape);
        rel = td->tg_relation;
        TupleDesc desc = rel->rd_att;
        const KeyColumns col = key_columns(desc);
        int64 rows_old = td->tg_oldtable ? tuplestore_tuple_count(td->tg_oldtable) : 0;
        int64 rows_new = td->tg_newtable ? tuplestore_tuple_count(td->tg_newtable) : 0;
        int capacity = int(rows_old + rows_new);
        if (capacity == 0) return;
        keys = static_cast<Key*>(MemoryContextAllocHuge(CurrentMemoryContext, sizeof(Key) * std::size_t(capacity)));
        signs = static_cast<int*>(MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int) * std::size_t(capacity)));
        collect(td->tg_oldtable, desc, col, -1, keys, signs, count, capacity);
        collect(td->tg_newtable, desc, col, +1, keys, signs, count, capacity);
    });
    if (count == 0) return PointerGetDatum(nullptr);
    std::map<Key, int64> folded;
    for (int i = 0; i < count; ++i) folded[keys[i]] += signs[i];
    pg_call([&] {
        pfree(keys);
        pfree(signs);
    });
    record(folded, rel);
    return PointerGetDatum(nullptr);
}

// AFTER INSERT / UPDATE / DELETE FOR EACH ROW on sp_users.users, ENABLE REPLICA: fires only where
// statement triggers do not (session_replication_role = replica: logical replication's apply and
// initial copy), so every change is counted exactly once whoever writes it.
SP_FUNCTION(sp_users_count_row) {
    Relation rel = nullptr;
    Key old_key{}, new_key{};
    bool has_old = false, has_new = false;
    pg_call([&] {
        static const sp::pg::TriggerShape shape{"sp_users._count_row()", "users", false, true,
                                                 sp::pg::kEvInsert | sp::pg::kEvUpdate | sp::pg::kEvDelete, false};
        TriggerData* td = sp::pg::checked_trigger(fcinfo, shape);
        rel = td->tg_relation;
        const KeyColumns col = key_columns(rel->rd_att);
        const TriggerEvent ev = td->tg_event;
        has_old = !TRIGGER_FIRED_BY_INSERT(ev);
        has_new = !TRIGGER_FIRED_BY_DELETE(ev);
        if (has_old) old_key = key_of(td->tg_trigtuple, rel->rd_att, col);
        if (has_new) new_key = key_of(TRIGGER_FIRED_BY_UPDATE(ev) ? td->tg_newtuple : td->tg_trigtuple, rel->rd_att, col);
    });
    std::map<Key, int64> folded;
    if (has_old) folded[old_key] -= 1;
    if (has_new) folded[new_key] += 1;
    record(folded, rel);
    return PointerGetDatum(nullptr);
}

// sp_users.compact_user_counts() RETURNS bigint: folds every committed, unlocked delta now, then
// (unless another compaction is at it) the shards, and drops zero counters. Never waits on a writer.
SP_FUNCTION(sp_users_compact_user_counts) {
    int64 written = 0;
    pg_call([&] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        const Oid counts = counts_relid();
        // The fold-lock holder folds deltas straight into the folded shard; a concurrent compaction
        // folds them into its own writer shard if no open transaction holds that one.
        const bool folder = OidIsValid(counts) && try_lock_counters(counts, kFoldLock);
        const int16 own = int16(MyProcPid % kShards);
        Oid types[1] = {INT2OID};
        Datum values[1] = {Int16GetDatum(folder ? kFoldedShard : own)};
        if (folder || (OidIsValid(counts) && try_lock_counters(counts, shard_lock(own)))) {
            if (SPI_execute_with_args(kCompactSql, 1, types, values, nullptr, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "sp_users: folding counter deltas failed");
            written += int64(SPI_processed);
        }
        if (folder) { // values[0] is the folded shard
            if (SPI_execute_with_args(kFoldShardsSql, 1, types, values, nullptr, false, 0) != SPI_OK_INSERT)
                elog(ERROR, "sp_users: folding counter shards failed");
            written += int64(SPI_processed);
            if (SPI_execute_with_args(kDropZerosSql, 1, types, values, nullptr, false, 0) != SPI_OK_DELETE)
                elog(ERROR, "sp_users: dropping zero counters failed");
        }
        SPI_finish();
    });
    appended_since_compaction() = 0;
    return Int64GetDatum(written);
}

namespace {

struct Loaded {
    sp::core::CountRow* rows;
    uint64 count;
    TimestampTz oldest, newest;
    bool has_users;
    int64 on_boundary[3];
};

const int64 kWindowsUs[3] = {24LL * 3600 * 1000000, 7LL * 86400 * 1000000, 30LL * 86400 * 1000000};

// PostgreSQL side: counter rows (binary), the exact counts on each window's boundary day, and the
// oldest/newest creation times, all under the caller's snapshot.
void load(Loaded& out, const int32 boundary_day[3], const TimestampTz boundary[3]) {
    // Under sp_users.distribute() with users split into shards, the counter triggers cannot run
    // (they would count into each worker's own tables): the same keys come from counting the users,
    // on every shard at once, under the settings Citus needs to write the statement for a worker.
    const bool distributed = sp::pg::lookup::users_distributed();
    const int nest = distributed ? sp::pg::citus::begin_local_canonical() : 0;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    // enum_range() scans pg_enum: evaluate it once, not per counter row.
    int rc = SPI_execute(
        distributed ? "SELECT pg_catalog.floor(pg_catalog.date_part('epoch', u.created_at OPERATOR(pg_catalog.-) "
                      "                      '2000-01-01 00:00:00+00'::pg_catalog.timestamptz) OPERATOR(pg_catalog./) 86400)::pg_catalog.int4, "
                      "       pg_catalog.array_position('{active,inactive,suspended,pending,deleted,temporary}'::sp_users.user_status[], "
                      "                                 u.status) OPERATOR(pg_catalog.-) 1, "
                      "       ((CASE WHEN u.roles OPERATOR(pg_catalog.@>) '{admin}'::sp_users.user_role[] THEN 1 ELSE 0 END) "
                      "        OPERATOR(pg_catalog.+) (CASE WHEN u.roles OPERATOR(pg_catalog.@>) '{user}'::sp_users.user_role[] THEN 2 ELSE 0 END) "
                      "        OPERATOR(pg_catalog.+) (CASE WHEN u.roles OPERATOR(pg_catalog.@>) '{anonymous}'::sp_users.user_role[] THEN 4 ELSE 0 END))"
                      "       ::pg_catalog.int2, "
                      "       COALESCE(u.is_bot, false), pg_catalog.count(*) "
                      "  FROM sp_users.users u GROUP BY 1, 2, 3, 4"
                    : "WITH e AS MATERIALIZED (SELECT pg_catalog.enum_range(NULL::sp_users.user_status) AS r) "
                      "SELECT c.day, pg_catalog.array_position(e.r, c.status) - 1, c.roles, c.is_bot, c.n "
                      "  FROM (SELECT day, status, roles, is_bot, n FROM sp_users.user_counts WHERE n OPERATOR(pg_catalog.<>) 0 "
                      "        UNION ALL SELECT day, status, roles, is_bot, n FROM sp_users.user_count_deltas) c, e",
        true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "sp_users: reading user_counts failed");
    out.count = SPI_processed;
    out.rows = static_cast<sp::core::CountRow*>(MemoryContextAllocHuge(TopTransactionContext, sizeof(sp::core::CountRow) * (out.count + 1)));
    for (uint64 i = 0; i < out.count; ++i) {
        HeapTuple t = SPI_tuptable->vals[i];
        TupleDesc d = SPI_tuptable->tupdesc;
        bool isnull;
        sp::core::CountRow& r = out.rows[i];
        r.day = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
        r.status = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));
        r.roles = uint32(DatumGetInt16(SPI_getbinval(t, d, 3, &isnull)));
        r.is_bot = DatumGetBool(SPI_getbinval(t, d, 4, &isnull));
        r.n = DatumGetInt64(SPI_getbinval(t, d, 5, &isnull));
    }
    Oid types[6] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
    Datum values[6];
    for (int w = 0; w < 3; ++w) {
        values[2 * w] = TimestampTzGetDatum(boundary[w]);
        values[2 * w + 1] = TimestampTzGetDatum(TimestampTz(boundary_day[w] + 1) * USECS_PER_DAY);
    }
    const char* q =
        "SELECT (SELECT pg_catalog.count(*) FROM sp_users.users u WHERE u.created_at OPERATOR(pg_catalog.>) $1 "
        "          AND u.created_at OPERATOR(pg_catalog.<) $2 AND u.status OPERATOR(pg_catalog.<>) 'deleted'), "
        "       (SELECT pg_catalog.count(*) FROM sp_users.users u WHERE u.created_at OPERATOR(pg_catalog.>) $3 "
        "          AND u.created_at OPERATOR(pg_catalog.<) $4 AND u.status OPERATOR(pg_catalog.<>) 'deleted'), "
        "       (SELECT pg_catalog.count(*) FROM sp_users.users u WHERE u.created_at OPERATOR(pg_catalog.>) $5 "
        "          AND u.created_at OPERATOR(pg_catalog.<) $6 AND u.status OPERATOR(pg_catalog.<>) 'deleted'), "
        "       (SELECT pg_catalog.min(u.created_at) FROM sp_users.users u WHERE u.status OPERATOR(pg_catalog.<>) 'deleted'), "
        "       (SELECT pg_catalog.max(u.created_at) FROM sp_users.users u WHERE u.status OPERATOR(pg_catalog.<>) 'deleted')";
    // Split into shards, one statement (every shard reads its users once) rather than five.
    const char* scan =
        "SELECT pg_catalog.count(*) FILTER (WHERE u.created_at OPERATOR(pg_catalog.>) $1 AND u.created_at OPERATOR(pg_catalog.<) $2), "
        "       pg_catalog.count(*) FILTER (WHERE u.created_at OPERATOR(pg_catalog.>) $3 AND u.created_at OPERATOR(pg_catalog.<) $4), "
        "       pg_catalog.count(*) FILTER (WHERE u.created_at OPERATOR(pg_catalog.>) $5 AND u.created_at OPERATOR(pg_catalog.<) $6), "
        "       pg_catalog.min(u.created_at), pg_catalog.max(u.created_at) "
        "  FROM sp_users.users u WHERE u.status OPERATOR(pg_catalog.<>) 'deleted'";
    rc = SPI_execute_with_args(distributed ? scan : q, 6, types, values, nullptr, true, 0);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "sp_users: reading window counts failed");
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    bool isnull;
    for (int w = 0; w < 3; ++w) out.on_boundary[w] = DatumGetInt64(SPI_getbinval(t, d, w + 1, &isnull));
    Datum oldest = SPI_getbinval(t, d, 4, &isnull);
    out.has_users = !isnull;
    out.oldest = isnull ? 0 : DatumGetTimestampTz(oldest);
    Datum newest = SPI_getbinval(t, d, 5, &isnull);
    out.newest = isnull ? 0 : DatumGetTimestampTz(newest);
    SPI_finish();
    sp::pg::citus::end_canonical(nest);
}

const char* const kStatusNames[sp::core::kStatusCount] = {"active", "inactive", "suspended", "pending", "deleted", "temporary"};
const char* const kRoleNames[sp::core::kRoleCount] = {"admin", "user", "anonymous"};

std::string json_counts(const std::int64_t* counts, int n, const char* const* names) {
    std::string json = "{";
    for (const auto& [index, count] : sp::core::largest_first(counts, n)) {
        if (json.size() > 1) json += ", ";
        json += "\"" + std::string(names[index]) + "\": " + std::to_string(count);
    }
    return json + "}";
}

} // namespace

// sp_users._stats() RETURNS (total, created_24h, created_7d, created_30d, active, suspended, admins,
//   anonymous, bots bigint, oldest_user, newest_user timestamptz, by_status jsonb, by_role jsonb)
SP_FUNCTION(sp_users_stats) {
    const TimestampTz now = GetCurrentTransactionStartTimestamp();
    int32 boundary_day[3];
    TimestampTz boundary[3];
    for (int w = 0; w < 3; ++w) {
        boundary[w] = now - kWindowsUs[w];
        boundary_day[w] = sp::core::day_of(boundary[w]);
    }
    Loaded loaded{};
    pg_call([&] { load(loaded, boundary_day, boundary); });
    sp::core::Window windows[3];
    for (int w = 0; w < 3; ++w) windows[w] = sp::core::Window{boundary_day[w], loaded.on_boundary[w]};
    const sp::core::Figures f = sp::core::fold_counts(loaded.rows, loaded.count, windows);
    const std::string by_status = json_counts(f.by_status, sp::core::kStatusCount, kStatusNames);
    const std::string by_role = json_counts(f.by_role, sp::core::kRoleCount, kRoleNames);

    Datum result = 0;
    pg_call([&] {
        pfree(loaded.rows);
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        desc = BlessTupleDesc(desc);
        Datum values[13] = {Int64GetDatum(f.total), Int64GetDatum(f.created_24h), Int64GetDatum(f.created_7d),
                            Int64GetDatum(f.created_30d), Int64GetDatum(f.active), Int64GetDatum(f.suspended),
                            Int64GetDatum(f.admins), Int64GetDatum(f.anonymous), Int64GetDatum(f.bots),
                            TimestampTzGetDatum(loaded.oldest), TimestampTzGetDatum(loaded.newest),
                            DirectFunctionCall1(jsonb_in, CStringGetDatum(by_status.c_str())),
                            DirectFunctionCall1(jsonb_in, CStringGetDatum(by_role.c_str()))};
        bool nulls[13] = {};
        nulls[9] = nulls[10] = !loaded.has_users;
        result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
    return result;
}
