#include "core/identifier.hpp"

#include <gtest/gtest.h>

#include <string>

using sp::core::classify_identifier;
using sp::core::IdentifierKind;

static IdentifierKind kind(const std::string& s) { return classify_identifier(s.data(), s.size()); }

TEST(Identifier, UuidSpellingsOfThePattern) {
    EXPECT_EQ(kind("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), IdentifierKind::Id);
    EXPECT_EQ(kind("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), IdentifierKind::Id);
    EXPECT_EQ(kind("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"), IdentifierKind::Id);
    EXPECT_EQ(kind("a0eebc999c0b4ef8bb6d6bb9bd380a11"), IdentifierKind::Id);
    EXPECT_EQ(kind("a0eebc99-9c0b4ef8-bb6d6bb9bd380a11"), IdentifierKind::Id);
    EXPECT_EQ(kind(" \t a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 \n"), IdentifierKind::Id);
    EXPECT_EQ(kind("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), IdentifierKind::Id); // unbalanced: the pattern allows it
}

TEST(Identifier, NotAUuid) {
    EXPECT_EQ(kind("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), IdentifierKind::Name);   // 11 hex in the last group
    EXPECT_EQ(kind("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111"), IdentifierKind::Name); // 13
    EXPECT_EQ(kind("a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11"), IdentifierKind::Name);
    EXPECT_EQ(kind("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), IdentifierKind::Name);
    EXPECT_EQ(kind("a0ee-bc99-9c0b-4ef8-bb6d-6bb9bd380a11"), IdentifierKind::Name);
    EXPECT_EQ(kind(""), IdentifierKind::Name);
    EXPECT_EQ(kind("   "), IdentifierKind::Name);
    EXPECT_EQ(kind("{}"), IdentifierKind::Name);
}

TEST(Identifier, EmailAndName) {
    EXPECT_EQ(kind("ada@example.com"), IdentifierKind::Email);
    EXPECT_EQ(kind("@"), IdentifierKind::Email);
    EXPECT_EQ(kind("ada"), IdentifierKind::Name);
    EXPECT_EQ(kind(std::string("a\0@b", 4)), IdentifierKind::Email);
}
