#include "core/flat_ban_set.hpp"

#include "core/ban_hash.hpp"

#include <algorithm>
#include <cstring>

namespace sp::core {

using namespace ban_hash;

namespace {

using U128 = unsigned __int128;
constexpr std::uint64_t kMagic = 0x7370626e73657431ull; // "spbnset1"
constexpr int kLevels = 33 + 129;                       // IPv4 prefixes 0..32, then IPv6 0..128

struct LevelDesc {
    std::uint64_t offset;   // from the start of the block; 0 = no such level
    std::uint64_t capacity; // slots
    std::uint64_t count;
};

struct Header {
    std::uint64_t magic;
    std::uint64_t total_bytes;
    std::uint64_t size;
    std::uint64_t v4_short; // bit p: an IPv4 level with prefix p < 16
    PrefixMask v6;          // IPv6 levels present
    LevelDesc levels[kLevels];
    std::uint32_t presence[1 << 16]; // per IPv4 /16: bit (p - 16) when prefix p >= 16 occurs there
};

struct __attribute__((packed)) Slot4 {
    std::uint32_t key;
    std::int64_t expires;
};
struct __attribute__((packed)) Slot6 {
    U128 key;
    std::int64_t expires;
};

int level_index(Family f, int prefix) noexcept { return f == Family::V4 ? prefix : 33 + prefix; }

std::size_t capacity_for(std::size_t n) noexcept { return n + n / 3 + 8; } // load factor <= 0.75

std::size_t align8(std::size_t x) noexcept { return (x + 7) & ~std::size_t(7); }

bool live(const BanEntry& e, std::int64_t now) noexcept { return e.expires_at > now && e.expires_at != kEmpty; }

void count_levels(const BanEntry* entries, std::size_t n, std::int64_t now, std::size_t counts[kLevels]) noexcept {
    for (int i = 0; i < kLevels; ++i) counts[i] = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const BanEntry& e = entries[i];
        if (!live(e, now)) continue;
        int max = e.net.family == Family::V4 ? 32 : 128;
        ++counts[level_index(e.net.family, std::min<int>(e.net.prefix, max))];
    }
}

template <class S, class Key>
std::int64_t find(const unsigned char* base, const LevelDesc& d, Key key) noexcept {
    if (!d.offset) return kAbsent;
    const S* slots = reinterpret_cast<const S*>(base + d.offset);
    const std::size_t n = d.capacity;
    for (std::size_t i = slot_of(hash_key(key), n);; i = (i + 1 == n) ? 0 : i + 1) {
        if (slots[i].expires == kEmpty) return kAbsent;
        if (slots[i].key == key) return slots[i].expires;
    }
}

template <class S, class Key>
void insert(unsigned char* base, LevelDesc& d, Key key, std::int64_t expires) noexcept {
    S* slots = reinterpret_cast<S*>(base + d.offset);
    const std::size_t n = d.capacity;
    for (std::size_t i = slot_of(hash_key(key), n);; i = (i + 1 == n) ? 0 : i + 1) {
        if (slots[i].expires == kEmpty) {
            slots[i].key = key;
            slots[i].expires = expires;
            ++d.count;
            return;
        }
        if (slots[i].key == key) { // duplicates keep the later expiry, as BanSet::build
            if (expires > slots[i].expires) slots[i].expires = expires;
            return;
        }
    }
}

const Header& header(const unsigned char* base) noexcept { return *reinterpret_cast<const Header*>(base); }

} // namespace

std::size_t FlatBanSet::bytes_for(const BanEntry* entries, std::size_t n, std::int64_t now) noexcept {
    std::size_t counts[kLevels];
    count_levels(entries, n, now, counts);
    std::size_t bytes = align8(sizeof(Header));
    for (int i = 0; i < kLevels; ++i)
        if (counts[i]) bytes += align8(capacity_for(counts[i]) * (i < 33 ? sizeof(Slot4) : sizeof(Slot6)));
    return bytes;
}

