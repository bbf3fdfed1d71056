// Test rig for the VT-d register file: a fixed-latency memory over a sparse store, hooks
// that record every call, and the register sequences the Linux intel-iommu driver uses
// (GCMD through GSTS, queued invalidation set-up and submission).
#pragma once
#include <catch2/catch.hpp>

#include <cstdint>
#include <utility>
#include <vector>

#include "arch/vtd/vtd_fault.h"
#include "arch/vtd/vtd_invdesc.h"
#include "arch/vtd/vtd_regfile.h"
#include "core/bits.h"
#include "core/memory_port.h"
#include "core/sparse_memory.h"

namespace iommusim::test {

using namespace iommusim::vtd;

constexpr Tick kLat = 100 * kTicksPerNs;  // every memory access
constexpr Tick kCycle = 1000;             // 1 GHz
constexpr Addr kQueue = 0x20'0000;        // invalidation queue
constexpr Addr kStatus = 0x30'0000;       // wait status words
constexpr Addr kPrq = 0x40'0000;          // page request queue
constexpr Addr kRoot = 0x50'0000;

struct RecordingHooks : RegFileHooks {
    enum class What { Invalidate, DeviceTlb, PageResponse, Iec };
    struct Call {
        What what;
        InvalidationScope scope;
        PageGroupResponse resp;
        IecInv iec;
        Tick at;
    };
    std::vector<Call> calls;
    std::vector<std::pair<Interrupt, Tick>> interrupts;
    Tick latency = 0;           // each hook completes this long after it starts
    bool devtlb_never = false;  // device-TLB invalidations never complete
    Tick invalidate(const InvalidationScope& s, Tick at) override {
        calls.push_back({What::Invalidate, s, {}, {}, at});
        return at + latency;
    }
    Tick device_tlb(const InvalidationScope& s, Tick at) override {
        calls.push_back({What::DeviceTlb, s, {}, {}, at});
        return devtlb_never ? kNever : at + latency;
    }
    Tick page_response(const PageGroupResponse& r, Tick at) override {
        calls.push_back({What::PageResponse, {}, r, {}, at});
        return at + latency;
    }
    Tick interrupt_entry_cache(const IecInv& d, Tick at) override {
        calls.push_back({What::Iec, {}, {}, d, at});
        return at + latency;
    }
    void interrupt(Interrupt i, Tick at) override { interrupts.push_back({i, at}); }
};

struct Rig {
    SparseMemory store;
    FixedLatencyMemory mem{store, kLat};
    RecordingHooks hooks;
    RegFileConfig cfg;
    RegisterFile rf;
    bool dw = false;
    uint32_t sw_tail = 0;  // software's next free descriptor slot

    explicit Rig(RegFileConfig c = RegFileConfig::scalable_unit(), RegFileParams p = {})
        : cfg(c), rf(cfg, mem, hooks, p) {}

    uint32_t rd32(uint32_t off) { return uint32_t(rf.read(off, 4)); }
    uint64_t rd64(uint32_t off) { return rf.read(off, 8); }

    // The driver's update of one GCMD bit: write back GSTS without the one-shot bits
    // (11.4.4.1), then wait for the status.
    Tick command(uint32_t bit, bool on, Tick at = 0) {
        const uint32_t status = rd32(reg::GSTS) & 0x96FF'FFFFu;
        return rf.write(reg::GCMD, 4, on ? (status | bit) : (status & ~bit), at);
    }
    void set_root(Ttm ttm, Addr rta = kRoot) {
        rf.write(reg::RTADDR, 8, Rtaddr{rta, ttm}.encode(), 0);
        command(gcmd::SRTP, true);
        REQUIRE((rd32(reg::GSTS) & gsts::RTPS));
    }
    // dmar_enable_qi(): IQT = 0, IQA, then QIE.
    void enable_qi(bool dw256, uint8_t qs = 0, Addr base = kQueue) {
        dw = dw256;
        sw_tail = 0;
        rf.write(reg::IQT, 8, 0, 0);
        rf.write(reg::IQA, 8, Iqa{base, dw256, qs}.encode(), 0);
        command(gcmd::QIE, true);
        REQUIRE((rd32(reg::GSTS) & gsts::QIES));
        REQUIRE(rd64(reg::IQH) == 0);
    }
    // Write one descriptor at the software tail (not yet visible to hardware).
    uint32_t put(const InvDesc& d) {
        const Iqa q = Iqa::decode(rd64(reg::IQA));
        uint8_t raw[32];
        for (int i = 0; i < 4; ++i) store_le64(raw + 8 * i, d.qw[i]);
        const uint32_t slot = sw_tail;
        store.write(q.iqa + Addr(slot) * q.desc_bytes(), raw, q.desc_bytes());
        sw_tail = (sw_tail + 1) % q.entries();
        return slot;
    }
    // The doorbell, as qi_submit_sync() rings it: a 32-bit write of the new tail.
    Tick submit(Tick at) { return rf.write(reg::IQT, 4, iq_reg(sw_tail, dw), at); }
    uint32_t status_word(Addr a = kStatus) {
        uint32_t v = 0;
        uint8_t b[4];
        store.read(a, b, 4);
        for (int i = 3; i >= 0; --i) v = (v << 8) | b[i];
        return v;
    }
    std::vector<RecordingHooks::Call> calls(RecordingHooks::What w) const {
        std::vector<RecordingHooks::Call> out;
        for (const auto& c : hooks.calls)
            if (c.what == w) out.push_back(c);
        return out;
    }
};

}  // namespace iommusim::test
