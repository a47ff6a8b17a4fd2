// Per-backend copy of the active bans, kept exact by transactional relcache invalidation.
#pragma once
#include "core/ban_set.hpp"

namespace sp::pg::ban_cache {

// Registers the relcache callback; called once per backend from _PG_init.
void register_callbacks() noexcept;

// Whether an active ban equals or contains `addr`, as the calling statement must see it: from the
// ban set, or, right after an invalidation (a committed change, our own change, an abort, a
// snapshot change), from an index lookup until a rebuild of the set pays off.
bool is_banned(const sp::core::Address& addr);

struct Info {
    long entries;
    long memory_bytes;
    long rebuilds;
    double last_rebuild_ms;
    bool valid;
    long fallback_lookups;
};
Info info() noexcept;

} // namespace sp::pg::ban_cache
