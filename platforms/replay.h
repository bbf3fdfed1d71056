// Replay of a recorded trace through a chosen IOMMU design: maps and unmaps go to the VT-d
// driver model (real tables, its invalidations executed by the unit), recorded invalidations
// to the unit too, and every DMA is translated by the timed translation unit, page by page,
// its walks paying the DRAM model's latency. Each translation with a recorded physical
// address is checked. The trace is streamed: memory stays flat in trace length.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/stats.h"
#include "iommu/unit_params.h"
#include "memory/dram.h"

namespace iommusim {

struct ReplayParams {
    bool timed = true;           // DMAs at their recorded times; false: closed loop, back to back
    uint64_t unknown_size = 64;  // bytes of a DMA whose size was not recorded
    bool scalable = false;       // VT-d scalable mode (legacy otherwise)
    bool stop_on_error = true;   // a bad trace line stops the replay (else it is skipped)
    uint64_t max_records = 0;    // 0 = all

    template <typename V>
    void visit(V&& v) {
        v("timed", timed, "", "issue DMAs at their recorded times (else closed loop)", 0, 1);
        v("unknown_size", unknown_size, "bytes", "size of a DMA whose size the trace does not know",
          1, 1 << 20);
        v("scalable", scalable, "", "replay through a scalable-mode VT-d unit", 0, 1);
        v("stop_on_error", stop_on_error, "", "stop at the first bad trace line (else skip it)", 0,
          1);
        v("max_records", max_records, "records", "replay at most this many records; 0 = all", 0,
          ~uint64_t(0));
    }
};

struct Mismatch {
    uint64_t line;
    Requester req;
    Addr iova, expected, got;
    bool fault;
};

struct ReplayResult {
    uint64_t records = 0, maps = 0, unmaps = 0, invalidations = 0, dmas = 0, faults_recorded = 0;
    uint64_t translations = 0, translations_checked = 0, mismatches = 0, faults = 0;
    std::vector<Mismatch> first_mismatches;  // up to 10
    std::vector<std::string> errors;         // trace errors (file:line: what)
    double wall_seconds = 0;
};

class Replay {
public:
    // Binds its parameters (system.replay, system.iommu0, system.memory) in `registry`.
    explicit Replay(ParamRegistry& registry);
    ~Replay();
    // Replays `path` (after the registry has applied the configuration); statistics under
    // `stats` (replay.*, iommu0.*, memory.*).
    ReplayResult run(const std::string& path, StatGroup& stats);

private:
    ReplayParams params_;
    UnitParams unit_;
    DramParams dram_;
};

}  // namespace iommusim
