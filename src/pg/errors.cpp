// The internal helpers that raise the user-facing errors of the SQL functions. They raise from C
// with the context hidden, so a client sees the message (and SQLSTATE, hint, constraint) and not
// the stack of internal PL/pgSQL and SQL frames that led there.
#include "pg/errors.hpp"

extern "C" {
#include "utils/uuid.h"
}

using sp::pg::pg_call;

namespace {

int sqlstate_of(const char* code) {
    if (std::strlen(code) != 5) ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid SQLSTATE \"%s\"", code)));
    for (int i = 0; i < 5; ++i)
        if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z')))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid SQLSTATE \"%s\"", code)));
    return MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]);
}

const char* text_arg(FunctionCallInfo fcinfo, int n) { return PG_ARGISNULL(n) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(n)); }

// The text form of argument n, whatever its type; "<NULL>" as RAISE prints it.
const char* any_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return "<NULL>";
    Oid type = get_fn_expr_argtype(fcinfo->flinfo, n);
    Oid out;
    bool varlena;
    getTypeOutputInfo(type, &out, &varlena);
    return OidOutputFunctionCall(out, PG_GETARG_DATUM(n));
}

} // namespace

namespace sp::pg {

void raise_clean(int sqlstate, const char* message, const char* table, const char* constraint, const char* hint) {
    drop_error_context();
    ereport(ERROR, (errcode(sqlstate), errmsg("%s", message), hint ? errhint("%s", hint) : 0, constraint ? err_generic_string(PG_DIAG_SCHEMA_NAME, "sp_users") : 0,
                    constraint ? err_generic_string(PG_DIAG_TABLE_NAME, table) : 0,
                    constraint ? err_generic_string(PG_DIAG_CONSTRAINT_NAME, constraint) : 0));
    pg_unreachable();
}

void raise_user_not_found(FunctionCallInfo fcinfo, int arg) {
    const char* id = PG_ARGISNULL(arg) ? "<NULL>" : DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(arg)));
    raise_clean(ERRCODE_NO_DATA_FOUND, psprintf("user not found: %s", id));
}

} // namespace sp::pg

// sp_users._fail(sqlstate text, message text, hint text DEFAULT NULL, constraint_name text DEFAULT NULL)
SP_FUNCTION(sp_users_fail) {
    pg_call([&] {
        const char* code = text_arg(fcinfo, 0);
        const char* message = text_arg(fcinfo, 1);
        const char* hint = text_arg(fcinfo, 2);
        const char* constraint = text_arg(fcinfo, 3);
        sp::pg::raise_clean(sqlstate_of(code ? code : "P0001"), message ? message : "sp_users error", "users", constraint, hint);
    });
    PG_RETURN_VOID();
}

// sp_users._user_not_found(id anyelement): P0002 "user not found: <id>".
SP_FUNCTION(sp_users_user_not_found) {
    pg_call([&] {
        sp::pg::raise_clean(ERRCODE_NO_DATA_FOUND, psprintf("user not found: %s", any_arg(fcinfo, 0)));
    });
    PG_RETURN_VOID();
}

// Raises 22023 with `message` and no context.
[[noreturn]] static void bad_argument(const char* message) { sp::pg::raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, message); }

// sp_users._page_limit(lim integer, arg text DEFAULT 'lim'): the limit capped at 100 (MAX_PAGE_SIZE).
SP_FUNCTION(sp_users_page_limit) {
    int32 lim = 0;
    pg_call([&] {
        const char* arg = PG_ARGISNULL(1) ? "lim" : text_to_cstring(PG_GETARG_TEXT_PP(1));
        if (PG_ARGISNULL(0)) bad_argument(psprintf("%s must not be NULL", arg));
        lim = PG_GETARG_INT32(0);
        if (lim < 0) bad_argument(psprintf("%s must not be negative (got %d)", arg, lim));
    });
    return Int32GetDatum(lim < 100 ? lim : 100);
}

// sp_users._page_offset(off integer)
SP_FUNCTION(sp_users_page_offset) {
    int32 off = 0;
    pg_call([&] {
        if (PG_ARGISNULL(0)) bad_argument("off must not be NULL");
        off = PG_GETARG_INT32(0);
        if (off < 0) bad_argument(psprintf("off must not be negative (got %d)", off));
    });
    return Int32GetDatum(off);
}

// sp_users._positive_interval(value interval, arg text): NULL or a positive interval passes through.
SP_FUNCTION(sp_users_positive_interval) {
    Datum result = 0;
    bool is_null = false;
    pg_call([&] {
        if (PG_ARGISNULL(0)) {
            is_null = true;
            return;
        }
        Datum value = PG_GETARG_DATUM(0);
        Interval zero{};
        if (DatumGetInt32(DirectFunctionCall2(interval_cmp, value, IntervalPGetDatum(&zero))) <= 0) {
            const char* arg = PG_ARGISNULL(1) ? "interval" : text_to_cstring(PG_GETARG_TEXT_PP(1));
            bad_argument(psprintf("%s must be positive (got %s)", arg, DatumGetCString(DirectFunctionCall1(interval_out, value))));
        }
        result = value;
    });
    if (is_null) PG_RETURN_NULL();
    return result;
}
