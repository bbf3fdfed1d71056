// The malicious-device property bench (sc_malicious_*.cpp): full VT-d platforms (DMA engines
// on their own PCIe links, a root complex with ACS source validation, the region router, the
// VT-d unit with its register file and in-memory invalidation queue, DRAM) in which a host
// process maps and unmaps random buffers (4 KiB, 2 MiB and 1 GiB pages, partial unmaps of
// large pages) through the driver model, strict or lazy, while every device attacks: DMA to
// random IOVAs, to IOVAs its domain just unmapped (after touching them, so that the IOTLB
// holds them), to other domains' live IOVAs, writes to read-only buffers, requests carrying
// another device's RID or an unattached PASID, mixed with legitimate DMA.
//
// A guard between the unit and DRAM judges every access that reaches memory against the
// driver's intent at that moment (the access's IOVA is recovered from its offset in the
// device's request). An escape is an access to a physical address the device's domain does
// not map at that IOVA, or without the permission. Strict: none may happen. Lazy: an access
// to an IOVA whose invalidation is still deferred (in the flush window) that lands where the
// old mapping pointed is the documented exposure and is counted apart; the bench must see
// some, so that it fails when the window stops being observed. Any other escape fails.
//
// Configurations are platforms side by side in one simulation; the quanta run one after the
// other (the global quantum changes between phases, while every device is idle).
#pragma once
#include <fmt/format.h>

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "arch/vtd/vtd_regs.h"
#include "bundles/vtd/vtd_iommu.h"
#include "devices/dma_engine.h"
#include "host/dma_api.h"
#include "host/vtd_bringup.h"
#include "host/vtd_driver.h"
#include "host/vtd_inv_queue.h"
#include "iommu/region_router.h"
#include "memory/dram.h"
#include "memory/mux.h"
#include "pcie/pcie_link.h"
#include "pcie/root_complex.h"
#include "sc_harness.h"
#include "support/property.h"

namespace iommusim::test::malicious {

using sc_core::SC_NS;
using sc_core::sc_time;

enum Kind : unsigned { Legit, Random, Unmapped, CrossDomain, WriteReadOnly, Spoof, Pasid, kKinds };
inline const char* const kKindNames[kKinds] = {"legit",    "random", "unmapped", "cross",
                                               "ro-write", "spoof",  "pasid"};

constexpr unsigned kDevices = 4;
constexpr Addr k4K = Addr(1) << 12, k2M = Addr(1) << 21, k1G = Addr(1) << 30;
constexpr Addr kPaBase = Addr(1) << 40;   // data buffers: far from the tables and the queue
constexpr Addr kPaSpan = Addr(64) << 30;  // physical range of one domain's buffers
constexpr size_t kRecent = 16;            // unmapped ranges a device remembers
constexpr size_t kLogged = 8;             // escapes described in full

struct PlatformSpec {
    std::string name;
    bool scalable = false;
    bool strict = true;
    unsigned fl_domains = 0;  // scalable: this many of the devices' domains are first-level
    UnitParams unit;
};

// One platform's counts over one phase.
struct Counts {
    uint64_t transfers = 0, malicious = 0, faulted = 0;
    std::array<uint64_t, kKinds> by_kind{}, faulted_by_kind{};
    uint64_t accesses = 0;       // accesses that reached memory, each judged
    uint64_t escapes = 0;        // outside the device's mappings (and any flush window)
    uint64_t in_window = 0;      // lazy: to a deferred IOVA, where its old mapping pointed
    uint64_t unattributed = 0;   // reached memory while no device request was in flight
    uint64_t spurious = 0;       // faulted although the intent allowed the access
    uint64_t stale_outside = 0;  // stale IOTLB hits outside any flush window
    uint64_t maps = 0, maps_2m = 0, maps_1g = 0, unmaps = 0, partial_unmaps = 0;
};

struct Buffer {
    Addr iova = 0, size = 0, pa = 0, page = k4K;
    Perm perm = kPermRW;
    std::vector<std::pair<Addr, Addr>> holes;  // partially unmapped [iova, +size)
    bool in_hole(Addr a) const {
        for (const auto& [b, s] : holes)
            if (a >= b && a - b < s) return true;
        return false;
    }
};

struct Domain {
    uint16_t did = 0;
    Requester req;
    bool first_level = false;
    Addr pa_base = 0, pa_next = 0;
    std::vector<Buffer> live;
    std::deque<std::pair<Addr, Addr>> recent;  // last unmapped ranges, newest first
    IntentMap history;  // unmapped ranges and where they pointed, until the IOVA is reused
    Addr last_touched = ~Addr(0);
};

// The device request being transported: one at a time, since nothing in the data path
// waits. Set by the device's tap around b_transport.
struct Active {
    unsigned dev = 0;
    Kind kind = Legit;
    Addr iova = 0;
    uintptr_t data = 0;
    unsigned len = 0;
    bool write = false;
};

// Between a device's DMA engine and its link: records each request so that the guard at
// memory can recover the IOVA of what arrives there from its data pointer.
struct Tap : sc_core::sc_module {
    tlm_utils::simple_target_socket<Tap> in{"in"};
    tlm_utils::simple_initiator_socket<Tap> out{"out"};
    const Active*& active;
    Active rec;
    Kind kind = Legit;  // of the transfer the engine is issuing

