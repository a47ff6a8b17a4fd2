#include "core/ban_set.hpp"
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

BanEntry ban(const std::string& s, std::int64_t expires = kNeverExpires) { return BanEntry{A(s), expires}; }

} // namespace

TEST(BanSet, EmptyBansNothing) {
    BanSet set;
    EXPECT_FALSE(set.contains(A("1.2.3.4"), 0));
    EXPECT_FALSE(set.contains(A("::1"), 0));
    EXPECT_EQ(set.size(), 0u);
}

TEST(BanSet, ExactAndNetworks) {
    std::vector<BanEntry> bans = {ban("1.2.3.4"), ban("10.0.0.0/8"), ban("2001:db8::/32"), ban("2001:db9::7")};
    BanSet set;
    set.build(bans.data(), bans.size(), 0);
    EXPECT_TRUE(set.contains(A("1.2.3.4"), 0));
    EXPECT_FALSE(set.contains(A("1.2.3.5"), 0));
    EXPECT_TRUE(set.contains(A("10.255.0.1"), 0));
    EXPECT_TRUE(set.contains(A("10.1.0.0/16"), 0)) << "a network inside a banned network";
    EXPECT_TRUE(set.contains(A("10.0.0.0/8"), 0));
    EXPECT_FALSE(set.contains(A("10.0.0.0/7"), 0)) << "a wider network is not contained";
    EXPECT_FALSE(set.contains(A("11.0.0.1"), 0));
    EXPECT_TRUE(set.contains(A("2001:db8:ffff::1"), 0));
    EXPECT_TRUE(set.contains(A("2001:db9::7"), 0));
    EXPECT_FALSE(set.contains(A("2001:db9::8"), 0));
    EXPECT_FALSE(set.contains(A("::ffff:11.0.0.1"), 0));
    EXPECT_EQ(set.size(), 4u);
}

TEST(BanSet, FamiliesDoNotMix) {
    std::vector<BanEntry> bans = {ban("::/0")};
    BanSet set;
    set.build(bans.data(), bans.size(), 0);
    EXPECT_TRUE(set.contains(A("2001:db8::1"), 0));
    EXPECT_FALSE(set.contains(A("1.2.3.4"), 0)) << "an IPv6 network never contains an IPv4 address (as in PostgreSQL)";
}

TEST(BanSet, ExpiryToTheMicrosecond) {
    std::vector<BanEntry> bans = {ban("1.2.3.4", 1000), ban("10.0.0.0/8", 2000)};
    BanSet set;
    set.build(bans.data(), bans.size(), 0);
    EXPECT_TRUE(set.contains(A("1.2.3.4"), 999));
    EXPECT_FALSE(set.contains(A("1.2.3.4"), 1000)) << "active means expires_at > now";
    EXPECT_TRUE(set.contains(A("10.1.1.1"), 1999));
    EXPECT_FALSE(set.contains(A("10.1.1.1"), 2000));
}

TEST(BanSet, ExpiredAtBuildAreDropped) {
    std::vector<BanEntry> bans = {ban("1.2.3.4", 50), ban("1.2.3.5", 500)};
    BanSet set;
    set.build(bans.data(), bans.size(), 100);
    EXPECT_EQ(set.size(), 1u);
    EXPECT_FALSE(set.contains(A("1.2.3.4"), 100));
    EXPECT_TRUE(set.contains(A("1.2.3.5"), 100));
}

TEST(BanSet, ExpiredSpecificDoesNotHideActiveWide) {
    std::vector<BanEntry> bans = {ban("10.1.0.0/16", 10), ban("10.0.0.0/8", 1000)};
    BanSet set;
    set.build(bans.data(), bans.size(), 0);
    EXPECT_TRUE(set.contains(A("10.1.2.3"), 500));
}

TEST(BanSet, DuplicatesKeepLaterExpiry) {
    std::vector<BanEntry> bans = {ban("1.2.3.4", 10), ban("1.2.3.4", 1000), ban("1.2.3.4", 20)};
    BanSet set;
    set.build(bans.data(), bans.size(), 0);
    EXPECT_EQ(set.size(), 1u);
    EXPECT_TRUE(set.contains(A("1.2.3.4"), 500));
}

TEST(BanSet, RebuildReplaces) {
    std::vector<BanEntry> a = {ban("1.1.1.1")}, b = {ban("2.2.2.2")};
    BanSet set;
    set.build(a.data(), a.size(), 0);
    set.build(b.data(), b.size(), 0);
    EXPECT_FALSE(set.contains(A("1.1.1.1"), 0));
    EXPECT_TRUE(set.contains(A("2.2.2.2"), 0));
    set.clear();
    EXPECT_FALSE(set.contains(A("2.2.2.2"), 0));
}

