// The request-path readers: one index probe each, straight through the access methods, with no
// executor, no plan and no SQL function machinery in between (issue 12: a per-request call must
// cost what the hand-written statement costs). They read sp_users tables without a privilege check
// of their own, as SECURITY DEFINER functions do: EXECUTE on the function is the gate. Relations
// are looked up by name in schema sp_users on every call (two syscache hits), so nothing is
// cached that DROP / CREATE EXTENSION or ALTER EXTENSION UPDATE could leave stale, and no
// search_path is ever consulted. Rows are read under the query's active snapshot, as a plain
// SELECT in the same place would.
#include "core/identifier.hpp"

#include <cstring>

#include "pg/address_pg.hpp"
#include "pg/citus.hpp"
#include "pg/errors.hpp"
#include "pg/kept_statement.hpp"
#include "pg/lookup.hpp"
#include "pg/pg_headers.hpp"

extern "C" {
#include "access/genam.h"
#include "access/tupconvert.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/uuid.h"
}

using sp::pg::pg_call;

namespace {

constexpr Oid kUuidEqualOperator = 2972; // uuid = uuid (pg_operator.dat names no macro for it)

// Per-backend memo of what the readers look up by name (relation oids, enum value oids, column
// numbers): a request then costs no catalog lookup. Any relcache invalidation of a memoised
// relation (DROP/CREATE EXTENSION, ALTER TABLE, REINDEX, ...) or a global one empties it; a
// relation dropped by another session while we still held its old oid is caught at open time.
struct Memo {
    struct Entry {
        char key[NAMEDATALEN * 2];
        Oid value;
    };
    static constexpr int kSize = 48;
    Entry entries[kSize];
    int count = 0;
    Oid relations[2 * kSize]; // the relation oids among the values (and their Citus tables), for the callback
    int relation_count = 0;
};
Memo& memo() noexcept {
    static Memo m;
    return m;
}
void forget_all() noexcept {
    memo().count = 0;
    memo().relation_count = 0;
}
void on_relcache_invalidation(Datum, Oid relid) {
    const Memo& m = memo();
    if (relid == InvalidOid) return forget_all();
    for (int i = 0; i < m.relation_count; ++i)
        if (m.relations[i] == relid) return forget_all();
}
template <typename Resolve>
Oid memoised(const char* key, bool is_relation, Resolve resolve) {
    Memo& m = memo();
    for (int i = 0; i < m.count; ++i)
        if (std::strcmp(m.entries[i].key, key) == 0) return m.entries[i].value;
    Oid value = resolve();
    // Not found (an optional relation of an older schema) is looked up again next time.
    if (OidIsValid(value) && m.count < Memo::kSize && std::strlen(key) < sizeof m.entries[0].key) {
        std::strcpy(m.entries[m.count].key, key);
        m.entries[m.count++].value = value;
        if (is_relation) m.relations[m.relation_count++] = value;
    }
    return value;
}

// An sp_users relation, or InvalidOid when it does not exist (a schema older than the library).
// Under Citus, the local placement of a reference table (or of its index): the memo then also
// watches the table itself, whose invalidation Citus sends when it changes the table's metadata.
Oid optional_relation(const char* name) {
    return memoised(name, true, [&] {
        Oid nsp = get_namespace_oid("sp_users", true);
        Oid rel = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
        if (!OidIsValid(rel)) return rel;
        Oid local = sp::pg::citus::local_relation(rel);
        Memo& m = memo();
        if (local != rel && m.count < Memo::kSize) m.relations[m.relation_count++] = sp::pg::citus::table_of(rel);
        return local;
    });
}

// The table itself, never a Citus placement (or InvalidOid when it does not exist): for the
// statements that go through Citus (sessions_distributed()).
Oid optional_table(const char* name) {
    char key[NAMEDATALEN * 2];
    snprintf(key, sizeof key, "%s@table", name);
    return memoised(key, true, [&] {
        Oid nsp = get_namespace_oid("sp_users", true);
        return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
    });
}

Oid sp_relation(const char* name) {
    Oid rel = optional_relation(name);
    if (!OidIsValid(rel))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("sp_users.%s does not exist", name),
                        errhint("Run CREATE EXTENSION sp_users in this database.")));
    return rel;
}

// Opens an sp_users table by name; a memoised oid whose relation another session dropped is
// looked up again (opening takes the lock, which processes the pending invalidations).
Relation open_sp_table(const char* name) {
    Relation rel = try_table_open(sp_relation(name), AccessShareLock);
    if (rel == nullptr) {
        forget_all();
        rel = table_open(sp_relation(name), AccessShareLock);
    }
    return rel;
}

