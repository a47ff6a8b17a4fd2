// Logical replication (docs/replication.md). sp_users' derived tables — counters, the ban change
// log, the clean-up history — belong to the node that writes them: a subscriber derives its own
// from the rows it applies (the replica-mode row triggers in stats.cpp and ban_changes.cpp). When a
// publication carries them anyway (FOR ALL TABLES, FOR TABLES IN SCHEMA sp_users), this trigger
// makes the subscriber drop the rows the apply worker would write there: applied, they would be
// counted twice, collide with the node's own rows (ban_changes_horizon's single row, job_runs ids)
// or delete the node's own deltas. The policy tables are each node's configuration, likewise.
#include "pg/pg_headers.hpp"
#include "pg/trigger_check.hpp"

extern "C" {
#include "replication/logicalworker.h"
#include "utils/fmgrprotos.h"
}

using sp::pg::pg_call;

namespace {

constexpr const char* kGuarded[] = {"user_counts", "user_count_deltas", "ban_changes", "ban_changes_horizon", "job_runs",
                                     "failure_policies", "merge_policies"};

} // namespace

// BEFORE INSERT / UPDATE / DELETE FOR EACH ROW on the derived and configuration tables, ENABLE REPLICA. A row the
// apply worker (or its initial copy) writes itself is skipped; rows sp_users' own triggers write
// inside the apply worker run one trigger level deeper and pass, as does every other session.
SP_FUNCTION(sp_users_ignore_replicated) {
    Datum result = PointerGetDatum(nullptr);
    pg_call([&] {
        if (!CALLED_AS_TRIGGER(fcinfo))
            ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                            errmsg("sp_users._ignore_replicated() can only be called as a trigger")));
        const char* name = RelationGetRelationName(reinterpret_cast<TriggerData*>(fcinfo->context)->tg_relation);
        const char* table = kGuarded[0];
        for (const char* d : kGuarded)
            if (strcmp(name, d) == 0) table = d;
        const sp::pg::TriggerShape shape{"sp_users._ignore_replicated()", table, false, false,
                                         sp::pg::kEvInsert | sp::pg::kEvUpdate | sp::pg::kEvDelete, false};
        TriggerData* td = sp::pg::checked_trigger(fcinfo, shape);
        if (IsLogicalWorker() && DatumGetInt32(DirectFunctionCall1(pg_trigger_depth, PointerGetDatum(nullptr))) == 1) return;
        result = PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);
    });
    return result;
}
