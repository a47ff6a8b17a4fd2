// Conversions between core::Address and PostgreSQL's text and inet.
#pragma once
#include "core/address.hpp"
#include "pg/pg_headers.hpp"

namespace sp::pg {

// Parses a text argument; a bad one raises 22P02 naming (a clipped copy of) the input.
core::Address parse_address_arg(text* arg);

// inet -> Address (with IPv4-mapped IPv6 folded to IPv4, as the parser does). No allocation.
core::Address address_from_inet(const inet* ip) noexcept;

// Address -> palloc'd inet. Call from PostgreSQL side (inside pg_call).
inet* inet_from_address(const core::Address& a);

} // namespace sp::pg
