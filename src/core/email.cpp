#include "core/email.hpp"

namespace sp::core {

const char* email_problem(const char* s, std::size_t len) noexcept {
    if (len == 0) return "it is empty";
    std::size_t chars = 0, ats = 0, at = 0;
    for (std::size_t i = 0; i < len; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if ((c & 0xC0) != 0x80) ++chars; // count code points, not bytes
        if (c <= 0x20 || c == 0x7F) return "it contains white space or a control character";
        // U+0080..U+009F (C1 controls) and U+00A0 (no-break space) are C2 80..C2 A0 in UTF-8.
        if (c == 0xC2 && i + 1 < len && static_cast<unsigned char>(s[i + 1]) <= 0xA0)
            return "it contains white space or a control character";
        if (c == '@') {
            ++ats;
            at = i;
        }
    }
    if (chars > kMaxEmailChars) return "it is longer than 320 characters";
    if (ats != 1) return "it must contain exactly one @";
    if (at == 0) return "it has nothing before the @";
    if (at + 1 == len) return "it has nothing after the @";
    return nullptr;
}

} // namespace sp::core
