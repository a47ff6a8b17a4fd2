// C++ helpers of the users domain that sit on every INSERT/UPDATE of sp_users.users.
#include "core/email.hpp"
#include "pg/pg_headers.hpp"

extern "C" {
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
