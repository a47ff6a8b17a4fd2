// The in-memory ban set: exact addresses and networks, longest-prefix aware, expiry-aware.
#pragma once
#include "core/core_guard.hpp"

#include "core/address.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace sp::core {

// Time is PostgreSQL's TimestampTz (microseconds); a permanent ban never expires.
constexpr std::int64_t kNeverExpires = std::numeric_limits<std::int64_t>::max();

struct BanEntry {
    Address net;
    std::int64_t expires_at; // kNeverExpires for a permanent ban
};

// Sorted arrays per mask length: a lookup is one binary search per distinct mask length in
// use, with no pointer chasing; memory is 12 bytes per IPv4 ban and 24 per IPv6 ban.
class BanSet {
public:
    // Replaces the contents. Entries already expired at `now` are dropped (time only moves
    // forward in a backend). Duplicate keys keep the later expiry. Throws std::bad_alloc.
    void build(const BanEntry* entries, std::size_t n, std::int64_t now);

    // True when an entry active at `now` equals `addr` or contains it.
    bool contains(const Address& addr, std::int64_t now) const noexcept;

    std::size_t size() const noexcept { return size_; }
    std::size_t memory_bytes() const noexcept;
    void swap(BanSet& other) noexcept;
    void clear() noexcept;

private:
    using U128 = unsigned __int128;
    template <class Key>
    struct Level {
        int prefix = 0;
        std::vector<Key> keys; // sorted, unique
        std::vector<std::int64_t> expires;
    };
    template <class Key>
    static void build_family(std::vector<Level<Key>>& out, std::vector<std::pair<Key, std::int64_t>> (&by_prefix)[129]);
    template <class Key>
    static bool probe(const std::vector<Level<Key>>& levels, Key key, int max_prefix, int query_prefix, std::int64_t now) noexcept;

    std::vector<Level<std::uint32_t>> v4_;
    std::vector<Level<U128>> v6_;
    std::size_t size_ = 0;
};

} // namespace sp::core
