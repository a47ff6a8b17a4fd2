#include "pg/address_pg.hpp"

#include <cstring>
#include <string>

namespace sp::pg {

core::Address parse_address_arg(text* arg) {
    const char* data = VARDATA_ANY(arg);
    int len = VARSIZE_ANY_EXHDR(arg);
    core::Address a;
    core::ParseError err = core::parse_address(data, std::size_t(len), a);
    if (err == core::ParseError::None) return a;
    // Clip on a character boundary so the message stays valid in the server encoding.
    int shown = 0;
    pg_call([&] { shown = pg_mbcliplen(data, len, 80); });
    std::string msg = "invalid IP address or network: \"";
    msg.append(data, std::size_t(shown));
    if (shown < len) msg += "...";
    msg += "\" (";
    msg += core::describe(err);
    msg += ")";
    throw SqlError(ERRCODE_INVALID_TEXT_REPRESENTATION, msg,
                   "Use an IPv4 or IPv6 address (1.2.3.4, 2001:db8::1) or a network without host bits (10.0.0.0/8).");
}

core::Address address_from_inet(const inet* ip) noexcept {
    core::Address a;
    if (ip_family(ip) == PGSQL_AF_INET) {
        a.family = core::Family::V4;
        std::memcpy(a.bytes, ip_addr(ip), 4);
    } else {
        a.family = core::Family::V6;
        std::memcpy(a.bytes, ip_addr(ip), 16);
    }
    a.prefix = ip_bits(ip);
    return core::fold_mapped_v4(a);
}

inet* inet_from_address(const core::Address& a) {
    inet* res = static_cast<inet*>(palloc0(sizeof(inet)));
    bool v4 = a.family == core::Family::V4;
    ip_family(res) = v4 ? PGSQL_AF_INET : PGSQL_AF_INET6;
    ip_bits(res) = a.prefix;
    std::memcpy(ip_addr(res), a.bytes, v4 ? 4 : 16);
    SET_INET_VARSIZE(res);
    return res;
}

} // namespace sp::pg