    Tap(sc_core::sc_module_name n, const Active*& a, unsigned dev) : sc_module(n), active(a) {
        rec.dev = dev;
        in.register_b_transport(this, &Tap::b_transport);
    }
    void b_transport(tlm::tlm_generic_payload& p, sc_time& d) {
        rec.kind = kind;
        rec.iova = p.get_address();
        rec.data = reinterpret_cast<uintptr_t>(p.get_data_ptr());
        rec.len = p.get_data_length();
        rec.write = p.is_write();
        const Active* outer = active;
        active = &rec;
        out->b_transport(p, d);
        active = outer;
    }
};

class Platform;

class Device : public sc_core::sc_module {
public:
    DmaEngine engine;
    Tap tap;
    PcieLink link;

    Device(sc_core::sc_module_name n, Platform& p, unsigned index, uint64_t seed);
    // A phase: `budget` malicious transfers (and the legitimate ones in between).
    void start(uint64_t budget) {
        budget_ = budget, malicious_ = 0, done_ = false;
        engine.kick();
    }

private:
    bool next(DmaTransfer& t);
    Kind target(Kind k, DmaTransfer& t);
    Addr random_iova();
    static DmaEngineParams engine_params() {
        DmaEngineParams p;
        p.tags = 8;  // several requests in flight: later ones meet earlier ones' walks
        return p;
    }

    Platform& pf_;
    unsigned index_;
    Rng rng_;
    uint64_t budget_ = 0, malicious_ = 0;
    bool done_ = true;
    std::deque<DmaTransfer> follow_;  // queued follow-ups (a write after a read)
};

// Between the unit and DRAM: judges every access against the intent, then lets it through.
class Guard : public sc_core::sc_module {
public:
    tlm_utils::simple_target_socket<Guard> in{"in"};
    tlm_utils::simple_initiator_socket<Guard> out{"out"};
    Guard(sc_core::sc_module_name n, Platform& p) : sc_module(n), pf_(p) {
        in.register_b_transport(this, &Guard::b_transport);
    }

private:
    void b_transport(tlm::tlm_generic_payload& p, sc_time& d);
    Platform& pf_;
};

class Platform : public sc_core::sc_module {
public:
    const PlatformSpec spec;
    StatGroup stats;
    SparseMemory store;
    vtd::Driver drv;
    vtd::InvQueueWriter queue;
    VtdIommu iommu;
    VtdQueueFeeder feeder;
    HostDriverParams host;
    RegionRouter router;
    RootComplex rc;
    Mux data_mux{"data_mux"};
    Guard guard{"guard", *this};
    Dram dram;
    const Active* active = nullptr;
    std::vector<Domain> domains;
    std::vector<std::unique_ptr<Device>> devices;
    Counts c;
    std::vector<std::string> log;     // the first escapes and oddities, described
    std::vector<std::string> errors;  // the bench's own set-up failures
    bool ready = false;               // brought up, domains attached, first buffers mapped
    bool phase_running = false;
    sc_core::sc_event ready_ev, phase_done;

