// What find_user's identifier is: a uuid (in any spelling the contract's pattern allows), an
// email (contains @) or a name.
#pragma once
#include "core/core_guard.hpp"

#include <cstddef>

namespace sp::core {

enum class IdentifierKind { Id, Email, Name };

// Id when the text matches ^\s*\{?H{8}-?H{4}-?H{4}-?H{4}-?H{12}\}?\s*$ (H a hex digit, \s an ASCII
// space, tab, newline, vertical tab, form feed or carriage return); else Email when it contains
// '@'; else Name. The caller still parses an Id with PostgreSQL's uuid input, which may refuse it
// (surrounding spaces, unbalanced braces), exactly as a cast would.
IdentifierKind classify_identifier(const char* text, std::size_t len) noexcept;

} // namespace sp::core
