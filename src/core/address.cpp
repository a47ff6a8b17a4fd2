#include "core/address.hpp"

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>

namespace sp::core {

namespace {

constexpr std::size_t kMaxText = 64; // "ffff:...:255.255.255.255/128" is 49

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Strict dotted quad: four decimal octets 0-255, no leading zeros, nothing else.
bool parse_v4(const char* s, std::size_t n, std::uint8_t out[4]) noexcept {
    std::size_t i = 0;
    for (int octet = 0; octet < 4; ++octet) {
        if (octet > 0) {
            if (i >= n || s[i] != '.') return false;
            ++i;
        }
        std::size_t start = i;
        unsigned value = 0;
        while (i < n && is_digit(s[i]) && i - start < 3) value = value * 10 + unsigned(s[i++] - '0');
        std::size_t digits = i - start;
        if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0')) return false;
        if (i < n && is_digit(s[i])) return false;
        out[octet] = std::uint8_t(value);
    }
    return i == n;
}

// Four dot-separated runs of one to three digits, one of them with a leading zero: refused by
// parse_v4, said apart so the error can say why.
bool is_v4_with_leading_zero(const char* s, std::size_t n) noexcept {
    int dots = 0;
    bool zero = false;
    std::size_t run = 0;
    for (std::size_t i = 0; i <= n; ++i) {
        if (i == n || s[i] == '.') {
            if (run == 0 || run > 3) return false;
            if (run > 1 && s[i - run] == '0') zero = true;
            if (i < n) ++dots;
            run = 0;
        } else if (is_digit(s[i])) {
            ++run;
        } else {
            return false;
        }
    }
    return dots == 3 && zero;
}

bool parse_prefix(const char* s, std::size_t n, int max, int& out) noexcept {
    if (n == 0 || n > 3) return false;
    int value = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!is_digit(s[i])) return false;
        value = value * 10 + (s[i] - '0');
    }
    if (n > 1 && s[0] == '0') return false;
    if (value > max) return false;
    out = value;
    return true;
}

bool host_bits_clear(const Address& a) noexcept {
    return mask_to(a, a.prefix) == a;
}

constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

} // namespace

bool operator==(const Address& a, const Address& b) noexcept {
    return a.family == b.family && a.prefix == b.prefix && std::memcmp(a.bytes, b.bytes, 16) == 0;
}

const char* describe(ParseError e) noexcept {
    switch (e) {
    case ParseError::None: return "valid";
    case ParseError::Empty: return "empty address";
    case ParseError::TooLong: return "text too long for an IP address";
    case ParseError::Syntax: return "not an IPv4 or IPv6 address";
    case ParseError::LeadingZero: return "an IPv4 octet with a leading zero is ambiguous (octal to some parsers); write 10.1.1.1, not 010.1.1.1";
    case ParseError::BadPrefix: return "invalid network mask length";
    case ParseError::HostBits: return "network has bits set to the right of its mask";
    }
    return "invalid address";
}

Address fold_mapped_v4(const Address& a) noexcept {
    if (a.family != Family::V6 || a.prefix < 96 || std::memcmp(a.bytes, kMapped, 12) != 0) return a;
    Address v4;
    v4.family = Family::V4;
    v4.prefix = std::uint8_t(a.prefix - 96);
    std::memcpy(v4.bytes, a.bytes + 12, 4);
    return v4;
}

Address mask_to(const Address& a, int prefix) noexcept {
    Address r = a;
    r.prefix = std::uint8_t(prefix);
    int bytes = a.family == Family::V4 ? 4 : 16;
    for (int i = 0; i < bytes; ++i) {
        int keep = prefix - i * 8;
        if (keep >= 8) continue;
        r.bytes[i] = keep <= 0 ? 0 : std::uint8_t(r.bytes[i] & std::uint8_t(0xff << (8 - keep)));
    }
    return r;
}

ParseError parse_address(const char* text, std::size_t len, Address& out) noexcept {
    if (text == nullptr) return ParseError::Empty;
    std::size_t b = 0, e = len;
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    if (b == e) return ParseError::Empty;
    if (e - b >= kMaxText) return ParseError::TooLong;

    char buf[kMaxText];
    std::size_t n = e - b;
    std::memcpy(buf, text + b, n);
    buf[n] = '\0';

    const char* slash = static_cast<const char*>(std::memchr(buf, '/', n));
    std::size_t addr_len = slash ? std::size_t(slash - buf) : n;

    Address a;
    if (std::memchr(buf, ':', addr_len) != nullptr) {
        char addr[kMaxText];
        std::memcpy(addr, buf, addr_len);
        addr[addr_len] = '\0';
        if (std::memchr(addr, '%', addr_len) != nullptr) return ParseError::Syntax;
        in6_addr v6;
        if (inet_pton(AF_INET6, addr, &v6) != 1) return ParseError::Syntax;
        a.family = Family::V6;
        std::memcpy(a.bytes, &v6, 16);
        a.prefix = 128;
    } else {
        if (!parse_v4(buf, addr_len, a.bytes))
            return is_v4_with_leading_zero(buf, addr_len) ? ParseError::LeadingZero : ParseError::Syntax;
        a.family = Family::V4;
        a.prefix = 32;
    }
    if (slash) {
        int p = 0;
        if (!parse_prefix(slash + 1, n - addr_len - 1, a.max_prefix(), p)) return ParseError::BadPrefix;
        a.prefix = std::uint8_t(p);
    }
    a = fold_mapped_v4(a);
    if (!host_bits_clear(a)) return ParseError::HostBits;
    out = a;
    return ParseError::None;
}

std::size_t format_address(const Address& a, char* buf, std::size_t cap) noexcept {
    char tmp[kMaxText];
    int len = 0;
    if (a.family == Family::V4) {
        len = std::snprintf(tmp, sizeof tmp, "%u.%u.%u.%u", a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]);
    } else {
        unsigned groups[8];
        for (int i = 0; i < 8; ++i) groups[i] = unsigned(a.bytes[2 * i]) << 8 | a.bytes[2 * i + 1];
        // RFC 5952: compress the longest run (>= 2) of zero groups, the first on a tie.
        int best = -1, best_len = 1;
        for (int i = 0; i < 8;) {
            if (groups[i] != 0) { ++i; continue; }
            int j = i;
            while (j < 8 && groups[j] == 0) ++j;
            if (j - i > best_len) { best = i; best_len = j - i; }
            i = j;
        }
        for (int i = 0; i < 8; ++i) {
            if (i == best) {
                len += std::snprintf(tmp + len, sizeof tmp - std::size_t(len), "::");
                i += best_len - 1;
                continue;
            }
            bool after_gap = best >= 0 && i == best + best_len;
            len += std::snprintf(tmp + len, sizeof tmp - std::size_t(len), "%s%x", (i == 0 || after_gap) ? "" : ":", groups[i]);
        }
    }
    if (!a.is_host()) len += std::snprintf(tmp + len, sizeof tmp - std::size_t(len), "/%u", a.prefix);
    std::size_t n = std::size_t(len);
    if (cap == 0) return 0;
    if (n >= cap) n = cap - 1;
    std::memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

} // namespace sp::core
