#include "core/ban_set.hpp"

#include "core/ban_hash.hpp"

#include <algorithm>
#include <utility>

namespace sp::core {

using namespace ban_hash;

template <class Key>
void BanSet::Level<Key>::reserve(std::size_t n) {
    // Load factor about 0.6 after a build: room for n/4 more bans before the first rehash, so a
    // set that follows churn does not rehash its largest table right after being built.
    std::size_t capacity = n + n * 2 / 3 + 8;
    slots.assign(capacity, Slot{Key(0), kEmpty});
    count = 0;
}

template <class Key>
void BanSet::Level<Key>::insert(Key key, std::int64_t expires) {
    const std::size_t n = slots.size();
    for (std::size_t i = slot_of(hash_key(key), n);; i = (i + 1 == n) ? 0 : i + 1) {
        Slot& s = slots[i];
        if (s.expires == kEmpty) {
            s = Slot{key, expires};
            ++count;
            return;
        }
        if (s.key == key) {
            if (expires > s.expires) s.expires = expires;
            return;
        }
    }
}

template <class Key>
void BanSet::Level<Key>::assign(Key key, std::int64_t expires) {
    const std::size_t n = slots.size();
    if (n) {
        for (std::size_t i = slot_of(hash_key(key), n);; i = (i + 1 == n) ? 0 : i + 1) {
            Slot& s = slots[i];
            if (s.expires == kEmpty) break;
            if (s.key == key) {
                s.expires = expires;
                return;
            }
        }
    }
    if ((count + 1) * 4 > n * 3) { // keep the load factor <= 0.75: rehash into twice the room
        std::vector<Slot> old;
        old.swap(slots);
        reserve(2 * (count + 1));
        for (const Slot& s : old)
            if (s.expires != kEmpty) insert(s.key, s.expires);
    }
    insert(key, expires);
}

template <class Key>
bool BanSet::Level<Key>::erase(Key key) noexcept {
    const std::size_t n = slots.size();
    if (!n) return false;
    std::size_t i = slot_of(hash_key(key), n);
    for (;; i = (i + 1 == n) ? 0 : i + 1) {
        if (slots[i].expires == kEmpty) return false;
        if (slots[i].key == key) break;
    }
    // Shift later members of the probe run back into the hole when their home slot allows it,
    // so every remaining key stays reachable from its home without tombstones.
    for (std::size_t j = (i + 1 == n) ? 0 : i + 1;; j = (j + 1 == n) ? 0 : j + 1) {
        Slot& s = slots[j];
        if (s.expires == kEmpty) break;
        std::size_t home = slot_of(hash_key(s.key), n);
        // s may move to the hole i when i lies cyclically in [home, j).
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            slots[i] = s;
            i = j;
        }
    }
    slots[i].expires = kEmpty;
    --count;
    return true;
}

template <class Key>
bool BanSet::Level<Key>::active(Key key, std::int64_t now) const noexcept {
    const std::size_t n = slots.size();
    for (std::size_t i = slot_of(hash_key(key), n);; i = (i + 1 == n) ? 0 : i + 1) {
        const Slot& s = slots[i];
        if (s.expires == kEmpty) return false;
        if (s.key == key) return s.expires > now;
    }
}

