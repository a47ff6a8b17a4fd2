#include "pg/kept_statement.hpp"

#include "pg/citus.hpp"

namespace sp::pg {

uint64 run_kept(KeptStatement& k, FunctionCallInfo fcinfo) {
    if (k.plan == nullptr) {
        OverrideSearchPath path{};
        path.schemas = NIL;
        path.addCatalog = true;
        path.addTemp = false;
        PushOverrideSearchPath(&path);
        SPIPlanPtr plan = SPI_prepare(k.sql, k.nargs, k.types);
        PopOverrideSearchPath();
        if (plan == nullptr) elog(ERROR, "SPI_prepare failed (%s): %s", SPI_result_code_string(SPI_result), k.sql);
        SPI_keepplan(plan);
        k.plan = plan;
    }
    Datum values[12];
    char nulls[12];
    for (int i = 0; i < k.nargs; ++i) {
        values[i] = fcinfo->args[i].value;
        nulls[i] = fcinfo->args[i].isnull ? 'n' : ' ';
    }
    int rc = 0;
    citus::with_catalog_path([&] { rc = SPI_execute_plan(k.plan, values, nulls, false, 0); });
    if (rc < 0) elog(ERROR, "SPI_execute_plan failed (%s): %s", SPI_result_code_string(rc), k.sql);
    return SPI_processed;
}

} // namespace sp::pg