    SC_HAS_PROCESS(Platform);
    Platform(sc_core::sc_module_name n, const PlatformSpec& s, uint64_t seed)
        : sc_module(n),
          spec(s),
          stats(s.name),
          drv(store, driver_config(s)),
          queue(store, Addr(120) << 30, 0, s.scalable),
          iommu("iommu", vtd::RegFileConfig::scalable_unit(), drv.hw(), s.unit,
                stats.child("iommu")),
          feeder(drv, iommu, queue),
          router("router", stats.child("router")),
          rc("rc", RootComplexParams{}, stats.child("rc")),
          dram("dram", store, DramParams{}, stats.child("memory"), seed),
          rng_(seed) {
        host.strict = s.strict;
        rc.host.bind(router.upstream);
        router.units.bind(iommu.unit().upstream);
        router.bypass.bind(data_mux.inputs);  // no bypass region: unused
        iommu.unit().downstream.bind(data_mux.inputs);
        data_mux.output.bind(guard.in);
        guard.out.bind(dram.target);
        iommu.unit().walk.bind(dram.walk);
        router.set_default_regions({{"all", 0, ~Addr(0), DmaRegion::Kind::Translate, 0, 0}});
        for (unsigned i = 0; i < kDevices; ++i) {
            Domain d;
            d.req = Requester::bdf(0x10 + i, 0, 0);
            d.first_level = s.scalable && i < s.fl_domains;
            d.pa_base = d.pa_next = kPaBase + Addr(i) * kPaSpan;
            domains.push_back(std::move(d));
            devices.push_back(std::make_unique<Device>(fmt::format("dev{}", i).c_str(), *this, i,
                                                       seed * 7919 + i));
            devices.back()->link.host.bind(rc.root_port);
            rc.set_bus_range(i, uint8_t(0x10 + i), uint8_t(0x10 + i));  // ACS per port
        }
        SC_THREAD(run_host);
    }

    // Start a phase in which each device makes `budget` malicious DMAs.
    void start_phase(uint64_t budget) {
        c = Counts{};
        devices_done_ = 0;
        phase_running = true;
        base_stale_ = unit_counter("stale_hits");
        for (auto& d : devices) d->start(budget);
        start_.notify(sc_core::SC_ZERO_TIME);
    }
    void device_done() {
        if (++devices_done_ == devices.size()) devices_done_ev_.notify(sc_core::SC_ZERO_TIME);
    }
    uint64_t unit_counter(const std::string& name) {
        return stats.child("iommu").counter(name, "").value();
    }
    uint64_t stale_hits_this_phase() { return unit_counter("stale_hits") - base_stale_; }
    void note(std::string s) {
        if (log.size() < kLogged) log.push_back(std::move(s));
    }

private:
    static vtd::DriverConfig driver_config(const PlatformSpec& s) {
        vtd::DriverConfig c;
        c.hw.scalable = s.scalable;
        c.strict = s.strict;
        c.lazy.entries = 32;  // short windows: IOVAs come back into use within a phase
        c.lazy.timeout_ns = 20'000;
        return c;
    }
    static Tick now() { return to_ticks(sc_core::sc_time_stamp()); }

    void bring_up();
    void run_host();
    void step();
    Tick map(Domain& d, Tick at);
    Tick unmap(Domain& d, size_t which, Tick at);
    Tick unmap_part(Domain& d, Tick at);
    void forget(Domain& d, Addr iova, Addr size, Addr pa, Perm perm);

