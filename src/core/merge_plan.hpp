// Merge planning: from the catalog's description of every column that holds a user id, the
// ordered statements that move a source user's rows to a target user.
#pragma once
#include "core/core_guard.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sp::core {

// A unique index (or constraint) on a referencing table with the user-id column as a plain key
// column. Its other keys and predicate are SQL as PostgreSQL deparses them (pg_get_indexdef,
// pg_get_expr): they name the table's columns unqualified, so the plan evaluates them in a scope
// that holds that table alone.
struct UniqueKey {
    std::vector<std::string> other_keys;    // the other key columns: quoted names or expressions
    bool nulls_not_distinct = false;        // PostgreSQL 15 NULLS NOT DISTINCT
    std::string predicate;                  // a partial index's WHERE clause; empty for a full index
};

// What a merge does with the source's rows in one referencing column (set_merge_policy):
// move them to the target (the default), delete them with the source (credentials: OAuth links,
// WebAuthn keys, API keys, which must not pass to another account), or keep them, which refuses
// the merge while the source has any.
enum class MergePolicy { Move, Delete, Keep };

// Parses "move" / "delete" / "keep"; false for anything else.
bool parse_merge_policy(std::string_view text, MergePolicy& out);

// One column that holds a user id: a foreign key to sp_users.users(id), or a registered column.
struct Reference {
    std::string schema;
    std::string table;
    std::string column;
    std::string column_type;             // format_type() of the column, e.g. "uuid" or "text"
    std::vector<UniqueKey> unique_keys;  // unique indexes with `column` as a plain key column
    MergePolicy policy = MergePolicy::Move;
};

// What to run for one reference. $1 is the source id and $2 the target id, both as text.
struct MergeStep {
    std::string key;        // "schema.table.column", as reported in the result
    MergePolicy policy = MergePolicy::Move;
    std::string count_sql;  // Keep: counts the source's rows (the merge is refused when any)
    std::string dedupe_sql; // Move: deletes source rows whose move would collide with a target row; empty if none can
    std::string move_sql;   // Move: moves the remaining source rows; Delete: deletes the source's rows
};

// Steps in a fixed order (by key), one per distinct reference, so concurrent merges take row
// locks table by table in the same order; the Keep checks come first, so a refused merge changes
// nothing. Policy on a unique collision when moving: the target's row is kept and the source's
// duplicate is deleted (and counted).
std::vector<MergeStep> plan_merge(std::vector<Reference> refs);

// SQL identifier quoting (always quoted: no keyword list needed, and case is preserved).
std::string quote_ident(std::string_view ident);

// A JSON string literal for `s` (assumes valid UTF-8, as PostgreSQL text is).
std::string json_string(std::string_view s);

} // namespace sp::core