void BanSet::build(const BanEntry* entries, std::size_t n, std::int64_t now) {
    std::size_t v4_count[33] = {}, v6_count[129] = {};
    for (std::size_t i = 0; i < n; ++i) {
        const BanEntry& e = entries[i];
        if (e.expires_at <= now) continue;
        if (e.net.family == Family::V4)
            ++v4_count[std::min<int>(e.net.prefix, 32)];
        else
            ++v6_count[std::min<int>(e.net.prefix, 128)];
    }

    BanSet fresh;
    for (int p = 32; p >= 0; --p) {
        if (!v4_count[p]) continue;
        fresh.v4_by_prefix_[p] = int(fresh.v4_.size());
        fresh.v4_.emplace_back();
        fresh.v4_.back().prefix = p;
        fresh.v4_.back().reserve(v4_count[p]);
        if (p < 16) fresh.v4_short_ |= std::uint64_t(1) << p;
    }
    int v6_index[129];
    for (int p = 128; p >= 0; --p) {
        v6_index[p] = -1;
        if (!v6_count[p]) continue;
        v6_index[p] = int(fresh.v6_.size());
        fresh.v6_.emplace_back();
        fresh.v6_.back().prefix = p;
        fresh.v6_.back().reserve(v6_count[p]);
    }
    if (!fresh.v4_.empty()) fresh.v4_presence_.assign(std::size_t(1) << 16, 0);

    for (std::size_t i = 0; i < n; ++i) {
        const BanEntry& e = entries[i];
        if (e.expires_at <= now) continue;
        if (e.net.family == Family::V4) {
            int p = std::min<int>(e.net.prefix, 32);
            std::uint32_t key = mask_key(v4_key(e.net), 32, p);
            fresh.v4_[std::size_t(fresh.v4_by_prefix_[p])].insert(key, e.expires_at);
            if (p >= 16) fresh.v4_presence_[key >> 16] |= std::uint32_t(1) << (p - 16);
        } else {
            int p = std::min<int>(e.net.prefix, 128);
            fresh.v6_[std::size_t(v6_index[p])].insert(mask_key(v6_key(e.net), 128, p), e.expires_at);
        }
    }
    for (const auto& l : fresh.v4_) fresh.size_ += l.count;
    for (const auto& l : fresh.v6_) fresh.size_ += l.count;
    swap(fresh);
}

bool BanSet::contains(const Address& addr, std::int64_t now) const noexcept {
    if (addr.family == Family::V4) {
        if (v4_.empty()) return false;
        std::uint32_t key = v4_key(addr);
        int q = addr.prefix; // a ban can only contain the query if its mask is no longer
        if (q >= 16 && v4_presence_.empty()) {
            for (const auto& l : v4_)
                if (l.prefix >= 16 && l.prefix <= q && l.active(mask_key(key, 32, l.prefix), now)) return true;
        } else if (q >= 16) {
            std::uint32_t bits = v4_presence_[key >> 16];
            if (q < 32) bits &= (std::uint32_t(2) << (q - 16)) - 1;
            while (bits) {
                int p = 31 - __builtin_clz(bits); // longest mask first
                bits &= ~(std::uint32_t(1) << p);
                p += 16;
                if (v4_[std::size_t(v4_by_prefix_[p])].active(mask_key(key, 32, p), now)) return true;
            }
        }
        for (std::uint64_t bits = v4_short_; bits;) {
            int p = 63 - __builtin_clzll(bits);
            bits &= ~(std::uint64_t(1) << p);
            if (p > q) continue;
            if (v4_[std::size_t(v4_by_prefix_[p])].active(mask_key(key, 32, p), now)) return true;
        }
        return false;
    }
    U128 key = v6_key(addr);
    for (const auto& level : v6_) {
        if (level.prefix > addr.prefix) continue;
        if (level.active(mask_key(key, 128, level.prefix), now)) return true;
    }
    return false;
}

template <class Key>
std::int64_t BanSet::Level<Key>::find(Key key) const noexcept {
    const std::size_t n = slots.size();
    if (!n) return kAbsent;
    for (std::size_t i = slot_of(hash_key(key), n);; i = (i + 1 == n) ? 0 : i + 1) {
        const Slot& s = slots[i];
        if (s.expires == kEmpty) return kAbsent;
        if (s.key == key) return s.expires;
    }
}

std::int64_t BanSet::probe(const Address& net) const noexcept {
    if (net.family == Family::V4) {
        int p = std::min<int>(net.prefix, 32);
        if (v4_by_prefix_[p] < 0) return kAbsent;
        return v4_[std::size_t(v4_by_prefix_[p])].find(mask_key(v4_key(net), 32, p));
    }
    int p = std::min<int>(net.prefix, 128);
    for (const auto& l : v6_)
        if (l.prefix == p) return l.find(mask_key(v6_key(net), 128, p));
    return kAbsent;
}

