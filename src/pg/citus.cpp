#include "pg/citus.hpp"

#include <dlfcn.h>

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
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

// What Citus 13 keeps of the SET LOCAL commands it will replay on every remote transaction
// (distributed/transaction_management.h): the current (sub)transaction's, and each open
// subtransaction's. Found in the loaded citus.so, as PostgreSQL loads libraries RTLD_GLOBAL.
struct CitusSubXact {
    SubTransactionId sub_id;
    StringInfo set_local_commands;
};
struct CitusSets {
    bool looked = false;
    StringInfo* active = nullptr;                 // activeSetStmts
    List* (*subtransactions)(void) = nullptr;     // ActiveSubXactContexts()
    bool loaded() const noexcept { return active != nullptr || subtransactions != nullptr; }
};
CitusSets& citus_sets() {
    static CitusSets c;
    if (!c.looked) {
        c.looked = true; // citus.so is preloaded (shared_preload_libraries) or not at all
        c.active = static_cast<StringInfo*>(dlsym(RTLD_DEFAULT, "activeSetStmts"));
        c.subtransactions = reinterpret_cast<List* (*)(void)>(dlsym(RTLD_DEFAULT, "ActiveSubXactContexts"));
    }
    return c;
}
bool has_text(StringInfo s) { return s != nullptr && s->len > 0; }

} // namespace

bool loaded() { return citus_sets().loaded(); }

void refuse_propagated_settings() {
    CitusSets& c = citus_sets();
    if (!c.loaded() && GetConfigOption("citus.propagate_set_commands", true, false) == nullptr) return; // no Citus
    if (!OidIsValid(get_extension_oid("citus", true))) return;
    bool pending = false;
    if (c.active != nullptr && c.subtransactions != nullptr) {
        pending = has_text(*c.active);
        ListCell* lc;
        foreach (lc, c.subtransactions()) pending = pending || has_text(static_cast<CitusSubXact*>(lfirst(lc))->set_local_commands);
    } else {
        // A Citus whose internals differ: what it would replay cannot be seen, so no SET propagation.
        const char* mode = GetConfigOption("citus.propagate_set_commands", true, false);
        pending = mode != nullptr && strcmp(mode, "none") != 0;
    }
    if (pending)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("sp_users does not change bans in a transaction whose SET LOCAL commands Citus replays on other nodes"),
                        errdetail("With citus.propagate_set_commands = 'local', SET LOCAL commands of this transaction reach the nodes "
                                  "where the change runs as the owner of sp_users."),
                        errhint("Change bans in a transaction without SET LOCAL under citus.propagate_set_commands = 'local'.")));
}

Oid table_of(Oid relid) { return get_rel_relkind(relid) == RELKIND_INDEX ? IndexGetRelation(relid, false) : relid; }

Oid local_relation(Oid relid) {
    if (!OidIsValid(get_extension_oid("citus", true))) return relid;
    const Oid table = table_of(relid);
    int64 shard = 0;
    const int shards = shard_of(table, &shard);
    if (shards == 0) return relid;
    if (shards > 1)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("sp_users.%s is split into %d shards by Citus, which sp_users does not support",
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

// sp_users._refuse_citus_replays() RETURNS void: refuse_propagated_settings() for SQL functions.
SP_FUNCTION(sp_users_refuse_citus_replays) {
    sp::pg::pg_call([] { sp::pg::citus::refuse_propagated_settings(); });
    PG_RETURN_VOID();
}
