// Proof of the error boundary, reachable only from tests: the symbol is in the library, but no
// SQL function points at it unless a test creates one (see sql/guard.sql).
#include "pg/pg_headers.hpp"

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

using sp::pg::pg_call;

namespace {
struct Witness { // a destructor that must run when an error unwinds through it
    static inline long destroyed = 0;
    ~Witness() { ++destroyed; }
};
} // namespace

// sp_users_guard_selftest(kind text) RETURNS bigint: raises the kind of failure asked for.
SP_FUNCTION(sp_users_guard_selftest) {
    text* arg = nullptr;
    pg_call([&] { arg = PG_GETARG_TEXT_PP(0); });
    std::string kind(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg));
    Witness witness;
    if (kind == "std_exception") throw std::runtime_error("selftest: a C++ exception became an SQL error");
    if (kind == "bad_alloc") throw std::bad_alloc();
    if (kind == "unknown") throw 42;
    if (kind == "huge_vector") {
        std::vector<char> v(std::size_t(1) << 62); // fails to allocate: std::bad_alloc or length_error
        return Int64GetDatum(long(v.size()));
    }
    if (kind == "pg_error") {
        // A PostgreSQL ERROR raised under C++ frames: unwinds `witness` and keeps its SQLSTATE.
        pg_call([] { ereport(ERROR, (errcode(ERRCODE_DIVISION_BY_ZERO), errmsg("selftest: a PostgreSQL error crossed C++ frames"))); });
    }
    if (kind == "destroyed") return Int64GetDatum(Witness::destroyed);
    return Int64GetDatum(0);
}
