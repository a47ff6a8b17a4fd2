#include "core/blocklist.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_set>

namespace sp::core {

namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

struct AddressHash {
    std::size_t operator()(const Address& a) const noexcept {
        std::size_t h = std::size_t(a.family) * 131 + a.prefix;
        for (std::uint8_t b : a.bytes) h = h * 1099511628211ull + b;
        return h;
    }
};
struct AddressEq {
    bool operator()(const Address& a, const Address& b) const noexcept { return a == b; }
};

} // namespace

Blocklist parse_blocklist(const char* text, std::size_t len) {
    Blocklist out;
    std::unordered_set<Address, AddressHash, AddressEq> seen;
    std::size_t pos = 0;
    // A UTF-8 byte-order mark (files saved by some Windows editors) is not part of the first entry.
    if (len >= 3 && static_cast<unsigned char>(text[0]) == 0xEF && static_cast<unsigned char>(text[1]) == 0xBB &&
        static_cast<unsigned char>(text[2]) == 0xBF)
        pos = 3;
    while (pos < len) {
        const char* nl = static_cast<const char*>(std::memchr(text + pos, '\n', len - pos));
        std::size_t end = nl ? std::size_t(nl - text) : len;
        ++out.lines;
        // The entry: up to a comment, without surrounding whitespace.
        std::size_t stop = pos;
        while (stop < end && text[stop] != '#' && text[stop] != ';') ++stop;
        std::size_t b = pos, e = stop;
        while (b < e && is_space(text[b])) ++b;
        while (e > b && is_space(text[e - 1])) --e;
        if (b < e) {
            std::size_t token_end = b;
            while (token_end < e && !is_space(text[token_end])) ++token_end;
            Address a;
            const char* why = nullptr;
            if (token_end < e) {
                why = "more than one entry on the line (comments start with # or ;)";
            } else {
                ParseError err = parse_address(text + b, e - b, a);
                if (err != ParseError::None) why = describe(err);
            }
            if (why) {
                out.problems.push_back(BlocklistProblem{out.lines, std::string(text + b, std::min<std::size_t>(e - b, 200)), why});
            } else if (seen.insert(a).second) {
                out.networks.push_back(a);
                out.network_lines.push_back(out.lines);
            } else {
                ++out.duplicates;
            }
        }
        if (!nl) break;
        pos = end + 1;
    }
    return out;
}

} // namespace sp::core
