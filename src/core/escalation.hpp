// Ban duration maths: repeat offenders get duration x 2^(previous bans), capped.
#pragma once
#include "core/core_guard.hpp"

#include <cstdint>

namespace sp::core {

constexpr std::int64_t kUsecPerDay = 86400LL * 1000000LL;
constexpr std::int64_t kEscalationCapUs = 365 * kUsecPerDay;

// `base_us` > 0. Returns base * 2^previous_count without overflow, capped at `cap_us`; the cap
// limits growth and never shortens the requested base duration itself.
std::int64_t escalate_duration(std::int64_t base_us, std::int64_t previous_count, std::int64_t cap_us = kEscalationCapUs) noexcept;

} // namespace sp::core
