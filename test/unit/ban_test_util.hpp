// Helpers shared by the ban-set tests: parse an address, and the brute-force containment rule the
// sets are checked against.
#pragma once
#include "core/address.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sp::core::test {

inline Address A(const std::string& s) {
    Address a;
    EXPECT_EQ(parse_address(s.data(), s.size(), a), ParseError::None) << s;
    return a;
}

// Whether network `net` equals or contains `addr` (same family, mask no longer, same masked bits).
inline bool covers(const Address& net, const Address& addr) {
    if (net.family != addr.family || net.prefix > addr.prefix) return false;
    return mask_to(addr, net.prefix) == net;
}

} // namespace sp::core::test
