// libFuzzer target for the blocklist parser: any text is split into networks and problems without
// crashing, and what it keeps is distinct, re-parses to itself and is counted consistently.
#include "core/blocklist.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* text = reinterpret_cast<const char*>(data);
    sp::core::Blocklist b = sp::core::parse_blocklist(text, size);
    if (b.networks.size() != b.network_lines.size()) std::abort();
    if (b.networks.size() + b.problems.size() + b.duplicates > b.lines) std::abort();
    for (std::size_t i = 0; i < b.networks.size(); ++i) {
        char buf[64];
        std::size_t n = sp::core::format_address(b.networks[i], buf, sizeof buf);
        sp::core::Address again;
        if (sp::core::parse_address(buf, n, again) != sp::core::ParseError::None || !(again == b.networks[i])) std::abort();
        if (b.network_lines[i] < 1 || b.network_lines[i] > b.lines) std::abort();
        if (i > 0 && b.network_lines[i] < b.network_lines[i - 1]) std::abort();
        for (std::size_t j = 0; j < i && b.networks.size() < 64; ++j)
            if (b.networks[j] == b.networks[i]) std::abort();
    }
    for (const auto& p : b.problems)
        if (p.line < 1 || p.line > b.lines || p.entry.size() > 200 || p.error.empty()) std::abort();
    return 0;
}