// Differential check against a brute-force matcher over random bans and probes.
TEST(BanSet, AgreesWithBruteForce) {
    std::mt19937_64 rng(12345);
    auto rand_v4 = [&](int prefix) {
        Address a;
        a.family = Family::V4;
        std::uint32_t v = std::uint32_t(rng()) & 0x0f0f0f0f; // a small space, so hits happen
        for (int i = 0; i < 4; ++i) a.bytes[i] = std::uint8_t(v >> (24 - 8 * i));
        return mask_to(a, prefix);
    };
    auto rand_v6 = [&](int prefix) {
        Address a;
        a.family = Family::V6;
        a.bytes[0] = 0x20;
        a.bytes[1] = 0x01;
        for (int i = 2; i < 16; ++i) a.bytes[i] = std::uint8_t(rng() & 0x03);
        a.prefix = 128;
        return mask_to(a, prefix);
    };
    for (int round = 0; round < 20; ++round) {
        std::vector<BanEntry> bans;
        for (int i = 0; i < 300; ++i) {
            bool v4 = rng() % 2;
            int prefix = v4 ? int(rng() % 33) : int(rng() % 129);
            if (rng() % 2) prefix = v4 ? 32 : 128;
            std::int64_t exp = (rng() % 4 == 0) ? kNeverExpires : std::int64_t(rng() % 1000);
            bans.push_back(BanEntry{v4 ? rand_v4(prefix) : rand_v6(prefix), exp});
        }
        std::int64_t built_at = std::int64_t(rng() % 300);
        BanSet set;
        set.build(bans.data(), bans.size(), built_at);
        for (int q = 0; q < 2000; ++q) {
            bool v4 = rng() % 2;
            // Mostly single addresses, sometimes networks (is_banned accepts both).
            int qp = v4 ? (rng() % 4 ? 32 : int(rng() % 33)) : (rng() % 4 ? 128 : int(rng() % 129));
            Address probe = v4 ? rand_v4(qp) : rand_v6(qp);
            std::int64_t now = built_at + std::int64_t(rng() % 700);
            bool expected = false;
            for (const auto& b : bans) expected = expected || (b.expires_at > now && covers(b.net, probe));
            ASSERT_EQ(set.contains(probe, now), expected) << "round " << round << " probe " << q;
        }
    }
}

// A set that follows a table change by change agrees with a rebuild from the same rows and with
// brute force, through growth, level creation and deletions inside probe runs.
TEST(BanSet, IncrementalChangesAgreeWithRebuild) {
    std::mt19937_64 rng(777);
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
    std::vector<BanEntry> rows; // the "table": one row per network
    BanSet set;                 // starts empty and follows every change
    for (int step = 0; step < 20000; ++step) {
        bool v4 = rng() % 4 != 0;
        int prefix = rng() % 3 ? (v4 ? 32 : 128) : (v4 ? int(rng() % 33) : int(rng() % 129));
        Address net = rand_addr(v4, prefix);
        auto it = std::find_if(rows.begin(), rows.end(), [&](const BanEntry& e) { return e.net == net; });
        if (rng() % 3 == 0) {
            set.erase(net);
            if (it != rows.end()) rows.erase(it);
        } else {
            std::int64_t exp = rng() % 5 == 0 ? kNeverExpires : std::int64_t(rng() % 1000);
            set.assign(net, exp);
            if (it == rows.end()) rows.push_back(BanEntry{net, exp});
            else it->expires_at = exp;
        }
        ASSERT_EQ(set.size(), rows.size()) << "step " << step;
        if (step % 500 != 499) continue;
        BanSet rebuilt;
        rebuilt.build(rows.data(), rows.size(), 0);
        for (int q = 0; q < 500; ++q) {
            bool qv4 = rng() % 4 != 0;
            Address probe = rand_addr(qv4, qv4 ? (rng() % 4 ? 32 : int(rng() % 33)) : (rng() % 4 ? 128 : int(rng() % 129)));
            std::int64_t now = std::int64_t(rng() % 1000);
            bool expected = false;
            for (const auto& b : rows) expected = expected || (b.expires_at > now && covers(b.net, probe));
            ASSERT_EQ(set.contains(probe, now), expected) << "step " << step << " probe " << q;
            ASSERT_EQ(rebuilt.contains(probe, now), expected);
        }
    }
    // Everything erased: empty again, and still usable.
    for (const auto& r : rows) set.erase(r.net);
    EXPECT_EQ(set.size(), 0u);
    EXPECT_FALSE(set.contains(A("1.2.3.4"), 0));
    set.assign(A("1.2.3.0/24"), kNeverExpires);
    EXPECT_TRUE(set.contains(A("1.2.3.4"), 0));
}

TEST(BanSet, AssignReplacesExpiryAndEraseUnbans) {
    BanSet set;
    set.assign(A("10.0.0.0/8"), 100);
    EXPECT_TRUE(set.contains(A("10.1.2.3"), 50));
    set.assign(A("10.0.0.0/8"), 40); // a shorter ban replaces, unlike a build's duplicates
    EXPECT_FALSE(set.contains(A("10.1.2.3"), 50));
    set.assign(A("2001:db8::/32"), kNeverExpires);
    EXPECT_TRUE(set.contains(A("2001:db8::1"), 0));
    set.erase(A("2001:db8::/32"));
    EXPECT_FALSE(set.contains(A("2001:db8::1"), 0));
    set.erase(A("192.0.2.1")); // absent: nothing happens
    EXPECT_EQ(set.size(), 1u);
}

TEST(BanSet, MemoryIsCompact) {
    std::vector<BanEntry> bans;
    for (std::uint32_t i = 0; i < 100000; ++i) {
        Address a;
        a.bytes[0] = std::uint8_t(i >> 24);
        a.bytes[1] = std::uint8_t(i >> 16);
        a.bytes[2] = std::uint8_t(i >> 8);
        a.bytes[3] = std::uint8_t(i);
        bans.push_back(BanEntry{a, kNeverExpires});
    }
    BanSet set;
    set.build(bans.data(), bans.size(), 0);
    EXPECT_EQ(set.size(), 100000u);
    // 12-byte slots at a load factor of 0.6 (room for a quarter more before a rehash), plus the
    // 256 KiB /16 presence table.
    EXPECT_LE(set.memory_bytes(), 167000u * 12u + 262144u + 4096u);
}