    Rng rng_;
    size_t devices_done_ = 0;
    uint64_t base_stale_ = 0;
    sc_core::sc_event start_, devices_done_ev_;
};

// ---- the host ----

inline void Platform::bring_up() {
    Tick t = vtd::enable_unit(iommu, drv.hw().rtaddr, spec.scalable, queue.iqa(), now(),
                              vtd::WriteOrder::Chained);
    for (Domain& d : domains) {
        vtd::DomainOptions o;
        o.stage = d.first_level ? vtd::Stage::FirstLevel : vtd::Stage::SecondLevel;
        std::string why;
        auto did = drv.create_domain(o, &why);
        if (!did || !drv.attach(d.req.rid, *did, &why)) {
            errors.push_back(
                fmt::format("{}: domain for {}: {}", spec.name, to_string(d.req), why));
            continue;
        }
        d.did = *did;
    }
    t = feeder.submit(t);
    iommu.unit().engine().set_oracle(
        [this](const Requester& r, Addr a) { return drv.expect(r, a); });
    // Every translation of a device's own untagged requests: a fault the intent does not
    // explain, or a stale hit outside any flush window, is a finding of its own.
    iommu.unit().on_translate(
        [this](const Requester& r, Addr iova, Tick, const TranslateOutcome& o) {
            if (!active) return;
            const Domain& d = domains[active->dev];
            if (r.rid != d.req.rid || r.has_pasid()) return;  // judged at memory
            if (!o.result.ok()) {
                const Expectation e = drv.expect(d.req, iova);
                const Perm need = perm_needed(active->write ? Access::Write : Access::Read, false);
                if (e.mapped && permits(e.perm, need)) {
                    ++c.spurious;
                    note(fmt::format("spurious fault: {} iova {:#x} mapped to {:#x}", to_string(r),
                                     iova, e.pa));
                }
            }
            if (o.stale && (spec.strict || !drv.in_flush_window(d.did, iova))) {
                ++c.stale_outside;
                note(fmt::format("stale hit outside a flush window: {} iova {:#x} -> {:#x}",
                                 to_string(r), iova, o.result.tr.out));
            }
        });
    if (t > now()) wait(to_sc_time(t - now()));
}

inline void Platform::run_host() {
    bring_up();
    for (Domain& d : domains)  // something to attack from the start
        while (d.did && d.live.size() < 4) map(d, now());
    ready = true;
    ready_ev.notify(sc_core::SC_ZERO_TIME);
    for (;;) {
        while (!phase_running) wait(start_);
        while (devices_done_ < devices.size()) {
            step();
            wait(sc_time(double(rng_.range(100, 1500)), SC_NS), devices_done_ev_);
        }
        phase_running = false;
        phase_done.notify(sc_core::SC_ZERO_TIME);
    }
}

inline void Platform::step() {
    const Tick t = now();
    if (!spec.strict) {  // the flush queue's timer
        drv.tick(t / kTicksPerNs);
        feeder.submit(t);
    }
    Domain& d = domains[rng_.below(domains.size())];
    if (!d.did) return;
    bool large = false;
    for (const Buffer& b : d.live) large |= b.page > k4K;
    const unsigned r = unsigned(rng_.below(100));
    Tick done;
    if (d.live.size() < 3 || (r < 40 && d.live.size() < 10))
        done = map(d, t);
    else if (r < 75 || !large)
        done = unmap(d, d.live.size(), t);
    else
        done = unmap_part(d, t);
    if (done > now()) wait(to_sc_time(done - now()));
}

inline Tick Platform::map(Domain& d, Tick at) {
    bool have_1g = false;
    for (const Buffer& b : d.live) have_1g |= b.page == k1G;
    Buffer b;
    const unsigned r = unsigned(rng_.below(100));
    if (r < 6 && !have_1g)
        b.page = k1G, b.size = k1G;
    else if (r < 30)
        b.page = k2M, b.size = k2M * rng_.range(1, 2);
    else
        b.page = k4K, b.size = k4K * rng_.range(1, 8);
    b.perm = rng_.chance(30) ? kPermR : kPermRW;
    b.pa = (d.pa_next + b.page - 1) & ~(b.page - 1);
    if (b.pa + b.size > d.pa_base + kPaSpan) b.pa = d.pa_base;  // wrap: reuse is harmless
    d.pa_next = b.pa + b.size;
    std::string why;
    auto iova = drv.map_alloc(d.did, b.pa, b.size, b.perm, ~Addr(0), &why);
    if (!iova) {
        if (errors.size() < kLogged)
            errors.push_back(
                fmt::format("{}: map_alloc of {:#x} bytes: {}", spec.name, b.size, why));
        return at;
    }
    b.iova = *iova;
    d.history.erase(b.iova, b.size);
    d.live.push_back(b);
    ++c.maps;
    c.maps_2m += b.page == k2M;
    c.maps_1g += b.page == k1G;
    // A large page that replaced an empty lower table was invalidated by the driver: wait.
    const Tick t = at + ticks_from_ns(host.map_ns);
    return std::max(t, feeder.submit(t));
}

// The unmapped range is remembered with where it pointed, for the lazy window's judgement.
inline void Platform::forget(Domain& d, Addr iova, Addr size, Addr pa, Perm perm) {
    d.history.erase(iova, size);
    d.history.insert({iova, size, pa, perm});
    d.recent.push_front({iova, size});
    if (d.recent.size() > kRecent) d.recent.pop_back();
}

// Unmap buffer `which` (or, when out of range, preferably the one the device touched last:
// its translation is likely in the IOTLB).
inline Tick Platform::unmap(Domain& d, size_t which, Tick at) {
    if (which >= d.live.size()) {
        which = rng_.below(d.live.size());
        if (rng_.chance(60))
            for (size_t i = 0; i < d.live.size(); ++i)
                if (d.last_touched - d.live[i].iova < d.live[i].size) which = i;
    }
    const Buffer b = d.live[which];
    d.live[which] = d.live.back();
    d.live.pop_back();
    const Tick done = vtd_unmap(drv, feeder, d.did, b.iova, b.size, host, at, true);
    forget(d, b.iova, b.size, b.pa, b.perm);
    ++c.unmaps;
    return done;
}

// Unmap part of a large page: a 2 MiB piece of a 1 GiB page or a few 4 KiB pages.
inline Tick Platform::unmap_part(Domain& d, Tick at) {
    std::vector<size_t> large;
    for (size_t i = 0; i < d.live.size(); ++i)
        if (d.live[i].page > k4K) large.push_back(i);
    Buffer& b = d.live[large[rng_.below(large.size())]];
    Addr off, len;
    if (b.page == k1G && rng_.chance(50)) {
        off = k2M * rng_.below(b.size / k2M), len = k2M;
    } else {
        off = k4K * rng_.below(b.size / k4K);
        len = std::min<Addr>(k4K * rng_.range(1, 4), b.size - off);
    }
    const Tick done = vtd_unmap(drv, feeder, d.did, b.iova + off, len, host, at, false);
    b.holes.push_back({b.iova + off, len});
    forget(d, b.iova + off, len, b.pa + off, b.perm);
    ++c.partial_unmaps;
    return done;
}

// ---- the guard ----

inline void Guard::b_transport(tlm::tlm_generic_payload& p, sc_time& delay) {
    Platform& pf = pf_;
    Counts& c = pf.c;
    ++c.accesses;
    const Active* a = pf.active;
    const uintptr_t ptr = reinterpret_cast<uintptr_t>(p.get_data_ptr());
    const unsigned n = p.get_data_length();
    if (!a || ptr < a->data || ptr - a->data + n > a->len) {
        ++c.unattributed;
        pf.note(fmt::format("access to {:#x} ({} bytes) outside any device request",
                            p.get_address(), n));
    } else {
        const Domain& d = pf.domains[a->dev];
        const Addr iova = a->iova + (ptr - a->data), pa = p.get_address();
        const Perm need = perm_needed(p.is_write() ? Access::Write : Access::Read, false);
        bool escape = false, window = false;
        // Page by page: the intent's granule is 4 KiB.
        for (Addr at = iova; at - iova < n; at = (at | (k4K - 1)) + 1) {
            const Addr off = at - iova;
            const Expectation e = pf.drv.expect(d.req, at);
            if (e.mapped && e.pa == pa + off && permits(e.perm, need)) continue;
            const auto old = d.history.translate(at);
            if (!pf.spec.strict && pf.drv.in_flush_window(d.did, at) && old &&
                old->pa == pa + off && permits(old->perm, need)) {
                window = true;
                continue;
            }
            escape = true;
            pf.note(fmt::format(
                "ESCAPE at {} ns: dev{} ({}) {} iova {:#x} reached pa {:#x}; intent: {}",
                to_ticks(sc_core::sc_time_stamp() + delay) / kTicksPerNs, a->dev,
                kKindNames[a->kind], p.is_write() ? "write" : "read", at, pa + off,
                e.mapped ? fmt::format("{:#x} {}", e.pa, perm_string(e.perm)) : "unmapped"));
            if (at == ~Addr(0) || (at | (k4K - 1)) == ~Addr(0)) break;
        }
        c.escapes += escape;
        c.in_window += window && !escape;
    }
    out->b_transport(p, delay);
}

// ---- the attacker ----

inline Device::Device(sc_core::sc_module_name n, Platform& p, unsigned index, uint64_t seed)
    : sc_module(n),
      engine("engine", engine_params(), p.stats.child(basename()).child("engine")),
      tap("tap", p.active, index),
      link("link", PcieLinkParams{}, p.stats.child(basename()).child("link")),
      pf_(p),
      index_(index),
      rng_(seed) {
    engine.dma.bind(tap.in);
    tap.out.bind(link.device);
    engine.set_source([this](DmaTransfer& t) { return next(t); });
    engine.on_complete([this](const DmaTransfer& t, const DmaResult& r) {
        Counts& c = pf_.c;
        ++c.transfers;
        ++c.by_kind[t.id];
        c.malicious += t.id != Legit;
        if (r.faults) ++c.faulted, ++c.faulted_by_kind[t.id];
    });
}

inline Addr Device::random_iova() {
    const unsigned r = unsigned(rng_.below(100));
    const unsigned width = pf_.domains[index_].first_level ? 47 : 48;
    if (r < 50) return rng_.below(Addr(1) << width);
    if (r < 85) return (Addr(1) << width) - 1 - rng_.below(Addr(1) << 32);  // where IOVAs live
    return (rng_.g() & ~Addr(0xFFFF)) + rng_.below(k4K);  // anywhere, wide of 2^64
}

// Aim a transfer of kind `k`; returns the kind it became (Random when there is no target).
inline Kind Device::target(Kind k, DmaTransfer& t) {
    Domain& own = pf_.domains[index_];
    auto pick_live = [&](const Domain& d) -> const Buffer* {
        return d.live.empty() ? nullptr : &d.live[rng_.below(d.live.size())];
    };
    t.write = rng_.chance(50);
    t.length = rng_.range(1, 256);
    switch (k) {
        case Legit: {
            const Buffer* b = pick_live(own);
            if (!b) break;
            Addr a = b->iova + rng_.below(b->size);
            for (int i = 0; i < 4 && b->in_hole(a); ++i) a = b->iova + rng_.below(b->size);
            if (b->in_hole(a)) break;
            t.iova = a;
            t.length = std::min<Addr>(rng_.range(1, 512), b->iova + b->size - a);
            t.write = (b->perm & kPermW) && t.write;
            own.last_touched = a;
            if (rng_.chance(30)) {  // again at once: a write to a read-only page merges or hits
                DmaTransfer f = t;
                f.write = true;
                f.id = (b->perm & kPermW) ? Legit : WriteReadOnly;
                follow_.push_back(f);
            }
            return Legit;
        }
        case Unmapped: {
            if (own.recent.empty()) break;
            const auto& [iova, size] =
                own.recent[rng_.chance(60) ? 0 : rng_.below(own.recent.size())];
            t.iova = iova + rng_.below(size);
            return Unmapped;
        }
        case CrossDomain: {
            const Domain& o = pf_.domains[(index_ + 1 + rng_.below(kDevices - 1)) % kDevices];
            if (const Buffer* b = pick_live(o); b && rng_.chance(70)) {
                t.iova = b->iova + rng_.below(b->size);
                return CrossDomain;
            }
            if (o.recent.empty()) break;
            const auto& [iova, size] = o.recent[rng_.below(o.recent.size())];
            t.iova = iova + rng_.below(size);
            return CrossDomain;
        }
        case WriteReadOnly: {
            std::vector<const Buffer*> ro;
            for (const Buffer& b : own.live)
                if (!(b.perm & kPermW)) ro.push_back(&b);
            if (ro.empty()) break;
            const Buffer* b = ro[rng_.below(ro.size())];
            t.iova = b->iova + rng_.below(b->size);
            t.write = false;  // touch it (a walk or an IOTLB hit), then write at once
            DmaTransfer f = t;
            f.write = true;
            f.id = WriteReadOnly;
            follow_.push_back(f);
            own.last_touched = t.iova;
            return Legit;
        }
        case Spoof: {
            const unsigned v = unsigned((index_ + 1 + rng_.below(kDevices - 1)) % kDevices);
            const Domain& o = pf_.domains[v];
            t.req = o.req;  // the victim's RID: ACS source validation must stop it
            const Buffer* b = pick_live(o);
            t.iova = b ? b->iova + rng_.below(b->size) : random_iova();
            return Spoof;
        }
        case Pasid: {
            t.req = own.req.with_pasid(uint32_t(rng_.range(1, 15)));
            const Buffer* b = pick_live(own);
            t.iova = b ? b->iova + rng_.below(b->size) : random_iova();
            return Pasid;
        }
        default: break;
    }
    t.iova = random_iova();
    return Random;
}

inline bool Device::next(DmaTransfer& t) {
    if (follow_.empty() && malicious_ >= budget_) {
        if (!done_) done_ = true, pf_.device_done();
        return false;
    }
    if (!follow_.empty()) {
        t = follow_.front();
        follow_.pop_front();
        t.ready = 0;
    } else {
        // legit 30, random 12, unmapped 22, cross 14, ro-write 10, spoof 6, pasid 6
        static constexpr unsigned kWeights[kKinds] = {30, 12, 22, 14, 10, 6, 6};
        unsigned r = unsigned(rng_.below(100)), k = 0;
        while (r >= kWeights[k]) r -= kWeights[k++];
        t = DmaTransfer{};
        t.req = pf_.domains[index_].req;
        t.id = target(Kind(k), t);
        t.ready = engine.now() + ticks_from_ns(double(rng_.below(200)));
    }
    malicious_ += t.id != Legit;
    tap.kind = Kind(t.id);
    return true;
}

// ---- the run ----

// The unit designs: the default one, and a small split IOTLB with next-page prefetch and
// fewer walkers (more evictions, refills and queueing, prefetched entries to go stale).
inline UnitParams default_unit() {
    return UnitParams{};
}
inline UnitParams small_unit() {
    UnitParams p;
    p.iotlb.entries = 16;
    p.iotlb_split = true;
    p.iotlb_entries_2m = 4;
    p.iotlb_entries_1g = 2;
    p.prefetch_next_page = true;
    p.walkers = 2;
    return p;
}

inline std::string quantum_name(uint64_t ns) {
    return ns == 0          ? "0"
           : ns % 1000 == 0 ? fmt::format("{}us", ns / 1000)
                            : fmt::format("{}ns", ns);
}

class Bench : public sc_core::sc_module {
public:
    uint64_t total_malicious = 0, total_dmas = 0;

