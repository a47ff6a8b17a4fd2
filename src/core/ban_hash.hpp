// Internal to the ban sets (core/ban_set, core/flat_ban_set): keys, hashing and slot mapping, so
// a set built in one layout probes exactly like one built in the other.
#pragma once
#include "core/core_guard.hpp"

#include "core/address.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>

namespace sp::core {

namespace ban_hash {

inline constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::min();

inline std::uint32_t v4_key(const Address& a) noexcept {
    return std::uint32_t(a.bytes[0]) << 24 | std::uint32_t(a.bytes[1]) << 16 | std::uint32_t(a.bytes[2]) << 8 | a.bytes[3];
}

inline unsigned __int128 v6_key(const Address& a) noexcept {
    unsigned __int128 k = 0;
    for (int i = 0; i < 16; ++i) k = (k << 8) | a.bytes[i];
    return k;
}

template <class Key>
inline Key mask_key(Key key, int max_prefix, int prefix) noexcept {
    if (prefix <= 0) return 0;
    if (prefix >= max_prefix) return key;
    return key & ~((Key(1) << (max_prefix - prefix)) - 1);
}

inline std::uint32_t hash_key(std::uint32_t k) noexcept {
    return std::uint32_t((std::uint64_t(k) * 0x9E3779B97F4A7C15ull) >> 32);
}

inline std::uint32_t hash_key(unsigned __int128 k) noexcept {
    std::uint64_t h = std::uint64_t(k >> 64) * 0x9E3779B97F4A7C15ull ^ std::uint64_t(k) * 0xC2B2AE3D27D4EB4Full;
    return std::uint32_t((h ^ (h >> 29)) >> 32);
}

// Maps a 32-bit hash onto [0, n) without a division (Lemire's multiply-shift).
inline std::size_t slot_of(std::uint32_t hash, std::size_t n) noexcept {
    return std::size_t((std::uint64_t(hash) * n) >> 32);
}

} // namespace ban_hash

} // namespace sp::core
