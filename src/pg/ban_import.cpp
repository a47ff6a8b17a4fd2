// sp_users.ban_ips: a whole blocklist in one statement. The text is parsed by core/blocklist (bad
// lines are reported, not fatal), the distinct networks go to one INSERT ... ON CONFLICT with
// ban_ip's upsert rules, and the statement triggers log them and queue one invalidation.
#include "core/blocklist.hpp"
#include "pg/address_pg.hpp"
#include "pg/citus.hpp"
#include "pg/kept_statement.hpp"

extern "C" {
#include "utils/array.h"
#include "utils/tuplestore.h"
}

using sp::pg::KeptStatement;
using sp::pg::pg_call;
using sp::pg::run_kept;

namespace {

// ban_ip's rules per row: a repeat ban increments ban_count, replaces reason and ban_source, never
// shortens an expiry and keeps a permanent ban permanent; the metadata a list does not carry
// (fingerprint, path, agent, sessions) is kept. $5 is now(), $6 now() + duration: only immutable
// expressions in DO UPDATE SET, as Citus requires of a reference table (sp_users.distribute()).
KeptStatement bulk_statement{
    "WITH up AS ("
    " INSERT INTO sp_users.banned_ips AS b (ip_address, reason, banned_at, expires_at, ban_count, ban_source)"
    " SELECT n.ip, $2, $5, $6, 1, COALESCE($4, 'blocklist')"
    "   FROM pg_catalog.unnest($1) AS n(ip)"
    " ON CONFLICT (ip_address) DO UPDATE SET"
    "     reason     = EXCLUDED.reason,"
    "     ban_source = EXCLUDED.ban_source,"
    "     banned_at  = $5,"
    "     ban_count  = b.ban_count OPERATOR(pg_catalog.+) 1,"
    "     expires_at = CASE WHEN b.expires_at IS NULL OR $3 IS NULL THEN NULL"
    "                       ELSE GREATEST(b.expires_at, $6) END"
    " RETURNING b.ban_count)"
    " SELECT pg_catalog.count(*) FILTER (WHERE up.ban_count OPERATOR(pg_catalog.=) 1), pg_catalog.count(*) FROM up",
    6, {INETARRAYOID, TEXTOID, INTERVALOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}};

KeptStatement check_duration{"SELECT sp_users._positive_interval($1, 'duration')", 1, {INTERVALOID}};

} // namespace

// sp_users.ban_ips(list text, reason text, duration interval, ban_source text DEFAULT 'blocklist')
// RETURNS TABLE (line integer, entry text, error text): the lines that were not applied.
SP_FUNCTION(sp_users_ban_ips) {
    text* list = nullptr;
    pg_call([&] {
        InitMaterializedSRF(fcinfo, 0);
        if (!PG_ARGISNULL(0)) list = PG_GETARG_TEXT_PP(0);
    });
    sp::core::Blocklist parsed;
    if (list != nullptr) parsed = sp::core::parse_blocklist(VARDATA_ANY(list), std::size_t(VARSIZE_ANY_EXHDR(list)));

    int64 inserted = 0, applied = 0;
    pg_call([&] {
        auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        const int nest = sp::pg::citus::begin_canonical(); // on Citus, the upsert runs on every node as the owner
        LOCAL_FCINFO(dur, 1);
        dur->nargs = 1;
        dur->args[0] = fcinfo->args[2];
        run_kept(check_duration, dur); // 22023 for a zero or negative duration, even for an empty list
        if (!parsed.networks.empty()) {
            const std::size_t n = parsed.networks.size();
            Datum* elems = static_cast<Datum*>(palloc_extended(n * sizeof(Datum), MCXT_ALLOC_HUGE));
            for (std::size_t i = 0; i < n; ++i) {
                elems[i] = InetPGetDatum(sp::pg::inet_from_address(parsed.networks[i]));
                if ((i & 4095) == 0) CHECK_FOR_INTERRUPTS();
            }
            ArrayType* arr = construct_array(elems, int(n), INETOID, -1, false, TYPALIGN_INT);
            LOCAL_FCINFO(args, 6);
            args->nargs = 6;
            args->args[0].value = PointerGetDatum(arr);
            args->args[0].isnull = false;
            for (int i = 1; i < 4; ++i) args->args[i] = fcinfo->args[i];
            const Datum now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
            args->args[4] = {now, false};
            args->args[5] = {0, PG_ARGISNULL(2)};
            if (!PG_ARGISNULL(2)) args->args[5].value = DirectFunctionCall2(timestamptz_pl_interval, now, PG_GETARG_DATUM(2));
            if (run_kept(bulk_statement, args) != 1) elog(ERROR, "sp_users.ban_ips: the upsert returned no counts");
            bool isnull = false;
            inserted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
            applied = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
        }
        sp::pg::citus::end_canonical(nest);
        SPI_finish();
        for (const auto& p : parsed.problems) {
            int shown = pg_mbcliplen(p.entry.data(), int(p.entry.size()), int(p.entry.size()));
            Datum values[3] = {Int32GetDatum(int32(p.line)), PointerGetDatum(cstring_to_text_with_len(p.entry.data(), shown)),
                               CStringGetTextDatum(p.error.c_str())};
            bool nulls[3] = {false, false, false};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        }
        ereport(NOTICE, (errmsg("sp_users.ban_ips: %lld networks banned (%lld new, %lld repeat), %zu duplicate lines merged, %zu lines rejected",
                                static_cast<long long>(applied), static_cast<long long>(inserted),
                                static_cast<long long>(applied - inserted), parsed.duplicates, parsed.problems.size())));
    });
    return Datum(0);
}