    SC_HAS_PROCESS(Bench);
    Bench(sc_core::sc_module_name n, const std::vector<PlatformSpec>& specs,
          std::vector<uint64_t> quanta_ns, uint64_t budget, uint64_t seed, Checker& check)
        : sc_module(n), quanta_(std::move(quanta_ns)), budget_(budget), check_(check) {
        for (size_t i = 0; i < specs.size(); ++i)
            platforms_.push_back(
                std::make_unique<Platform>(specs[i].name.c_str(), specs[i], seed * 1000003 + i));
        SC_THREAD(control);
    }

private:
    void control() {
        for (auto& p : platforms_)
            while (!p->ready) wait(p->ready_ev);
        for (auto& p : platforms_) {
            for (const std::string& e : p->errors) fmt::print("{}\n", e);
            check_(p->errors.empty(), p->spec.name + ": set up");
        }
        for (uint64_t q : quanta_) {
            tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_time(double(q), SC_NS));
            for (auto& p : platforms_) p->start_phase(budget_);
            for (auto& p : platforms_)
                while (p->phase_running) wait(p->phase_done);
            for (auto& p : platforms_) judge(*p, q);
        }
        uint64_t merges = 0;
        for (auto& p : platforms_) {
            const std::string& name = p->spec.name;
            check_(maps_1g_[name] > 0 && maps_2m_[name] > 0 && partial_[name] > 0,
                   name + ": 2 MiB and 1 GiB pages were mapped and partly unmapped");
            merges += p->stats.child("iommu").child("walker").counter("merges", "").value();
        }
        check_(merges > 0, "some requests merged onto in-flight walks");
        fmt::print("total: {} DMAs, {} malicious\n", total_dmas, total_malicious);
        check_.reached_end();
        sc_core::sc_stop();
    }