Oid enum_value(const char* type_name, const char* label) {
    char key[NAMEDATALEN * 2];
    snprintf(key, sizeof key, "%s=%s", type_name, label);
    return memoised(key, false, [&] {
        Oid nsp = get_namespace_oid("sp_users", false);
        Oid type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(type_name), ObjectIdGetDatum(nsp));
        Oid value = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid, ObjectIdGetDatum(type), CStringGetDatum(label));
        if (!OidIsValid(value)) elog(ERROR, "sp_users.%s has no value %s", type_name, label);
        return value;
    });
}

Oid status_value(const char* label) { return enum_value("user_status", label); }

int column(Relation rel, const char* name) {
    char key[NAMEDATALEN * 2];
    snprintf(key, sizeof key, "%s.%s", RelationGetRelationName(rel), name);
    return int(memoised(key, false, [&] {
        TupleDesc desc = RelationGetDescr(rel);
        for (int i = 0; i < desc->natts; ++i) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (!att->attisdropped && std::strcmp(NameStr(att->attname), name) == 0) return Oid(i + 1);
        }
        elog(ERROR, "%s has no column %s", RelationGetRelationName(rel), name);
        return InvalidOid;
    }));
}

Snapshot query_snapshot() { return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot(); }

// Probes `index` of `table` with "first index column <op> key" and returns a copy of the visible
// row `rank` scores highest (rank < 0: not wanted; with first_only the first wanted row), or null.
template <typename Rank>
HeapTuple probe(const char* table, const char* index, Oid op, RegProcedure proc, Datum key, bool first_only, Rank rank) {
    Relation heap = open_sp_table(table);
    Relation idx = index_open(sp_relation(index), AccessShareLock);
    const StrategyNumber strategy = StrategyNumber(get_op_opfamily_strategy(op, idx->rd_opfamily[0]));
    if (strategy == InvalidStrategy) elog(ERROR, "operator %u is not in the operator family of %s", op, index);
    ScanKeyData skey;
    ScanKeyEntryInitialize(&skey, 0, 1, strategy, InvalidOid, idx->rd_indcollation[0], proc, key);
    IndexScanDesc scan = index_beginscan(heap, idx, query_snapshot(), 1, 0);
    index_rescan(scan, &skey, 1, nullptr, 0);
    TupleTableSlot* slot = table_slot_create(heap, nullptr);
    HeapTuple best = nullptr;
    int best_rank = -1;
    while (index_getnext_slot(scan, ForwardScanDirection, slot)) {
        int r = rank(heap, slot);
        if (r <= best_rank) continue;
        if (best) heap_freetuple(best);
        best = ExecCopySlotHeapTuple(slot);
        best_rank = r;
        if (first_only) break;
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    index_close(idx, NoLock);
    table_close(heap, NoLock);
    return best;
}

bool attr_is_null(TupleTableSlot* slot, int attnum) {
    bool isnull;
    slot_getattr(slot, attnum, &isnull);
    return isnull;
}

HeapTuple citus_user_by(const char* index, Datum key, const char* status, bool required);

// A users row by a unique key, unless its status is `excluded` (or, with `required`, unless it is
// exactly that status).
HeapTuple user_by(const char* index, Oid op, RegProcedure proc, Datum key, const char* status, bool required) {
    if (sp::pg::lookup::users_distributed()) return citus_user_by(index, key, status, required);
    const Oid wanted = status_value(status);
    return probe("users", index, op, proc, key, true, [&](Relation rel, TupleTableSlot* slot) {
        bool isnull;
        Oid s = DatumGetObjectId(slot_getattr(slot, column(rel, "status"), &isnull));
        return (!isnull && (s == wanted) == required) ? 0 : -1;
    });
}

HeapTuple live_user_by_id(Datum id) { return user_by("users_pkey", kUuidEqualOperator, F_UUID_EQ, id, "deleted", false); }

// The stored form of an email: sp_users.normalize_email (btrim of ASCII white space, lower()).
Datum normalized_email(Datum email) {
    Datum trimmed = DirectFunctionCall2Coll(btrim, DEFAULT_COLLATION_OID, email, CStringGetTextDatum(" \t\r\n\f\v"));
    return DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID, trimmed);
}

HeapTuple live_user_by_text(const char* index, Datum key) {
    return user_by(index, TextEqualOperator, F_TEXTEQ, key, "deleted", false);
}

