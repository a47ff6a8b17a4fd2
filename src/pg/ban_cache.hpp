// Per-backend copy of the active bans, kept exact by transactional relcache invalidation and
// brought forward through the change log sp_users.ban_changes.
#pragma once
#include "core/ban_set.hpp"

namespace sp::pg::ban_cache {

// Registers the relcache callback; called once per backend from _PG_init.
void register_callbacks() noexcept;

// Called by the banned_ips triggers: this transaction changed bans, so until it ends its lookups
// read the table (its changes may still be rolled back to a savepoint).
void note_own_change() noexcept;

// Whether an active ban equals or contains `addr`, as the calling statement must see it: from the
// ban set, brought forward through the change log when bans changed; by an index lookup in a
// transaction that changed bans itself.
bool is_banned(const sp::core::Address& addr);

struct Info {
    long entries;
    long memory_bytes;
    long rebuilds;
    double last_rebuild_ms;
    bool valid;
    long fallback_lookups;
    long refreshes;        // incremental refreshes through the change log
    long changes_applied;  // networks re-read by them
    long shared_bytes;     // the shared base this backend reads (0: a private set)
    long publishes;        // shared bases this backend built and published
};
Info info() noexcept;

} // namespace sp::pg::ban_cache
