#include "core/address.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sp::core;

namespace {

std::string norm(const std::string& in) {
    Address a;
    ParseError e = parse_address(in.data(), in.size(), a);
    if (e != ParseError::None) return std::string("ERR:") + describe(e);
    char buf[64];
    format_address(a, buf, sizeof buf);
    return buf;
}

ParseError err(const std::string& in) {
    Address a;
    return parse_address(in.data(), in.size(), a);
}

} // namespace

TEST(Address, Ipv4Plain) {
    EXPECT_EQ(norm("1.2.3.4"), "1.2.3.4");
    EXPECT_EQ(norm("0.0.0.0"), "0.0.0.0");
    EXPECT_EQ(norm("255.255.255.255"), "255.255.255.255");
    EXPECT_EQ(norm("  10.0.0.1 \t"), "10.0.0.1");
}

TEST(Address, Ipv4FullMaskIsAnAddress) {
    EXPECT_EQ(norm("1.2.3.4/32"), "1.2.3.4");
    EXPECT_EQ(norm("10.0.0.0/8"), "10.0.0.0/8");
    EXPECT_EQ(norm("0.0.0.0/0"), "0.0.0.0/0");
}

TEST(Address, Ipv4Rejections) {
    EXPECT_EQ(err(""), ParseError::Empty);
    EXPECT_EQ(err("   "), ParseError::Empty);
    EXPECT_EQ(err("1.2.3"), ParseError::Syntax);
    EXPECT_EQ(err("1.2.3.4.5"), ParseError::Syntax);
    EXPECT_EQ(err("256.1.1.1"), ParseError::Syntax);
    EXPECT_EQ(err("01.2.3.4"), ParseError::LeadingZero) << "leading zeros are octal in some parsers";
    EXPECT_EQ(err("010.1.1.1/8"), ParseError::LeadingZero);
    EXPECT_EQ(err("1.2.3.000"), ParseError::LeadingZero);
    EXPECT_EQ(err("0.0.0.0"), ParseError::None);
    EXPECT_EQ(err("01.2.3"), ParseError::Syntax) << "three octets: not an address at all";
    EXPECT_EQ(err("0100.1.1.1"), ParseError::Syntax);
    EXPECT_EQ(err("1.2.3.4 5"), ParseError::Syntax);
    EXPECT_EQ(err("1..3.4"), ParseError::Syntax);
    EXPECT_EQ(err("a.b.c.d"), ParseError::Syntax);
    EXPECT_EQ(err("1.2.3.4/33"), ParseError::BadPrefix);
    EXPECT_EQ(err("1.2.3.4/"), ParseError::BadPrefix);
    EXPECT_EQ(err("1.2.3.4/08"), ParseError::BadPrefix);
    EXPECT_EQ(err("1.2.3.4/-1"), ParseError::BadPrefix);
    EXPECT_EQ(err("10.0.0.1/8"), ParseError::HostBits);
    EXPECT_EQ(err("10.128.0.0/8"), ParseError::HostBits);
    EXPECT_EQ(err(std::string(100, '1')), ParseError::TooLong);
    EXPECT_EQ(err(std::string("1.2.3.4\0", 8)), ParseError::Syntax);
}