// Returns zero or one row of the function's declared row type.
Datum return_rows(FunctionCallInfo fcinfo, HeapTuple row) {
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (row) tuplestore_puttuple(rsinfo->setResult, row);
    return Datum(0);
}

[[noreturn]] void user_not_found(FunctionCallInfo fcinfo) { sp::pg::raise_user_not_found(fcinfo, 0); }

Datum user_column(HeapTuple row, const char* table, const char* name, bool* isnull) {
    // a row of users split by Citus is in the table's own layout (citus_user_by)
    Relation rel = std::strcmp(table, "users") == 0 && sp::pg::lookup::users_distributed() ? table_open(optional_table(table), AccessShareLock)
                                                                      : open_sp_table(table);
    Datum d = heap_getattr(row, column(rel, name), RelationGetDescr(rel), isnull);
    table_close(rel, NoLock);
    return d;
}

// Raises 28000 when brute-force protection has locked the account (sp_users.account_failures:
// a lockout of any kind still in force), as find_authenticated_user promises.
void refuse_if_locked(Datum user_id) {
    if (!OidIsValid(optional_relation("account_failures")) || !OidIsValid(optional_relation("account_failures_pkey"))) return;
    const TimestampTz now = GetCurrentTransactionStartTimestamp();
    HeapTuple lock = probe("account_failures", "account_failures_pkey", kUuidEqualOperator, F_UUID_EQ, user_id, true,
                           [&](Relation rel, TupleTableSlot* slot) {
                               bool isnull;
                               Datum until = slot_getattr(slot, column(rel, "locked_until"), &isnull);
                               return !isnull && DatumGetTimestampTz(until) > now ? 0 : -1;
                           });
    if (lock == nullptr) return;
    bool isnull;
    TimestampTz until = DatumGetTimestampTz(user_column(lock, "account_failures", "locked_until", &isnull));
    const char* message = TIMESTAMP_IS_NOBEGIN(until) || TIMESTAMP_IS_NOEND(until)
                              ? "account locked permanently"
                              : psprintf("account locked until %s", timestamptz_to_str(until));
    sp::pg::raise_clean(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, message, nullptr, nullptr,
                        "Brute-force protection locked it (sp_users.record_failure); an administrator can lift it with sp_users.lift_lockout.");
}

// Rows in index order, ties on the index's order column broken by another column, as
// "ORDER BY <index column>, <tie column> LIMIT n" would return them. Scans `index` (with an
// equality key on its first column when `key` is given), keeps the visible rows `keep` accepts,
// sorts each run of equal `order_att` values by `tie_att` with `tie_cmp`, and puts the first
// `limit` rows into the result set. The executor's incremental sort does the same work.
struct TieSort {
    const char* column;
    RegProcedure cmp;
    Oid collation;
    int att = 0; // resolved from `column`
};

struct TieContext {
    TieSort tie;
    TupleDesc desc;
};

int compare_tie_rows(const void* a, const void* b, void* arg) {
    const auto* c = static_cast<const TieContext*>(arg);
    HeapTuple x = *static_cast<HeapTuple const*>(a), y = *static_cast<HeapTuple const*>(b);
    bool xn, yn;
    Datum xd = heap_getattr(x, c->tie.att, c->desc, &xn), yd = heap_getattr(y, c->tie.att, c->desc, &yn);
    if (xn || yn) return xn == yn ? 0 : (xn ? 1 : -1); // NULLS LAST, as ORDER BY ... ASC
    return DatumGetInt32(OidFunctionCall2Coll(c->tie.cmp, c->tie.collation, xd, yd));
}

