#include "core/email.hpp"

#include <gtest/gtest.h>

#include <string>

using sp::core::email_problem;

static const char* problem(const std::string& s) { return email_problem(s.data(), s.size()); }

TEST(Email, Accepted) {
    EXPECT_EQ(problem("ada@example.com"), nullptr);
    EXPECT_EQ(problem("user@localhost"), nullptr);
    EXPECT_EQ(problem("a@b"), nullptr);
    EXPECT_EQ(problem("\xc3\xa9l\xc3\xa8ve@\xc3\xa9" "cole.fr"), nullptr); // élève@école.fr
    EXPECT_EQ(problem(std::string(64, 'a') + "@" + std::string(255, 'b')), nullptr); // 320 characters
    EXPECT_EQ(problem(std::string(200, 'a') + "@" + std::string(119, '\x41') ), nullptr);
}

TEST(Email, Rejected) {
    EXPECT_STREQ(problem(""), "it is empty");
    EXPECT_STREQ(problem("carol@@"), "it must contain exactly one @");
    EXPECT_STREQ(problem("x@y@z"), "it must contain exactly one @");
    EXPECT_STREQ(problem("plain"), "it must contain exactly one @");
    EXPECT_STREQ(problem("x@"), "it has nothing after the @");
    EXPECT_STREQ(problem("@x"), "it has nothing before the @");
    EXPECT_STREQ(problem("a b@example.com"), "it contains white space or a control character");
    EXPECT_STREQ(problem("a@example.com\n"), "it contains white space or a control character");
    EXPECT_STREQ(problem("a\tb@c"), "it contains white space or a control character");
    EXPECT_STREQ(problem("a\x7f@c"), "it contains white space or a control character");
    EXPECT_STREQ(problem("a\xc2\xa0" "b@c"), "it contains white space or a control character"); // no-break space
    EXPECT_STREQ(problem("a\xc2\x85" "b@c"), "it contains white space or a control character"); // NEL
    EXPECT_STREQ(problem(std::string(64, 'a') + "@" + std::string(256, 'b')), "it is longer than 320 characters");
}

TEST(Email, CountsCharactersNotBytes) {
    std::string e = "a@";
    for (int i = 0; i < 318; ++i) e += "\xc3\xa9"; // 320 characters, 638 bytes
    EXPECT_EQ(problem(e), nullptr);
    e += "\xc3\xa9";
    EXPECT_STREQ(problem(e), "it is longer than 320 characters");
}
