#include "core/escalation.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace sp::core;

constexpr std::int64_t kHour = 3600LL * 1000000LL;

TEST(Escalation, DoublesPerPreviousBan) {
    EXPECT_EQ(escalate_duration(kHour, 0), kHour);
    EXPECT_EQ(escalate_duration(kHour, 1), 2 * kHour);
    EXPECT_EQ(escalate_duration(kHour, 3), 8 * kHour);
}

TEST(Escalation, CappedAt365Days) {
    EXPECT_EQ(escalate_duration(kHour, 20), kEscalationCapUs);
    EXPECT_EQ(escalate_duration(kHour, std::numeric_limits<std::int64_t>::max()), kEscalationCapUs);
    EXPECT_EQ(escalate_duration(kEscalationCapUs - 1, 1), kEscalationCapUs);
}

TEST(Escalation, NeverShortensTheBase) {
    EXPECT_EQ(escalate_duration(2 * kEscalationCapUs, 5), 2 * kEscalationCapUs);
    EXPECT_EQ(escalate_duration(std::numeric_limits<std::int64_t>::max(), 5), std::numeric_limits<std::int64_t>::max());
}

TEST(Escalation, NegativeCountsAreZero) {
    EXPECT_EQ(escalate_duration(kHour, -3), kHour);
}
