// The rule a stored (trimmed, lower-cased) email address must follow.
#pragma once
#include "core/core_guard.hpp"

#include <cstddef>

namespace sp::core {

constexpr std::size_t kMaxEmailChars = 320;

// nullptr when `email` (UTF-8) is acceptable: exactly one '@', something before and after it, no
// white space or control character (ASCII, DEL, and the C1 controls), at most 320 characters.
// Otherwise a short English description of the first rule it breaks. Deliberately permissive
// beyond that (user@localhost, IDN domains and quoted local parts without spaces pass): this is a
// sanity rule for stored data, not RFC 5322 and not a deliverability check.
const char* email_problem(const char* email, std::size_t len) noexcept;

} // namespace sp::core