    void judge(Platform& p, uint64_t q) {
        const Counts& c = p.c;
        const std::string what = fmt::format("{} q={}", p.spec.name, quantum_name(q));
        const uint64_t stale = p.stale_hits_this_phase();
        std::string kinds;
        for (unsigned k = Random; k < kKinds; ++k)
            kinds += fmt::format(" {} {}/{}", kKindNames[k], c.by_kind[k], c.faulted_by_kind[k]);
        fmt::print(
            "{}: {} DMAs ({} malicious, {} faulted; kind DMAs/faulted: legit {}/{}{}), {} memory "
            "accesses, {} escapes, {} stale-in-window, {} stale hits; host {} maps ({} 2M, {} "
            "1G), {} unmaps, {} partial\n",
            what, c.transfers, c.malicious, c.faulted, c.by_kind[Legit], c.faulted_by_kind[Legit],
            kinds, c.accesses, c.escapes, c.in_window, stale, c.maps, c.maps_2m, c.maps_1g,
            c.unmaps, c.partial_unmaps);
        for (const std::string& l : p.log) fmt::print("  {}\n", l);
        p.log.clear();
        total_malicious += c.malicious;
        total_dmas += c.transfers;
        maps_1g_[p.spec.name] += c.maps_1g;
        maps_2m_[p.spec.name] += c.maps_2m;
        partial_[p.spec.name] += c.partial_unmaps;
        check_(c.malicious >= budget_ * kDevices, what + ": every device spent its budget");
        check_(c.escapes == 0, what + ": no access escaped the driver's mappings");
        check_(c.unattributed == 0, what + ": every access at memory came from a device request");
        check_(c.spurious == 0, what + ": no fault where the intent allows the access");
        check_(c.stale_outside == 0, what + ": no stale IOTLB hit outside a flush window");
        if (p.spec.strict)
            check_(stale == 0 && c.in_window == 0, what + ": strict: no stale translation used");
        else
            check_(c.in_window > 0, what + ": lazy: the flush window was seen and exploited");
        check_(c.by_kind[Spoof] > 0 && c.faulted_by_kind[Spoof] == c.by_kind[Spoof],
               what + ": every spoofed-RID DMA was rejected");
        check_(c.by_kind[Pasid] > 0 && c.faulted_by_kind[Pasid] == c.by_kind[Pasid],
               what + ": every DMA with an unattached PASID faulted");
        check_(c.faulted_by_kind[Unmapped] > 0 && c.faulted_by_kind[Random] > 0 &&
                   c.faulted_by_kind[CrossDomain] > 0 && c.faulted_by_kind[WriteReadOnly] > 0,
               what + ": each kind of attack met faults");
    }

