// Maintained user counters (sp_users.user_counts) and the statistics read from them.
#pragma once

namespace sp::pg::stats {

// Registers the (sub)transaction callbacks that drop unflushed counter deltas on abort.
void register_callbacks() noexcept;

} // namespace sp::pg::stats
