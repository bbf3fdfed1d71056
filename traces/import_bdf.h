// PCI function names ("00:02.0", QEMU's "00:02.00", "0000:00:02.0") as requester IDs.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace iommusim::trace::import {

// A PCI function "BB:DD.F", "BB:DD.FF" (QEMU prints the function with two digits) or with a
// segment "SSSS:BB:DD.F", as a requester ID.
std::optional<uint16_t> bdf(std::string_view s);

}  // namespace iommusim::trace::import
