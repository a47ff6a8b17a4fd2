// Brute-force protection's request path (sql/install/75_brute_force.sql has the contract). A
// failure is counted by one kept upsert per subject (the address, the account) that reads the
// kind's policy in the same statement; only a failure that crosses a threshold runs the internal
// PL/pgSQL that bans, aggregates into a network ban or locks the account. The upsert's row lock
// serialises concurrent failures of one subject, so exactly one of them crosses a threshold.
#include "pg/address_pg.hpp"
#include "pg/errors.hpp"
#include "pg/kept_statement.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/uuid.h"
}

using sp::pg::KeptStatement;
using sp::pg::pg_call;
using sp::pg::raise_clean;
using sp::pg::run_kept;

namespace {

// $1 kind, $2 address. No row: unknown kind, or the kind does not count addresses.
KeptStatement count_address{
    "INSERT INTO sp_users.address_failures AS a (kind, ip_address, recent)"
    " SELECT p.kind, $2, ARRAY[pg_catalog.now()] FROM sp_users.failure_policies p"
    "  WHERE p.kind = $1 AND p.address_max_failures IS NOT NULL"
    " ON CONFLICT ON CONSTRAINT address_failures_pkey DO UPDATE"
    "    SET recent = ARRAY(SELECT s.t FROM (SELECT r.t FROM pg_catalog.unnest(a.recent) AS r(t)"
    "                                         WHERE r.t > pg_catalog.now() - (SELECT p.address_window FROM sp_users.failure_policies p WHERE p.kind = $1)"
    "                                         ORDER BY r.t DESC"
    "                                         LIMIT (SELECT p.address_max_failures - 1 FROM sp_users.failure_policies p WHERE p.kind = $1)) s"
    "                       ORDER BY s.t) || pg_catalog.now()"
    " RETURNING pg_catalog.cardinality(a.recent),"
    "           (SELECT p.address_max_failures FROM sp_users.failure_policies p WHERE p.kind = $1)",
    2, {TEXTOID, INETOID}};

// $1 kind, $2 user id. No row: unknown kind, missing user, or the kind does not lock accounts.
KeptStatement count_account{
    "INSERT INTO sp_users.account_failures AS a (user_id, kind, failures, last_failure_at)"
    " SELECT u.id, p.kind, 1, pg_catalog.now() FROM sp_users.users u, sp_users.failure_policies p"
    "  WHERE u.id = $2 AND u.status <> 'deleted' AND p.kind = $1 AND p.account_max_failures IS NOT NULL"
    " ON CONFLICT ON CONSTRAINT account_failures_pkey DO UPDATE"
    "    SET failures = CASE WHEN a.last_failure_at < pg_catalog.now() - (SELECT p.account_reset FROM sp_users.failure_policies p WHERE p.kind = $1)"
    "                        THEN 1 ELSE a.failures + 1 END,"
    "        lockouts = CASE WHEN a.last_failure_at < pg_catalog.now() - (SELECT p.account_reset FROM sp_users.failure_policies p WHERE p.kind = $1)"
    "                             AND NOT coalesce(a.locked_until > pg_catalog.now(), false)"
    "                        THEN 0 ELSE a.lockouts END,"
    "        last_failure_at = pg_catalog.now()"
    " RETURNING a.failures, a.lockouts, a.locked_until,"
    "           (SELECT p.account_max_failures FROM sp_users.failure_policies p WHERE p.kind = $1)",
    2, {TEXTOID, UUIDOID}};

// Why a count returned no row: which of kind, user and policy is the reason.
KeptStatement explain_no_count{
    "SELECT (SELECT p.address_max_failures IS NOT NULL FROM sp_users.failure_policies p WHERE p.kind = $1),"
    "       (SELECT p.account_max_failures IS NOT NULL FROM sp_users.failure_policies p WHERE p.kind = $1),"
    "       EXISTS (SELECT 1 FROM sp_users.users u WHERE u.id = $2 AND u.status <> 'deleted')",
    2, {TEXTOID, UUIDOID}};

KeptStatement address_banned{"SELECT * FROM sp_users._address_banned($1, $2, $3)", 3, {TEXTOID, INETOID, INT4OID}};
KeptStatement account_locked{"SELECT sp_users._account_locked($1, $2, $3)", 3, {TEXTOID, UUIDOID, INT4OID}};

struct FailureResult {
    const char* outcome[3] = {};
    int outcomes = 0;
    Datum values[7] = {};
    bool nulls[7] = {true, false, true, true, true, true, true};
};

Datum column(int n, bool* isnull) { return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, n, isnull); }

