// Blocklists as operators get them (FireHOL netsets, Spamhaus DROP, fail2ban exports, their own
// feeds): one address or network per line, comments after '#' or ';', blank lines ignored.
#pragma once
#include "core/core_guard.hpp"

#include "core/address.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace sp::core {

struct BlocklistProblem {
    std::size_t line;     // 1-based
    std::string entry;    // the entry as written (at most 200 bytes of it)
    std::string error;
};

struct Blocklist {
    std::vector<Address> networks;           // distinct, in order of first appearance
    std::vector<std::size_t> network_lines;  // the line each came from
    std::vector<BlocklistProblem> problems;  // lines that are not one address or network
    std::size_t lines = 0;                   // lines read (with blank and comment-only ones)
    std::size_t duplicates = 0;              // entries naming a network an earlier line named
};

// Never fails on content: a bad line becomes a problem, the others are kept. Throws std::bad_alloc.
Blocklist parse_blocklist(const char* text, std::size_t len);

} // namespace sp::core