template <typename Keep>
void ordered_rows(FunctionCallInfo fcinfo, const char* table, const char* index, const Datum* key, Oid key_op,
                  RegProcedure key_proc, const char* order_column, RegProcedure order_eq, TieSort tie, int64 limit, Keep keep) {
    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (limit <= 0) return;
    Relation heap = open_sp_table(table);
    Relation idx = index_open(sp_relation(index), AccessShareLock);
    const int order_att = column(heap, order_column);
    tie.att = column(heap, tie.column);
    ScanKeyData skey;
    int nkeys = 0;
    if (key) {
        const StrategyNumber strategy = StrategyNumber(get_op_opfamily_strategy(key_op, idx->rd_opfamily[0]));
        ScanKeyEntryInitialize(&skey, 0, 1, strategy, InvalidOid, idx->rd_indcollation[0], key_proc, *key);
        nkeys = 1;
    }
    IndexScanDesc scan = index_beginscan(heap, idx, query_snapshot(), nkeys, 0);
    index_rescan(scan, nkeys ? &skey : nullptr, nkeys, nullptr, 0);
    TupleTableSlot* slot = table_slot_create(heap, nullptr);
    TieContext ctx{tie, RelationGetDescr(heap)};
    int capacity = 16, count = 0;
    HeapTuple* group = static_cast<HeapTuple*>(palloc(sizeof(HeapTuple) * capacity));
    Datum group_value = 0;
    int64 emitted = 0;
    auto flush = [&] {
        if (count > 1) qsort_arg(group, std::size_t(count), sizeof(HeapTuple), compare_tie_rows, &ctx);
        for (int i = 0; i < count && emitted < limit; ++i, ++emitted) tuplestore_puttuple(rsinfo->setResult, group[i]);
        for (int i = 0; i < count; ++i) heap_freetuple(group[i]);
        count = 0;
    };
    while (emitted < limit && index_getnext_slot(scan, ForwardScanDirection, slot)) {
        CHECK_FOR_INTERRUPTS();
        if (!keep(heap, slot)) continue;
        bool isnull;
        Datum value = slot_getattr(slot, order_att, &isnull);
        if (count > 0 && (isnull || !DatumGetBool(OidFunctionCall2(order_eq, group_value, value)))) flush();
        if (emitted >= limit) break;
        if (count == capacity) {
            capacity *= 2;
            group = static_cast<HeapTuple*>(repalloc(group, sizeof(HeapTuple) * capacity));
        }
        group[count++] = ExecCopySlotHeapTuple(slot);
        group_value = heap_getattr(group[count - 1], order_att, ctx.desc, &isnull);
    }
    flush();
    pfree(group);
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    index_close(idx, NoLock);
    table_close(heap, NoLock);
}

// The limit of a listing: NULL or negative raises 22023 (as _page_limit), at most 100.
int64 page_limit(FunctionCallInfo fcinfo, int arg) {
    if (PG_ARGISNULL(arg)) {
        sp::pg::raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, "lim must not be NULL");
    }
    int32 lim = PG_GETARG_INT32(arg);
    if (lim < 0) {
        sp::pg::raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("lim must not be negative (got %d)", lim));
    }
    return lim < 100 ? lim : 100;
}

bool session_active(Relation rel, TupleTableSlot* slot, TimestampTz now) {
    if (!attr_is_null(slot, column(rel, "ended_at")) || !attr_is_null(slot, column(rel, "revoked_at"))) return false;
    bool isnull;
    Datum exp = slot_getattr(slot, column(rel, "expires_at"), &isnull);
    return isnull || DatumGetTimestampTz(exp) > now;
}
// Under sp_users.distribute(), Citus splits user_sessions into shards on the workers and the
// coordinator's table is an empty shell: the session readers then ask Citus, through SQL. These
// functions are not SECURITY DEFINER (EXECUTE is the gate, as for the index probes), so the
// statement runs as the table's owner, under the settings Citus needs to write it for a worker
// (citus.hpp). Errors unwind both with the (sub)transaction.
template <typename Body>
void through_citus(Body body, const char* table = "user_sessions") {
    HeapTuple cls = SearchSysCache1(RELOID, ObjectIdGetDatum(optional_table(table)));
    if (!HeapTupleIsValid(cls)) elog(ERROR, "cache lookup failed for sp_users.%s", table);
    const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(cls))->relowner;
    ReleaseSysCache(cls);
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
    const int nest = sp::pg::citus::begin_local_canonical();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    body();
    SPI_finish();
    sp::pg::citus::end_canonical(nest);
    SetUserIdAndSecContext(saved_user, saved_context);
}

sp::pg::KeptStatement session_exists_statement{
    "SELECT 1 FROM sp_users.user_sessions s"
    " WHERE s.session_id OPERATOR(pg_catalog.=) $1 AND s.ended_at IS NULL AND s.revoked_at IS NULL"
    "   AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) $2)",
    2, {TEXTOID, TIMESTAMPTZOID}};
sp::pg::KeptStatement active_sessions_statement{
    "SELECT * FROM sp_users.user_sessions s"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.ended_at IS NULL AND s.revoked_at IS NULL"
    "   AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) $2)"
    " ORDER BY s.last_activity_at DESC, s.session_id",
    2, {UUIDOID, TIMESTAMPTZOID}};

