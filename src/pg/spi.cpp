#include "pg/spi.hpp"

namespace sp::pg {

SpiRows spi_exec(const char* sql, const std::vector<std::optional<std::string>>& params, bool read_only) {
    const int n = int(params.size());
    std::vector<Oid> types(std::size_t(n), TEXTOID);
    std::vector<Datum> values(std::size_t(n), Datum(0));
    std::vector<char> nulls(std::size_t(n), ' ');
    SpiRows out;
    pg_call([&] {
        for (int i = 0; i < n; ++i) {
            if (params[std::size_t(i)])
                values[std::size_t(i)] = CStringGetTextDatum(params[std::size_t(i)]->c_str());
            else
                nulls[std::size_t(i)] = 'n';
        }
        int rc = SPI_execute_with_args(sql, n, types.data(), values.data(), nulls.data(), read_only, 0);
        if (rc < 0) elog(ERROR, "SPI_execute_with_args failed (%s): %s", SPI_result_code_string(rc), sql);
        out.table = SPI_tuptable;
        out.count = SPI_processed;
    });
    return out;
}

std::optional<std::string> spi_text(const SpiRows& rows, uint64 row, int col) {
    char* value = nullptr;
    pg_call([&] { value = SPI_getvalue(rows.table->vals[row], rows.table->tupdesc, col); });
    if (value == nullptr) return std::nullopt;
    return std::string(value);
}

} // namespace sp::pg
