// The C request-path readers (src/pg/lookup.cpp): their per-backend memo of catalog lookups.
#pragma once
#include "pg/pg_headers.hpp"

namespace sp::pg::lookup {

// Registers the relcache callback that empties the memo; called once per backend from _PG_init.
void register_callbacks() noexcept;

// True when an INSERT into sp_users.users checks users_email_key before users_name_key (the email
// index has the lower oid: so installed, until a REINDEX CONCURRENTLY of the email index). Memoised.
bool users_email_key_checked_first();

// The stored form of an email (sp_users.normalize_email: ASCII white space trimmed, lower-cased).
Datum stored_email(Datum email);

} // namespace sp::pg::lookup
