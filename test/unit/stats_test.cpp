#include "core/stats.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace sp::core;

TEST(Stats, DayOfRoundsDown) {
    EXPECT_EQ(day_of(0), 0);
    EXPECT_EQ(day_of(kUsecPerDayStats - 1), 0);
    EXPECT_EQ(day_of(kUsecPerDayStats), 1);
    EXPECT_EQ(day_of(-1), -1);
    EXPECT_EQ(day_of(-kUsecPerDayStats), -1);
    EXPECT_EQ(day_of(-kUsecPerDayStats - 1), -2);
}

TEST(Stats, FoldsEveryFigureAndSkipsDeleted) {
    std::vector<CountRow> rows = {
        {100, kActive, kUserBit, false, 10},
        {100, kActive, kUserBit | kAdminBit, false, 2},
        {99, kSuspended, kUserBit, true, 3},
        {90, kActive, kAnonymousBit, false, 5},
        {100, kDeleted, kUserBit | kAdminBit, true, 50},
        {100, kActive, kUserBit, false, -4}, // a delta row: counters are sums of +1/-1
    };
    Window w[3] = {{99, 1}, {95, 0}, {80, 0}};
    Figures f = fold_counts(rows.data(), rows.size(), w);
    EXPECT_EQ(f.total, 16);
    EXPECT_EQ(f.active, 13);
    EXPECT_EQ(f.suspended, 3);
    EXPECT_EQ(f.admins, 2);
    EXPECT_EQ(f.anonymous, 5);
    EXPECT_EQ(f.bots, 3);
    EXPECT_EQ(f.by_role[1], 11);
    EXPECT_EQ(f.created_24h, 8 + 1) << "days after the boundary day, plus the exact count on it";
    EXPECT_EQ(f.created_7d, 11);
    EXPECT_EQ(f.created_30d, 16);
}

TEST(Stats, LargestFirstDropsZerosKeepsEnumOrderOnTies) {
    std::int64_t counts[6] = {5, 0, 7, 5, 0, 1};
    auto order = largest_first(counts, 6);
    ASSERT_EQ(order.size(), 4u);
    EXPECT_EQ(order[0].first, 2);
    EXPECT_EQ(order[1].first, 0);
    EXPECT_EQ(order[2].first, 3);
    EXPECT_EQ(order[3].first, 5);
}

// The fold equals counting individual users directly.
TEST(Stats, AgreesWithDirectCount) {
    std::mt19937 rng(7);
    struct User { int day, status; unsigned roles; bool bot; };
    std::vector<User> users;
    for (int i = 0; i < 5000; ++i) users.push_back({int(rng() % 60), int(rng() % kStatusCount), 1u + unsigned(rng() % 7), rng() % 10 == 0});
    std::vector<CountRow> rows;
    for (const User& u : users) rows.push_back({u.day, u.status, u.roles, u.bot, 1});
    Window w[3] = {{58, 0}, {52, 0}, {29, 0}};
    Figures f = fold_counts(rows.data(), rows.size(), w);
    std::int64_t total = 0, c7 = 0, admins = 0, bots = 0;
    for (const User& u : users) {
        if (u.status == kDeleted) continue;
        ++total;
        c7 += u.day > 52;
        admins += (u.roles & kAdminBit) != 0;
        bots += u.bot;
    }
    EXPECT_EQ(f.total, total);
    EXPECT_EQ(f.created_7d, c7);
    EXPECT_EQ(f.admins, admins);
    EXPECT_EQ(f.bots, bots);
}
