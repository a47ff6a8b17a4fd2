// SPI from C++: every call goes through pg_call, and results are copied into C++ values outside
// PostgreSQL's error scope (no C++ allocation ever happens where an ereport could longjmp).
#pragma once
#include "pg/pg_headers.hpp"

#include <optional>
#include <string>
#include <vector>

namespace sp::pg {

struct SpiRows {
    SPITupleTable* table = nullptr;
    uint64 count = 0;
};

// Runs `sql` with text parameters ($1..$n; cast them in the SQL). Raises the SQL error as is.
SpiRows spi_exec(const char* sql, const std::vector<std::optional<std::string>>& params, bool read_only);

// Column `col` (1-based) of row `row` as text; nullopt for NULL.
std::optional<std::string> spi_text(const SpiRows& rows, uint64 row, int col);

} // namespace sp::pg
