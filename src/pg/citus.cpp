#include "pg/citus.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
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

} // namespace

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
                        errhint("Add the coordinator to the Citus metadata (SELECT citus_set_coordinator_host('<host>', <port>)) "
                                "so that reference tables have a placement on it, or call sp_users on a node that has one.")));
    return placement;
}

} // namespace sp::pg::citus