    std::vector<std::unique_ptr<Platform>> platforms_;
    std::vector<uint64_t> quanta_;
    uint64_t budget_;
    Checker& check_;
    std::map<std::string, uint64_t> maps_1g_, maps_2m_, partial_;
};

// sc_main of one executable: `program [seed]`. `malicious` DMAs in all (scaled by
// IOMMUSIM_PROPERTY_SCALE) are shared by the platforms, the quanta and the devices.
inline int run(const char* program, int argc, char* argv[], const std::vector<PlatformSpec>& specs,
               uint64_t malicious, uint64_t seed) {
    if (argc > 2) {
        fmt::print(stderr, "usage: {} [seed]\n", program);
        return 2;
    }
    if (argc == 2) {
        char* end = nullptr;
        errno = 0;
        seed = std::strtoull(argv[1], &end, 0);
        if (!*argv[1] || *end || errno) {
            fmt::print(stderr, "{}: seed '{}': expected a number (decimal or 0x...)\n", program,
                       argv[1]);
            return 2;
        }
    }
    const std::vector<uint64_t> quanta = {0, 1000, 10000};
    const uint64_t phases = specs.size() * quanta.size() * kDevices;
    const uint64_t budget = (scaled(malicious) + phases - 1) / phases;
    fmt::print("{}: seed {:#x} (rerun: {} {:#x}), {} malicious DMAs per device and phase\n",
               program, seed, program, seed, budget);
    Checker check{Checker::Where::Thread};  // fails unless the control thread reached its end
    Bench b("bench", specs, quanta, budget, seed, check);
    sc_core::sc_start();
    check(b.total_malicious >= scaled(malicious), "the malicious DMAs were all made");
    return check.finish();
}

}  // namespace iommusim::test::malicious
