// Process address spaces a device works in by PASID (shared virtual addressing), as the
// host's architecture gives them out: a process bound to (the device's RID, a PASID), its
// VMAs (partly unpopulated, faulted in by the host's page request service) and what a
// translation of one of its addresses should give now. The platform reaches an
// architecture's implementation through its DeviceDomain (bundles/bundle.h) and hands it to
// the device model (devices/device_kind.h), so that neither names the other.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "expectation.h"
#include "types.h"

namespace iommusim {

struct SvaProcessSpec {
    std::string name = "process";
    uint32_t pasid = 1;
    uint64_t frames = 0;  // bytes of memory its pages are allocated from (page multiple)
    // A process in a guest: its first-level table is the guest's (guest-physical), under the
    // host's second level (nested translation, PGTT = nested); its page requests go to the
    // guest's handler.
    bool guest = false;
};

class SvaSpaces {
public:
    virtual ~SvaSpaces() = default;
    // A new process bound to (RID, spec.pasid): its index, or nullopt and `why`.
    virtual std::optional<size_t> create_process(const SvaProcessSpec& spec, std::string* why) = 0;
    // A VMA of `size` bytes with `perm` in process `proc`: each page present now with
    // probability `populated` (0..1), chosen by `seed`. Its address, or nullopt and `why`.
    virtual std::optional<Addr> mmap(size_t proc, uint64_t size, Perm perm, double populated,
                                     uint64_t seed, std::string* why) = 0;
    // What a translation of `va` in process `proc` gives now (host-physical): the intent.
    virtual Expectation intent(size_t proc, Addr va) const = 0;
};

}  // namespace iommusim
