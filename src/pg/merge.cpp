// merge_users / promote_anonymous: discover every column that holds a user id (foreign keys to
// sp_users.users(id) in any schema, plus registered columns), lock both users in id order, move
// the source's rows table by table in a fixed order, then delete the source. One transaction.
#include "core/merge_plan.hpp"
#include "pg/lookup.hpp"
#include "pg/pg_headers.hpp"
#include "pg/spi.hpp"

#include <algorithm>
#include <map>

extern "C" {
#include "commands/extension.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"
}

using sp::pg::pg_call;
using sp::pg::spi_exec;
using sp::pg::spi_text;
using sp::pg::SqlError;

namespace {

std::string uuid_text(const pg_uuid_t* u) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < UUID_LEN; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[u->data[i] >> 4];
        out += hex[u->data[i] & 0xf];
    }
    return out;
}

// %s: the merge policy of the column (sp_users.merge_policies; 'move' in a schema without it).
const char* kReferencesSql =
    "SELECT n.nspname::text, c.relname::text, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "       c.oid::text, a.attnum::text, %s "
    "  FROM (SELECT con.conrelid AS rel, con.conkey[1] AS attnum FROM pg_catalog.pg_constraint con "
    "         WHERE con.contype = 'f' AND con.confrelid = 'sp_users.users'::pg_catalog.regclass "
    "           AND pg_catalog.cardinality(con.conkey) = 1 AND con.conparentid = 0 "
    "        UNION "
    "        SELECT r.tbl::pg_catalog.oid, ra.attnum FROM sp_users.user_references r "
    "          JOIN pg_catalog.pg_attribute ra ON ra.attrelid = r.tbl AND ra.attname = r.col AND NOT ra.attisdropped "
    // sp_users' own sessions, also without their foreign key (dropped by distribute() on Citus)
    "        UNION "
    "        SELECT sa.attrelid, sa.attnum FROM pg_catalog.pg_attribute sa "
    "         WHERE sa.attrelid = 'sp_users.user_sessions'::pg_catalog.regclass AND sa.attname = 'user_id' "
    // and the account failures (their key dropped too when distribute() splits users; 0.3.0 on)
    "        UNION "
    "        SELECT fa.attrelid, fa.attnum FROM pg_catalog.pg_attribute fa "
    "         WHERE fa.attrelid = pg_catalog.to_regclass('sp_users.account_failures') AND fa.attname = 'user_id') ref "
    "  JOIN pg_catalog.pg_class c ON c.oid = ref.rel "
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = ref.rel AND a.attnum = ref.attnum";

// One row per (unique index with the column as a plain key column, other key column of that
// index), deparsed as SQL (a name or an expression); NULL when the index has no other key. INCLUDE
// columns are not keys. The predicate of a partial index comes along.
const char* kUniqueKeysSql =
    "SELECT i.indexrelid::text, i.indnullsnotdistinct::text, pg_catalog.pg_get_expr(i.indpred, i.indrelid), ok.def "
    "  FROM pg_catalog.pg_index i "
    "  LEFT JOIN LATERAL (SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k.ord::pg_catalog.int4, false) AS def, k.ord "
    "                       FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "                      WHERE k.ord OPERATOR(pg_catalog.<=) i.indnkeyatts AND k.attnum OPERATOR(pg_catalog.<>) $2::pg_catalog.int2) ok ON true "
    " WHERE i.indrelid = $1::pg_catalog.oid AND i.indisunique "
    "   AND EXISTS (SELECT 1 FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "                WHERE k.ord OPERATOR(pg_catalog.<=) i.indnkeyatts AND k.attnum OPERATOR(pg_catalog.=) $2::pg_catalog.int2) "
    " ORDER BY i.indexrelid, ok.ord";

const char* kPolicyColumn =
    "coalesce((SELECT p.policy FROM sp_users.merge_policies p "
    "           WHERE p.tbl OPERATOR(pg_catalog.=) c.oid AND p.col OPERATOR(pg_catalog.=) a.attname), 'move')";

// A registered column or a merge policy whose column (or table) is gone: renamed, dropped, or the
// table dropped and created again (a new oid). A merge then cannot do what was asked of it.
const char* kStaleSql =
    "SELECT r.tbl::pg_catalog.oid::pg_catalog.text, r.col::pg_catalog.text, 'reference' FROM sp_users.user_references r "
    " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = r.tbl AND a.attname = r.col "
    "                      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) "
    "%s LIMIT 1";
