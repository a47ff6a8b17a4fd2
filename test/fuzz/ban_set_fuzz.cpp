// libFuzzer differential target for the ban sets: the input encodes bans (address, mask, expiry),
// then changes and probes. A BanSet built from the bans and changed in place, and a FlatBanSet
// built from the bans under a BanSet overlay of the changes (the shared-memory layout), must both
// agree with a brute-force scan on every probe.
#include "core/ban_set.hpp"
#include "core/flat_ban_set.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Reader {
    const std::uint8_t* p;
    std::size_t n;
    bool take(void* out, std::size_t k) {
        if (n < k) return false;
        std::memcpy(out, p, k);
        p += k;
        n -= k;
        return true;
    }
};

bool covers(const sp::core::Address& net, const sp::core::Address& a) {
    if (net.family != a.family || net.prefix > a.prefix) return false;
    return sp::core::mask_to(a, net.prefix) == net;
}

bool read_address(Reader& r, sp::core::Address& a) {
    std::uint8_t head;
    if (!r.take(&head, 1)) return false;
    a = sp::core::Address{};
    bool v6 = head & 1;
    a.family = v6 ? sp::core::Family::V6 : sp::core::Family::V4;
    std::uint8_t raw[16] = {};
    // A narrow address space (most bytes fixed), so bans and probes collide often.
    if (!r.take(raw + (v6 ? 14 : 2), 2)) return false;
    std::memcpy(a.bytes, raw, v6 ? 16 : 4);
    int max = v6 ? 128 : 32;
    int prefix = (head >> 1) % (max + 1);
    if (head & 0x80) prefix = max;
    return (a = sp::core::mask_to(a, prefix)), true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Reader r{data, size};
    std::uint8_t nbans = 0;
    if (!r.take(&nbans, 1)) return 0;
    std::vector<sp::core::BanEntry> bans;
    for (int i = 0; i < nbans % 64; ++i) {
        sp::core::BanEntry e;
        std::uint8_t exp;
        if (!read_address(r, e.net) || !r.take(&exp, 1)) break;
        e.expires_at = exp == 255 ? sp::core::kNeverExpires : std::int64_t(exp);
        bans.push_back(e);
    }
    std::uint8_t built_at = 0;
    r.take(&built_at, 1);
    sp::core::BanSet set;
    set.build(bans.data(), bans.size(), built_at);
    std::vector<std::uint64_t> flat_buf(sp::core::FlatBanSet::bytes_for(bans.data(), bans.size(), built_at) / 8 + 1);
    if (!sp::core::FlatBanSet::build_into(flat_buf.data(), flat_buf.size() * 8, bans.data(), bans.size(), built_at)) std::abort();
    sp::core::FlatBanSet flat(flat_buf.data());
    sp::core::BanSet overlay;

    // The model: one expiry per network (a build keeps the later of duplicates).
    std::vector<sp::core::BanEntry> model;
    auto find = [&](const sp::core::Address& net) {
        for (auto it = model.begin(); it != model.end(); ++it)
            if (it->net == net) return it;
        return model.end();
    };
    for (const auto& b : bans) {
        if (b.expires_at <= built_at) continue;
        auto it = find(b.net);
        if (it == model.end()) model.push_back(b);
        else if (b.expires_at > it->expires_at) it->expires_at = b.expires_at;
    }

    // Then a mix of changes (as a table feeds them) and probes.
    sp::core::Address addr;
    std::uint8_t op, arg;
    while (r.take(&op, 1) && read_address(r, addr) && r.take(&arg, 1)) {
        switch (op % 3) {
        case 0: { // the row for addr now expires at arg
            std::int64_t exp = arg == 255 ? sp::core::kNeverExpires : std::int64_t(arg);
            set.assign(addr, exp);
            overlay.assign(addr, exp);
            auto it = find(addr);
            if (it == model.end()) model.push_back({addr, exp});
            else it->expires_at = exp;
            break;
        }
        case 1: { // the row for addr is gone
            set.erase(addr);
            overlay.assign(addr, sp::core::kErased);
            auto it = find(addr);
            if (it != model.end()) model.erase(it);
            break;
        }
        default: {
            std::int64_t now = std::int64_t(built_at) + arg;
            bool expected = false;
            for (const auto& b : model) expected = expected || (b.expires_at > now && covers(b.net, addr));
            if (set.contains(addr, now) != expected) std::abort();
            if (sp::core::layered_contains(flat, overlay, addr, now) != expected) std::abort();
        }
        }
    }
    if (set.size() != model.size()) std::abort();
    return 0;
}
