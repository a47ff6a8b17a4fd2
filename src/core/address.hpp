// IPv4/IPv6 address and network text: parse, normalise, format.
#pragma once
#include "core/core_guard.hpp"

#include <cstddef>
#include <cstdint>

namespace sp::core {

enum class Family : std::uint8_t { V4 = 4, V6 = 6 };

// A normalised address or network. IPv4 uses bytes[0..3]; the rest stays zero.
// `prefix` is the mask length: 32/128 means a single address.
struct Address {
    Family family = Family::V4;
    std::uint8_t prefix = 32;
    std::uint8_t bytes[16] = {};

    int max_prefix() const noexcept { return family == Family::V4 ? 32 : 128; }
    bool is_host() const noexcept { return prefix == max_prefix(); }
};

bool operator==(const Address& a, const Address& b) noexcept;

enum class ParseError : std::uint8_t {
    None = 0,
    Empty,     // nothing but whitespace
    TooLong,   // longer than any valid address text
    Syntax,    // not an IPv4/IPv6 address
    LeadingZero, // a dotted quad with an octet like 010 (octal to inet_aton, decimal to others)
    BadPrefix, // mask length missing, malformed or too large
    HostBits,  // a network with bits set right of the mask (10.0.0.1/8)
};

const char* describe(ParseError e) noexcept;

// Accepts "a.b.c.d", "a.b.c.d/n", IPv6 in any RFC 4291 text form, optionally "/n", surrounded by
// ASCII whitespace. Normalises: IPv4-mapped IPv6 (::ffff:a.b.c.d, with prefix >= 96) becomes
// IPv4; a full-length mask is a plain address. IPv4 octets with leading zeros are rejected
// (some parsers read them as octal). Zone ids (fe80::1%eth0) are rejected.
ParseError parse_address(const char* text, std::size_t len, Address& out) noexcept;

// Canonical text (RFC 5952 for IPv6), with "/n" only for networks. Returns the length
// written (without NUL); `cap` of 64 always suffices.
std::size_t format_address(const Address& a, char* buf, std::size_t cap) noexcept;

// ::ffff:a.b.c.d/n with n >= 96 is the IPv4 network a.b.c.d/(n-96); anything else is returned as is.
// Used by the parser and for addresses read back from PostgreSQL's inet.
Address fold_mapped_v4(const Address& a) noexcept;

// Clears every bit right of `prefix` (for turning an address into the key of a network level).
Address mask_to(const Address& a, int prefix) noexcept;

} // namespace sp::core
