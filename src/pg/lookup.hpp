// The C request-path readers (src/pg/lookup.cpp): their per-backend memo of catalog lookups.
#pragma once
#include "pg/pg_headers.hpp"

namespace sp::pg::lookup {

// Registers the relcache callback that empties the memo; called once per backend from _PG_init.
void register_callbacks() noexcept;

// True when a unique violation of a plain INSERT into sp_users.users names what SPEC says: the
// table's unique indexes are exactly users_pkey, users_email_key and users_name_key (checked
// immediately, not deferred), and the email one is checked first (lower oid; so installed). Not so
// after a REINDEX CONCURRENTLY of the email index, while one leaves a _ccnew or _ccold index
// behind, or with a unique index of the administrator's. Memoised until the next invalidation of
// the table or these indexes.
bool users_insert_names_email_first();

// True when Citus splits sp_users.user_sessions into shards (sp_users.distribute()): its rows are
// then on the workers, and the session functions go through Citus' planner. Memoised until the
// next invalidation of the table (Citus sends one when it distributes it).
bool sessions_distributed();

// Whether Citus splits sp_users.users into shards (sp_users.distribute()); memoised like
// sessions_distributed().
bool users_distributed();

// The stored form of an email (sp_users.normalize_email: ASCII white space trimmed, lower-cased).
Datum stored_email(Datum email);

} // namespace sp::pg::lookup
