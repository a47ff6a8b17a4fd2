// Brute-force protection's request path (sql/install/75_brute_force.sql has the contract). A
// failure is counted by one kept upsert per subject (the address, the account) that reads the
// kind's policy in the same statement; only a failure that crosses a threshold runs the internal
// PL/pgSQL that bans, aggregates into a network ban or locks the account. The upsert's row lock
// serialises concurrent failures of one subject, so exactly one of them crosses a threshold.
#include "pg/address_pg.hpp"
#include "pg/citus.hpp"
#include "pg/errors.hpp"
#include "pg/kept_statement.hpp"
#include "pg/lookup.hpp"
#include "pg/trigger_check.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/uuid.h"
}

using sp::pg::KeptStatement;
using sp::pg::pg_call;
using sp::pg::raise_clean;
using sp::pg::run_kept;
using sp::pg::set_kept_args;

namespace {

// The policies, cached per backend: record_failure reads them on every call, administrators
// change them rarely. A statement trigger on sp_users.failure_policies sends a relcache
// invalidation of the table (transactional: other backends drop their copy when the change
// commits, the changing backend at its next command).
struct Policy {
    char kind[NAMEDATALEN];
    bool counts_addresses, counts_accounts;
    int32 address_max;
    Interval address_window;
    int32 account_max;
    Interval account_reset;
};
struct PolicyCache {
    bool valid = false;
    // Loaded under a repeatable-read (or serializable) transaction's snapshot: it may predate a
    // change whose invalidation was already processed, so it serves that transaction only.
    bool transaction_only = false;
    LocalTransactionId loaded_in = InvalidLocalTransactionId;
    bool callback_registered = false;
    Oid relid = InvalidOid;
    Policy* policies = nullptr; // TopMemoryContext
    int count = 0;
};
PolicyCache& policy_cache() noexcept {
    static PolicyCache c;
    return c;
}
void on_relcache_invalidation(Datum, Oid relid) {
    PolicyCache& c = policy_cache();
    if (relid == InvalidOid || relid == c.relid) c.valid = false;
}

KeptStatement load_policies{
    "SELECT p.kind, p.address_max_failures, p.address_window, p.account_max_failures, p.account_reset"
    "  FROM sp_users.failure_policies p",
    0, {}};

// Inside SPI. The policy of `kind`, or null for an unknown kind.
const Policy* policy_of(const char* kind) {
    PolicyCache& c = policy_cache();
    if (!c.callback_registered) {
        CacheRegisterRelcacheCallback(on_relcache_invalidation, PointerGetDatum(nullptr));
        c.callback_registered = true;
    }
    AcceptInvalidationMessages();
    if (!c.valid || (c.transaction_only && c.loaded_in != MyProc->lxid)) {
        c.relid = get_relname_relid("failure_policies", get_namespace_oid("sp_users", false));
        run_kept(load_policies, nullptr);
        Policy* loaded = static_cast<Policy*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Policy) * (SPI_processed + 1)));
        for (uint64 i = 0; i < SPI_processed; ++i) {
            HeapTuple row = SPI_tuptable->vals[i];
            TupleDesc desc = SPI_tuptable->tupdesc;
            bool isnull = false;
            strlcpy(loaded[i].kind, TextDatumGetCString(SPI_getbinval(row, desc, 1, &isnull)), NAMEDATALEN);
            Datum v = SPI_getbinval(row, desc, 2, &isnull);
            loaded[i].counts_addresses = !isnull;
            loaded[i].address_max = isnull ? 0 : DatumGetInt32(v);
            loaded[i].address_window = *DatumGetIntervalP(SPI_getbinval(row, desc, 3, &isnull));
            v = SPI_getbinval(row, desc, 4, &isnull);
            loaded[i].counts_accounts = !isnull;
            loaded[i].account_max = isnull ? 0 : DatumGetInt32(v);
            loaded[i].account_reset = *DatumGetIntervalP(SPI_getbinval(row, desc, 5, &isnull));
        }
        if (c.policies) pfree(c.policies);
        c.policies = loaded;
        c.count = int(SPI_processed);
        c.valid = true;
        c.transaction_only = IsolationUsesXactSnapshot();
        c.loaded_in = MyProc->lxid;
    }
    for (int i = 0; i < c.count; ++i)
        if (strcmp(c.policies[i].kind, kind) == 0) return &c.policies[i];
    return nullptr;
}

// $1 kind, $2 address, $3 window, $4 limit: the hand-written upsert, with the policy as parameters.
KeptStatement count_address{
    "INSERT INTO sp_users.address_failures AS a (kind, ip_address, recent) VALUES ($1, $2, ARRAY[pg_catalog.now()])"
    " ON CONFLICT ON CONSTRAINT address_failures_pkey DO UPDATE"
    "    SET recent = ARRAY(SELECT s.t FROM (SELECT r.t FROM pg_catalog.unnest(a.recent) AS r(t)"
    "                                         WHERE r.t > pg_catalog.now() - $3 ORDER BY r.t DESC LIMIT $4 - 1) s"
    "                       ORDER BY s.t) || pg_catalog.now()"
    " RETURNING pg_catalog.cardinality(a.recent)",
    4, {TEXTOID, INETOID, INTERVALOID, INT4OID}};

