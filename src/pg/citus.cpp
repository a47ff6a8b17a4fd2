#include "pg/citus.hpp"

#include <dlfcn.h>

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"
}

namespace sp::pg::citus {
namespace {

// pg_dist_shard (Citus' catalog): logicalrelid regclass, shardid bigint, ... Its columns are read
// by number, as they have been since Citus 6.
constexpr AttrNumber kLogicalRelid = 1, kShardId = 2;

// The shard ids Citus has for `table`: 0 shards when Citus does not manage it.
int shard_of(Oid table, int64* shard) {
    Oid dist_shard = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
    if (!OidIsValid(dist_shard)) return 0;
    Relation rel = table_open(dist_shard, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, kLogicalRelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(table));
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
    int count = 0;
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        bool isnull = false;
        Datum id = heap_getattr(tup, kShardId, RelationGetDescr(rel), &isnull);
        if (!isnull) *shard = DatumGetInt64(id);
        ++count;
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return count;
}

// Citus is loaded in this server (preloaded, or not at all): one of its exported symbols is
// visible, as PostgreSQL loads libraries RTLD_GLOBAL.
bool citus_in_process() {
    static int loaded = -1;
    if (loaded < 0) loaded = dlsym(RTLD_DEFAULT, "citus_is_coordinator") != nullptr ? 1 : 0;
    return loaded == 1;
}

// Settings that decide how Citus writes a statement here and how another node reads it.
struct Setting {
    const char* name;
    const char* value;
    const char* set_local; // the same as SQL, for Citus to replay on the other nodes
};
constexpr Setting kCanonical[] = {
    {"search_path", "pg_catalog, pg_temp", "SET LOCAL search_path TO pg_catalog, pg_temp"},
    {"DateStyle", "ISO, MDY", "SET LOCAL DateStyle TO 'ISO, MDY'"},
    {"IntervalStyle", "postgres", "SET LOCAL IntervalStyle TO postgres"},
    {"standard_conforming_strings", "on", "SET LOCAL standard_conforming_strings TO on"},
};

// Like a function's SET clause: the value holds until the current GUC nest level ends, and a SET
// LOCAL of the same setting meanwhile ends with it too.
void save_and_set(const char* name, const char* value) {
    (void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

} // namespace

bool loaded() { return citus_in_process(); }

namespace {
ProcessUtility_hook_type prev_utility = nullptr;
bool guard_installed = false;
bool own_settings = false; // canonical_session() is issuing its SET LOCALs

// What Citus propagates under citus.propagate_set_commands = 'local' (ShouldPropagateSetCommand in
// Citus 13): SET LOCAL, RESET, RESET ALL, SET TRANSACTION.
bool propagated_by_citus(const VariableSetStmt* stmt) {
    switch (stmt->kind) {
    case VAR_SET_VALUE:
    case VAR_SET_CURRENT:
    case VAR_SET_DEFAULT: return stmt->is_local;
    case VAR_SET_MULTI: return stmt->name != nullptr && strcmp(stmt->name, "TRANSACTION") == 0;
    default: return true; // RESET, RESET ALL
    }
}

void guarded_utility(PlannedStmt* pstmt, const char* query, bool read_only, ProcessUtilityContext context, ParamListInfo params,
                     QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
    if (IsA(pstmt->utilityStmt, VariableSetStmt) && !own_settings &&
        propagated_by_citus(reinterpret_cast<VariableSetStmt*>(pstmt->utilityStmt))) {
        const char* mode = GetConfigOption("citus.propagate_set_commands", true, false);
        if (mode != nullptr && strcmp(mode, "local") == 0 && OidIsValid(get_extension_oid("sp_users", true)))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("sp_users does not let Citus propagate SET LOCAL, RESET or SET TRANSACTION in this database"),
                            errdetail("Citus replays the text of such a command on every connection of the transaction, also on those "
                                      "sp_users' definer functions open as its owner: a comment or a second statement in it would run there."),
                            errhint("SET citus.propagate_set_commands = 'none' (the default); set what the other nodes need with "
                                    "ALTER ROLE / ALTER DATABASE there.")));
    }
    if (prev_utility)
        prev_utility(pstmt, query, read_only, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only, context, params, env, dest, qc);
}
} // namespace

void install_set_guard() {
    prev_utility = ProcessUtility_hook;
    ProcessUtility_hook = guarded_utility;
    guard_installed = true;
}

bool set_guard_installed() { return guard_installed; }

namespace {
void require_guard(const char* what) {
    if (!guard_installed)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("on a Citus node, sp_users must be in shared_preload_libraries (after citus) to %s through Citus", what),
                        errdetail("Its guard keeps statements smuggled into a propagated SET from running on other nodes as the owner of sp_users."),
                        errhint("shared_preload_libraries = 'citus,sp_users' on every node, restart, then SELECT * FROM sp_users.distribute() on the coordinator.")));
}
} // namespace