const char* kStalePolicySql =
    " UNION ALL SELECT p.tbl::pg_catalog.oid::pg_catalog.text, p.col::pg_catalog.text, 'policy' FROM sp_users.merge_policies p "
    " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = p.tbl AND a.attname = p.col "
    "                      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)";

// Refuses the merge (42703, or 42P01 for a table that is gone) rather than leave a registered
// column's user ids behind or ignore a policy.
void refuse_stale_entries(bool policies) {
    char sql[2048];
    snprintf(sql, sizeof sql, kStaleSql, policies ? kStalePolicySql : "");
    sp::pg::SpiRows rows = spi_exec(sql, {}, true);
    if (rows.count == 0) return;
    const std::string oid = spi_text(rows, 0, 1).value_or("0"), col = spi_text(rows, 0, 2).value_or("");
    const bool reference = spi_text(rows, 0, 3).value_or("") == "reference";
    const char* qualified = nullptr;
    const char* col_literal = nullptr;
    const char* arg_literal = nullptr;
    pg_call([&] {
        Oid relid = Oid(strtoul(oid.c_str(), nullptr, 10));
        if (char* name = get_rel_name(relid)) qualified = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), name);
        col_literal = quote_literal_cstr(col.c_str());
        arg_literal = quote_literal_cstr(qualified ? qualified : oid.c_str());
    });
    const std::string table = qualified ? qualified : "";
    const std::string where = table.empty() ? " belongs to a dropped table (oid " + oid + ")" : " of table " + table + " no longer exists";
    const std::string args = std::string(arg_literal) + ", " + col_literal; // as SQL literals, ready to paste
    if (reference)
        throw SqlError(table.empty() ? ERRCODE_UNDEFINED_TABLE : ERRCODE_UNDEFINED_COLUMN,
                       "merge refused: the registered user reference " + col + where,
                       "A merge would leave the user ids of that column behind. If the column or table was renamed or created "
                       "again, register it with sp_users.register_user_reference; remove the old entry with "
                       "SELECT sp_users.unregister_user_reference(" + args + ").");
    throw SqlError(table.empty() ? ERRCODE_UNDEFINED_TABLE : ERRCODE_UNDEFINED_COLUMN,
                   "merge refused: the column " + col + " a merge policy is set for" + where,
                   "A merge would ignore that policy. If the column or table was renamed or created again, set the policy "
                   "under its new name with sp_users.set_merge_policy; remove the old entry with "
                   "SELECT sp_users.set_merge_policy(" + args + ", 'move').");
}

