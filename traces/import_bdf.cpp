// PCI function names as requester IDs.
#include "traces/import_bdf.h"

#include "traces/import_fields.h"

namespace iommusim::trace::import {

std::optional<uint16_t> bdf(std::string_view s) {
    // Optional PCI segment: "0000:00:02.0".
    const size_t first = s.find(':');
    if (first != std::string_view::npos && s.find(':', first + 1) != std::string_view::npos)
        s.remove_prefix(first + 1);
    size_t n = 0;
    const auto bus = hex(s, &n);
    if (!bus || n != 2 || s.size() < 4 || s[2] != ':') return std::nullopt;
    s.remove_prefix(3);
    const auto dev = hex(s, &n);
    if (!dev || n != 2 || s.size() < 4 || s[2] != '.') return std::nullopt;
    s.remove_prefix(3);
    const auto fn = hex(s, &n);
    if (!fn || n != s.size() || n > 2 || *bus > 0xff || *dev > 0x1f || *fn > 7) return std::nullopt;
    return uint16_t((*bus << 8) | (*dev << 3) | *fn);
}

}  // namespace iommusim::trace::import
