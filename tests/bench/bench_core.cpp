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

#include <fstream>
#include <random>

#include "core/sparse_memory.h"

namespace {
long rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * 4096;
}

// Host memory per simulated page touched, pages scattered over the whole 52-bit space: the
// store must stay proportional to what is touched, not to the address range.
void BM_SparseMemoryFootprint(benchmark::State& state) {
    const long pages = 65536;
    double per_page = 0;
    for (auto _ : state) {
        long before = rss_bytes();
        {
            SparseMemory m;
            std::mt19937_64 rng(3);
            for (long i = 0; i < pages; ++i)
                m.write64((rng() % SparseMemory::kLimit) & ~Addr(7), uint64_t(i));
            per_page = double(rss_bytes() - before) / double(m.pages_touched());
        }
    }
    state.counters["bytes/page"] = per_page;
}
}  // namespace
BENCHMARK(BM_SparseMemoryFootprint)->Name("core.memory.footprint")->Iterations(1);