std::vector<sp::core::Reference> load_references() {
    std::vector<sp::core::Reference> refs;
    bool policies = false;
    pg_call([&] {
        Oid nsp = get_namespace_oid("sp_users", false);
        policies = OidIsValid(get_relname_relid("merge_policies", nsp));
    });
    refuse_stale_entries(policies);
    char sql[4096];
    snprintf(sql, sizeof sql, kReferencesSql, policies ? kPolicyColumn : "'move'");
    sp::pg::SpiRows rows = spi_exec(sql, {}, true);
    std::vector<std::pair<std::string, std::string>> where; // (relid, attnum) per ref
    for (uint64 i = 0; i < rows.count; ++i) {
        sp::core::Reference r;
        r.schema = spi_text(rows, i, 1).value_or("");
        r.table = spi_text(rows, i, 2).value_or("");
        r.column = spi_text(rows, i, 3).value_or("");
        r.column_type = spi_text(rows, i, 4).value_or("uuid");
        if (!sp::core::parse_merge_policy(spi_text(rows, i, 7).value_or("move"), r.policy))
            throw SqlError(ERRCODE_DATA_CORRUPTED, "sp_users.merge_policies holds an unknown policy for " + r.table + "." + r.column);
        where.emplace_back(spi_text(rows, i, 5).value_or("0"), spi_text(rows, i, 6).value_or("0"));
        refs.push_back(std::move(r));
    }
    // A table Citus splits into shards by that very column (co-located with users, docs/scaling.md):
    // a row cannot move to another user's shard by an UPDATE. Refused before anything is written.
    bool citus = false;
    pg_call([&] { citus = OidIsValid(get_extension_oid("citus", true)); });
    for (std::size_t r = 0; citus && r < refs.size(); ++r) {
        if (refs[r].policy != sp::core::MergePolicy::Move) continue;
        sp::pg::SpiRows split = spi_exec(
            "SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid "
            "   AND p.partmethod OPERATOR(pg_catalog.=) 'h' "
            "   AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) OPERATOR(pg_catalog.=) $2",
            {where[r].first, refs[r].column}, true);
        if (split.count == 0) continue;
        const char* table = nullptr;
        const char* args = nullptr; // as SQL literals, ready to paste
        pg_call([&] {
            table = quote_qualified_identifier(refs[r].schema.c_str(), refs[r].table.c_str());
            args = psprintf("%s, %s", quote_literal_cstr(table), quote_literal_cstr(refs[r].column.c_str()));
        });
        throw SqlError(ERRCODE_FEATURE_NOT_SUPPORTED,
                       std::string("merge refused: ") + table + " is split into shards by " + refs[r].column +
                           ", so a merge cannot move its rows to the target",
                       std::string("Citus does not change a row's distribution column. Set what merges do with that column's rows "
                                   "instead: SELECT sp_users.set_merge_policy(") + args + ", 'delete'); (or 'keep').");
    }
    for (std::size_t r = 0; r < refs.size(); ++r) {
        sp::pg::SpiRows keys = spi_exec(kUniqueKeysSql, {where[r].first, where[r].second}, true);
        std::string current;
        for (uint64 i = 0; i < keys.count; ++i) {
            std::string index = spi_text(keys, i, 1).value_or("");
            if (index != current) {
                current = index;
                refs[r].unique_keys.push_back(sp::core::UniqueKey{
                    {}, spi_text(keys, i, 2).value_or("false") == "true", spi_text(keys, i, 3).value_or("")});
            }
            if (auto other = spi_text(keys, i, 4)) refs[r].unique_keys.back().other_keys.push_back(*other);
        }
    }
    return refs;
}

} // namespace

