// One ban set for all connections of one database, in shared memory, when sp_users is in
// shared_preload_libraries (sp_users.shared_ban_set_size, default 64MB, holds two copies: the one
// being read and the next one being built). A backend adopts the published base and keeps only the
// changes since it in a small private overlay (pg/ban_cache). Without preloading, or when the set
// does not fit, or for another database, every backend keeps its own set as before.
#pragma once
#include "core/flat_ban_set.hpp"
#include "pg/pg_headers.hpp"

namespace sp::pg::shared_bans {

// Called from _PG_init while shared_preload_libraries is processed: the setting and the hooks.
void define_at_preload();

// The snapshot a base was built at, as full xids (what it did not show), and what it holds.
constexpr int kMaxUnseen = 1024;
struct BaseInfo {
    uint64 generation = 0;          // 0: nothing published
    Oid database = InvalidOid, table = InvalidOid, filenode = InvalidOid;
    int64 built_now = 0;            // entries expired at this time were left out
    uint64 xmax = 0, lowest = 0;
    int n_unseen = 0;
    uint64 unseen[kMaxUnseen];
    uint64 entries = 0, bytes = 0;
    double build_ms = 0;
};

// Whether this backend may use the shared set at all (preloaded, sized, fits, this database).
bool usable_here();

// The published base's description (a copy). Call only inside pg_call.
void published(BaseInfo* out);

// Runs `probe` on the published base if its generation is still `generation`, under the shared
// lock; returns false (without calling it) when another base was published meanwhile. Call only
// inside pg_call; `probe` must not raise.
bool with_base(uint64 generation, void (*probe)(const core::FlatBanSet&, void*), void* arg);

// Builds a new base from `entries` (already read under the snapshot `info` describes) and
// publishes it. False, with a WARNING once, when it does not fit: the database then falls back
// to per-backend sets. Call only inside pg_call, holding the build lock.
bool publish(const core::BanEntry* entries, std::size_t n, BaseInfo* info);

// One builder at a time. Call only inside pg_call.
void lock_build();
void unlock_build();

std::size_t capacity_per_copy();

} // namespace sp::pg::shared_bans