// Under sp_users.distribute() users are split into shards by id too (docs/scaling.md): a user by id
// is one routed statement; by email or name first its claim in user_emails / user_names (routed by
// that key), then the user by id, who must still hold that email or name (a direct write to users
// could leave a claim behind).
sp::pg::KeptStatement user_by_id_statement{"SELECT * FROM sp_users.users u WHERE u.id OPERATOR(pg_catalog.=) $1", 1, {UUIDOID}};
sp::pg::KeptStatement user_id_by_email_statement{
    "SELECT e.user_id FROM sp_users.user_emails e WHERE e.email OPERATOR(pg_catalog.=) $1", 1, {TEXTOID}};
sp::pg::KeptStatement user_id_by_name_statement{
    "SELECT n.user_id FROM sp_users.user_names n WHERE n.name OPERATOR(pg_catalog.=) $1", 1, {TEXTOID}};
// No claim, or a claim its user no longer matches: rows written into users directly (a COPY, an
// administrator's UPDATE) are found all the same, by asking every shard (users_email_idx,
// users_name_idx on each).
sp::pg::KeptStatement users_by_email_statement{
    "SELECT * FROM sp_users.users u WHERE u.email OPERATOR(pg_catalog.=) $1 ORDER BY u.id", 1, {TEXTOID}};
sp::pg::KeptStatement users_by_name_statement{
    "SELECT * FROM sp_users.users u WHERE u.name OPERATOR(pg_catalog.=) $1 ORDER BY u.id", 1, {TEXTOID}};

// Whether Citus hash-distributes the sp_users table `name`. optional_table() memoises the table,
// whose relcache invalidation (Citus sends one when it distributes it) empties the memo, this
// verdict included.
bool split_by_citus(const char* name, const char* memo_key) {
    if (!sp::pg::citus::loaded()) return false;
    return memoised(memo_key, false, [&] {
               Oid rel = optional_table(name);
               return Oid(OidIsValid(rel) && sp::pg::citus::hash_distributed(rel) ? 2 : 1);
           }) == 2;
}

HeapTuple citus_user_by(const char* index, Datum key, const char* status, bool required) {
    const bool by_id = std::strcmp(index, "users_pkey") == 0, by_email = std::strcmp(index, "users_email_key") == 0;
    const char* key_column = by_id ? nullptr : (by_email ? "email" : "name");
    const Oid wanted = status_value(status);
    MemoryContext upper = CurrentMemoryContext;
    Relation rel = table_open(optional_table("users"), AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    HeapTuple result = nullptr;
    // The first row of the last result that has the wanted status (and still the key), or null.
    auto pick = [&]() -> HeapTuple {
        TupleDesc got = SPI_tuptable->tupdesc;
        for (uint64 i = 0; i < SPI_processed; ++i) {
            HeapTuple row = SPI_tuptable->vals[i];
            bool isnull;
            Datum s = SPI_getbinval(row, got, SPI_fnumber(got, "status"), &isnull);
            if (isnull || (DatumGetObjectId(s) == wanted) != required) continue;
            if (key_column) {
                Datum held = SPI_getbinval(row, got, SPI_fnumber(got, key_column), &isnull);
                if (isnull || !DatumGetBool(DirectFunctionCall2Coll(texteq, DEFAULT_COLLATION_OID, held, key))) continue;
            }
            return row;
        }
        return nullptr;
    };
    through_citus(
        [&] {
            LOCAL_FCINFO(args, 1);
            HeapTuple row = nullptr;
            if (by_id) {
                sp::pg::set_kept_args<1>(args, {key}, {false});
                if (sp::pg::run_kept(user_by_id_statement, args) > 0) row = pick();
            } else {
                sp::pg::set_kept_args<1>(args, {key}, {false});
                bool claimed = false; // the claim's user still holds the key (its status aside)
                if (sp::pg::run_kept(by_email ? user_id_by_email_statement : user_id_by_name_statement, args) > 0) {
                    bool isnull;
                    Datum id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
                    sp::pg::set_kept_args<1>(args, {id}, {isnull});
                    if (!isnull && sp::pg::run_kept(user_by_id_statement, args) > 0) {
                        TupleDesc got = SPI_tuptable->tupdesc;
                        Datum held = SPI_getbinval(SPI_tuptable->vals[0], got, SPI_fnumber(got, key_column), &isnull);
                        claimed = !isnull && DatumGetBool(DirectFunctionCall2Coll(texteq, DEFAULT_COLLATION_OID, held, key));
                        if (claimed) row = pick();
                    }
                }
                if (!claimed) {
                    sp::pg::set_kept_args<1>(args, {key}, {false});
                    if (sp::pg::run_kept(by_email ? users_by_email_statement : users_by_name_statement, args) > 0) row = pick();
                }
            }
            if (row == nullptr) return;
            MemoryContext spi = MemoryContextSwitchTo(upper);
            TupleConversionMap* map = convert_tuples_by_position(SPI_tuptable->tupdesc, desc, "sp_users: users does not match its row type");
            result = map ? execute_attr_map_tuple(row, map) : heap_copytuple(row);
            MemoryContextSwitchTo(spi);
        },
        "users");
    table_close(rel, NoLock);
    return result;
}

} // namespace

