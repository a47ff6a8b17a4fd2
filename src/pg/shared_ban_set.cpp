#include "pg/shared_ban_set.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
}

namespace sp::pg::shared_bans {

namespace {

int size_mb = 64; // sp_users.shared_ban_set_size

struct Shared {
    LWLock* lock;         // readers share it during a lookup; publishing takes it exclusively
    LWLock* build_lock;   // one builder at a time
    int active;           // which copy is published
    bool too_small;       // a build did not fit: per-backend sets from now on
    Oid database;         // the database served (the first one to build)
    BaseInfo info;        // of the published copy
    std::size_t per_copy; // bytes of each copy
};

Shared* shared = nullptr;
shmem_request_hook_type prev_request = nullptr;
shmem_startup_hook_type prev_startup = nullptr;
bool warned = false;

std::size_t per_copy_bytes() { return std::size_t(size_mb) * 1024 * 1024 / 2 / 8 * 8; }
std::size_t header_bytes() { return MAXALIGN(sizeof(Shared)); }
unsigned char* copy_at(int i) { return reinterpret_cast<unsigned char*>(shared) + header_bytes() + std::size_t(i) * shared->per_copy; }

void on_request() {
    if (prev_request) prev_request();
    if (size_mb <= 0) return;
    RequestAddinShmemSpace(header_bytes() + 2 * per_copy_bytes());
    RequestNamedLWLockTranche("sp_users ban set", 2);
}

void on_startup() {
    if (prev_startup) prev_startup();
    if (size_mb <= 0) return;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found = false;
    shared = static_cast<Shared*>(ShmemInitStruct("sp_users ban set", header_bytes() + 2 * per_copy_bytes(), &found));
    if (!found) {
        LWLockPadded* locks = GetNamedLWLockTranche("sp_users ban set");
        shared->lock = &locks[0].lock;
        shared->build_lock = &locks[1].lock;
        shared->active = 0;
        shared->too_small = false;
        shared->database = InvalidOid;
        shared->info = BaseInfo{};
        shared->per_copy = per_copy_bytes();
    }
    LWLockRelease(AddinShmemInitLock);
}

} // namespace

void define_at_preload() {
    DefineCustomIntVariable("sp_users.shared_ban_set_size",
                            "Shared memory for the ban set all connections of one database share (two copies fit in it); 0 = one set per backend.",
                            "Takes effect at server start, with sp_users in shared_preload_libraries.", &size_mb, 64, 0,
                            65536, PGC_POSTMASTER, GUC_UNIT_MB, nullptr, nullptr, nullptr);
    prev_request = shmem_request_hook;
    shmem_request_hook = on_request;
    prev_startup = shmem_startup_hook;
    shmem_startup_hook = on_startup;
}

bool usable_here() {
    if (shared == nullptr || shared->too_small) return false;
    Oid db = shared->database;
    // The database served first keeps the set; if it was dropped, the next one takes it over.
    return !OidIsValid(db) || db == MyDatabaseId || !SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(db));
}

void published(BaseInfo* out) {
    LWLockAcquire(shared->lock, LW_SHARED);
    *out = shared->info;
    LWLockRelease(shared->lock);
}

bool with_base(uint64 generation, void (*probe)(const core::FlatBanSet&, void*), void* arg) {
    LWLockAcquire(shared->lock, LW_SHARED);
    bool same = shared->info.generation == generation && generation != 0;
    if (same) probe(core::FlatBanSet(copy_at(shared->active)), arg);
    LWLockRelease(shared->lock);
    return same;
}

void lock_build() { LWLockAcquire(shared->build_lock, LW_EXCLUSIVE); }
void unlock_build() { LWLockRelease(shared->build_lock); }
std::size_t capacity_per_copy() { return shared ? shared->per_copy : 0; }

bool publish(const core::BanEntry* entries, std::size_t n, BaseInfo* info) {
    const std::size_t need = core::FlatBanSet::bytes_for(entries, n, info->built_now);
    if (need > shared->per_copy) {
        shared->too_small = true;
        if (!warned) {
            warned = true;
            ereport(WARNING, (errmsg("sp_users: the shared ban set needs %zu kB per copy, sp_users.shared_ban_set_size allows %zu kB per copy (half of it); "
                                     "every backend of every database keeps its own ban set until the server restarts",
                                     (need + 1023) >> 10, shared->per_copy >> 10),
                              errhint("Set sp_users.shared_ban_set_size to at least %zu MB (two copies) and restart.",
                                      2 * ((need + (1 << 20) - 1) >> 20))));
        }
        return false;
    }
    // Readers only ever enter the published copy, under the shared lock; the other one is ours
    // (we hold the build lock) until the flip below.
    const int next = 1 - shared->active;
    core::FlatBanSet::build_into(copy_at(next), shared->per_copy, entries, n, info->built_now);
    core::FlatBanSet built(copy_at(next));
    info->entries = built.size();
    info->bytes = built.bytes();
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    info->generation = shared->info.generation + 1;
    shared->info = *info;
    shared->active = next;
    shared->database = info->database;
    LWLockRelease(shared->lock);
    return true;
}

} // namespace sp::pg::shared_bans
