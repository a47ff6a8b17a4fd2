#include "core/identifier.hpp"

namespace sp::core {

namespace {
bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool is_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool looks_like_uuid(const char* s, std::size_t len) noexcept {
    std::size_t i = 0;
    while (i < len && is_space(s[i])) ++i;
    if (i < len && s[i] == '{') ++i;
    const int groups[5] = {8, 4, 4, 4, 12};
    for (int g = 0; g < 5; ++g) {
        if (g > 0 && i < len && s[i] == '-') ++i;
        for (int k = 0; k < groups[g]; ++k, ++i)
            if (i >= len || !is_hex(s[i])) return false;
    }
    if (i < len && s[i] == '}') ++i;
    while (i < len && is_space(s[i])) ++i;
    return i == len;
}
} // namespace

IdentifierKind classify_identifier(const char* text, std::size_t len) noexcept {
    if (looks_like_uuid(text, len)) return IdentifierKind::Id;
    for (std::size_t i = 0; i < len; ++i)
        if (text[i] == '@') return IdentifierKind::Email;
    return IdentifierKind::Name;
}

} // namespace sp::core
