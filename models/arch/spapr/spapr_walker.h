// The PHB's DMA translation as a step machine (core/walker.h): RID -> PE# through the RTT,
// the PE's window containing the bus address (TVE), then one 8-byte big-endian TCE read per
// table level, top level first. Bypass windows translate without reading memory. Faults
// carry TceFault codes (tce.h); nothing a guest writes into a table aborts the walk.
#pragma once
#include <cstdint>
#include <string>

#include "core/walker.h"
#include "tce.h"

namespace iommusim::spapr {

class SpaprWalker final : public Walker {
public:
    // The walker reads `phb` at every start(); it must outlive the walker.
    explicit SpaprWalker(const PhbConfig& phb) : phb_(&phb) {}

    void start(const Requester& req, Addr iova, Access access) override;
    WalkStep next() override;
    void feed(const uint8_t* data) override;
    void feed_error() override;
    const WalkResult& result() const override { return res_; }
    std::string describe(const WalkStep& step, const uint8_t* data) const override;
    bool context_ready() const override { return pe_ != PhbConfig::kNoPe; }
    WalkContext context() const override;
    void resume(const WalkContext& ctx, const Requester& req, Addr iova, Access access) override;
    // Indirect TCE levels (2 and above) are what the unit's walk caches keep.
    bool paging_entry(PagingEntry* out) const override;
    void feed_cached(const PagingEntry& e) override;

    // PE and window number selected by the last start(); kNoPe / -1 when none was.
    uint16_t pe() const { return pe_; }
    int window_num() const { return window_; }

private:
    void decode(uint64_t tce);
    void fail(FaultKind kind, uint16_t reason, uint8_t level = 0);
    void finish(Addr out, unsigned page_shift, Perm perm);
    void start_bypass(const TceWindow& w, Addr offset);
    Addr entry_addr() const;

    const PhbConfig* phb_;
    Addr iova_ = 0;
    Addr offset_ = 0;  // iova - window bus offset
    Access access_ = Access::Read;
    bool walking_ = false;
    uint16_t pe_ = PhbConfig::kNoPe;
    int8_t window_ = -1;
    uint32_t tag_ = 0;
    // Geometry of the window being walked, copied so a reconfiguration cannot tear a walk.
    uint8_t level_ = 0;
    uint8_t levels_ = 0;
    uint8_t page_shift_ = 12;
    uint8_t level_bits_ = 0;
    uint8_t top_bits_ = 0;
    Addr table_ = 0;
    uint64_t indirect_ = 0;  // the last indirect TCE decoded without fault
    bool indirect_ok_ = false;
    WalkResult res_;
};

}  // namespace iommusim::spapr
