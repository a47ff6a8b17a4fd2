// One SQL statement per request-path write function, prepared once per backend through SPI and
// kept (issue 12: a PL/pgSQL body around the same statement costs a tenth to a sixth of the call).
// The statement names every object and operator with its schema and is prepared under a search
// path of pg_catalog alone; a kept plan re-analyses itself under that same path whenever it is
// invalidated (ALTER TABLE, a new index, DROP / CREATE EXTENSION, ALTER EXTENSION UPDATE), so no
// caller's search_path is ever followed. The SQL functions are SECURITY DEFINER: the statement
// runs as the extension's owner.
#pragma once
#include "pg/pg_headers.hpp"

namespace sp::pg {

struct KeptStatement {
    const char* sql;
    int nargs;
    Oid types[12];
    SPIPlanPtr plan = nullptr;
};

// Runs `k` with the function's own arguments ($1 = first argument, ...) inside the caller's
// SPI_connect; returns SPI_processed, rows in SPI_tuptable. Call only inside pg_call.
uint64 run_kept(KeptStatement& k, FunctionCallInfo fcinfo);

// Fills `args` (a LOCAL_FCINFO) with N arguments for run_kept, when they are not the function's own.
template <int N>
void set_kept_args(FunctionCallInfo args, const Datum (&values)[N], const bool (&nulls)[N]) {
    args->nargs = N;
    for (int i = 0; i < N; ++i) {
        args->args[i].value = values[i];
        args->args[i].isnull = nulls[i];
    }
}

} // namespace sp::pg
