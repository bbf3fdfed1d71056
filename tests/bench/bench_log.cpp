// The cost of a log call whose channel is off (core/log.h): one load of the channel's cached
// level and a predictable branch; neither the time nor the arguments are evaluated.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "core/log.h"

using namespace iommusim;

namespace {
// What a real call site formats: never run while the channel is off.
std::string describe(uint64_t v) {
    return std::to_string(v) + " (described)";
}
}  // namespace

static void BM_LogDisabled(benchmark::State& state) {
    const log::Channel ch("bench.log.off");  // no rule names it
    uint64_t x = 0;
    for (auto _ : state) {
        IOMMUSIM_LOG(ch, Debug, x * 1000, "value {:#x}: {}", x, describe(x));
        benchmark::DoNotOptimize(++x);
    }
    state.counters["calls/s"] =
        benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LogDisabled)->Name("core.log.disabled_call");
