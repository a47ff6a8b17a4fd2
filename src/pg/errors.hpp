// sp_users' own user-facing errors: raised with the error context dropped (drop_error_context),
// so a client sees the message and its fields, not the internal frames that led there.
#pragma once
#include "pg/pg_headers.hpp"

namespace sp::pg {

// Raises `sqlstate` with `message` (and `hint`); given a constraint, the error carries schema
// sp_users, `table` and the constraint name, as PostgreSQL's own constraint violations do.
[[noreturn]] void raise_clean(int sqlstate, const char* message, const char* table = nullptr, const char* constraint = nullptr,
                              const char* hint = nullptr);

// P0002 "user not found: <id>" for a uuid argument (NULL prints as <NULL>).
[[noreturn]] void raise_user_not_found(FunctionCallInfo fcinfo, int arg);

} // namespace sp::pg