// sp_users._merge(source uuid, target uuid, require_anonymous boolean)
//   RETURNS TABLE (sessions bigint, total_rows bigint, tables jsonb)
SP_FUNCTION(sp_users_merge) {
    pg_uuid_t* source_arg = nullptr;
    pg_uuid_t* target_arg = nullptr;
    bool require_anonymous = false;
    bool any_null = false;
    pg_call([&] {
        any_null = PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2);
        if (any_null) return;
        source_arg = PG_GETARG_UUID_P(0);
        target_arg = PG_GETARG_UUID_P(1);
        require_anonymous = PG_GETARG_BOOL(2);
    });
    if (any_null) throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "source and target must not be NULL");
    const std::string source = uuid_text(source_arg);
    const std::string target = uuid_text(target_arg);
    if (source == target)
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "cannot merge user " + source + " into itself: source and target must differ");

    bool distributed = false;
    pg_call([&] {
        distributed = sp::pg::lookup::users_distributed();
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    });

    // Both users, locked in id order: two merges over the same pair, in either direction, queue
    // up here instead of deadlocking later. With users split into shards by Citus, one statement
    // per user (Citus locks rows on one shard per statement), in the same order.
    constexpr const char* kLockUsers =
        "SELECT u.id::text, (u.roles OPERATOR(pg_catalog.@>) ARRAY['anonymous'::sp_users.user_role])::text "
        "  FROM sp_users.users u "
        " WHERE u.id OPERATOR(pg_catalog.=) ANY (ARRAY[$1::pg_catalog.uuid, $2::pg_catalog.uuid]) "
        "   AND u.status OPERATOR(pg_catalog.<>) 'deleted' "
        " ORDER BY u.id FOR UPDATE";
    constexpr const char* kLockUser =
        "SELECT u.id::text, (u.roles OPERATOR(pg_catalog.@>) ARRAY['anonymous'::sp_users.user_role])::text "
        "  FROM sp_users.users u "
        " WHERE u.id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid AND u.status OPERATOR(pg_catalog.<>) 'deleted' FOR UPDATE";
    bool have_source = false, have_target = false, source_anonymous = false, target_anonymous = false;
    auto note = [&](const sp::pg::SpiRows& users) {
        for (uint64 i = 0; i < users.count; ++i) {
            std::string id = spi_text(users, i, 1).value_or("");
            bool anonymous = spi_text(users, i, 2).value_or("false") == "true";
            if (id == source) { have_source = true; source_anonymous = anonymous; }
            if (id == target) { have_target = true; target_anonymous = anonymous; }
        }
    };
    if (!distributed) {
        note(spi_exec(kLockUsers, {source, target}, false));
    } else {
        for (const std::string& id : {std::min(source, target), std::max(source, target)}) note(spi_exec(kLockUser, {id}, false));
    }
    if (!have_source) throw SqlError(ERRCODE_NO_DATA_FOUND, "user not found: " + source);
    if (!have_target) throw SqlError(ERRCODE_NO_DATA_FOUND, "user not found: " + target);
    if (require_anonymous && !source_anonymous)
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "user " + source + " is not anonymous; use an explicit admin merge instead",
                       "sp_users.merge_users(source, target) merges any two users; it is meant for administrators.");

    std::vector<sp::core::MergeStep> steps = sp::core::plan_merge(load_references());
    std::map<std::string, long> moved, dropped, deleted;
    long total = 0;
    for (const sp::core::MergeStep& step : steps) {
        pg_call([] { CHECK_FOR_INTERRUPTS(); });
        if (step.policy == sp::core::MergePolicy::Keep) {
            sp::pg::SpiRows n = spi_exec(step.count_sql.c_str(), {source, target}, true);
            const std::string rows = spi_text(n, 0, 1).value_or("0");
            if (rows != "0")
                throw SqlError(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
                               "merge refused: " + step.key + " holds " + rows + (rows == "1" ? " row" : " rows") + " of user " + source +
                                   " and its merge policy is keep",
                               "Move or delete those rows first, or change the column's policy with sp_users.set_merge_policy.");
            moved[step.key] = 0;
            continue;
        }
        if (step.policy == sp::core::MergePolicy::Delete) {
            const long n = long(spi_exec(step.move_sql.c_str(), {source, target}, false).count);
            if (n > 0) deleted[step.key] = n;
            moved[step.key] = 0;
            continue;
        }
        if (!step.dedupe_sql.empty()) {
            uint64 n = spi_exec(step.dedupe_sql.c_str(), {source, target}, false).count;
            if (n > 0) dropped[step.key] = long(n);
        }
        long n = long(spi_exec(step.move_sql.c_str(), {source, target}, false).count);
        moved[step.key] = n;
        total += n;
    }
    if (!distributed) {
        spi_exec("DELETE FROM sp_users.users WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid", {source}, false);
    } else {
        // What the foreign keys do on one server, and the source's email and name freed.
        sp::pg::SpiRows gone = spi_exec(
            "DELETE FROM sp_users.users WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid RETURNING email, name", {source}, false);
        if (gone.count == 1)
            spi_exec("SELECT sp_users._forget_deleted_users(ARRAY[$1::pg_catalog.uuid], ARRAY[$2], ARRAY[$3])",
                     {source, spi_text(gone, 0, 1).value_or(""), spi_text(gone, 0, 2).value_or("")}, false);
    }
    if (!target_anonymous) // sessions of an anonymous visitor now belong to a registered user
        spi_exec("UPDATE sp_users.user_sessions SET user_type = 'registered' "
                 " WHERE user_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid AND user_type OPERATOR(pg_catalog.=) 'anon'",
                 {target}, false);

    std::string json = "{";
    for (const auto& [key, n] : moved) {
        if (json.size() > 1) json += ", ";
        json += sp::core::json_string(key) + ": " + std::to_string(n);
    }
    auto group = [&json](const char* name, const std::map<std::string, long>& counts) {
        if (counts.empty()) return;
        json += std::string(json.size() > 1 ? ", " : "") + sp::core::json_string(name) + ": {";
        bool first = true;
        for (const auto& [key, n] : counts) {
            json += std::string(first ? "" : ", ") + sp::core::json_string(key) + ": " + std::to_string(n);
            first = false;
        }
        json += "}";
    };
    group("dropped_duplicates", dropped);
    group("deleted_with_source", deleted);
    json += "}";
    auto sessions_it = moved.find("sp_users.user_sessions.user_id");
    const long sessions = sessions_it == moved.end() ? 0 : sessions_it->second;

    Datum result = 0;
    pg_call([&] {
        SPI_finish();
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        desc = BlessTupleDesc(desc);
        Datum values[3] = {Int64GetDatum(sessions), Int64GetDatum(total), DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str()))};
        bool nulls[3] = {false, false, false};
        result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
    return result;
}
