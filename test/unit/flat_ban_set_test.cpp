#include "core/flat_ban_set.hpp"
#include "ban_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

using namespace sp::core;
using sp::core::test::A;
using sp::core::test::covers;

namespace {

std::vector<std::uint64_t> build_flat(const std::vector<BanEntry>& rows, std::int64_t now) {
    std::size_t bytes = FlatBanSet::bytes_for(rows.data(), rows.size(), now);
    std::vector<std::uint64_t> buf(bytes / 8 + 1);
    EXPECT_FALSE(FlatBanSet::build_into(buf.data(), bytes - 1, rows.data(), rows.size(), now));
    EXPECT_TRUE(FlatBanSet::build_into(buf.data(), bytes, rows.data(), rows.size(), now));
    return buf;
}

} // namespace

TEST(FlatBanSet, EmptyAndBasics) {
    auto empty = build_flat({}, 0);
    FlatBanSet none(empty.data());
    EXPECT_FALSE(none.contains(A("1.2.3.4"), 0));
    EXPECT_EQ(none.size(), 0u);
    auto buf = build_flat({{A("10.0.0.0/8"), 100}, {A("192.0.2.1"), kNeverExpires}, {A("2001:db8::/32"), 50}, {A("5.5.5.5"), 1}}, 10);
    FlatBanSet set(buf.data());
    EXPECT_EQ(set.size(), 3u); // 5.5.5.5 had expired at the build
    EXPECT_TRUE(set.contains(A("10.20.30.40"), 99));
    EXPECT_FALSE(set.contains(A("10.20.30.40"), 100));
    EXPECT_TRUE(set.contains(A("192.0.2.1"), 1000));
    EXPECT_TRUE(set.contains(A("2001:db8::1"), 0));
    EXPECT_FALSE(set.contains(A("2001:db9::1"), 0));
    EXPECT_FALSE(set.contains(A("10.0.0.0/7"), 0)); // a wider query network is not contained
    EXPECT_EQ(set.probe(A("10.0.0.0/8")), 100);
    EXPECT_EQ(set.probe(A("10.0.0.0/9")), kAbsent);
}

// A shared base plus a per-backend overlay of later changes answers exactly like the table.
TEST(FlatBanSet, LayeredAgreesWithBruteForce) {
    std::mt19937_64 rng(4242);
    auto rand_addr = [&](bool v4, int prefix) {
        Address a;
        a.family = v4 ? Family::V4 : Family::V6;
        a.prefix = v4 ? 32 : 128;
        if (v4) {
            std::uint32_t v = std::uint32_t(rng()) & 0x0f0f030f;
            for (int i = 0; i < 4; ++i) a.bytes[i] = std::uint8_t(v >> (24 - 8 * i));
        } else {
            a.bytes[0] = 0x20;
            for (int i = 1; i < 16; ++i) a.bytes[i] = std::uint8_t(rng() & 0x01);
        }
        return mask_to(a, prefix);
    };
    auto rand_prefix = [&](bool v4) { return rng() % 3 ? (v4 ? 32 : 128) : (v4 ? int(rng() % 33) : int(rng() % 129)); };
    for (int round = 0; round < 10; ++round) {
        std::vector<BanEntry> rows;
        for (int i = 0; i < 400; ++i) {
            bool v4 = rng() % 4 != 0;
            Address net = rand_addr(v4, rand_prefix(v4));
            if (std::none_of(rows.begin(), rows.end(), [&](const BanEntry& e) { return e.net == net; }))
                rows.push_back(BanEntry{net, rng() % 5 == 0 ? kNeverExpires : std::int64_t(rng() % 1000)});
        }
        auto buf = build_flat(rows, 0);
        FlatBanSet base(buf.data());
        BanSet plain;
        plain.build(rows.data(), rows.size(), 0);
        BanSet overlay;
        for (int step = 0; step < 3000; ++step) {
            bool v4 = rng() % 4 != 0;
            Address net = rand_addr(v4, rand_prefix(v4));
            auto it = std::find_if(rows.begin(), rows.end(), [&](const BanEntry& e) { return e.net == net; });
            if (rng() % 3 == 0) {
                overlay.assign(net, kErased);
                if (it != rows.end()) rows.erase(it);
            } else {
                std::int64_t exp = rng() % 5 == 0 ? kNeverExpires : std::int64_t(rng() % 1000);
                overlay.assign(net, exp);
                if (it == rows.end()) rows.push_back(BanEntry{net, exp});
                else it->expires_at = exp;
            }
            if (step % 300 != 299) continue;
            for (int q = 0; q < 300; ++q) {
                bool qv4 = rng() % 4 != 0;
                Address probe = rand_addr(qv4, qv4 ? (rng() % 4 ? 32 : int(rng() % 33)) : (rng() % 4 ? 128 : int(rng() % 129)));
                std::int64_t now = std::int64_t(rng() % 1000);
                bool expected = false;
                for (const auto& b : rows) expected = expected || (b.expires_at > now && covers(b.net, probe));
                ASSERT_EQ(layered_contains(base, overlay, probe, now), expected) << "round " << round << " step " << step;
            }
        }
        // Without changes the flat set and the plain set agree everywhere.
        for (int q = 0; q < 500; ++q) {
            Address probe = rand_addr(true, 32);
            std::int64_t now = std::int64_t(rng() % 1000);
            ASSERT_EQ(base.contains(probe, now), plain.contains(probe, now));
        }
    }
}
