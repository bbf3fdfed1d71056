// Parameters of the SVA accelerator (sva_accel.h), a device like Intel's Data Streaming
// Accelerator: processes submit work descriptors carrying their PASID to one shared work
// queue, engines execute them over buffers given by process virtual addresses. Plain C++,
// header-only; docs/devices.md gives each default's source or derivation.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ats_params.h"
#include "core/config.h"
#include "core/types.h"

namespace iommusim {

// The descriptor operations (DSA opcodes Memory Move, Memory Fill, Compare), or a mix.
enum class SvaOp : uint8_t { Copy, Fill, Compare, Mix };

inline const char* to_string(SvaOp o) {
    switch (o) {
        case SvaOp::Fill: return "fill";
        case SvaOp::Compare: return "compare";
        case SvaOp::Mix: return "mix";
        case SvaOp::Copy: break;
    }
    return "copy";
}
template <>
struct EnumParam<SvaOp> {
    static std::optional<SvaOp> parse(std::string_view s) {
        for (SvaOp o : values())
            if (s == to_string(o)) return o;
        return std::nullopt;
    }
    static std::string name(SvaOp o) { return to_string(o); }
    static std::vector<SvaOp> values() {
        return {SvaOp::Copy, SvaOp::Fill, SvaOp::Compare, SvaOp::Mix};
    }
};

struct SvaAccelParams {
    uint32_t processes = 4;       // processes (PASIDs) sharing the device
    uint32_t pasid_base = 1;      // process i has PASID pasid_base + i
    bool guest = false;           // the processes run in a guest (nested translation)
    uint64_t buffer = 1 << 20;    // bytes of each process's source and of its destination
    double unpopulated = 0.5;     // fraction of the buffers' pages not present at start
    uint64_t descriptors = 1000;  // work descriptors each process submits
    uint32_t size = 4096;         // bytes per descriptor (transfer size)
    SvaOp op = SvaOp::Mix;        // copy, fill, compare, or a uniform mix of the three
    uint32_t inflight = 8;        // descriptors a process has submitted and not completed
    uint32_t wq_size = 128;       // shared work queue entries
    uint32_t engines = 4;         // engines executing descriptors at once
    double engine_gbps = 7.5;     // one engine's data rate, GB/s (bytes read or written)
    double descriptor_ns = 100;   // an engine's fixed work per descriptor
    double submit_ns = 100;       // ENQCMD: the non-posted write to the portal and its status
    double retry_ns = 1000;       // a process's back-off after a Retry (queue full)
    uint64_t seed = 1;
    uint32_t bus = 1, device = 0, function = 0;  // requester BDF
    AtsParams ats = [] {
        AtsParams a;
        a.enable = a.pri = true;  // SVA: the device translates through its ATC, faults by PRI
        return a;
    }();

    template <typename V>
    void visit(V&& v) {
        v("processes", processes, "", "processes (PASIDs) submitting to the shared work queue", 1,
          1024);
        v("pasid_base", pasid_base, "", "PASID of the first process (process i: base + i)", 1,
          Requester::kPasidMax - 1024);
        v("guest", guest, "",
          "processes run in a guest: nested translation, page requests go to the guest", 0, 1);
        v("buffer", buffer, "bytes", "each process's source buffer, and its destination buffer",
          4096, uint64_t(1) << 36);
        v("unpopulated", unpopulated, "",
          "fraction of the buffers' pages not present at start (faulted in through PRI)", 0.0, 1.0);
        v("descriptors", descriptors, "descriptors", "work descriptors each process submits", 1,
          uint64_t(1) << 40);
        v("size", size, "bytes", "bytes per descriptor (at most the buffer)", 1, 1u << 30);
        v("op", op, "", "descriptor operation: copy, fill, compare or mix (uniform)", 0, 3);
        v("inflight", inflight, "descriptors",
          "descriptors a process keeps submitted (it polls their completion records)", 1, 128);
        v("wq_size", wq_size, "entries", "shared work queue entries (ENQCMD beyond: Retry)", 1,
          4096);
        v("engines", engines, "", "engines executing descriptors at once", 1, 1024);
        v("engine_gbps", engine_gbps, "GB/s", "one engine's data rate (bytes read or written)",
          0.001, 1000.0);
        v("descriptor_ns", descriptor_ns, "ns",
          "an engine's fixed work per descriptor (fetch from the queue, decode)", 0.0, 1e6);
        v("submit_ns", submit_ns, "ns", "ENQCMD: portal write until its status returns", 0.0, 1e6);
        v("retry_ns", retry_ns, "ns", "a process's back-off after ENQCMD returns Retry", 0.0, 1e9);
        v("seed", seed, "", "seed of the processes' pages and descriptors", 0, ~uint64_t(0));
        v("requester.bus", bus, "", "requester bus number", 0, 255);
        v("requester.device", device, "", "requester device number", 0, 31);
        v("requester.function", function, "", "requester function number", 0, 7);
        ats.visit(v);
    }

    Requester requester() const { return Requester::bdf(bus, device, function); }
    // Bytes of a process's frames: source, destination, completion records, and one page of
    // slack per VMA for the guard the process places.
    uint64_t frame_bytes() const { return 2 * ((buffer + 4095) & ~uint64_t(4095)) + 4 * 4096; }

    bool valid(std::string* why = nullptr) const {
        std::string bad;
        if (size > buffer)
            bad = "size (" + std::to_string(size) + ") exceeds buffer (" + std::to_string(buffer) +
                  ")";
        else if (!(unpopulated >= 0.0 && unpopulated <= 1.0))
            bad = "unpopulated must be in 0..1";
        else if (inflight < 1 || inflight > 128)  // 32-byte records in one 4 KiB page
            bad = "inflight must be in 1..128 (completion records share one 4 KiB page)";
        else if (!(engine_gbps > 0))
            bad = "engine_gbps must be > 0";
        else if (bus > 255 || device > 31 || function > 7)
            bad = "requester out of range";
        else if (!ats.enable)
            bad = "ats = 0: an SVA device translates through its ATC (ats = 1)";
        else if (const std::string a = ats.check(); !a.empty())
            bad = a;
        if (!bad.empty() && why) *why = "sva-accel: " + bad;
        return bad.empty();
    }
};

}  // namespace iommusim
