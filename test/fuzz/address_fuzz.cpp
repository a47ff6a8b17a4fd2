// libFuzzer target for the address parser/normaliser and formatter. Invariants checked:
// no crash or sanitizer report; a parsed address formats to text that parses back to the same
// address; every accepted network has no host bits.
#include "core/address.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace sp::core;
    Address a;
    if (parse_address(reinterpret_cast<const char*>(data), size, a) != ParseError::None) return 0;
    if (!(mask_to(a, a.prefix) == a)) std::abort();
    char buf[64];
    std::size_t n = format_address(a, buf, sizeof buf);
    if (n == 0 || n >= sizeof buf || std::strlen(buf) != n) std::abort();
    Address again;
    if (parse_address(buf, n, again) != ParseError::None) std::abort();
    if (!(again == a)) std::abort();
    return 0;
}
