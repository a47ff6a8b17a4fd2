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

bool parse_merge_policy(std::string_view text, MergePolicy& out) {
    if (text == "move") out = MergePolicy::Move;
    else if (text == "delete") out = MergePolicy::Delete;
    else if (text == "keep") out = MergePolicy::Keep;
    else return false;
    return true;
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
        step.policy = r.policy;
        if (r.policy == MergePolicy::Keep) {
            step.count_sql = "SELECT count(*) FROM " + table + " WHERE " + col + " = " + source;
            steps.push_back(std::move(step));
            continue;
        }
        if (r.policy == MergePolicy::Delete) {
            step.move_sql = "DELETE FROM " + table + " WHERE " + col + " = " + source;
            steps.push_back(std::move(step));
            continue;
        }
        step.move_sql = "UPDATE " + table + " SET " + col + " = " + target + " WHERE " + col + " = " + source;
        if (!r.unique_keys.empty()) {
            // Source rows that would land on a key a target row holds, per index: each side's keys
            // are computed in a subquery over the table alone, where the deparsed SQL resolves.
            std::string colliding;
            for (const UniqueKey& k : r.unique_keys) {
                const std::string filter = k.predicate.empty() ? "" : " AND (" + k.predicate + ")";
                std::string src_keys, dst_keys, match;
                for (std::size_t i = 0; i < k.other_keys.size(); ++i) {
                    const std::string name = "sp_k" + std::to_string(i + 1);
                    src_keys += ", (" + k.other_keys[i] + ") AS " + name;
                    dst_keys += std::string(i ? ", " : "") + "(" + k.other_keys[i] + ") AS " + name;
                    // Without NULLS NOT DISTINCT a NULL never collides, and `=` says exactly that.
                    match += std::string(i ? " AND " : " WHERE ") + "sp_dst." + name +
                             (k.nulls_not_distinct ? " IS NOT DISTINCT FROM sp_src." : " = sp_src.") + name;
                }
                if (dst_keys.empty()) dst_keys = "1";
                if (!colliding.empty()) colliding += " UNION ALL ";
                colliding += "SELECT sp_src.sp_ctid FROM (SELECT ctid AS sp_ctid" + src_keys + " FROM " + table + " WHERE " + col +
                             " = " + source + filter + ") AS sp_src WHERE EXISTS (SELECT 1 FROM (SELECT " + dst_keys + " FROM " +
                             table + " WHERE " + col + " = " + target + filter + ") AS sp_dst" + match + ")";
            }
            // ctid = ANY (ARRAY(...)) is a TID scan; ctid IN (...) would scan the whole table.
            step.dedupe_sql = "DELETE FROM " + table + " WHERE ctid = ANY (ARRAY(" + colliding + "))";
        }
        steps.push_back(std::move(step));
    }
    // Keep checks first (stable: still in key order among themselves and among the rest).
    std::stable_partition(steps.begin(), steps.end(), [](const MergeStep& s) { return s.policy == MergePolicy::Keep; });
    return steps;
}

} // namespace sp::core