void canonical_session() {
    if (!citus_in_process() || !OidIsValid(get_extension_oid("citus", true))) return;
    require_guard("change or read bans");
    save_and_set("citus.propagate_set_commands", "local");
    for (const Setting& g : kCanonical) save_and_set(g.name, g.value);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    own_settings = true;
    PG_TRY();
    {
        for (const Setting& g : kCanonical) // one statement per call: Citus replays a SET's whole query text
            if (SPI_execute(g.set_local, false, 0) != SPI_OK_UTILITY) elog(ERROR, "sp_users: %s failed", g.set_local);
    }
    PG_FINALLY();
    {
        own_settings = false;
    }
    PG_END_TRY();
    SPI_finish();
}

int begin_canonical() {
    if (!citus_in_process()) return 0;
    const int nest = NewGUCNestLevel();
    canonical_session();
    return nest;
}

int begin_local_canonical() {
    require_guard("read or write sessions");
    const int nest = NewGUCNestLevel();
    for (const Setting& g : kCanonical) save_and_set(g.name, g.value);
    return nest;
}

void end_canonical(int nest) {
    if (nest > 0) AtEOXact_GUC(true, nest);
}

bool hash_distributed(Oid table) {
    if (!OidIsValid(get_extension_oid("citus", true))) return false;
    Oid dist_partition = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
    if (!OidIsValid(dist_partition)) return false;
    // pg_dist_partition (Citus' catalog): logicalrelid regclass, partmethod "char", ... by number.
    constexpr AttrNumber kPartitionRelid = 1, kPartMethod = 2;
    Relation rel = table_open(dist_partition, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, kPartitionRelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(table));
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
    bool hashed = false;
    HeapTuple tup = systable_getnext(scan);
    if (HeapTupleIsValid(tup)) {
        bool isnull = false;
        Datum method = heap_getattr(tup, kPartMethod, RelationGetDescr(rel), &isnull);
        hashed = !isnull && DatumGetChar(method) == 'h';
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return hashed;
}

Oid table_of(Oid relid) { return get_rel_relkind(relid) == RELKIND_INDEX ? IndexGetRelation(relid, false) : relid; }

Oid local_relation(Oid relid) {
    if (!OidIsValid(get_extension_oid("citus", true))) return relid;
    const Oid table = table_of(relid);
    int64 shard = 0;
    const int shards = shard_of(table, &shard);
    if (shards == 0) return relid;
    if (shards > 1 || hash_distributed(table))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("sp_users.%s is distributed by Citus (%d shards), which sp_users does not support for this table",
                               get_rel_name(table), shards),
                        errhint("sp_users.distribute() makes the layout sp_users supports; see docs/scaling.md.")));
    char name[NAMEDATALEN];
    snprintf(name, sizeof name, "%s_" INT64_FORMAT, get_rel_name(relid), shard);
    Oid placement = get_relname_relid(name, get_rel_namespace(relid));
    if (!OidIsValid(placement))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("this node holds no placement of the Citus table sp_users.%s", get_rel_name(table)),
                        errhint("On the coordinator, run SELECT * FROM sp_users.distribute(); it places the table on every node "
                                "(also on nodes added since).")));
    return placement;
}

} // namespace sp::pg::citus

// sp_users._citus_session() RETURNS void: canonical_session() for SQL functions (their SET clause
// ends its local effects).
SP_FUNCTION(sp_users_citus_session) {
    sp::pg::pg_call([] { sp::pg::citus::canonical_session(); });
    PG_RETURN_VOID();
}

// sp_users._set_guard_installed() RETURNS boolean: whether this server runs the guard of
// install_set_guard() (sp_users preloaded).
SP_FUNCTION(sp_users_set_guard_installed) { return BoolGetDatum(sp::pg::citus::set_guard_installed()); }