TEST(Address, Ipv6Canonical) {
    EXPECT_EQ(norm("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
    EXPECT_EQ(norm("2001:0db8:0000:0000:0000:0000:0000:0001/128"), "2001:db8::1");
    EXPECT_EQ(norm("::"), "::");
    EXPECT_EQ(norm("::1"), "::1");
    EXPECT_EQ(norm("2001:db8::/32"), "2001:db8::/32");
    EXPECT_EQ(norm("2001:db8:0:1:0:0:1:1"), "2001:db8:0:1::1:1") << "longest zero run wins";
    EXPECT_EQ(norm("2001:0:0:1:0:0:1:1"), "2001::1:0:0:1:1") << "first of equal runs wins";
    EXPECT_EQ(norm("1:0:2:0:3:0:4:0"), "1:0:2:0:3:0:4:0") << "a single zero group is not compressed";
    EXPECT_EQ(norm("fe80::"), "fe80::");
}

TEST(Address, MappedIpv4BecomesIpv4) {
    EXPECT_EQ(norm("::ffff:1.2.3.4"), "1.2.3.4");
    EXPECT_EQ(norm("::FFFF:0102:0304"), "1.2.3.4");
    EXPECT_EQ(norm("::ffff:10.0.0.0/104"), "10.0.0.0/8");
    EXPECT_EQ(norm("::ffff:1.2.3.4/128"), "1.2.3.4");
    EXPECT_EQ(norm("::ffff:0:0/96"), "0.0.0.0/0");
    EXPECT_EQ(norm("::ffff:0:0/95"), "ERR:network has bits set to the right of its mask");
    EXPECT_EQ(norm("::ffff:0:0/80"), "ERR:network has bits set to the right of its mask");
    EXPECT_EQ(norm("::fffe:0:0/95"), "::fffe:0:0/95") << "shorter than /96: an IPv6 network";
}

TEST(Address, Ipv6Rejections) {
    EXPECT_EQ(err("2001:db8::1::1"), ParseError::Syntax);
    EXPECT_EQ(err("2001:db8:::1"), ParseError::Syntax);
    EXPECT_EQ(err("fe80::1%eth0"), ParseError::Syntax);
    EXPECT_EQ(err("12345::"), ParseError::Syntax);
    EXPECT_EQ(err("2001:db8::/129"), ParseError::BadPrefix);
    EXPECT_EQ(err("2001:db8::1/64"), ParseError::HostBits);
    EXPECT_EQ(err("[2001:db8::1]"), ParseError::Syntax);
}

TEST(Address, FormatParseRoundTrip) {
    for (const char* s : {"1.2.3.4", "10.0.0.0/8", "2001:db8::1", "2001:db8::/32", "::", "::/0", "ff02::1:ff00:0/104"}) {
        std::string once = norm(s);
        EXPECT_EQ(norm(once), once) << s;
    }
}

TEST(Address, MaskTo) {
    Address a;
    ASSERT_EQ(parse_address("10.11.12.13", 11, a), ParseError::None);
    char buf[64];
    format_address(mask_to(a, 8), buf, sizeof buf);
    EXPECT_STREQ(buf, "10.0.0.0/8");
    format_address(mask_to(a, 20), buf, sizeof buf);
    EXPECT_STREQ(buf, "10.11.0.0/20");
    format_address(mask_to(a, 0), buf, sizeof buf);
    EXPECT_STREQ(buf, "0.0.0.0/0");
}

TEST(Address, FormatTruncatesSafely) {
    Address a;
    ASSERT_EQ(parse_address("2001:db8::1", 11, a), ParseError::None);
    char buf[5];
    EXPECT_EQ(format_address(a, buf, sizeof buf), 4u);
    EXPECT_STREQ(buf, "2001");
}

TEST(Address, FoldMappedV4) {
    Address a;
    ASSERT_EQ(parse_address("::fffe:0:0/95", 13, a), ParseError::None);
    EXPECT_EQ(fold_mapped_v4(a), a) << "not mapped: unchanged";
    Address m;
    m.family = Family::V6;
    m.prefix = 104;
    m.bytes[10] = m.bytes[11] = 0xff;
    m.bytes[12] = 10;
    Address v4 = fold_mapped_v4(m);
    EXPECT_EQ(v4.family, Family::V4);
    EXPECT_EQ(v4.prefix, 8);
    EXPECT_EQ(v4.bytes[0], 10);
    m.prefix = 95;
    EXPECT_EQ(fold_mapped_v4(m).family, Family::V6) << "shorter than /96 stays IPv6";
}
