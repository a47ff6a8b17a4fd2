#include "core/stats.hpp"

#include <algorithm>

namespace sp::core {

Figures fold_counts(const CountRow* rows, std::size_t n, const Window windows[3]) {
    Figures f;
    std::int64_t* created[3] = {&f.created_24h, &f.created_7d, &f.created_30d};
    for (std::size_t i = 0; i < n; ++i) {
        const CountRow& r = rows[i];
        if (r.status == kDeleted || r.status < 0 || r.status >= kStatusCount) continue;
        f.total += r.n;
        f.by_status[r.status] += r.n;
        for (int b = 0; b < kRoleCount; ++b)
            if (r.roles & (1u << b)) f.by_role[b] += r.n;
        if (r.is_bot) f.bots += r.n;
        for (int w = 0; w < 3; ++w)
            if (r.day > windows[w].boundary_day) *created[w] += r.n;
    }
    for (int w = 0; w < 3; ++w) *created[w] += windows[w].on_boundary_day;
    f.active = f.by_status[kActive];
    f.suspended = f.by_status[kSuspended];
    f.admins = f.by_role[0];
    f.anonymous = f.by_role[2];
    return f;
}

std::vector<std::pair<int, std::int64_t>> largest_first(const std::int64_t* counts, int n) {
    std::vector<std::pair<int, std::int64_t>> out;
    for (int i = 0; i < n; ++i)
        if (counts[i] > 0) out.emplace_back(i, counts[i]);
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return out;
}

} // namespace sp::core
