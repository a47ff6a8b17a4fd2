#include "core/blocklist.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sp::core;

namespace {
Blocklist parse(const std::string& s) { return parse_blocklist(s.data(), s.size()); }
std::string text(const Address& a) {
    char buf[64];
    return std::string(buf, format_address(a, buf, sizeof buf));
}
} // namespace

TEST(Blocklist, FeedsAsPublished) {
    // FireHOL netset, Spamhaus DROP and a plain export, with CRLF line ends.
    Blocklist b = parse("#\n# firehol_level1 netset\n#\n1.10.16.0/20\n"
                        "1.19.0.0/16 ; SBL434604\r\n"
                        "  2001:db8::/32   # v6 too\n"
                        "\n"
                        "198.51.100.7\n");
    ASSERT_EQ(b.networks.size(), 4u);
    EXPECT_EQ(text(b.networks[0]), "1.10.16.0/20");
    EXPECT_EQ(text(b.networks[1]), "1.19.0.0/16");
    EXPECT_EQ(text(b.networks[2]), "2001:db8::/32");
    EXPECT_EQ(text(b.networks[3]), "198.51.100.7");
    EXPECT_EQ(b.network_lines[0], 4u);
    EXPECT_EQ(b.network_lines[3], 8u);
    EXPECT_TRUE(b.problems.empty());
    EXPECT_EQ(b.lines, 8u);
}

TEST(Blocklist, BadLinesAreReportedGoodOnesKept) {
    Blocklist b = parse("10.0.0.1\nnot-an-ip\n10.0.0.1/8\n010.1.1.1\n10.0.0.2 10.0.0.3\n10.0.0.4");
    ASSERT_EQ(b.networks.size(), 2u);
    EXPECT_EQ(text(b.networks[1]), "10.0.0.4");
    ASSERT_EQ(b.problems.size(), 4u);
    EXPECT_EQ(b.problems[0].line, 2u);
    EXPECT_EQ(b.problems[0].entry, "not-an-ip");
    EXPECT_EQ(b.problems[1].line, 3u);
    EXPECT_NE(b.problems[1].error.find("right of its mask"), std::string::npos);
    EXPECT_EQ(b.problems[2].line, 4u);
    EXPECT_NE(b.problems[3].error.find("more than one entry"), std::string::npos);
}

TEST(Blocklist, DuplicatesAfterNormalisationCountOnce) {
    Blocklist b = parse("::ffff:192.0.2.1\n192.0.2.1\n192.0.2.1/32\n2001:DB8::1\n2001:db8:0::1\n");
    ASSERT_EQ(b.networks.size(), 2u);
    EXPECT_EQ(b.duplicates, 3u);
    EXPECT_EQ(b.network_lines[1], 4u);
}

TEST(Blocklist, EmptyAndCommentOnly) {
    EXPECT_TRUE(parse("").networks.empty());
    Blocklist b = parse("# nothing\n;\n   \n");
    EXPECT_TRUE(b.networks.empty());
    EXPECT_TRUE(b.problems.empty());
}

TEST(Blocklist, LongEntryIsClipped) {
    std::string junk(5000, 'x');
    Blocklist b = parse(junk);
    ASSERT_EQ(b.problems.size(), 1u);
    EXPECT_EQ(b.problems[0].entry.size(), 200u);
}

TEST(Blocklist, ByteOrderMarkIsSkipped) {
    Blocklist b = parse("\xEF\xBB\xBF" "1.2.3.4\n5.6.7.8\n");
    ASSERT_EQ(b.networks.size(), 2u);
    EXPECT_TRUE(b.problems.empty());
}
