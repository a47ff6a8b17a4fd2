// The C request-path readers (src/pg/lookup.cpp): their per-backend memo of catalog lookups.
#pragma once

namespace sp::pg::lookup {

// Registers the relcache callback that empties the memo; called once per backend from _PG_init.
void register_callbacks() noexcept;

} // namespace sp::pg::lookup