// $1 kind, $2 user id, $3 reset time. No row: the user is missing (or deleted).
KeptStatement count_account{
    "INSERT INTO sp_users.account_failures AS a (user_id, kind, failures, last_failure_at)"
    " SELECT u.id, $1, 1, pg_catalog.now() FROM sp_users.users u WHERE u.id = $2 AND u.status <> 'deleted'"
    " ON CONFLICT ON CONSTRAINT account_failures_pkey DO UPDATE"
    "    SET failures = CASE WHEN a.last_failure_at < pg_catalog.now() - $3 THEN 1 ELSE a.failures + 1 END,"
    "        lockouts = CASE WHEN a.last_failure_at < pg_catalog.now() - $3 AND NOT coalesce(a.locked_until > pg_catalog.now(), false)"
    "                        THEN 0 ELSE a.lockouts END,"
    "        last_failure_at = pg_catalog.now()"
    " RETURNING a.failures, a.lockouts, a.locked_until",
    3, {TEXTOID, UUIDOID, INTERVALOID}};

KeptStatement user_exists{"SELECT 1 FROM sp_users.users u WHERE u.id = $1 AND u.status <> 'deleted'", 1, {UUIDOID}};

// Under sp_users.distribute() with users split into shards (account_failures stays on the
// coordinator, without its foreign key): the user is locked on its shard first, as the key's check
// did (a concurrent delete_user waits, then removes the row with the user's failures), then counted.
KeptStatement lock_user{"SELECT 1 FROM sp_users.users u WHERE u.id = $1 AND u.status <> 'deleted' FOR KEY SHARE", 1, {UUIDOID}};
KeptStatement count_account_of_locked_user{
    "INSERT INTO sp_users.account_failures AS a (user_id, kind, failures, last_failure_at) VALUES ($2, $1, 1, pg_catalog.now())"
    " ON CONFLICT ON CONSTRAINT account_failures_pkey DO UPDATE"
    "    SET failures = CASE WHEN a.last_failure_at < pg_catalog.now() - $3 THEN 1 ELSE a.failures + 1 END,"
    "        lockouts = CASE WHEN a.last_failure_at < pg_catalog.now() - $3 AND NOT coalesce(a.locked_until > pg_catalog.now(), false)"
    "                        THEN 0 ELSE a.lockouts END,"
    "        last_failure_at = pg_catalog.now()"
    " RETURNING a.failures, a.lockouts, a.locked_until",
    3, {TEXTOID, UUIDOID, INTERVALOID}};

// Whether the user exists (not deleted); on Citus with users distributed, also locked FOR KEY SHARE.
bool user_there(FunctionCallInfo args, bool distributed) {
    if (!distributed) return run_kept(user_exists, args) == 1;
    const int nest = sp::pg::citus::begin_local_canonical();
    const bool there = run_kept(lock_user, args) == 1;
    sp::pg::citus::end_canonical(nest);
    return there;
}
KeptStatement address_banned{"SELECT * FROM sp_users._address_banned($1, $2, $3)", 3, {TEXTOID, INETOID, INT4OID}};
KeptStatement account_locked{"SELECT sp_users._account_locked($1, $2, $3)", 3, {TEXTOID, UUIDOID, INT4OID}};

struct FailureResult {
    const char* outcome[3] = {};
    int outcomes = 0;
    Datum values[7] = {};
    bool nulls[7] = {true, false, true, true, true, true, true};
};

Datum column(int n, bool* isnull) { return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, n, isnull); }

} // namespace

