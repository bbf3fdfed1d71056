// Internal to the QEMU importer: the guest's trace clock against QEMU's, from causal anchors
// that do not depend on the map/unmap events being placed (docs/traces.md, "Alignment").
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace iommusim::trace::align {

// One vtd_inv_desc of QEMU's log: its two descriptor words and where it sits on the timeline.
struct HostDesc {
    uint64_t ns = 0;  // QEMU's clock
    uint64_t lo = 0, hi = 0;
    size_t before = 0;  // timeline items before it
    size_t after = 0;   // timeline items up to and including its own record
};

// One guest intel_iommu:qi_submit.
struct GuestDesc {
    uint64_t t = 0;  // guest clock (ns, or a raw count)
    uint64_t qw0 = 0, qw1 = 0;
};

// guest = a * host + b (host in ns; guest in ns or in counts).
struct ClockFit {
    bool fitted = false;
    double a = 1, b = 0;
    size_t anchors = 0;    // matched descriptor pairs
    size_t outliers = 0;   // of those, left out of the final fit (residual far beyond the rest)
    size_t pasid = 0;      // guest PASID descriptors, which QEMU 7.2 does not log
    size_t unmatched = 0;  // other guest descriptors not found in QEMU's log
    double bound_ns = 0;   // largest |host - fitted host| over the anchors kept
    double worst_ns = 0;   // the same over all anchors (outliers included)
    // Guest time -> QEMU's clock.
    uint64_t host(uint64_t guest) const;
    // One line for the import summary.
    std::string describe(bool raw_counts) const;
};

// The k-th guest descriptor <-> QEMU's line with the same words, in order. Guest descriptors
// of types QEMU 7.2 does not log (PASID-IOTLB 6, PASID-cache 7) are skipped, as is any not
// found among the next few QEMU lines. Returns (guest index, host index) pairs.
std::vector<std::pair<size_t, size_t>> match(const std::vector<GuestDesc>& guest,
                                             const std::vector<HostDesc>& host);

// Least squares over (host, guest) pairs, refitted on the anchors whose residual is within 4
// times the median one of all anchors (at least 1 us): a guest clock that steps during boot
// (calibration) must not tilt the line through the rest. Fewer than two distinct host times: not
// fitted.
ClockFit fit(const std::vector<std::pair<uint64_t, uint64_t>>& host_guest);

// Per guest event time (sorted), the timeline slots it must lie in: after the QEMU line of the
// last matched descriptor the guest queued before it, before the line of the first one after
// (QEMU processes the queue inside the guest's register write). {0, timeline size} if none.
std::vector<std::pair<size_t, size_t>> causal_windows(
    const std::vector<uint64_t>& guest_times, const std::vector<GuestDesc>& guest,
    const std::vector<HostDesc>& host, const std::vector<std::pair<size_t, size_t>>& pairs,
    size_t timeline_size);

// A guest block request (block_rq_issue .. block_rq_complete, guest clock) and a device
// command of QEMU's (pci_nvme_read/write, virtio_blk_handle_*), both in 512-byte sectors.
struct GuestBlock {
    uint64_t issue = 0, complete = 0;
    uint64_t sector = 0, sectors = 0;
    bool write = false;
};
struct HostBlock {
    uint64_t ns = 0;
    uint64_t sector = 0, sectors = 0;
    bool write = false;
};

// The inequality anchors issue <= device command <= complete against a fit: each request is
// paired with the unused device command of the same sectors and direction nearest to its
// fitted midpoint; `slack_ns` is how far the worst lies outside its fitted window.
struct BlockCheck {
    size_t requests = 0, matched = 0, outside = 0;  // outside: beyond the fit's bound
    double slack_ns = 0;
    std::string describe(const ClockFit& f) const;
};
BlockCheck check_block(const ClockFit& f, const std::vector<GuestBlock>& guest,
                       const std::vector<HostBlock>& host);

}  // namespace iommusim::trace::align
