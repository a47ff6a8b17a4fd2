// libFuzzer target for the text rules of users: core::email_problem and
// core::classify_identifier. Invariants: no crash or sanitizer report; email_problem agrees with a
// plain restatement of the rule (exactly one '@' with bytes on both sides, no byte <= 0x20 or
// 0x7F, no C1 control or no-break space, at most 320 code points); an identifier classified as an
// id has 32 hex digits and no '@', one with an '@' outside the id pattern is an email.
#include "core/email.hpp"
#include "core/identifier.hpp"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace sp::core;
    const char* s = reinterpret_cast<const char*>(data);
    std::size_t ats = 0, at = 0, chars = 0, hex = 0;
    bool bad_char = false;
    for (std::size_t i = 0; i < size; ++i) {
        const std::uint8_t c = data[i];
        if ((c & 0xC0) != 0x80) ++chars;
        if (c <= 0x20 || c == 0x7F || (c == 0xC2 && i + 1 < size && data[i + 1] <= 0xA0)) bad_char = true;
        if (c == '@') { ++ats; at = i; }
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) ++hex;
    }
    const bool valid = size > 0 && !bad_char && chars <= kMaxEmailChars && ats == 1 && at > 0 && at + 1 < size;
    if ((email_problem(s, size) == nullptr) != valid) std::abort();

    const IdentifierKind kind = classify_identifier(s, size);
    if (kind == IdentifierKind::Id && (ats != 0 || hex < 32)) std::abort();
    if (kind == IdentifierKind::Name && ats != 0) std::abort();
    if (kind == IdentifierKind::Email && ats == 0) std::abort();
    return 0;
}
