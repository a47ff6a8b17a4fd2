#include "core/merge_plan.hpp"

#include <gtest/gtest.h>

using namespace sp::core;

TEST(MergePlan, QuotesIdentifiers) {
    EXPECT_EQ(quote_ident("users"), "\"users\"");
    EXPECT_EQ(quote_ident("We\"ird"), "\"We\"\"ird\"");
    EXPECT_EQ(quote_ident(""), "\"\"");
}

TEST(MergePlan, JsonStrings) {
    EXPECT_EQ(json_string("a.b"), "\"a.b\"");
    EXPECT_EQ(json_string("q\"\\\n\x01"), "\"q\\\"\\\\\\n\\u0001\"");
    EXPECT_EQ(json_string("Zoë"), "\"Zoë\"");
}

TEST(MergePlan, OrderedAndDeduplicated) {
    std::vector<Reference> refs = {
        {"zeta", "orders", "user_id", "uuid", {}},
        {"alpha", "notes", "author", "text", {}},
        {"zeta", "orders", "user_id", "uuid", {}},
    };
    auto steps = plan_merge(refs);
    ASSERT_EQ(steps.size(), 2u);
    EXPECT_EQ(steps[0].key, "alpha.notes.author");
    EXPECT_EQ(steps[1].key, "zeta.orders.user_id");
    EXPECT_EQ(steps[0].move_sql, "UPDATE \"alpha\".\"notes\" SET \"author\" = CAST($2 AS text) WHERE \"author\" = CAST($1 AS text)");
    EXPECT_TRUE(steps[1].dedupe_sql.empty()) << "no unique key: nothing can collide";
}

TEST(MergePlan, UniqueKeysProduceDedupe) {
    std::vector<Reference> refs = {{"app", "prefs", "user_id", "uuid", {UniqueKey{{}, false}, UniqueKey{{"kind", "name"}, true}}}};
    auto steps = plan_merge(refs);
    ASSERT_EQ(steps.size(), 1u);
    EXPECT_EQ(steps[0].dedupe_sql,
              "DELETE FROM \"app\".\"prefs\" AS sp_src WHERE sp_src.\"user_id\" = CAST($1 AS uuid) AND ("
              "EXISTS (SELECT 1 FROM \"app\".\"prefs\" AS sp_dst WHERE sp_dst.\"user_id\" = CAST($2 AS uuid)) OR "
              "EXISTS (SELECT 1 FROM \"app\".\"prefs\" AS sp_dst WHERE sp_dst.\"user_id\" = CAST($2 AS uuid)"
              " AND sp_dst.\"kind\" IS NOT DISTINCT FROM sp_src.\"kind\" AND sp_dst.\"name\" IS NOT DISTINCT FROM sp_src.\"name\"))");
}

TEST(MergePlan, HostileNamesStayIdentifiers) {
    std::vector<Reference> refs = {{"s\"; DROP TABLE x; --", "t", "c", "uuid", {UniqueKey{{"o\"ther"}, false}}}};
    auto steps = plan_merge(refs);
    ASSERT_EQ(steps.size(), 1u);
    EXPECT_NE(steps[0].move_sql.find("\"s\"\"; DROP TABLE x; --\""), std::string::npos);
    EXPECT_NE(steps[0].dedupe_sql.find("sp_dst.\"o\"\"ther\" = sp_src.\"o\"\"ther\""), std::string::npos);
}
