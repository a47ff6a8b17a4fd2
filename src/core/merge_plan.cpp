#include "core/merge_plan.hpp"

#include <algorithm>
#include <cstdio>

namespace sp::core {

std::string quote_ident(std::string_view ident) {
    std::string out;
    out.reserve(ident.size() + 2);
    out += '"';
    for (char c : ident) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

std::string json_string(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += char(c);
            }
        }
    }
    out += '"';
    return out;
}

std::vector<MergeStep> plan_merge(std::vector<Reference> refs) {
    auto key_of = [](const Reference& r) { return r.schema + "." + r.table + "." + r.column; };
    std::sort(refs.begin(), refs.end(), [&](const Reference& a, const Reference& b) { return key_of(a) < key_of(b); });
    refs.erase(std::unique(refs.begin(), refs.end(), [&](const Reference& a, const Reference& b) { return key_of(a) == key_of(b); }),
               refs.end());

    std::vector<MergeStep> steps;
    steps.reserve(refs.size());
    for (const Reference& r : refs) {
        const std::string table = quote_ident(r.schema) + "." + quote_ident(r.table);
        const std::string col = quote_ident(r.column);
        const std::string source = "CAST($1 AS " + r.column_type + ")";
        const std::string target = "CAST($2 AS " + r.column_type + ")";

        MergeStep step;
        step.key = key_of(r);
        step.move_sql = "UPDATE " + table + " SET " + col + " = " + target + " WHERE " + col + " = " + source;
        if (!r.unique_keys.empty()) {
            std::string any_collision;
            for (const UniqueKey& k : r.unique_keys) {
                std::string cond = "EXISTS (SELECT 1 FROM " + table + " AS sp_dst WHERE sp_dst." + col + " = " + target;
                for (const std::string& other : k.other_columns) {
                    const std::string c = quote_ident(other);
                    // Without NULLS NOT DISTINCT a NULL never collides, and `=` says exactly that.
                    cond += k.nulls_not_distinct ? " AND sp_dst." + c + " IS NOT DISTINCT FROM sp_src." + c
                                                 : " AND sp_dst." + c + " = sp_src." + c;
                }
                cond += ")";
                if (!any_collision.empty()) any_collision += " OR ";
                any_collision += cond;
            }
            step.dedupe_sql = "DELETE FROM " + table + " AS sp_src WHERE sp_src." + col + " = " + source + " AND (" + any_collision + ")";
        }
        steps.push_back(std::move(step));
    }
    return steps;
}

} // namespace sp::core