namespace sp::pg::lookup {
bool users_distributed() { return split_by_citus("users", "users@citus"); }

bool sessions_distributed() { return split_by_citus("user_sessions", "user_sessions@citus"); }

void register_callbacks() noexcept { CacheRegisterRelcacheCallback(on_relcache_invalidation, PointerGetDatum(nullptr)); }

bool users_insert_names_email_first() {
    Oid users = optional_relation("users");
    if (!OidIsValid(users)) return false;
    Oid verdict = memoised("users: plain insert", false, [&] {
        // Under the lock, with the oids as of now: taking it processes pending invalidations
        // (REINDEX CONCURRENTLY renames and swaps these indexes).
        Relation rel = table_open(users, AccessShareLock);
        Oid nsp = RelationGetNamespace(rel);
        Oid pkey = get_relname_relid("users_pkey", nsp), email = get_relname_relid("users_email_key", nsp),
            name = get_relname_relid("users_name_key", nsp);
        int unique = 0;
        bool others = false;
        List* indexes = RelationGetIndexList(rel); // ascending oid: the order an INSERT checks them in
        ListCell* lc;
        foreach (lc, indexes) {
            Oid idx = lfirst_oid(lc);
            HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(idx));
            if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for index %u", idx);
            const auto* form = reinterpret_cast<Form_pg_index>(GETSTRUCT(tup));
            const bool is_unique = form->indisunique, immediate = form->indimmediate;
            ReleaseSysCache(tup);
            if (!is_unique) continue;
            ++unique;
            if ((idx != pkey && idx != email && idx != name) || !immediate) others = true;
        }
        list_free(indexes);
        table_close(rel, NoLock);
        const bool ok = !others && unique == 3 && OidIsValid(email) && OidIsValid(name) && email < name;
        return Oid(ok ? 2 : 1);
    });
    // The verdict is forgotten with any invalidation of these relations (a new or dropped index
    // invalidates the table): make sure they are in the memo, also if one arrived meanwhile.
    for (const char* rel : {"users", "users_pkey", "users_email_key", "users_name_key"}) optional_relation(rel);
    return verdict == 2;
}

Datum stored_email(Datum email) { return normalized_email(email); }
} // namespace sp::pg::lookup

// Each function below does all its work on the PostgreSQL side (inside pg_call): no C++ object
// lives across a call that may raise.

// sp_users.find_by_id(id uuid) RETURNS SETOF sp_users.users
SP_FUNCTION(sp_users_find_by_id) {
    Datum result = 0;
    pg_call([&] { result = return_rows(fcinfo, live_user_by_id(PG_GETARG_DATUM(0))); });
    return result;
}

// sp_users.find_authenticated_user(id uuid) RETURNS SETOF sp_users.users: only an active user; 28000
// when brute-force protection has locked it.
SP_FUNCTION(sp_users_find_authenticated_user) {
    Datum result = 0;
    pg_call([&] {
        HeapTuple user = user_by("users_pkey", kUuidEqualOperator, F_UUID_EQ, PG_GETARG_DATUM(0), "active", true);
        if (user) refuse_if_locked(PG_GETARG_DATUM(0));
        result = return_rows(fcinfo, user);
    });
    return result;
}

// sp_users.find_by_email(email text) RETURNS SETOF sp_users.users
SP_FUNCTION(sp_users_find_by_email) {
    Datum result = 0;
    pg_call([&] { result = return_rows(fcinfo, live_user_by_text("users_email_key", normalized_email(PG_GETARG_DATUM(0)))); });
    return result;
}

// sp_users.find_by_name(name text) RETURNS SETOF sp_users.users
SP_FUNCTION(sp_users_find_by_name) {
    Datum result = 0;
    pg_call([&] { result = return_rows(fcinfo, live_user_by_text("users_name_key", PG_GETARG_DATUM(0))); });
    return result;
}

