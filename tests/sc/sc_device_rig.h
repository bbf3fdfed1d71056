// The rig of the per-I/O device benches (sc_nic, sc_nvme): the device (a PerIoDevice) with
// a test mapper, on a tap, on a fixed-latency memory, its statistics in their own group.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <systemc>

#include "core/sparse_memory.h"
#include "core/stats.h"
#include "core/time.h"
#include "devices/dma_engine_params.h"
#include "memory/fixed_memory.h"
#include "sc_test_mapper.h"

namespace iommusim::test {

template <typename Dev>
struct DeviceRig {
    StatGroup stats;
    TestMapper mapper;
    FixedMemory mem;
    std::unique_ptr<Tap> tap;
    std::unique_ptr<Dev> dev;

    template <typename Params, typename Layout>
    DeviceRig(const char* name, SparseMemory& store, Tick latency, const Params& p,
              const Layout& layout, uint32_t tags, Tick map_cost, Tick unmap_cost)
        : stats(name), mem(fmt::format("{}_mem", name).c_str(), store, to_sc_time(latency)) {
        mapper.map_cost = map_cost, mapper.unmap_cost = unmap_cost;
        DmaEngineParams e;
        e.tags = tags;
        tap = std::make_unique<Tap>(fmt::format("{}_tap", name).c_str(), p.requester().rid);
        dev = std::make_unique<Dev>(name, p, e, layout, &mapper, stats);
        dev->dma.bind(tap->target);
        tap->down.bind(mem.target);
    }
    auto r() const { return dev->result(); }
    uint64_t engine(const char* n) { return stats.child("engine").counter(n, "").value(); }
};

}  // namespace iommusim::test
