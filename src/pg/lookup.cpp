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
#include "pg/pg_headers.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_enum.h"
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

Oid sp_relation(const char* name) {
    Oid nsp = get_namespace_oid("sp_users", true);
    Oid rel = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
    if (!OidIsValid(rel))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("sp_users.%s does not exist", name),
                        errhint("Run CREATE EXTENSION sp_users in this database.")));
    return rel;
}

Oid status_value(const char* label) {
    Oid nsp = get_namespace_oid("sp_users", false);
    Oid type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("user_status"), ObjectIdGetDatum(nsp));
    Oid value = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid, ObjectIdGetDatum(type), CStringGetDatum(label));
    if (!OidIsValid(value)) elog(ERROR, "sp_users.user_status has no value %s", label);
    return value;
}

int column(Relation rel, const char* name) {
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < desc->natts; ++i) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && std::strcmp(NameStr(att->attname), name) == 0) return i + 1;
    }
    elog(ERROR, "%s has no column %s", RelationGetRelationName(rel), name);
    return 0;
}

Snapshot query_snapshot() { return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot(); }

// Probes `index` of `table` with "first index column <op> key" and returns a copy of the visible
// row `rank` scores highest (rank < 0: not wanted; with first_only the first wanted row), or null.
template <typename Rank>
HeapTuple probe(const char* table, const char* index, Oid op, RegProcedure proc, Datum key, bool first_only, Rank rank) {
    Relation heap = table_open(sp_relation(table), AccessShareLock);
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

// A users row by a unique key, unless its status is `excluded` (or, with `required`, unless it is
// exactly that status).
HeapTuple user_by(const char* index, Oid op, RegProcedure proc, Datum key, const char* status, bool required) {
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

[[noreturn]] void user_not_found(FunctionCallInfo fcinfo) {
    const char* id = PG_ARGISNULL(0) ? "<NULL>" : DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(0)));
    sp::pg::drop_error_context();
    ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND), errmsg("user not found: %s", id)));
    pg_unreachable();
}

Datum user_column(HeapTuple row, const char* table, const char* name, bool* isnull) {
    Relation rel = table_open(sp_relation(table), AccessShareLock);
    Datum d = heap_getattr(row, column(rel, name), RelationGetDescr(rel), isnull);
    table_close(rel, NoLock);
    return d;
}

} // namespace

// Each function below does all its work on the PostgreSQL side (inside pg_call): no C++ object
// lives across a call that may raise.

// sp_users.find_by_id(id uuid) RETURNS SETOF sp_users.users
SP_FUNCTION(sp_users_find_by_id) {
    Datum result = 0;
    pg_call([&] { result = return_rows(fcinfo, live_user_by_id(PG_GETARG_DATUM(0))); });
    return result;
}

// sp_users.find_authenticated_user(id uuid) RETURNS SETOF sp_users.users: only an active user.
SP_FUNCTION(sp_users_find_authenticated_user) {
    Datum result = 0;
    pg_call([&] {
        result = return_rows(fcinfo, user_by("users_pkey", kUuidEqualOperator, F_UUID_EQ, PG_GETARG_DATUM(0), "active", true));
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
        Oid nsp = get_namespace_oid("sp_users", false);
        Oid role_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("user_role"), ObjectIdGetDatum(nsp));
        Oid anon = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid, ObjectIdGetDatum(role_type), CStringGetDatum("anonymous"));
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
