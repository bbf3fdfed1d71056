// Synthetic inputs for speed and memory measurements (scripts/bench).
//   trace_gen N OUT.trace[.gz]
//     a trace of N records for replay: buffers mapped, DMA'd (with recorded addresses) and
//     unmapped in turn, like a driver's streaming DMA.
//   trace_gen --qemu-vtd LINES DIR [--no-kprobes]
//     a QEMU VT-d capture for `iommusim import qemu-vtd`: DIR/qemu-trace.log of about LINES
//     lines and the matching DIR/guest-ftrace.log (see qemu_capture below).
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include "traces/trace.h"

using namespace iommusim;

namespace {

// Devices in a strict-mode guest under QEMU with caching mode on, as scripts/capture-qemu-trace
// records them, at the scale of a heavy capture: each device in its own domain, all allocating
// IOVAs down from 0xfffff000 and reusing freed ones at once (so the domains' IOVA ranges
// overlap and a few hundred pages carry every translation), several I/Os in flight per device.
// Per I/O the guest maps (kprobe, iommu:map, qi_submit of the caching-mode flush), the device
// translates its pages (QEMU: IOTLB update or hit, vtd_dmar_translate, with the other vtd_*
// and device lines QEMU logs around them), and the guest unmaps (kprobe, iommu:unmap,
// qi_submit of the page flush); QEMU logs each descriptor with its queue and wait lines. The
// guest clock runs 0.02% fast against QEMU's, with an offset, as under TCG.
int qemu_capture(uint64_t lines, const std::string& dir, bool kprobes) {
    std::filesystem::create_directories(dir);
    const std::string qpath = dir + "/qemu-trace.log", gpath = dir + "/guest-ftrace.log";
    std::FILE* q = std::fopen(qpath.c_str(), "w");
    std::FILE* g = std::fopen(gpath.c_str(), "w");
    if (!q || !g) {
        fmt::print(stderr, "trace_gen: cannot write {} and {}\n", qpath, gpath);
        return 2;
    }
    struct Dev {
        unsigned bus_dev = 0;  // device number on bus 0
        uint64_t ptr = 0;      // the guest's struct iommu_domain
        uint32_t did = 0;
        std::vector<uint64_t> free;  // freed IOVAs, reused last-freed first
        uint64_t next = 0xfffff000;
        std::deque<std::pair<uint64_t, uint64_t>> live;  // (iova, gpa) in flight
    };
    std::vector<Dev> devs;
    for (unsigned i = 0; i < 6; ++i) {
        Dev d;
        d.bus_dev = 2 + i, d.ptr = 0xffff888003400000 + 0x1e00 * i, d.did = 1 + i;
        devs.push_back(d);
    }
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    auto rnd = [&] { return x ^= x << 13, x ^= x >> 7, x ^= x << 17; };
    const uint64_t base_s = 1796544099;
    uint64_t host_us = 0, qlines = 0, gpid = 26425;
    auto host = [&]() {
        host_us += 1 + rnd() % 3;
        return fmt::format("{}@{}.{:06}:", gpid, base_s + host_us / 1000000, host_us % 1000000);
    };
    // Guest time for a host time: 1.0002 x host + 12.5 s, in us.
    auto guest = [&](uint64_t us) {
        const uint64_t t = us + us / 5000 + 12500000;
        return fmt::format("{}.{:06}", t / 1000000, t % 1000000);
    };
    auto qline = [&](const std::string& s) {
        std::fputs(host().c_str(), q);
        std::fputs(s.c_str(), q);
        std::fputc('\n', q);
        ++qlines;
    };
    auto task = [&](const Dev& d) {
        return fmt::format("  fio-{} [00{}] ", 300 + d.did, d.did % 2);
    };
    uint64_t wait_addr = 0x2810804;
    // One descriptor through the invalidation queue, as QEMU logs it with its wait.
    auto queue = [&](const Dev& d, uint64_t lo, uint64_t hi, const char* what) {
        fmt::print(g, "{}d..1. {}: qi_submit: {} dmar0: {:#x} {:#x} 0x0 0x0\n", task(d),
                   guest(host_us), what, lo, hi);
        qline("vtd_reg_write_quad write quad addr 0x88 data 0x20");
        qline("vtd_inv_qi_tail write tail 2");
        qline("vtd_inv_qi_fetch fetch descriptor");
        qline(fmt::format("vtd_inv_desc invalidate desc type iotlb high {:#x} low {:#x}", hi, lo));
        qline(
            fmt::format("vtd_inv_desc_iotlb_pages iotlb invalidate pages domain {:#x} addr "
                        "{:#x} mask 0x0 hint 0x0",
                        d.did, hi & ~0xfffULL));
        qline(fmt::format("vtd_inv_desc invalidate desc type wait high {:#x} low 0x200000025",
                          wait_addr += 8));
        qline("vtd_inv_desc_wait_sw wait invalidation with status write");
        qline("vtd_inv_qi_head read head 2");
    };
    auto flush = [&](const Dev& d, uint64_t iova) {
        queue(d, 0xf2 | uint64_t(d.did) << 16, iova, "iotlb_inv");
    };
    while (qlines < lines) {
        Dev& d = devs[rnd() % devs.size()];
        const uint16_t sid = uint16_t(d.bus_dev << 3);
        if (d.live.size() < 4 && (d.live.empty() || rnd() % 3)) {
            // Map one page for an I/O.
            uint64_t iova;
            if (!d.free.empty())
                iova = d.free.back(), d.free.pop_back();
            else
                iova = d.next, d.next -= 0x1000;
            const uint64_t gpa = 0x2000000 + (rnd() % 0x8000) * 0x1000;
            if (kprobes)
                fmt::print(g,
                           "{}d..1. {}: iommusim_map: (__iommu_map+0x0/0x1a0) domain={:#x} "
                           "iova={:#x} paddr={:#x} size=4096\n",
                           task(d), guest(host_us), d.ptr, iova, gpa);
            fmt::print(g,
                       "{}..... {}: map: IOMMU: iova={:#018x} - {:#018x} paddr={:#018x} "
                       "size=4096\n",
                       task(d), guest(host_us), iova, iova + 0x1000, gpa);
            flush(d, iova);
            d.live.push_back({iova, gpa});
            // The device translates it: an IOTLB miss, then hits.
            const unsigned n = 1 + unsigned(rnd() % 8);
            for (unsigned k = 0; k < n; ++k) {
                const uint64_t off = (rnd() % 64) * 64;
                qline(
                    fmt::format("vtd_iotlb_cc_hit IOTLB context hit bus 0x0 devfn 0x{:x} high "
                                "0x102 low 0x3a1f001 gen 0",
                                d.bus_dev << 3));
                qline(fmt::format(
                    "vtd_iotlb_page_{} IOTLB page {} sid {:#x} iova {:#x} slpte "
                    "{:#x} domain {:#x}",
                    k ? "hit" : "update", k ? "hit" : "update", sid, iova + off, gpa | 3, d.did));
                qline(
                    fmt::format("vtd_dmar_translate dev 00:{:02x}.00 iova {:#x} -> gpa {:#x} "
                                "mask 0xfff",
                                d.bus_dev, iova, gpa));
                qline("pci_nvme_mmio_write addr 0x1008 data 0x1 size 4");
            }
        } else {
            // Unmap the oldest in flight (strict: flushed at once, the IOVA free again).
            const auto [iova, gpa] = d.live.front();
            d.live.pop_front();
            if (kprobes)
                fmt::print(g,
                           "{}d..1. {}: iommusim_unmap: (__iommu_unmap+0x0/0x120) domain={:#x} "
                           "iova={:#x} size=4096\n",
                           task(d), guest(host_us), d.ptr, iova);
            fmt::print(g,
                       "{}d.h1. {}: unmap: IOMMU: iova={:#018x} - {:#018x} size=4096 "
                       "unmapped_size=4096\n",
                       task(d), guest(host_us), iova, iova + 0x1000);
            flush(d, iova);
            d.free.push_back(iova);
        }
    }
    const bool ok = std::fclose(q) == 0 && std::fclose(g) == 0;
    if (!ok) fmt::print(stderr, "trace_gen: writing {} failed\n", dir);
    return ok ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 4 && std::string(argv[1]) == "--qemu-vtd")
        return qemu_capture(std::strtoull(argv[2], nullptr, 0), argv[3],
                            !(argc > 4 && std::string(argv[4]) == "--no-kprobes"));
    if (argc != 3) {
        fmt::print(stderr,
                   "usage: trace_gen N OUT.trace[.gz]\n"
                   "       trace_gen --qemu-vtd LINES DIR [--no-kprobes]\n");
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