// sp_users.find_user(identifier text) RETURNS SETOF sp_users.users: by id, email or name.
SP_FUNCTION(sp_users_find_user) {
    Datum result = 0;
    pg_call([&] {
        text* arg = PG_GETARG_TEXT_PP(0);
        HeapTuple row = nullptr;
        switch (sp::core::classify_identifier(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg))) {
        case sp::core::IdentifierKind::Id:
            // uuid input, as identifier::uuid would: it refuses what the pattern lets through
            // but uuid does not (surrounding spaces, unbalanced braces) with 22P02.
            row = live_user_by_id(DirectFunctionCall1(uuid_in, CStringGetDatum(text_to_cstring(arg))));
            break;
        case sp::core::IdentifierKind::Email:
            row = live_user_by_text("users_email_key", normalized_email(PointerGetDatum(arg)));
            break;
        case sp::core::IdentifierKind::Name: row = live_user_by_text("users_name_key", PointerGetDatum(arg)); break;
        }
        result = return_rows(fcinfo, row);
    });
    return result;
}

// sp_users.get_roles(id uuid) RETURNS sp_users.user_role[]; P0002 when there is no such user.
SP_FUNCTION(sp_users_get_roles) {
    Datum result = 0;
    pg_call([&] {
        HeapTuple row = PG_ARGISNULL(0) ? nullptr : live_user_by_id(PG_GETARG_DATUM(0));
        if (!row) user_not_found(fcinfo);
        bool isnull;
        Datum roles = user_column(row, "users", "roles", &isnull);
        result = PointerGetDatum(PG_DETOAST_DATUM_COPY(roles));
    });
    return result;
}

// sp_users.is_temporary_anonymous(id uuid) RETURNS boolean; P0002 when there is no such user.
SP_FUNCTION(sp_users_is_temporary_anonymous) {
    bool anonymous = false;
    pg_call([&] {
        HeapTuple row = PG_ARGISNULL(0) ? nullptr : live_user_by_id(PG_GETARG_DATUM(0));
        if (!row) user_not_found(fcinfo);
        bool isnull;
        ArrayType* roles = DatumGetArrayTypeP(user_column(row, "users", "roles", &isnull));
        const Oid anon = enum_value("user_role", "anonymous");
        Datum* elems;
        bool* nulls;
        int n;
        deconstruct_array(roles, ARR_ELEMTYPE(roles), sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
        for (int i = 0; i < n; ++i)
            if (!nulls[i] && DatumGetObjectId(elems[i]) == anon) anonymous = true;
    });
    return BoolGetDatum(anonymous);
}

// sp_users.session_exists(session_id text) RETURNS boolean: an active session (not ended, not
// revoked, not expired at now()).
SP_FUNCTION(sp_users_session_exists) {
    bool exists = false;
    pg_call([&] {
        if (sp::pg::lookup::sessions_distributed()) {
            LOCAL_FCINFO(args, 2);
            sp::pg::set_kept_args<2>(args, {PG_GETARG_DATUM(0), TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())}, {false, false});
            through_citus([&] { exists = sp::pg::run_kept(session_exists_statement, args) > 0; });
            return;
        }
        const TimestampTz now = GetCurrentTransactionStartTimestamp();
        HeapTuple row = probe("user_sessions", "user_sessions_pkey", TextEqualOperator, F_TEXTEQ, PG_GETARG_DATUM(0), true,
                              [&](Relation rel, TupleTableSlot* slot) {
                                  if (!attr_is_null(slot, column(rel, "ended_at")) || !attr_is_null(slot, column(rel, "revoked_at")))
                                      return -1;
                                  bool isnull;
                                  Datum exp = slot_getattr(slot, column(rel, "expires_at"), &isnull);
                                  return (isnull || DatumGetTimestampTz(exp) > now) ? 0 : -1;
                              });
        exists = row != nullptr;
    });
    return BoolGetDatum(exists);
}

