// Where an sp_users relation's rows are on this node when Citus manages the table
// (sp_users.distribute(), docs/scaling.md). The C readers (the ban set, get_ban,
// list_active_bans) read tables straight through the access methods, bypassing Citus' planner:
// on a Citus node the table they name is an empty shell, and the rows of a reference table are in
// its local shard placement, `<name>_<shardid>`, whose indexes are `<index>_<shardid>`.
#pragma once
#include "pg/pg_headers.hpp"

namespace sp::pg::citus {

// The relation that holds the rows of `relid` (a table or an index of one) on this node: `relid`
// itself, unless Citus keeps the table as a single shard (a reference table, or a Citus local
// table on the coordinator); then the placement of that shard here. Raises 55000 when this node
// holds no placement, and 0A000 for a table Citus hash-distributes (the session functions go
// through Citus instead). Does catalog lookups: callers memoise the answer and forget it on a
// relcache invalidation of `relid`'s table (Citus sends one whenever it changes the table's
// metadata).
Oid local_relation(Oid relid);

// The table of `relid` (relid itself unless it is an index).
Oid table_of(Oid relid);

// True when Citus is loaded in this server (it must be preloaded to work at all).
bool loaded();

// Called from _PG_init while shared_preload_libraries is processed: installs the guard below.
// Citus replays a propagated SET LOCAL / RESET / SET TRANSACTION (citus.propagate_set_commands =
// 'local') on the other nodes by sending its query text — on every connection of the transaction,
// also those sp_users' definer functions open as their owner — glued to the others on one line:
// a second statement, a comment or a differently read string in it would run there as the owner
// (three fresh-eyes runs did). In a database with sp_users, the guard refuses every such command
// but canonical_session()'s own.
void install_set_guard();

// Whether install_set_guard() ran in this server (sp_users preloaded after citus).
bool set_guard_installed();

// Runs `body` with pg_catalog as the whole search path when Citus is loaded: Citus re-parses the
// statements it routes (also in this backend, for a local placement) from text that leaves
// pg_catalog names unqualified, under the search path of the moment. A kept statement is bound at
// prepare time elsewhere; on Citus it must be bound again the same way at each execution.
template <typename Body>
void with_catalog_path(Body body) {
    if (!loaded()) return body();
    OverrideSearchPath path{};
    path.schemas = NIL;
    path.addCatalog = true;
    path.addTemp = false;
    PushOverrideSearchPath(&path);
    body(); // an error pops it with the (sub)transaction's abort
    PopOverrideSearchPath();
}

// Before a definer function reads or writes banned_ips through Citus: Citus may run the statement
// on other nodes (every node, for a write) as the function's owner, from text it deparses here
// (pg_catalog names unqualified, constants in this session's DateStyle / IntervalStyle /
// standard_conforming_strings) and parses there under that connection's settings plus the SET
// LOCAL commands of this transaction it replays there (citus.propagate_set_commands = 'local',
// a user setting). This makes those settings canonical here and, through Citus' own SET LOCAL
// propagation, on every node this transaction reaches, after whatever the caller replayed.
// (Local execution is left as the caller set it: Citus refuses to switch it back off once used.)
// Local effects last until the current GUC nest level ends, as a function's SET clause does
// (for a SQL function calling it: that function's own SET clause; in C: end_canonical()).
// Nothing without Citus. Call inside SPI-safe PostgreSQL context.
void canonical_session();

// canonical_session() inside a GUC nest level of its own, for C callers: returns the level (0
// without Citus), which end_canonical() closes (an error closes it with the (sub)transaction).
int begin_canonical();
void end_canonical(int nest);

// For statements on a table Citus splits into shards (user_sessions after distribute()), which
// Citus routes to a worker as text written here and read there under the owner's connection
// defaults (pinned by distribute(); a propagated SET cannot change them, install_set_guard()):
// the same settings as canonical_session() in a GUC nest level of its own, here only — no SET
// LOCAL to replay, so it costs a few set_config calls. Close it with end_canonical().
int begin_local_canonical();

// Whether Citus hash-distributes `table` (create_distributed_table), with any number of shards;
// false when Citus does not manage it or is not installed.
bool hash_distributed(Oid table);

} // namespace sp::pg::citus
