// The ban set in one contiguous, pointer-free block, so that it can live in shared memory and be
// read by every backend: built once from rows (like BanSet::build), then only probed. Same keys,
// hashing and probing as BanSet. Changes since the build are kept per backend in a BanSet overlay
// and combined by layered_contains.
#pragma once
#include "core/core_guard.hpp"

#include "core/ban_set.hpp"

#include <cstddef>
#include <cstdint>

namespace sp::core {

class FlatBanSet {
public:
    // Bytes a build of these entries needs (entries expired at `now` are left out).
    static std::size_t bytes_for(const BanEntry* entries, std::size_t n, std::int64_t now) noexcept;
    // Builds into `buf` (8-byte aligned, at least bytes_for(...) bytes). Returns false, writing
    // nothing, when `cap` is too small.
    static bool build_into(void* buf, std::size_t cap, const BanEntry* entries, std::size_t n, std::int64_t now) noexcept;

    explicit FlatBanSet(const void* buf) noexcept : base_(static_cast<const unsigned char*>(buf)) {}

    bool contains(const Address& addr, std::int64_t now) const noexcept;
    std::int64_t probe(const Address& net) const noexcept;
    void candidates(const Address& addr, PrefixMask& m) const noexcept;
    std::size_t size() const noexcept;
    std::size_t bytes() const noexcept;

private:
    const unsigned char* base_;
};

// Whether `addr` is banned at `now` by `base` changed by `overlay`: for every mask length either
// holds, the overlay's entry (an expiry, or kErased) wins over the base's.
bool layered_contains(const FlatBanSet& base, const BanSet& overlay, const Address& addr, std::int64_t now) noexcept;

} // namespace sp::core