// sp_users.get_ban(ip text) RETURNS SETOF sp_users.banned_ips: the active ban that applies, the
// exact entry or else the most specific covering network (GiST probe with >>=).
SP_FUNCTION(sp_users_get_ban) {
    text* arg = nullptr;
    pg_call([&] { arg = PG_GETARG_TEXT_PP(0); });
    const sp::core::Address addr = sp::pg::parse_address_arg(arg);
    Datum result = 0;
    pg_call([&] {
        const TimestampTz now = GetCurrentTransactionStartTimestamp();
        Datum key = InetPGetDatum(sp::pg::inet_from_address(addr));
        HeapTuple row = probe("banned_ips", "banned_ips_network_idx", OID_INET_SUPEQ_OP, F_NETWORK_SUPEQ, key, false,
                              [&](Relation rel, TupleTableSlot* slot) {
                                  bool isnull;
                                  Datum ip = slot_getattr(slot, column(rel, "ip_address"), &isnull);
                                  if (isnull || !DatumGetBool(DirectFunctionCall2(network_supeq, ip, key))) return -1;
                                  Datum exp = slot_getattr(slot, column(rel, "expires_at"), &isnull);
                                  if (!isnull && DatumGetTimestampTz(exp) <= now) return -1;
                                  return int(ip_bits(DatumGetInetPP(ip)));
                              });
        result = return_rows(fcinfo, row);
    });
    return result;
}

// sp_users.list_active_bans(lim integer DEFAULT 100) RETURNS SETOF sp_users.banned_ips: active
// bans, most recently (re)banned first (ties by address), lim capped at 100.
SP_FUNCTION(sp_users_list_active_bans) {
    pg_call([&] {
        const int64 limit = page_limit(fcinfo, 0);
        const TimestampTz now = GetCurrentTransactionStartTimestamp();
        ordered_rows(fcinfo, "banned_ips", "banned_ips_banned_at_idx", nullptr, InvalidOid, InvalidOid, "banned_at",
                     F_TIMESTAMPTZ_EQ, TieSort{"ip_address", F_NETWORK_CMP, InvalidOid}, limit, [&](Relation rel, TupleTableSlot* slot) {
                         bool isnull;
                         Datum exp = slot_getattr(slot, column(rel, "expires_at"), &isnull);
                         return isnull || DatumGetTimestampTz(exp) > now;
                     });
    });
    return Datum(0);
}

// sp_users.list_active_sessions(user_id uuid) RETURNS SETOF sp_users.user_sessions: the user's
// active sessions, most recent activity first (ties by session id); P0002 without such a user.
SP_FUNCTION(sp_users_list_active_sessions) {
    pg_call([&] {
        if (PG_ARGISNULL(0) || live_user_by_id(PG_GETARG_DATUM(0)) == nullptr) user_not_found(fcinfo);
        const TimestampTz now = GetCurrentTransactionStartTimestamp();
        Datum user_id = PG_GETARG_DATUM(0);
        if (sp::pg::lookup::sessions_distributed()) {
            InitMaterializedSRF(fcinfo, 0);
            auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            LOCAL_FCINFO(args, 2);
            sp::pg::set_kept_args<2>(args, {user_id, TimestampTzGetDatum(now)}, {false, false});
            through_citus([&] {
                sp::pg::run_kept(active_sessions_statement, args);
                TupleConversionMap* map = convert_tuples_by_position(SPI_tuptable->tupdesc, rsinfo->setDesc,
                                                                     "sp_users: user_sessions does not match its row type");
                for (uint64 i = 0; i < SPI_processed; ++i) {
                    HeapTuple row = SPI_tuptable->vals[i];
                    tuplestore_puttuple(rsinfo->setResult, map ? execute_attr_map_tuple(row, map) : row);
                }
            });
            return;
        }
        ordered_rows(fcinfo, "user_sessions", "user_sessions_user_idx", &user_id, kUuidEqualOperator, F_UUID_EQ,
                     "last_activity_at", F_TIMESTAMPTZ_EQ, TieSort{"session_id", F_BTTEXTCMP, DEFAULT_COLLATION_OID}, PG_INT64_MAX,
                     [&](Relation rel, TupleTableSlot* slot) { return session_active(rel, slot, now); });
    });
    return Datum(0);
}

// sp_users._users_distributed() RETURNS boolean: users_distributed() for the SQL functions that
// keep user_emails, user_names and what foreign keys do on one server in step on Citus.
SP_FUNCTION(sp_users_users_distributed) {
    bool distributed = false;
    pg_call([&] { distributed = sp::pg::lookup::users_distributed(); });
    return BoolGetDatum(distributed);
}

// sp_users._sessions_distributed() RETURNS boolean: sessions_distributed() for the SQL functions
// that need another statement shape on Citus.
SP_FUNCTION(sp_users_sessions_distributed) {
    bool distributed = false;
    pg_call([&] { distributed = sp::pg::lookup::sessions_distributed(); });
    return BoolGetDatum(distributed);
}