// sp_users.record_failure(kind text, ip text, user_id uuid) RETURNS (outcome text[], address_failures
// int, address_banned_until timestamptz, network inet, network_banned_until timestamptz,
// account_failures int, account_locked_until timestamptz)
SP_FUNCTION(sp_users_record_failure) {
    Datum result = 0;
    pg_call([&] {
        if (PG_ARGISNULL(0)) raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, "unknown failure kind: NULL");
        if (PG_ARGISNULL(1) && PG_ARGISNULL(2)) raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, "ip and user_id must not both be NULL");
    });
    sp::core::Address addr;
    if (!PG_ARGISNULL(1)) {
        text* ip = nullptr;
        pg_call([&] { ip = PG_GETARG_TEXT_PP(1); });
        addr = sp::pg::parse_address_arg(ip);
        if (!addr.is_host()) {
            pg_call([&] {
                raise_clean(ERRCODE_INVALID_PARAMETER_VALUE,
                            psprintf("ip must be a single address, not a network: %s", text_to_cstring(ip)));
            });
        }
    }
    pg_call([&] {
        const Datum kind = PG_GETARG_DATUM(0);
        const bool has_ip = !PG_ARGISNULL(1), has_user = !PG_ARGISNULL(2);
        const Datum user_id = has_user ? PG_GETARG_DATUM(2) : Datum(0);
        FailureResult r;
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        const char* kind_name = TextDatumGetCString(kind);
        const Policy* policy = policy_of(kind_name);
        if (policy == nullptr)
            raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("unknown failure kind: %s", kind_name), nullptr, nullptr,
                        "INSERT INTO sp_users.failure_policies (kind) VALUES (...) adds a kind with the default policy.");
        const Policy p = *policy; // the cache may be reloaded by a later call
        LOCAL_FCINFO(args, 4);
        const bool distributed = has_user && sp::pg::lookup::users_distributed();
        if (has_user && (!p.counts_accounts || distributed)) {
            // Not counted, but a missing user is still an error, as for a kind that counts.
            set_kept_args<1>(args, {user_id}, {false});
            if (!user_there(args, distributed)) sp::pg::raise_user_not_found(fcinfo, 2);
        }
        if (has_ip && p.counts_addresses) {
            const Datum inet_value = PointerGetDatum(sp::pg::inet_from_address(addr));
            set_kept_args<4>(args, {kind, inet_value, IntervalPGetDatum(&p.address_window), Int32GetDatum(p.address_max)},
                        {false, false, false, false});
            if (run_kept(count_address, args) != 1) elog(ERROR, "sp_users.record_failure: the address upsert returned no row");
            bool isnull = false;
            const int32 failures = DatumGetInt32(column(1, &isnull));
            r.values[1] = Int32GetDatum(failures);
            r.nulls[1] = false;
            if (failures >= p.address_max) {
                set_kept_args<3>(args, {kind, inet_value, Int32GetDatum(failures)}, {false, false, false});
                run_kept(address_banned, args);
                r.outcome[r.outcomes++] = "address_banned";
                for (int c = 0; c < 3; ++c) r.values[2 + c] = column(c + 1, &r.nulls[2 + c]);
                if (!r.nulls[3]) r.outcome[r.outcomes++] = "network_banned";
                r.values[3] = r.nulls[3] ? Datum(0) : PointerGetDatum(SPI_datumTransfer(r.values[3], false, -1));
            }
        }
        if (has_user && p.counts_accounts) {
            set_kept_args<3>(args, {kind, user_id, IntervalPGetDatum(&p.account_reset)}, {false, false, false});
            if (run_kept(distributed ? count_account_of_locked_user : count_account, args) != 1) sp::pg::raise_user_not_found(fcinfo, 2);
            bool isnull = false;
            const int32 failures = DatumGetInt32(column(1, &isnull));
            const int32 lockouts = DatumGetInt32(column(2, &isnull));
            bool locked_null = false;
            Datum locked = column(3, &locked_null);
            r.values[5] = Int32GetDatum(failures);
            r.nulls[5] = false;
            if (failures >= p.account_max) {
                set_kept_args<3>(args, {kind, user_id, Int32GetDatum(lockouts)}, {false, false, false});
                run_kept(account_locked, args);
                locked = column(1, &locked_null);
                r.outcome[r.outcomes++] = "account_locked";
            }
            const TimestampTz now = GetCurrentTransactionStartTimestamp();
            r.nulls[6] = locked_null || DatumGetTimestampTz(locked) <= now;
            r.values[6] = r.nulls[6] ? Datum(0) : locked;
        }
        SPI_finish();
        if (r.outcomes == 0) r.outcome[r.outcomes++] = "counted";
        Datum items[3];
        for (int i = 0; i < r.outcomes; ++i) items[i] = CStringGetTextDatum(r.outcome[i]);
        r.values[0] = PointerGetDatum(construct_array(items, r.outcomes, TEXTOID, -1, false, TYPALIGN_INT));
        r.nulls[0] = false;
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        desc = BlessTupleDesc(desc);
        result = HeapTupleGetDatum(heap_form_tuple(desc, r.values, r.nulls));
    });
    return result;
}

// AFTER INSERT / UPDATE / DELETE FOR EACH ROW and AFTER TRUNCATE on sp_users.failure_policies
// (ENABLE ALWAYS: also when a logical replication worker applies a change).
SP_FUNCTION(sp_users_failure_policies_changed) {
    pg_call([&] {
        static const sp::pg::TriggerShape rows{"sp_users._failure_policies_changed()", "failure_policies", false, true,
                                                sp::pg::kEvInsert | sp::pg::kEvUpdate | sp::pg::kEvDelete, false};
        static const sp::pg::TriggerShape truncate{"sp_users._failure_policies_changed()", "failure_policies", true, true,
                                                    sp::pg::kEvTruncate, false};
        const bool is_truncate = CALLED_AS_TRIGGER(fcinfo) &&
                                 TRIGGER_FIRED_BY_TRUNCATE(reinterpret_cast<TriggerData*>(fcinfo->context)->tg_event);
        TriggerData* td = sp::pg::checked_trigger(fcinfo, is_truncate ? truncate : rows);
        CacheInvalidateRelcache(td->tg_relation);
    });
    return PointerGetDatum(nullptr);
}
