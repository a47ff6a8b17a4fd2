// Trigger functions written in C trust the rows they are given, so each one first checks that it
// runs where the install script attached it: called as a trigger, on the right table of schema
// sp_users, at the right level, timing and events, with the transition tables it reads. Anything
// else (a direct call, the function attached to another table) is 39P01, as PostgreSQL's own
// trigger functions answer. Call only from PostgreSQL context (inside pg_call).
#pragma once
#include "pg/citus.hpp"
#include "pg/pg_headers.hpp"

namespace sp::pg {

struct TriggerShape {
    const char* function;   // for messages, e.g. "sp_users._count_statement()"
    const char* table;      // relation name in schema sp_users
    bool statement_level;
    bool after;
    uint32 events;          // TRIGGER_EVENT_* bits allowed (INSERT=0, so use the mask below)
    bool needs_transition;  // INSERT needs NEW TABLE, DELETE OLD TABLE, UPDATE both
};

constexpr uint32 kEvInsert = 1u << 0, kEvDelete = 1u << 1, kEvUpdate = 1u << 2, kEvTruncate = 1u << 3;

inline TriggerData* checked_trigger(FunctionCallInfo fcinfo, const TriggerShape& shape) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s can only be called as a trigger", shape.function)));
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    Oid nsp = get_namespace_oid("sp_users", true);
    Oid expected = OidIsValid(nsp) ? get_relname_relid(shape.table, nsp) : InvalidOid;
    // Under Citus the trigger fires on the table's placement on each node (sp_users.distribute()).
    const Oid fired_on = RelationGetRelid(td->tg_relation);
    // On a Citus node, the placement of a table kept whole (a reference table) counts as the table;
    // a shard of a table split into shards never does (local_relation() would refuse it).
    if (!OidIsValid(expected) ||
        (fired_on != expected && (sp::pg::citus::hash_distributed(expected) || sp::pg::citus::local_relation(expected) != fired_on)))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s may only be attached to sp_users.%s, not to %s", shape.function, shape.table,
                               RelationGetRelationName(td->tg_relation))));
    const TriggerEvent ev = td->tg_event;
    uint32 bit = TRIGGER_FIRED_BY_INSERT(ev) ? kEvInsert : TRIGGER_FIRED_BY_DELETE(ev) ? kEvDelete
               : TRIGGER_FIRED_BY_UPDATE(ev) ? kEvUpdate : TRIGGER_FIRED_BY_TRUNCATE(ev) ? kEvTruncate : 0;
    bool ok = (shape.events & bit) != 0 && TRIGGER_FIRED_FOR_STATEMENT(ev) == shape.statement_level &&
              TRIGGER_FIRED_AFTER(ev) == shape.after;
    if (ok && shape.needs_transition) {
        if (bit & (kEvInsert | kEvUpdate)) ok = ok && td->tg_newtable != nullptr;
        if (bit & (kEvDelete | kEvUpdate)) ok = ok && td->tg_oldtable != nullptr;
    }
    if (!ok)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s fired in a way it was not created for", shape.function),
                        errhint("It is attached by CREATE EXTENSION sp_users; do not attach it yourself.")));
    return td;
}

} // namespace sp::pg
