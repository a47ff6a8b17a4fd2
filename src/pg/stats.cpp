// Statistics. sp_users.user_counts holds, per (creation day, status, role set, bot flag, shard),
// how many users there are. A row trigger on sp_users.users adds +1/-1 deltas to a backend-local
// list (no SQL per row); a statement trigger flushes them, one upsert per distinct key, into the
// row of this backend's shard (so concurrent writers rarely wait on one counter row). The counters
// are ordinary MVCC rows written in the same transaction as the users they count, so a reader sees
// exactly the counts that match the users its snapshot sees.
#include "pg/stats.hpp"

#include "core/stats.hpp"
#include "pg/pg_headers.hpp"
#include "pg/spi.hpp"

#include <climits>
#include <map>
#include <string>
#include <tuple>
#include <utility>

extern "C" {
#include "catalog/pg_enum.h"
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

// Deltas not yet flushed, folded per (subtransaction nesting level, key): memory is bounded by
// the number of distinct keys a statement touches, not by its rows.
using Pending = std::map<std::pair<int, Key>, int64>;

Pending& pending() {
    static Pending deltas;
    return deltas;
}

void on_xact(XactEvent event, void*) {
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_COMMIT ||
        event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE)
        pending().clear(); // flushed at every statement end; anything left belongs to a failed statement
}

void on_subxact(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    if (event != SUBXACT_EVENT_ABORT_SUB) return;
    const int level = GetCurrentTransactionNestLevel();
    Pending& deltas = pending();
    deltas.erase(deltas.lower_bound({level, Key{INT32_MIN, 0, 0, false}}), deltas.end());
}

// Role bit of an enum value: its position in sp_users.user_role (sort order 1, 2, 3, ...).
int16 role_bit(Oid role) {
    HeapTuple tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(role));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for enum value %u", role);
    float4 order = reinterpret_cast<Form_pg_enum>(GETSTRUCT(tup))->enumsortorder;
    ReleaseSysCache(tup);
    int pos = int(order) - 1;
    return pos >= 0 && pos < 15 ? int16(1 << pos) : 0;
}

// PostgreSQL side: the counter key of a users row.
Key key_of(HeapTuple tuple, TupleDesc desc) {
    Key k{};
    bool isnull = false;
    Datum created = heap_getattr(tuple, SPI_fnumber(desc, "created_at"), desc, &isnull);
    k.day = isnull ? 0 : sp::core::day_of(DatumGetTimestampTz(created));
    Datum status = heap_getattr(tuple, SPI_fnumber(desc, "status"), desc, &isnull);
    k.status = isnull ? InvalidOid : DatumGetObjectId(status);
    Datum bot = heap_getattr(tuple, SPI_fnumber(desc, "is_bot"), desc, &isnull);
    k.is_bot = !isnull && DatumGetBool(bot);
    Datum roles = heap_getattr(tuple, SPI_fnumber(desc, "roles"), desc, &isnull);
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

struct FlushPlan {
    SPIPlanPtr plan = nullptr;
    Oid status_type = InvalidOid;
};

FlushPlan& flush_plan() {
    static FlushPlan p;
    return p;
}

} // namespace

namespace sp::pg::stats {
void register_callbacks() noexcept {
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
}
} // namespace sp::pg::stats

// AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW on sp_users.users.
SP_FUNCTION(sp_users_count_row) {
    Key minus{}, plus{};
    bool has_minus = false, has_plus = false;
    pg_call([&] {
        if (!CALLED_AS_TRIGGER(fcinfo)) elog(ERROR, "sp_users_count_row: not called as a trigger");
        auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
        TupleDesc desc = td->tg_relation->rd_att;
        if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
            plus = key_of(td->tg_trigtuple, desc);
            has_plus = true;
        } else if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) {
            minus = key_of(td->tg_trigtuple, desc);
            has_minus = true;
        } else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
            minus = key_of(td->tg_trigtuple, desc);
            plus = key_of(td->tg_newtuple, desc);
            has_minus = has_plus = !(minus == plus); // most updates do not move a user between counters
        }
    });
    const int level = GetCurrentTransactionNestLevel();
    if (has_minus) pending()[{level, minus}] -= 1;
    if (has_plus) pending()[{level, plus}] += 1;
    return PointerGetDatum(nullptr);
}

// AFTER INSERT OR UPDATE OR DELETE ... FOR EACH STATEMENT on sp_users.users: one upsert per key.
SP_FUNCTION(sp_users_count_flush) {
    Relation rel = nullptr;
    pg_call([&] {
        if (!CALLED_AS_TRIGGER(fcinfo)) elog(ERROR, "sp_users_count_flush: not called as a trigger");
        rel = reinterpret_cast<TriggerData*>(fcinfo->context)->tg_relation;
    });
    Pending& deltas = pending();
    if (deltas.empty()) return PointerGetDatum(nullptr);
    std::map<Key, int64> folded;
    for (const auto& [level_key, n] : deltas) folded[level_key.second] += n;
    deltas.clear();

    FlushPlan& fp = flush_plan();
    pg_call([&] {
        TupleDesc desc = rel->rd_att;
        Oid status_type = TupleDescAttr(desc, SPI_fnumber(desc, "status") - 1)->atttypid;
        Oid owner = rel->rd_rel->relowner;
        Oid saved_user;
        int saved_sec;
        GetUserIdAndSecContext(&saved_user, &saved_sec);
        SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        if (fp.plan == nullptr || fp.status_type != status_type) {
            if (fp.plan) SPI_freeplan(fp.plan);
            fp.plan = nullptr;
            Oid types[6] = {INT4OID, status_type, INT2OID, BOOLOID, INT2OID, INT8OID};
            SPIPlanPtr plan = SPI_prepare(
                "INSERT INTO sp_users.user_counts AS c (day, status, roles, is_bot, shard, n) VALUES ($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (day, status, roles, is_bot, shard) DO UPDATE SET n = c.n OPERATOR(pg_catalog.+) EXCLUDED.n",
                6, types);
            if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
            SPI_keepplan(plan);
            fp.plan = plan;
            fp.status_type = status_type;
        }
        const int16 shard = int16(MyProcPid % kShards);
        for (const auto& [key, n] : folded) {
            if (n == 0) continue;
            Datum values[6] = {Int32GetDatum(key.day), ObjectIdGetDatum(key.status), Int16GetDatum(key.roles),
                               BoolGetDatum(key.is_bot), Int16GetDatum(shard), Int64GetDatum(n)};
            int rc = SPI_execute_plan(fp.plan, values, nullptr, false, 0);
            if (rc != SPI_OK_INSERT) elog(ERROR, "sp_users: counter upsert failed (%s)", SPI_result_code_string(rc));
        }
        SPI_finish();
        SetUserIdAndSecContext(saved_user, saved_sec);
    });
    return PointerGetDatum(nullptr);
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
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    int rc = SPI_execute("SELECT c.day, pg_catalog.array_position(pg_catalog.enum_range(NULL::sp_users.user_status), c.status) - 1, "
                         "       c.roles, c.is_bot, c.n FROM sp_users.user_counts c "
                         " WHERE c.n OPERATOR(pg_catalog.<>) 0",
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
    rc = SPI_execute_with_args(q, 6, types, values, nullptr, true, 0);
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
