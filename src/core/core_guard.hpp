// Included first by every core header: the core must stay free of PostgreSQL so it can be
// unit-tested and fuzzed without a server. Including postgres.h before a core header fails here.
#pragma once
#ifdef POSTGRES_H
static_assert(false, "src/core must not see postgres.h: include core headers before server headers");
#endif
