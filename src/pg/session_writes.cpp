// The per-request session writes (touch_session, end_session): one UPDATE each, prepared once per
// backend through SPI and kept (issue 12: a PL/pgSQL body costs about a tenth of such a call).
// The statements name every object and operator with its schema and are prepared under a search
// path of pg_catalog alone; a kept plan re-analyses itself under that same path whenever it is
// invalidated (ALTER TABLE, a new index, DROP / CREATE EXTENSION), so no caller's search_path is
// ever followed. The functions are SECURITY DEFINER: the UPDATE runs as the extension's owner.
#include "pg/pg_headers.hpp"

using sp::pg::pg_call;

namespace {

struct KeptStatement {
    const char* sql;
    SPIPlanPtr plan = nullptr;
};

// Runs `k` with one text argument and returns the number of rows it changed.
uint64 run_text_statement(KeptStatement& k, Datum arg) {
    uint64 changed = 0;
    pg_call([&] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        if (k.plan == nullptr) {
            Oid types[1] = {TEXTOID};
            OverrideSearchPath path{};
            path.schemas = NIL;
            path.addCatalog = true;
            path.addTemp = false;
            PushOverrideSearchPath(&path);
            SPIPlanPtr plan = SPI_prepare(k.sql, 1, types);
            PopOverrideSearchPath();
            if (plan == nullptr) elog(ERROR, "SPI_prepare failed (%s): %s", SPI_result_code_string(SPI_result), k.sql);
            SPI_keepplan(plan);
            k.plan = plan;
        }
        Datum values[1] = {arg};
        int rc = SPI_execute_plan(k.plan, values, nullptr, false, 0);
        if (rc != SPI_OK_UPDATE) elog(ERROR, "SPI_execute_plan failed (%s): %s", SPI_result_code_string(rc), k.sql);
        changed = SPI_processed;
        SPI_finish();
    });
    return changed;
}

KeptStatement touch_statement{
    "UPDATE sp_users.user_sessions s"
    "   SET last_activity_at = GREATEST(pg_catalog.statement_timestamp(), s.last_activity_at)"
    " WHERE s.session_id OPERATOR(pg_catalog.=) $1"
    "   AND sp_users.session_is_active(s.ended_at, s.revoked_at, s.expires_at)"};

KeptStatement end_statement{
    "UPDATE sp_users.user_sessions s SET ended_at = pg_catalog.now()"
    " WHERE s.session_id OPERATOR(pg_catalog.=) $1 AND s.ended_at IS NULL"};

} // namespace

// sp_users.touch_session(session_id text) RETURNS boolean: moves last_activity_at of an active
// session to now (never backwards); false for an unknown or inactive session.
SP_FUNCTION(sp_users_touch_session) { return BoolGetDatum(run_text_statement(touch_statement, PG_GETARG_DATUM(0)) > 0); }

// sp_users.end_session(session_id text) RETURNS boolean: false when unknown or already ended.
SP_FUNCTION(sp_users_end_session) { return BoolGetDatum(run_text_statement(end_statement, PG_GETARG_DATUM(0)) > 0); }
