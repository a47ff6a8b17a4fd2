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
    std::vector<Reference> refs = {{"app", "prefs", "user_id", "uuid", {UniqueKey{{}, false, ""}, UniqueKey{{"kind", "\"Name\""}, true, ""}}}};
    auto steps = plan_merge(refs);
    ASSERT_EQ(steps.size(), 1u);
    EXPECT_EQ(steps[0].dedupe_sql,
              "DELETE FROM \"app\".\"prefs\" WHERE ctid = ANY (ARRAY("
              "SELECT sp_src.sp_ctid FROM (SELECT ctid AS sp_ctid FROM \"app\".\"prefs\" WHERE \"user_id\" = CAST($1 AS uuid)) AS sp_src"
              " WHERE EXISTS (SELECT 1 FROM (SELECT 1 FROM \"app\".\"prefs\" WHERE \"user_id\" = CAST($2 AS uuid)) AS sp_dst)"
              " UNION ALL "
              "SELECT sp_src.sp_ctid FROM (SELECT ctid AS sp_ctid, (kind) AS sp_k1, (\"Name\") AS sp_k2 FROM \"app\".\"prefs\""
              " WHERE \"user_id\" = CAST($1 AS uuid)) AS sp_src"
              " WHERE EXISTS (SELECT 1 FROM (SELECT (kind) AS sp_k1, (\"Name\") AS sp_k2 FROM \"app\".\"prefs\""
              " WHERE \"user_id\" = CAST($2 AS uuid)) AS sp_dst"
              " WHERE sp_dst.sp_k1 IS NOT DISTINCT FROM sp_src.sp_k1 AND sp_dst.sp_k2 IS NOT DISTINCT FROM sp_src.sp_k2)))");
}

TEST(MergePlan, PartialAndExpressionKeys) {
    // UNIQUE (user_id, lower(email)) WHERE active: both sides filtered by the predicate, keys compared by value.
    std::vector<Reference> refs = {{"app", "subs", "owner", "text", {UniqueKey{{"lower(email)"}, false, "active AND NOT archived"}}}};
    auto steps = plan_merge(refs);
    ASSERT_EQ(steps.size(), 1u);
    const std::string& sql = steps[0].dedupe_sql;
    EXPECT_NE(sql.find("(SELECT ctid AS sp_ctid, (lower(email)) AS sp_k1 FROM \"app\".\"subs\" WHERE \"owner\" = CAST($1 AS text)"
                       " AND (active AND NOT archived)) AS sp_src"), std::string::npos) << sql;
    EXPECT_NE(sql.find("(SELECT (lower(email)) AS sp_k1 FROM \"app\".\"subs\" WHERE \"owner\" = CAST($2 AS text)"
                       " AND (active AND NOT archived)) AS sp_dst WHERE sp_dst.sp_k1 = sp_src.sp_k1"), std::string::npos) << sql;
}

TEST(MergePlan, HostileNamesStayIdentifiers) {
    std::vector<Reference> refs = {{"s\"; DROP TABLE x; --", "t", "c\"", "uuid", {UniqueKey{{"\"o\"\"ther\""}, false, ""}}}};
    auto steps = plan_merge(refs);
    ASSERT_EQ(steps.size(), 1u);
    EXPECT_NE(steps[0].move_sql.find("\"s\"\"; DROP TABLE x; --\""), std::string::npos);
    EXPECT_NE(steps[0].dedupe_sql.find("WHERE \"c\"\"\" = CAST($1 AS uuid)"), std::string::npos) << steps[0].dedupe_sql;
}

TEST(MergePlan, Policies) {
    MergePolicy p = MergePolicy::Move;
    EXPECT_TRUE(parse_merge_policy("delete", p));
    EXPECT_EQ(p, MergePolicy::Delete);
    EXPECT_TRUE(parse_merge_policy("keep", p));
    EXPECT_EQ(p, MergePolicy::Keep);
    EXPECT_TRUE(parse_merge_policy("move", p));
    EXPECT_EQ(p, MergePolicy::Move);
    EXPECT_FALSE(parse_merge_policy("Move", p));
    EXPECT_FALSE(parse_merge_policy("", p));

    std::vector<Reference> refs = {
        {"app", "a_notes", "user_id", "uuid", {}, MergePolicy::Move},
        {"app", "b_keys", "owner", "uuid", {UniqueKey{{}, false, ""}}, MergePolicy::Delete},
        {"app", "c_audit", "actor", "text", {}, MergePolicy::Keep},
    };
    auto steps = plan_merge(refs);
    ASSERT_EQ(steps.size(), 3u);
    EXPECT_EQ(steps[0].key, "app.c_audit.actor") << "keep checks come first, so a refused merge changes nothing";
    EXPECT_EQ(steps[0].count_sql, "SELECT count(*) FROM \"app\".\"c_audit\" WHERE \"actor\" = CAST($1 AS text)");
    EXPECT_TRUE(steps[0].move_sql.empty());
    EXPECT_EQ(steps[1].key, "app.a_notes.user_id");
    EXPECT_EQ(steps[1].policy, MergePolicy::Move);
    EXPECT_EQ(steps[2].key, "app.b_keys.owner");
    EXPECT_EQ(steps[2].move_sql, "DELETE FROM \"app\".\"b_keys\" WHERE \"owner\" = CAST($1 AS uuid)");
    EXPECT_TRUE(steps[2].dedupe_sql.empty()) << "deleted rows cannot collide";
}
