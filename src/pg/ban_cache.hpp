// Per-backend copy of the active bans, kept exact by transactional relcache invalidation.
#pragma once
#include "core/ban_set.hpp"

namespace sp::pg::ban_cache {

// Registers the relcache callback; called once per backend from _PG_init.
void register_callbacks() noexcept;

// The ban set as the calling statement must see it; rebuilds it from sp_users.banned_ips when an
// invalidation (a committed change, our own change, an abort) or a snapshot change requires it.
const sp::core::BanSet& current();

struct Info {
    long entries;
    long memory_bytes;
    long rebuilds;
    double last_rebuild_ms;
    bool valid;
};
Info info() noexcept;

} // namespace sp::pg::ban_cache
