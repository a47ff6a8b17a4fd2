#include "core/escalation.hpp"

namespace sp::core {

std::int64_t escalate_duration(std::int64_t base_us, std::int64_t previous_count, std::int64_t cap_us) noexcept {
    if (base_us <= 0) return base_us;
    if (base_us >= cap_us || previous_count <= 0) return base_us;
    std::int64_t d = base_us;
    for (std::int64_t i = 0; i < previous_count; ++i) {
        if (d >= cap_us / 2) return cap_us; // the next doubling would pass the cap
        d *= 2;
    }
    return d;
}

} // namespace sp::core