void BanSet::candidates(const Address& addr, PrefixMask& m) const noexcept {
    if (addr.family == Family::V4) {
        if (v4_.empty()) return;
        const int q = addr.prefix;
        if (q >= 16 && !v4_presence_.empty()) {
            std::uint32_t bits = v4_presence_[v4_key(addr) >> 16];
            for (int p = 16; p <= q; ++p)
                if ((bits >> (p - 16)) & 1) m.set(p);
        } else if (q >= 16) {
            for (const auto& l : v4_)
                if (l.prefix >= 16 && l.prefix <= q) m.set(l.prefix);
        }
        for (int p = 0; p < 16 && p <= q; ++p)
            if ((v4_short_ >> p) & 1) m.set(p);
        return;
    }
    for (const auto& l : v6_)
        if (l.prefix <= addr.prefix) m.set(l.prefix);
}

void BanSet::index_levels() noexcept {
    std::sort(v4_.begin(), v4_.end(), [](const auto& a, const auto& b) { return a.prefix > b.prefix; });
    std::sort(v6_.begin(), v6_.end(), [](const auto& a, const auto& b) { return a.prefix > b.prefix; });
    for (int& i : v4_by_prefix_) i = -1;
    v4_short_ = 0;
    for (std::size_t k = 0; k < v4_.size(); ++k) {
        v4_by_prefix_[v4_[k].prefix] = int(k);
        if (v4_[k].prefix < 16) v4_short_ |= std::uint64_t(1) << v4_[k].prefix;
    }
}

void BanSet::assign(const Address& net, std::int64_t expires) {
    if (expires == kEmpty) expires = kEmpty + 1; // kEmpty marks free slots; already long expired
    if (net.family == Family::V4) {
        int p = std::min<int>(net.prefix, 32);
        std::uint32_t key = mask_key(v4_key(net), 32, p);
        if (v4_by_prefix_[p] < 0) {
            v4_.emplace_back();
            v4_.back().prefix = p;
            index_levels();
        }
        auto& level = v4_[std::size_t(v4_by_prefix_[p])];
        std::size_t before = level.count;
        level.assign(key, expires);
        size_ += level.count - before;
        // Presence bits are only ever set here: a stale bit after an erase costs one probe. A set
        // made by changes alone (an overlay: a few entries) has no presence table at all.
        if (p >= 16 && !v4_presence_.empty()) v4_presence_[key >> 16] |= std::uint32_t(1) << (p - 16);
        return;
    }
    int p = std::min<int>(net.prefix, 128);
    U128 key = mask_key(v6_key(net), 128, p);
    auto it = std::find_if(v6_.begin(), v6_.end(), [p](const auto& l) { return l.prefix == p; });
    if (it == v6_.end()) {
        v6_.emplace_back();
        v6_.back().prefix = p;
        index_levels();
        it = std::find_if(v6_.begin(), v6_.end(), [p](const auto& l) { return l.prefix == p; });
    }
    std::size_t before = it->count;
    it->assign(key, expires);
    size_ += it->count - before;
}

void BanSet::erase(const Address& net) noexcept {
    if (net.family == Family::V4) {
        int p = std::min<int>(net.prefix, 32);
        if (v4_by_prefix_[p] >= 0 && v4_[std::size_t(v4_by_prefix_[p])].erase(mask_key(v4_key(net), 32, p))) --size_;
        return;
    }
    int p = std::min<int>(net.prefix, 128);
    for (auto& l : v6_)
        if (l.prefix == p && l.erase(mask_key(v6_key(net), 128, p))) --size_;
}

std::size_t BanSet::memory_bytes() const noexcept {
    std::size_t bytes = sizeof(*this) + v4_.capacity() * sizeof(Level<std::uint32_t>) + v6_.capacity() * sizeof(Level<U128>) +
                        v4_presence_.capacity() * sizeof(std::uint32_t);
    for (const auto& l : v4_) bytes += l.slots.capacity() * sizeof(Level<std::uint32_t>::Slot);
    for (const auto& l : v6_) bytes += l.slots.capacity() * sizeof(Level<U128>::Slot);
    return bytes;
}

void BanSet::swap(BanSet& other) noexcept {
    v4_.swap(other.v4_);
    std::swap(v4_by_prefix_, other.v4_by_prefix_);
    v4_presence_.swap(other.v4_presence_);
    std::swap(v4_short_, other.v4_short_);
    v6_.swap(other.v6_);
    std::swap(size_, other.size_);
}

void BanSet::clear() noexcept {
    BanSet empty;
    swap(empty);
}

} // namespace sp::core
