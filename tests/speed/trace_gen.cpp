// A synthetic trace of N records for replay speed and memory measurements: buffers mapped,
// DMA'd (with recorded addresses) and unmapped in turn, like a driver's streaming DMA.
// Usage: trace_gen N OUT.trace[.gz]
#include <fmt/format.h>

#include <cstdlib>

#include "traces/trace.h"

using namespace iommusim;

int main(int argc, char** argv) {
    if (argc != 3) {
        fmt::print(stderr, "usage: trace_gen N OUT.trace[.gz]\n");
        return 2;
    }
    const uint64_t n = std::strtoull(argv[1], nullptr, 0);
    trace::Writer w(argv[2], "synthetic streaming DMA (trace_gen)");
    trace::Record r;
    r.req = Requester::bdf(0, 2, 0);
    uint64_t t = 1000, x = 88172645463325252ULL;
    for (uint64_t i = 0; i < n;) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const Addr iova = 0xFFF0'0000 - 0x1000 * (i / 8 % 256),
                   pa = 0x1'0000'0000 + ((x >> 20) % (1 << 20)) * 0x1000;
        r = trace::Record{};
        r.req = Requester::bdf(0, 2, 0);
        r.kind = trace::Kind::Map, r.time_ns = t, r.iova = iova, r.pa = pa, r.size = 0x1000,
        r.perm = kPermRW, r.domain = 1;
        w.write(r), ++i;
        for (int k = 0; k < 6 && i < n; ++k, ++i) {
            trace::Record d;
            d.kind = trace::Kind::Dma, d.req = r.req, d.time_ns = (t += 50), d.iova = iova + 64 * k;
            d.size = 64, d.dir = k % 2 ? trace::Dir::Write : trace::Dir::Read, d.pa = pa + 64 * k,
            d.has_pa = true;
            w.write(d);
        }
        if (i < n) {
            trace::Record u;
            u.kind = trace::Kind::Unmap, u.req = r.req, u.time_ns = (t += 50), u.iova = iova,
            u.size = 0x1000, u.domain = 1;
            w.write(u), ++i;
        }
    }
    w.close();
    return 0;
}