template <int N>
void set_args(FunctionCallInfo args, const Datum (&values)[N], const bool (&nulls)[N]) {
    args->nargs = N;
    for (int i = 0; i < N; ++i) {
        args->args[i].value = values[i];
        args->args[i].isnull = nulls[i];
    }
}

// After a count returned no row: an unknown kind raises 22023, a missing user P0002; otherwise
// the policy does not count this subject. Returns false in that last case.
void explain_no_row(FunctionCallInfo fcinfo, Datum kind, bool for_user) {
    LOCAL_FCINFO(args, 2);
    set_args<2>(args, {kind, for_user ? PG_GETARG_DATUM(2) : Datum(0)}, {false, !for_user});
    run_kept(explain_no_count, args);
    bool kind_unknown = false, isnull = false;
    column(1, &kind_unknown);
    if (kind_unknown)
        raise_clean(ERRCODE_INVALID_PARAMETER_VALUE, psprintf("unknown failure kind: %s", TextDatumGetCString(kind)), nullptr, nullptr,
                    "INSERT INTO sp_users.failure_policies (kind) VALUES (...) adds a kind with the default policy.");
    if (for_user && !DatumGetBool(column(3, &isnull))) sp::pg::raise_user_not_found(fcinfo, 2);
}

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
        r.outcome[r.outcomes++] = "counted";
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        LOCAL_FCINFO(args, 3);
        if (has_ip) {
            const Datum inet_value = PointerGetDatum(sp::pg::inet_from_address(addr));
            set_args<2>(args, {kind, inet_value}, {false, false});
            if (run_kept(count_address, args) == 1) {
                bool isnull = false;
                const int32 failures = DatumGetInt32(column(1, &isnull));
                const int32 limit = DatumGetInt32(column(2, &isnull));
                r.values[1] = Int32GetDatum(failures);
                r.nulls[1] = false;
                if (failures >= limit) {
                    set_args<3>(args, {kind, inet_value, Int32GetDatum(failures)}, {false, false, false});
                    run_kept(address_banned, args);
                    r.outcomes = 0;
                    r.outcome[r.outcomes++] = "address_banned";
                    for (int c = 0; c < 3; ++c) r.values[2 + c] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &r.nulls[2 + c]);
                    if (!r.nulls[3]) r.outcome[r.outcomes++] = "network_banned";
                    r.values[3] = r.nulls[3] ? Datum(0) : PointerGetDatum(SPI_datumTransfer(r.values[3], false, -1));
                }
            } else {
                explain_no_row(fcinfo, kind, false); // or the kind does not count addresses
                r.nulls[1] = true;
            }
        }
        if (has_user) {
            set_args<2>(args, {kind, user_id}, {false, false});
            if (run_kept(count_account, args) == 1) {
                bool isnull = false;
                const int32 failures = DatumGetInt32(column(1, &isnull));
                const int32 lockouts = DatumGetInt32(column(2, &isnull));
                bool locked_null = false;
                Datum locked = column(3, &locked_null);
                const int32 limit = DatumGetInt32(column(4, &isnull));
                r.values[5] = Int32GetDatum(failures);
                r.nulls[5] = false;
                if (failures >= limit) {
                    set_args<3>(args, {kind, user_id, Int32GetDatum(lockouts)}, {false, false, false});
                    run_kept(account_locked, args);
                    locked = column(1, &locked_null);
                    if (r.outcomes == 1 && strcmp(r.outcome[0], "counted") == 0) r.outcomes = 0;
                    r.outcome[r.outcomes++] = "account_locked";
                }
                const TimestampTz now = GetCurrentTransactionStartTimestamp();
                r.nulls[6] = locked_null || DatumGetTimestampTz(locked) <= now;
                r.values[6] = r.nulls[6] ? Datum(0) : locked;
            } else {
                explain_no_row(fcinfo, kind, true); // or the kind does not lock accounts
                r.nulls[5] = true;
            }
        }
        SPI_finish();
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
