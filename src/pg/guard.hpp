// The C++ <-> PostgreSQL error boundary. Every SQL-callable function is defined with SP_FUNCTION,
// which runs its body under cpp_call: no C++ exception ever reaches PostgreSQL. Inside C++ scopes,
// PostgreSQL is only called through pg_call, which turns an ereport(ERROR) longjmp into a C++
// exception (so destructors run) and cpp_call re-raises the original error, SQLSTATE intact.
#pragma once

#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include <sys/socket.h> // AF_INET for utils/inet.h

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace sp::pg {

// An ordinary SQL error raised from C++: SQLSTATE + message (+ optional hint).
class SqlError : public std::runtime_error {
public:
    SqlError(int sqlstate, const std::string& message, std::string hint = {})
        : std::runtime_error(message), sqlstate_(sqlstate), hint_(std::move(hint)) {}
    int sqlstate() const noexcept { return sqlstate_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    int sqlstate_;
    std::string hint_;
};

// A PostgreSQL error caught by pg_call, carried through C++ frames to be re-thrown unchanged.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData* data) noexcept : data_(data) {}
    ErrorData* data() const noexcept { return data_; }
    const char* what() const noexcept override { return data_ && data_->message ? data_->message : "PostgreSQL error"; }

private:
    ErrorData* data_; // palloc'd in the caller's memory context
};

namespace detail {
// Copied out of the exception before leaving C++ scope; static so copying cannot fail.
struct PendingError {
    int sqlstate;
    char message[1024];
    char hint[1024];
};
inline void copy_text(char* dst, std::size_t cap, const char* src) noexcept {
    std::size_t n = src ? std::strlen(src) : 0;
    if (n >= cap) n = cap - 1;
    if (n) std::memcpy(dst, src, n);
    dst[n] = '\0';
}
} // namespace detail

// sp_users' own errors say everything in their message: before raising one, drop the error
// context callbacks (the internal PL/pgSQL and SQL frames that led here) so the client sees no
// CONTEXT. Every PG_TRY (and the top level) restores error_context_stack when it catches.
inline void drop_error_context() noexcept { error_context_stack = nullptr; }

// Runs C++ code from PostgreSQL's side. Returns fn()'s value or raises the error as SQL ERROR.
template <typename Fn>
auto cpp_call(Fn&& fn) noexcept -> decltype(fn()) {
    static detail::PendingError pending;
    ErrorData* pg_error = nullptr;
    bool failed = false;
    try {
        return fn();
    } catch (const PgError& e) {
        pg_error = e.data();
    } catch (const SqlError& e) {
        pending.sqlstate = e.sqlstate();
        detail::copy_text(pending.message, sizeof pending.message, e.what());
        detail::copy_text(pending.hint, sizeof pending.hint, e.hint().c_str());
        failed = true;
    } catch (const std::bad_alloc&) {
        pending.sqlstate = ERRCODE_OUT_OF_MEMORY;
        detail::copy_text(pending.message, sizeof pending.message, "sp_users: out of memory");
        pending.hint[0] = '\0';
        failed = true;
    } catch (const std::exception& e) {
        pending.sqlstate = ERRCODE_INTERNAL_ERROR;
        detail::copy_text(pending.message, sizeof pending.message, e.what());
        detail::copy_text(pending.hint, sizeof pending.hint, "");
        failed = true;
    } catch (...) {
        pending.sqlstate = ERRCODE_INTERNAL_ERROR;
        detail::copy_text(pending.message, sizeof pending.message, "sp_users: unknown C++ exception");
        pending.hint[0] = '\0';
        failed = true;
    }
    // Out of every C++ scope: now it is safe to longjmp.
    if (pg_error) ReThrowError(pg_error);
    if (failed) {
        drop_error_context();
        ereport(ERROR, (errcode(pending.sqlstate), errmsg("%s", pending.message),
                        pending.hint[0] ? errhint("%s", pending.hint) : 0));
    }
    pg_unreachable();
}

// Runs PostgreSQL code from C++. `fn` must not own objects with destructors: an ERROR inside it
// is caught here, copied, and thrown on as PgError so the C++ frames above unwind normally.
template <typename Fn>
void pg_call(Fn&& fn) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* volatile caught = nullptr; // assigned after a longjmp
    PG_TRY();
    {
        fn();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        caught = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (caught) throw PgError(caught);
}

} // namespace sp::pg

// Defines the SQL-callable symbol `name`; the body is `static Datum name##_impl(FunctionCallInfo)`.
#define SP_FUNCTION(name)                                                                                  \
    static Datum name##_impl(FunctionCallInfo fcinfo);                                                     \
    extern "C" {                                                                                           \
    PG_FUNCTION_INFO_V1(name);                                                                             \
    Datum name(PG_FUNCTION_ARGS) { return sp::pg::cpp_call([&]() -> Datum { return name##_impl(fcinfo); }); } \
    }                                                                                                      \
    static Datum name##_impl(FunctionCallInfo fcinfo)