bool FlatBanSet::build_into(void* buf, std::size_t cap, const BanEntry* entries, std::size_t n, std::int64_t now) noexcept {
    std::size_t need = bytes_for(entries, n, now);
    if (cap < need) return false;
    auto* base = static_cast<unsigned char*>(buf);
    auto* h = reinterpret_cast<Header*>(base);
    std::memset(static_cast<void*>(h), 0, sizeof(Header));
    std::size_t counts[kLevels];
    count_levels(entries, n, now, counts);
    std::size_t off = align8(sizeof(Header));
    for (int i = 0; i < kLevels; ++i) {
        if (!counts[i]) continue;
        LevelDesc& d = h->levels[i];
        d.offset = off;
        d.capacity = capacity_for(counts[i]);
        std::size_t bytes = d.capacity * (i < 33 ? sizeof(Slot4) : sizeof(Slot6));
        // Every slot free: kEmpty expiry (the key bytes do not matter).
        for (std::size_t k = 0; k < d.capacity; ++k) {
            if (i < 33)
                reinterpret_cast<Slot4*>(base + off)[k].expires = kEmpty;
            else
                reinterpret_cast<Slot6*>(base + off)[k].expires = kEmpty;
        }
        off += align8(bytes);
        if (i < 16) h->v4_short |= std::uint64_t(1) << i;
        if (i >= 33) h->v6.set(i - 33);
    }
    for (std::size_t i = 0; i < n; ++i) {
        const BanEntry& e = entries[i];
        if (!live(e, now)) continue;
        if (e.net.family == Family::V4) {
            int p = std::min<int>(e.net.prefix, 32);
            std::uint32_t key = mask_key(v4_key(e.net), 32, p);
            insert<Slot4>(base, h->levels[p], key, e.expires_at);
            if (p >= 16) h->presence[key >> 16] |= std::uint32_t(1) << (p - 16);
        } else {
            int p = std::min<int>(e.net.prefix, 128);
            insert<Slot6>(base, h->levels[33 + p], mask_key(v6_key(e.net), 128, p), e.expires_at);
        }
    }
    for (const LevelDesc& d : h->levels) h->size += d.count;
    h->total_bytes = need;
    h->magic = kMagic;
    return true;
}

std::int64_t FlatBanSet::probe(const Address& net) const noexcept {
    const Header& h = header(base_);
    if (net.family == Family::V4) {
        int p = std::min<int>(net.prefix, 32);
        return find<Slot4>(base_, h.levels[p], mask_key(v4_key(net), 32, p));
    }
    int p = std::min<int>(net.prefix, 128);
    return find<Slot6>(base_, h.levels[33 + p], mask_key(v6_key(net), 128, p));
}

void FlatBanSet::candidates(const Address& addr, PrefixMask& m) const noexcept {
    const Header& h = header(base_);
    const int q = addr.prefix;
    if (addr.family == Family::V4) {
        if (q >= 16) {
            std::uint32_t bits = h.presence[v4_key(addr) >> 16];
            for (int p = 16; p <= q; ++p)
                if ((bits >> (p - 16)) & 1) m.set(p);
        }
        for (int p = 0; p < 16 && p <= q; ++p)
            if ((h.v4_short >> p) & 1) m.set(p);
        return;
    }
    for (int p = 0; p <= q; ++p)
        if (h.v6.test(p)) m.set(p);
}

bool FlatBanSet::contains(const Address& addr, std::int64_t now) const noexcept {
    PrefixMask m;
    candidates(addr, m);
    for (int p = addr.prefix; p >= 0; --p)
        if (m.test(p) && probe(mask_to(addr, p)) > now) return true;
    return false;
}

std::size_t FlatBanSet::size() const noexcept { return header(base_).size; }
std::size_t FlatBanSet::bytes() const noexcept { return header(base_).total_bytes; }

bool layered_contains(const FlatBanSet& base, const BanSet& overlay, const Address& addr, std::int64_t now) noexcept {
    PrefixMask m;
    base.candidates(addr, m);
    overlay.candidates(addr, m);
    for (int p = addr.prefix; p >= 0; --p) {
        if (!m.test(p)) continue;
        Address net = mask_to(addr, p);
        std::int64_t e = overlay.probe(net);
        if (e == kAbsent) e = base.probe(net);
        if (e > now) return true;
    }
    return false;
}

} // namespace sp::core
