// Folding maintained counter rows into the user statistics.
#pragma once
#include "core/core_guard.hpp"

#include <cstdint>
#include <utility>
#include <vector>

namespace sp::core {

// Positions in the sp_users.user_status / user_role enums (a pgTAP test pins the SQL order).
enum StatusIndex : int { kActive = 0, kInactive, kSuspended, kPending, kDeleted, kTemporary, kStatusCount };
enum RoleBit : unsigned { kAdminBit = 1u << 0, kUserBit = 1u << 1, kAnonymousBit = 1u << 2 };
constexpr int kRoleCount = 3;

constexpr std::int64_t kUsecPerDayStats = 86400LL * 1000000LL;

// Day number (days since 2000-01-01 UTC, PostgreSQL's epoch) of a TimestampTz, rounding down.
constexpr std::int32_t day_of(std::int64_t ts) {
    return std::int32_t(ts >= 0 ? ts / kUsecPerDayStats : -((-ts + kUsecPerDayStats - 1) / kUsecPerDayStats));
}

// One row of sp_users.user_counts: n users created on `day` with that status, role set and bot flag.
struct CountRow {
    std::int32_t day;
    std::int32_t status;  // StatusIndex
    std::uint32_t roles;  // RoleBit mask
    bool is_bot;
    std::int64_t n;
};

// A "created within" window: users created after `boundary_day` count from the counters; those
// created on the boundary day itself after the boundary instant are counted exactly by the caller.
struct Window {
    std::int32_t boundary_day;
    std::int64_t on_boundary_day;
};

struct Figures {
    std::int64_t total = 0, created_24h = 0, created_7d = 0, created_30d = 0;
    std::int64_t active = 0, suspended = 0, admins = 0, anonymous = 0, bots = 0;
    std::int64_t by_status[kStatusCount] = {};
    std::int64_t by_role[kRoleCount] = {};
};

// Deleted users are left out of every figure.
Figures fold_counts(const CountRow* rows, std::size_t n, const Window windows[3]);

// (index, count) pairs with count > 0, largest first, ties in enum order.
std::vector<std::pair<int, std::int64_t>> largest_first(const std::int64_t* counts, int n);

} // namespace sp::core
