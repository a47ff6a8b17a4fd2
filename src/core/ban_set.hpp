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

// What a set holds for one exact network: nothing, or an expiry; a layered set (an overlay over
// a shared base) marks a network the base holds but the table no longer does as erased.
constexpr std::int64_t kAbsent = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kErased = std::numeric_limits<std::int64_t>::min() + 1;

// A set of mask lengths: bit p for IPv4 prefix p (0..32) or IPv6 prefix p (0..128).
struct PrefixMask {
    std::uint64_t bits[3] = {0, 0, 0};
    void set(int p) noexcept { bits[p >> 6] |= std::uint64_t(1) << (p & 63); }
    bool test(int p) const noexcept { return (bits[p >> 6] >> (p & 63)) & 1; }
};

struct BanEntry {
    Address net;
    std::int64_t expires_at; // kNeverExpires for a permanent ban
};

// One open-addressing hash table per mask length in use. For IPv4, a table indexed by the top 16
// bits says which mask lengths >= 16 occur under that /16, so a lookup probes only those: about
// three cache lines for a random address, whatever the number of bans. (A lookup runs once per
// request with a cold cache; a binary search there costs one miss per step.)
class BanSet {
public:
    BanSet() noexcept {
        for (int& i : v4_by_prefix_) i = -1;
    }

    // Replaces the contents. Entries already expired at `now` are dropped (time only moves
    // forward in a backend). Duplicate keys keep the later expiry. Throws std::bad_alloc.
    void build(const BanEntry* entries, std::size_t n, std::int64_t now);

    // Incremental changes, for a set that follows a table row by row: the ban on exactly `net`
    // (masked to its prefix) now expires at `expires` (replacing what was there), or is gone.
    // Cost: one hash probe, a rehash of one level when it fills up. Throws std::bad_alloc.
    void assign(const Address& net, std::int64_t expires);
    void erase(const Address& net) noexcept;

    // True when an entry active at `now` equals `addr` or contains it.
    bool contains(const Address& addr, std::int64_t now) const noexcept;

    // The expiry held for exactly `net` (masked to its prefix), or kAbsent.
    std::int64_t probe(const Address& net) const noexcept;
    // Adds to `m` the mask lengths (at most addr.prefix) under which this set may hold a network
    // containing `addr`.
    void candidates(const Address& addr, PrefixMask& m) const noexcept;

    std::size_t size() const noexcept { return size_; }
    std::size_t memory_bytes() const noexcept;
    void swap(BanSet& other) noexcept;
    void clear() noexcept;

private:
    using U128 = unsigned __int128;

    template <class Key>
    struct Level {
        // Packed: 12 bytes per IPv4 slot instead of 16 (x86 loads unaligned words at no cost).
        struct __attribute__((packed)) Slot {
            Key key;
            std::int64_t expires; // kEmpty marks a free slot
        };
        int prefix = 0;
        std::size_t count = 0;
        std::vector<Slot> slots; // any size: hashes map to slots by multiply-shift, not a mask

        void reserve(std::size_t n);
        void insert(Key key, std::int64_t expires);
        void assign(Key key, std::int64_t expires); // grows the table when needed
        bool erase(Key key) noexcept;               // backward-shift deletion: no tombstones
        bool active(Key key, std::int64_t now) const noexcept;
        std::int64_t find(Key key) const noexcept; // kAbsent when not held
    };

    void index_levels() noexcept;

    std::vector<Level<std::uint32_t>> v4_;     // by prefix, longest first
    int v4_by_prefix_[33] = {};                // index into v4_, or -1 (set by the constructor)
    std::vector<std::uint32_t> v4_presence_;   // per /16: bit (p - 16) set when prefix p occurs there
    std::uint64_t v4_short_ = 0;               // bit p set when a prefix p < 16 occurs
    std::vector<Level<U128>> v6_;              // by prefix, longest first
    std::size_t size_ = 0;
};

} // namespace sp::core
