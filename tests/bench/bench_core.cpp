// Core speed: cache template hit lookups.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "core/cache.h"

using namespace iommusim;

static void BM_CacheHit(benchmark::State& state) {
    SetAssocCache<uint64_t, uint64_t> c({64, 8, Replacement::LRU, 1});
    std::vector<uint64_t> keys;
    for (uint64_t i = 0; i < 256; ++i) c.insert(i * 7919, i), keys.push_back(i * 7919);
    size_t i = 0;
    uint64_t sum = 0;
    for (auto _ : state) {
        sum += *c.lookup(keys[i++ & 255]);
    }
    benchmark::DoNotOptimize(sum);
    state.counters["lookups/s"] =
        benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CacheHit)->Name("core.cache.hit");
