// SQL-callable ban functions written in C++: the is_banned hot path, address normalisation,
// escalation maths and cache introspection.
#include "core/escalation.hpp"
#include "pg/address_pg.hpp"
#include "pg/ban_cache.hpp"
#include "pg/pg_headers.hpp"

extern "C" {
#include "common/int.h"
}

using sp::pg::pg_call;
using sp::pg::SqlError;

// sp_users.is_banned(ip text) RETURNS boolean
SP_FUNCTION(sp_users_is_banned) {
    text* arg = nullptr;
    pg_call([&] { arg = PG_GETARG_TEXT_PP(0); });
    sp::core::Address addr = sp::pg::parse_address_arg(arg);
    return BoolGetDatum(sp::pg::ban_cache::is_banned(addr));
}

// sp_users.normalize_ip(ip text) RETURNS inet
SP_FUNCTION(sp_users_normalize_ip) {
    text* arg = nullptr;
    pg_call([&] { arg = PG_GETARG_TEXT_PP(0); });
    sp::core::Address addr = sp::pg::parse_address_arg(arg);
    inet* result = nullptr;
    pg_call([&] { result = sp::pg::inet_from_address(addr); });
    return InetPGetDatum(result);
}

namespace {
// The escalated duration in microseconds, or nothing when it is the duration itself (no previous
// ban, or a duration already longer than the cap, which is never shortened).
// Same reading of an interval as PostgreSQL's interval comparison: 30-day months, 24-hour days.
bool escalated_us(const Interval* base, int64 previous, int64* out) {
    __int128 us = __int128(base->month) * DAYS_PER_MONTH * USECS_PER_DAY + __int128(base->day) * USECS_PER_DAY + base->time;
    if (us <= 0) throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "duration must be positive");
    if (us > sp::core::kEscalationCapUs) return false;
    *out = sp::core::escalate_duration(int64(us), previous);
    return true;
}
} // namespace

// sp_users._escalated_duration(duration interval, previous_bans bigint) RETURNS interval
SP_FUNCTION(sp_users_escalated_duration) {
    Interval* base = nullptr;
    int64 previous = 0;
    pg_call([&] {
        base = PG_GETARG_INTERVAL_P(0);
        previous = PG_GETARG_INT64(1);
    });
    int64 us = 0;
    const bool escalated = escalated_us(base, previous, &us);
    Interval* result = nullptr;
    pg_call([&] {
        if (!escalated) {
            result = static_cast<Interval*>(palloc(sizeof(Interval)));
            *result = *base; // longer than the cap already: never shortened
            return;
        }
        result = static_cast<Interval*>(palloc0(sizeof(Interval)));
        result->time = us;
    });
    return IntervalPGetDatum(result);
}

// sp_users._escalated_expiry(start timestamptz, plain_expiry timestamptz, duration interval,
// previous_bans bigint) RETURNS timestamptz: start + _escalated_duration(duration, previous_bans),
// where plain_expiry is start + duration. IMMUTABLE for Citus, which allows only immutable
// expressions in ON CONFLICT DO UPDATE SET: an escalated duration is whole microseconds (no days or
// months), so adding it depends on no time zone; the one that would (the duration itself) is
// computed by the caller.
SP_FUNCTION(sp_users_escalated_expiry) {
    TimestampTz start = 0, plain = 0;
    Interval* base = nullptr;
    int64 previous = 0;
    pg_call([&] {
        start = PG_GETARG_TIMESTAMPTZ(0);
        plain = PG_GETARG_TIMESTAMPTZ(1);
        base = PG_GETARG_INTERVAL_P(2);
        previous = PG_GETARG_INT64(3);
    });
    int64 us = 0;
    if (previous <= 0 || !escalated_us(base, previous, &us)) return TimestampTzGetDatum(plain);
    if (TIMESTAMP_NOT_FINITE(start) || pg_add_s64_overflow(start, us, &start) || !IS_VALID_TIMESTAMP(start))
        throw SqlError(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE, "timestamp out of range");
    return TimestampTzGetDatum(start);
}

// sp_users.ban_cache_info() RETURNS (entries bigint, memory_bytes bigint, rebuilds bigint,
//                                    last_rebuild_ms float8, valid boolean, fallback_lookups bigint,
//                                    refreshes bigint, changes_applied bigint, shared_bytes bigint, publishes bigint)
SP_FUNCTION(sp_users_ban_cache_info) {
    sp::pg::ban_cache::Info info = sp::pg::ban_cache::info();
    Datum result = 0;
    pg_call([&] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) elog(ERROR, "return type must be a row type");
        desc = BlessTupleDesc(desc);
        Datum values[10] = {Int64GetDatum(info.entries), Int64GetDatum(info.memory_bytes), Int64GetDatum(info.rebuilds),
                            Float8GetDatum(info.last_rebuild_ms), BoolGetDatum(info.valid), Int64GetDatum(info.fallback_lookups),
                            Int64GetDatum(info.refreshes), Int64GetDatum(info.changes_applied), Int64GetDatum(info.shared_bytes),
                            Int64GetDatum(info.publishes)};
        bool nulls[10] = {};
        result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
    return result;
}
