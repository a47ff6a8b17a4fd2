// The request-path writes in C: each runs one kept statement (pg/kept_statement.hpp), the same
// statement the 0.3.0 PL/pgSQL bodies ran, and raises the same errors without internal context.
#include "pg/citus.hpp"
#include "pg/errors.hpp"
#include "pg/kept_statement.hpp"
#include "pg/lookup.hpp"

extern "C" {
#include "access/tupconvert.h"

// The argument checks the statements call (src/pg/users.cpp, src/pg/bans.cpp, src/pg/errors.cpp).
Datum sp_users_checked_session_id(PG_FUNCTION_ARGS);
Datum sp_users_normalize_ip(PG_FUNCTION_ARGS);
Datum sp_users_positive_interval(PG_FUNCTION_ARGS);
}

using sp::pg::KeptStatement;
using sp::pg::pg_call;
using sp::pg::raise_clean;
using sp::pg::raise_user_not_found;
using sp::pg::run_kept;

namespace {

// Row `row` of the last SPI result as a datum of the function's declared row type, in `upper`
// (the memory context before SPI_connect). By position: RETURNING * lists the table's columns.
Datum row_datum(FunctionCallInfo fcinfo, uint64 row, MemoryContext upper) {
    TupleDesc declared;
    if (get_call_result_type(fcinfo, nullptr, &declared) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
    MemoryContext spi = MemoryContextSwitchTo(upper);
    TupleConversionMap* map = convert_tuples_by_position(SPI_tuptable->tupdesc, declared, "sp_users: RETURNING * does not match the row type");
    HeapTuple tuple = SPI_tuptable->vals[row];
    if (map) tuple = execute_attr_map_tuple(tuple, map);
    Datum d = heap_copy_tuple_as_datum(tuple, declared);
    MemoryContextSwitchTo(spi);
    return d;
}

// A duplicate session id under sp_users.distribute() comes back from the worker naming the shard's
// index (user_sessions_pkey_102008) and no table: said as on one server instead.
void name_table_not_shard(ErrorData* d) {
    constexpr char kShardKey[] = "violates unique constraint \"user_sessions_pkey_";
    if (d->sqlerrcode != ERRCODE_UNIQUE_VIOLATION || d->message == nullptr || std::strstr(d->message, kShardKey) == nullptr) return;
    d->message = pstrdup("duplicate key value violates unique constraint \"user_sessions_pkey\"");
    d->schema_name = pstrdup("sp_users");
    d->table_name = pstrdup("user_sessions");
    d->constraint_name = pstrdup("user_sessions_pkey");
}

// Connects SPI, runs body(), disconnects; errors unwind through pg_call (SPI is cleaned up by the
// transaction's abort). A data error of the caller's making (class 22 or 23: a NULL name, a
// duplicate session id, an expiry out of range) loses its CONTEXT: the kept statement that
// raised it is internal, its text no help to the caller.
template <typename Body>
void with_spi(Body body) {
    try {
        pg_call([&] {
            if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
            body();
            SPI_finish();
        });
    } catch (const sp::pg::PgError& e) {
        const int category = ERRCODE_TO_CATEGORY(e.data()->sqlerrcode);
        if (category == ERRCODE_DATA_EXCEPTION || category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION) e.data()->context = nullptr;
        pg_call([&] { name_table_not_shard(e.data()); });
        throw;
    }
}

KeptStatement touch_statement{
    "UPDATE sp_users.user_sessions s"
    "   SET last_activity_at = GREATEST(pg_catalog.statement_timestamp(), s.last_activity_at)"
    " WHERE s.session_id OPERATOR(pg_catalog.=) $1"
    "   AND sp_users.session_is_active(s.ended_at, s.revoked_at, s.expires_at)",
    1, {TEXTOID}};

KeptStatement end_statement{
    "UPDATE sp_users.user_sessions s SET ended_at = pg_catalog.now()"
    " WHERE s.session_id OPERATOR(pg_catalog.=) $1 AND s.ended_at IS NULL",
    1, {TEXTOID}};

// create_user: a plain INSERT (ON CONFLICT's arbiter pre-check and speculative insertion cost 7 %
// of the call), its unique violation re-raised with SPEC's message; a concurrent insert of the same
// name or email is waited for, so exactly one of two racing calls wins. A taken email is named
// before a taken name: the INSERT checks unique indexes in oid order, and as installed
// users_email_key comes first (lookup.hpp). When it does not (after a REINDEX CONCURRENTLY of it,
// with another unique index on users), ON CONFLICT (email) DO NOTHING makes the email the first
// check — waiting for a concurrent insert of it — and leaves every other index to the INSERT (an
// administrator's DEFERRABLE constraint cannot be an arbiter; it is not one here). The C checks
// raise the users_*_check violations with the rule named.
#define SP_INSERT_USER_VALUES                                                                                     \
    "INSERT INTO sp_users.users (name, email, full_name, display_name)"                                           \
    " VALUES (sp_users._checked_name($1), sp_users._checked_email($2), $3, COALESCE($4, $3))"
KeptStatement create_user_statement{SP_INSERT_USER_VALUES " RETURNING *", 4, {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};
KeptStatement create_user_email_first_statement{SP_INSERT_USER_VALUES " ON CONFLICT (email) DO NOTHING RETURNING *", 4,
                                                {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};
// create_user_if_absent must return no row instead of raising, which a caught error cannot (the
// transaction is failed): ON CONFLICT DO NOTHING, without a subtransaction per call.
KeptStatement create_user_if_absent_statement{SP_INSERT_USER_VALUES " ON CONFLICT DO NOTHING RETURNING *", 4,
                                              {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};

// Under sp_users.distribute() with users split into shards: email and name are claimed in
// user_emails and user_names, then the user inserted (sql/install/88_citus.sql).
KeptStatement create_user_on_citus_statement{"SELECT * FROM sp_users._create_user_on_citus($1, $2, $3, $4, false)", 4,
                                             {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};
KeptStatement create_user_if_absent_on_citus_statement{"SELECT * FROM sp_users._create_user_on_citus($1, $2, $3, $4, true)", 4,
                                                       {TEXTOID, TEXTOID, TEXTOID, TEXTOID}};

[[noreturn]] void raise_email_taken(FunctionCallInfo fcinfo) {
    raise_clean(ERRCODE_UNIQUE_VIOLATION,
                psprintf("user already exists with email: %s", TextDatumGetCString(sp::pg::lookup::stored_email(PG_GETARG_DATUM(1)))),
                "users", "users_email_key");
}

// FOR KEY SHARE: a concurrent delete of the user waits for us (or we for it), so a session never
// points at a user that is gone; the clean-up skips users locked this way. Two statements, for a
// user and for none: one statement for both (a LEFT JOIN LATERAL to the user) cost 6 % of the call.
#define SP_SESSION_COLUMNS                                                                                         \
    "INSERT INTO sp_users.user_sessions (session_id, user_id, ip_address, user_agent, device_type, fingerprint_hash," \
    "                                    user_type, expires_at)"
#define SP_SESSION_ID                                                                                              \
    "COALESCE(sp_users._checked_session_id($2), 'sess_' OPERATOR(pg_catalog.||)"                                     \
    "         pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text, '-', ''))"
#define SP_SESSION_EXPIRY "pg_catalog.now() OPERATOR(pg_catalog.+) sp_users._positive_interval($7, 'expires_in')"
KeptStatement start_session_statement{
    SP_SESSION_COLUMNS
    " SELECT " SP_SESSION_ID ", u.id, sp_users.normalize_ip($3), $4, $5, $6,"
    "        CASE WHEN u.roles OPERATOR(pg_catalog.@>) ARRAY['anonymous'::sp_users.user_role] THEN 'anon' ELSE 'registered' END,"
    "        " SP_SESSION_EXPIRY
    "   FROM sp_users.users u"
    "  WHERE u.id OPERATOR(pg_catalog.=) $1 AND u.status OPERATOR(pg_catalog.<>) 'deleted'"
    "    FOR KEY SHARE"
    " RETURNING *",
    7, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID}};
KeptStatement start_anonymous_session_statement{
    SP_SESSION_COLUMNS
    " VALUES (" SP_SESSION_ID ", NULL, sp_users.normalize_ip($3), $4, $5, $6, 'anon', " SP_SESSION_EXPIRY ")"
    " RETURNING *",
    7, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID}};

// Under sp_users.distribute() user_sessions is split into shards on the workers and users stays on
// the coordinator: Citus routes a plain INSERT ... VALUES to the session's shard, but runs an
// INSERT ... SELECT from a coordinator table through the coordinator. So the user is locked first
// (FOR KEY SHARE, as above: the foreign key Citus cannot keep is gone), then the row inserted.
KeptStatement lock_session_user_statement{
    "SELECT CASE WHEN u.roles OPERATOR(pg_catalog.@>) ARRAY['anonymous'::sp_users.user_role] THEN 'anon' ELSE 'registered' END"
    "  FROM sp_users.users u"
    " WHERE u.id OPERATOR(pg_catalog.=) $1 AND u.status OPERATOR(pg_catalog.<>) 'deleted'"
    "   FOR KEY SHARE",
    1, {UUIDOID}};
KeptStatement start_routed_session_statement{
    SP_SESSION_COLUMNS
    " VALUES (" SP_SESSION_ID ", $1, sp_users.normalize_ip($3), $4, $5, $6, $8, " SP_SESSION_EXPIRY ")"
    " RETURNING *",
    8, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INTERVALOID, TEXTOID}};

// A session statement under sp_users.distribute(): written here for a worker (citus.hpp).
uint64 run_session_statement(KeptStatement& k, FunctionCallInfo args) {
    const int nest = sp::pg::lookup::sessions_distributed() ? sp::pg::citus::begin_local_canonical() : 0;
    const uint64 n = run_kept(k, args);
    sp::pg::citus::end_canonical(nest);
    return n;
}

// One atomic upsert: concurrent bans of one address serialise on its primary key, so ban_count is
// exact and escalation reads the count it increments. Permanent (NULL) stays permanent; a repeat
// ban never shortens the running one; session ids stay distinct, the most recent 100. $10 is
// now() and $11 now() + duration: DO UPDATE SET holds only immutable expressions, which Citus
// requires of an upsert into a reference table (sp_users.distribute()).
KeptStatement ban_ip_statement{
    "INSERT INTO sp_users.banned_ips AS b"
    "       (ip_address, reason, banned_at, expires_at, ban_count, last_offense_path,"
    "        last_user_agent, source_fingerprint, ban_source, associated_session_ids)"
    " VALUES (sp_users.normalize_ip($1), $2, $10, $11, 1, $6,"
    "         $7, $5, COALESCE($4, 'manual'),"
    "         CASE WHEN $8 IS NULL THEN '{}'::pg_catalog.text[] ELSE ARRAY[$8] END)"
    " ON CONFLICT (ip_address) DO UPDATE SET"
    "     reason            = EXCLUDED.reason,"
    "     ban_source        = EXCLUDED.ban_source,"
    "     banned_at         = $10,"
    "     ban_count         = b.ban_count OPERATOR(pg_catalog.+) 1,"
    "     expires_at        = CASE WHEN b.expires_at IS NULL OR $3 IS NULL THEN NULL"
    "                              ELSE GREATEST(b.expires_at,"
    "                                            CASE WHEN $9 THEN sp_users._escalated_expiry($10, $11, $3, b.ban_count)"
    "                                                 ELSE $11 END) END,"
    "     last_offense_path  = COALESCE(EXCLUDED.last_offense_path, b.last_offense_path),"
    "     last_user_agent    = COALESCE(EXCLUDED.last_user_agent, b.last_user_agent),"
    "     source_fingerprint = COALESCE(EXCLUDED.source_fingerprint, b.source_fingerprint),"
    "     associated_session_ids = CASE"
    "         WHEN $8 IS NULL OR $8 OPERATOR(pg_catalog.=) ANY (b.associated_session_ids) THEN b.associated_session_ids"
    "         ELSE (b.associated_session_ids OPERATOR(pg_catalog.||) $8)"
    "              [GREATEST(1, pg_catalog.cardinality(b.associated_session_ids) OPERATOR(pg_catalog.-) 98):] END"
    " RETURNING *",
    11, {TEXTOID, TEXTOID, INTERVALOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID}};

} // namespace

// sp_users.touch_session(session_id text) RETURNS boolean: moves last_activity_at of an active
// session to now (never backwards); false for an unknown or inactive session.
SP_FUNCTION(sp_users_touch_session) {
    uint64 n = 0;
    with_spi([&] { n = run_session_statement(touch_statement, fcinfo); });
    return BoolGetDatum(n > 0);
}

// sp_users.end_session(session_id text) RETURNS boolean: false when unknown or already ended.
SP_FUNCTION(sp_users_end_session) {
    uint64 n = 0;
    with_spi([&] { n = run_session_statement(end_statement, fcinfo); });
    return BoolGetDatum(n > 0);
}

// sp_users.create_user(name, email, full_name, display_name) RETURNS sp_users.users; 23505 naming
// the email or the name when taken.
SP_FUNCTION(sp_users_create_user) {
    Datum result = 0;
    MemoryContext upper = CurrentMemoryContext;
    bool email_first = false, distributed = false;
    pg_call([&] {
        // Catalog changes other sessions committed (a new or swapped index) are otherwise processed
        // only when this transaction takes a lock it does not hold yet — maybe only inside the
        // INSERT, which would then see indexes the remembered verdict did not.
        AcceptInvalidationMessages();
        distributed = sp::pg::lookup::users_distributed();
        if (!distributed) email_first = sp::pg::lookup::users_insert_names_email_first();
    });
    if (distributed) {
        with_spi([&] {
            if (run_session_statement(create_user_on_citus_statement, fcinfo) != 1) elog(ERROR, "sp_users.create_user: no row created");
            result = row_datum(fcinfo, 0, upper);
        });
        return result;
    }
    bool inserted = false;
    try {
        with_spi([&] {
            inserted = run_kept(email_first ? create_user_statement : create_user_email_first_statement, fcinfo) == 1;
            if (inserted) result = row_datum(fcinfo, 0, upper);
        });
    } catch (const sp::pg::PgError& e) {
        // Nothing more is read or written here: the transaction is failing; only the message changes.
        const ErrorData* d = e.data();
        const bool users_key = d->sqlerrcode == ERRCODE_UNIQUE_VIOLATION && d->constraint_name && d->table_name && d->schema_name &&
                               std::strcmp(d->schema_name, "sp_users") == 0 && std::strcmp(d->table_name, "users") == 0;
        // A REINDEX CONCURRENTLY running or cancelled leaves twins (same column) that may raise:
        // users_*_key_ccnew or _ccold, numbered (_ccold1, ...) when an earlier run left one behind.
        auto is = [&](const char* key) {
            const std::size_t n = std::strlen(key);
            if (!users_key || std::strncmp(d->constraint_name, key, n) != 0) return false;
            const char* rest = d->constraint_name + n;
            if (*rest == '\0') return true;
            if (std::strncmp(rest, "_ccold", 6) != 0 && std::strncmp(rest, "_ccnew", 6) != 0) return false;
            for (rest += 6; *rest; ++rest)
                if (*rest < '0' || *rest > '9') return false;
            return true;
        };
        if (is("users_email_key")) pg_call([&] { raise_email_taken(fcinfo); });
        if (is("users_name_key"))
            pg_call([&] {
                raise_clean(ERRCODE_UNIQUE_VIOLATION, psprintf("user already exists with name: %s", TextDatumGetCString(PG_GETARG_DATUM(0))),
                            "users", "users_name_key");
            });
        throw; // a unique index of the administrator's own: its own error
    }
    // ON CONFLICT (email) DO NOTHING did nothing: the email is taken (a plain INSERT always returns its row).
    if (!inserted) pg_call([&] { raise_email_taken(fcinfo); });
    return result;
}

// sp_users.create_user_if_absent(...) RETURNS SETOF sp_users.users: the new user, or no row when the
// name or email is taken.
SP_FUNCTION(sp_users_create_user_if_absent) {
    pg_call([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    MemoryContext upper = CurrentMemoryContext;
    bool distributed = false;
    pg_call([&] { distributed = sp::pg::lookup::users_distributed(); });
    with_spi([&] {
        if ((distributed ? run_session_statement(create_user_if_absent_on_citus_statement, fcinfo)
                         : run_kept(create_user_if_absent_statement, fcinfo)) == 1) {
            Datum row = row_datum(fcinfo, 0, upper);
            HeapTupleData tuple;
            tuple.t_len = HeapTupleHeaderGetDatumLength(DatumGetHeapTupleHeader(row));
            ItemPointerSetInvalid(&tuple.t_self);
            tuple.t_tableOid = InvalidOid;
            tuple.t_data = DatumGetHeapTupleHeader(row);
            tuplestore_puttuple(rsinfo->setResult, &tuple);
        }
    });
    return Datum(0);
}

// sp_users.start_session(user_id, session_id, ip_address, user_agent, device_type,
// fingerprint_hash, expires_in) RETURNS sp_users.user_sessions; P0002 when the user does not exist.
SP_FUNCTION(sp_users_start_session) {
    Datum result = 0;
    MemoryContext upper = CurrentMemoryContext;
    // The arguments first, in a fixed order (23514, 22P02, 22023), then the user (P0002). Inside the
    // statement the order would depend on the plan: a custom plan folds the checks of constant
    // arguments before anything runs, a generic one reaches them only for a user it found.
    bool distributed = false;
    pg_call([&] {
        distributed = sp::pg::lookup::sessions_distributed();
        if (!PG_ARGISNULL(1)) DirectFunctionCall1(sp_users_checked_session_id, PG_GETARG_DATUM(1));
        if (!PG_ARGISNULL(2)) DirectFunctionCall1(sp_users_normalize_ip, PG_GETARG_DATUM(2));
        if (!PG_ARGISNULL(6)) DirectFunctionCall2(sp_users_positive_interval, PG_GETARG_DATUM(6), CStringGetTextDatum("expires_in"));
    });
    if (distributed) {
        with_spi([&] {
            LOCAL_FCINFO(args, 8);
            args->nargs = 8;
            for (int i = 0; i < 7; ++i) args->args[i] = fcinfo->args[i];
            args->args[7] = {CStringGetTextDatum("anon"), false};
            if (!PG_ARGISNULL(0)) {
                if (run_session_statement(lock_session_user_statement, fcinfo) != 1) raise_user_not_found(fcinfo, 0);
                args->args[7].value = CStringGetTextDatum(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
            }
            if (run_session_statement(start_routed_session_statement, args) != 1) elog(ERROR, "sp_users.start_session: the insert returned no row");
            result = row_datum(fcinfo, 0, upper);
        });
        return result;
    }
    with_spi([&] {
        if (run_kept(PG_ARGISNULL(0) ? start_anonymous_session_statement : start_session_statement, fcinfo) == 1) {
            result = row_datum(fcinfo, 0, upper);
            return;
        }
        raise_user_not_found(fcinfo, 0);
    });
    return result;
}

// sp_users.ban_ip(ip, reason, duration, ban_source, source_fingerprint, offense_path, user_agent,
// session_id, escalate) RETURNS sp_users.banned_ips.
SP_FUNCTION(sp_users_ban_ip) {
    Datum result = 0;
    MemoryContext upper = CurrentMemoryContext;
    LOCAL_FCINFO(args, 11);
    int nest = 0;
    pg_call([&] {
        if (PG_ARGISNULL(0)) raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, "ip must not be NULL");
        // In the statement's order: the address, then the duration, then now() + duration.
        DirectFunctionCall1(sp_users_normalize_ip, PG_GETARG_DATUM(0));
        args->nargs = 11;
        for (int i = 0; i < 9; ++i) args->args[i] = fcinfo->args[i];
        const Datum now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
        args->args[9] = {now, false};
        args->args[10] = {0, PG_ARGISNULL(2)};
        if (!PG_ARGISNULL(2)) {
            DirectFunctionCall2(sp_users_positive_interval, PG_GETARG_DATUM(2), CStringGetTextDatum("duration"));
            args->args[10].value = DirectFunctionCall2(timestamptz_pl_interval, now, PG_GETARG_DATUM(2));
        }
    });
    with_spi([&] {
        nest = sp::pg::citus::begin_canonical(); // on Citus, the upsert runs on every node as the owner
        if (run_kept(ban_ip_statement, args) != 1) elog(ERROR, "sp_users.ban_ip: the upsert returned no row");
        result = row_datum(fcinfo, 0, upper);
        sp::pg::citus::end_canonical(nest);
    });
    return result;
}
