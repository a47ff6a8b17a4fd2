// C++ helpers of the users domain that sit on every INSERT/UPDATE of sp_users.users.
#include "core/email.hpp"
#include "pg/errors.hpp"

extern "C" {
#include "catalog/pg_collation.h"
#include "utils/array.h"
}

using sp::pg::pg_call;

// sp_users._roles_valid(roles user_role[]) RETURNS boolean — the CHECK on users.roles: non-empty,
// no NULL, no duplicate. In C because a SQL body with a subquery cannot be inlined and would be
// parsed again on every row written.
SP_FUNCTION(sp_users_roles_valid) {
    bool valid = false;
    pg_call([&] {
        if (PG_ARGISNULL(0)) return;
        ArrayType* arr = PG_GETARG_ARRAYTYPE_P(0);
        if (ARR_NDIM(arr) > 1) return;
        Datum* elems;
        bool* nulls;
        int n;
        deconstruct_array(arr, ARR_ELEMTYPE(arr), sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
        if (n == 0) return;
        for (int i = 0; i < n; ++i)
            if (nulls[i]) return;
        // Sorted, duplicates are neighbours: O(n log n) however long an array a caller writes.
        pg_qsort(elems, std::size_t(n), sizeof(Datum), [](const void* a, const void* b) {
            Oid x = DatumGetObjectId(*static_cast<const Datum*>(a)), y = DatumGetObjectId(*static_cast<const Datum*>(b));
            return x < y ? -1 : x > y ? 1 : 0;
        });
        for (int i = 1; i < n; ++i)
            if (DatumGetObjectId(elems[i]) == DatumGetObjectId(elems[i - 1])) return;
        valid = true;
    });
    return BoolGetDatum(valid);
}

// sp_users.email_problem(email text) RETURNS text: NULL when the (stored-form) address is
// acceptable, else the rule it breaks (core::email_problem). The CHECK on users.email uses it.
SP_FUNCTION(sp_users_email_problem) {
    text* arg = nullptr;
    pg_call([&] { arg = PG_GETARG_TEXT_PP(0); });
    const char* problem = sp::core::email_problem(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg));
    if (problem == nullptr) PG_RETURN_NULL();
    Datum result = 0;
    pg_call([&] { result = CStringGetTextDatum(problem); });
    return result;
}

namespace {
// Raises 23514 for a value the CHECK `constraint` on sp_users.users would refuse, naming the rule,
// with the error fields a constraint violation carries and no internal context.
[[noreturn]] void check_failed(const char* table, const char* constraint, const char* message) {
    sp::pg::raise_clean(ERRCODE_CHECK_VIOLATION, message, table, constraint);
}
[[noreturn]] void users_check_failed(const char* constraint, const char* message) { check_failed("users", constraint, message); }

// A text that must be non-empty and at most 255 characters (names, session ids).
void check_short_text(Datum value, const char* table, const char* constraint, const char* what) {
    text* t = DatumGetTextPP(value);
    const int len = VARSIZE_ANY_EXHDR(t);
    if (len == 0) check_failed(table, constraint, psprintf("invalid %s: it must not be empty", what));
    const int chars = pg_mbstrlen_with_len(VARDATA_ANY(t), len);
    if (chars > 255) check_failed(table, constraint, psprintf("invalid %s: it has %d characters, at most 255 are allowed", what, chars));
}
} // namespace

// sp_users._checked_email(email text) RETURNS text: the stored form (normalize_email) of an
// address that passes email_problem; otherwise 23514 naming the rule (constraint users_email_check).
// One call in the INSERT instead of three PL/pgSQL expressions per create_user.
SP_FUNCTION(sp_users_checked_email) {
    Datum result = 0;
    pg_call([&] {
        Datum trimmed = DirectFunctionCall2Coll(btrim, DEFAULT_COLLATION_OID, PG_GETARG_DATUM(0), CStringGetTextDatum(" \t\r\n\f\v"));
        result = DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID, trimmed);
        text* stored = DatumGetTextPP(result);
        const char* problem = sp::core::email_problem(VARDATA_ANY(stored), VARSIZE_ANY_EXHDR(stored));
        if (problem) users_check_failed("users_email_check", psprintf("invalid email address \"%s\": %s", text_to_cstring(stored), problem));
    });
    return result;
}

// sp_users._checked_name(name text) RETURNS text: the name as given when the CHECK users_name_check
// accepts it (not empty, at most 255 characters); otherwise 23514 saying which, without the row.
SP_FUNCTION(sp_users_checked_name) {
    Datum result = 0;
    pg_call([&] {
        result = PG_GETARG_DATUM(0);
        check_short_text(result, "users", "users_name_check", "user name");
    });
    return result;
}

// sp_users._checked_session_id(session_id text) RETURNS text: the id as given when
// user_sessions_session_id_check accepts it (not empty, at most 255 characters); otherwise 23514
// saying which, without the row.
SP_FUNCTION(sp_users_checked_session_id) {
    Datum result = 0;
    pg_call([&] {
        result = PG_GETARG_DATUM(0);
        check_short_text(result, "user_sessions", "user_sessions_session_id_check", "session id");
    });
    return result;
}
