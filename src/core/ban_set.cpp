#include "core/ban_set.hpp"

#include <algorithm>
#include <utility>

namespace sp::core {

namespace {

std::uint32_t v4_key(const Address& a) noexcept {
    return std::uint32_t(a.bytes[0]) << 24 | std::uint32_t(a.bytes[1]) << 16 | std::uint32_t(a.bytes[2]) << 8 | a.bytes[3];
}

unsigned __int128 v6_key(const Address& a) noexcept {
    unsigned __int128 k = 0;
    for (int i = 0; i < 16; ++i) k = (k << 8) | a.bytes[i];
    return k;
}

template <class Key>
Key mask_key(Key key, int max_prefix, int prefix) noexcept {
    if (prefix <= 0) return 0;
    if (prefix >= max_prefix) return key;
    return key & ~((Key(1) << (max_prefix - prefix)) - 1);
}

} // namespace

template <class Key>
void BanSet::build_family(std::vector<Level<Key>>& out, std::vector<std::pair<Key, std::int64_t>> (&by_prefix)[129]) {
    // Longest prefix first, so the common exact-address level is probed first.
    for (int p = 128; p >= 0; --p) {
        auto& items = by_prefix[p];
        if (items.empty()) continue;
        std::sort(items.begin(), items.end());
        Level<Key> level;
        level.prefix = p;
        level.keys.reserve(items.size());
        level.expires.reserve(items.size());
        for (const auto& [key, expires] : items) {
            if (!level.keys.empty() && level.keys.back() == key) {
                level.expires.back() = std::max(level.expires.back(), expires);
                continue;
            }
            level.keys.push_back(key);
            level.expires.push_back(expires);
        }
        level.keys.shrink_to_fit();
        level.expires.shrink_to_fit();
        out.push_back(std::move(level));
        std::vector<std::pair<Key, std::int64_t>>().swap(items);
    }
}

void BanSet::build(const BanEntry* entries, std::size_t n, std::int64_t now) {
    std::vector<std::pair<std::uint32_t, std::int64_t>> v4[129];
    std::vector<std::pair<U128, std::int64_t>> v6[129];
    for (std::size_t i = 0; i < n; ++i) {
        const BanEntry& e = entries[i];
        if (e.expires_at <= now) continue;
        int max = e.net.max_prefix();
        int p = std::min<int>(e.net.prefix, max);
        if (e.net.family == Family::V4)
            v4[p].emplace_back(mask_key(v4_key(e.net), 32, p), e.expires_at);
        else
            v6[p].emplace_back(mask_key(v6_key(e.net), 128, p), e.expires_at);
    }
    BanSet fresh;
    build_family(fresh.v4_, v4);
    build_family(fresh.v6_, v6);
    fresh.size_ = 0;
    for (const auto& l : fresh.v4_) fresh.size_ += l.keys.size();
    for (const auto& l : fresh.v6_) fresh.size_ += l.keys.size();
    swap(fresh);
}

template <class Key>
bool BanSet::probe(const std::vector<Level<Key>>& levels, Key key, int max_prefix, int query_prefix, std::int64_t now) noexcept {
    for (const auto& level : levels) {
        if (level.prefix > query_prefix) continue; // a longer mask cannot contain the query
        Key k = mask_key(key, max_prefix, level.prefix);
        auto it = std::lower_bound(level.keys.begin(), level.keys.end(), k);
        if (it != level.keys.end() && *it == k && level.expires[std::size_t(it - level.keys.begin())] > now) return true;
    }
    return false;
}

bool BanSet::contains(const Address& addr, std::int64_t now) const noexcept {
    if (addr.family == Family::V4) return probe(v4_, v4_key(addr), 32, addr.prefix, now);
    return probe(v6_, v6_key(addr), 128, addr.prefix, now);
}

std::size_t BanSet::memory_bytes() const noexcept {
    std::size_t bytes = sizeof(*this) + v4_.capacity() * sizeof(Level<std::uint32_t>) + v6_.capacity() * sizeof(Level<U128>);
    for (const auto& l : v4_) bytes += l.keys.capacity() * sizeof(std::uint32_t) + l.expires.capacity() * sizeof(std::int64_t);
    for (const auto& l : v6_) bytes += l.keys.capacity() * sizeof(U128) + l.expires.capacity() * sizeof(std::int64_t);
    return bytes;
}

void BanSet::swap(BanSet& other) noexcept {
    v4_.swap(other.v4_);
    v6_.swap(other.v6_);
    std::swap(size_, other.size_);
}

void BanSet::clear() noexcept {
    BanSet empty;
    swap(empty);
}

} // namespace sp::core
