// The host's sPAPR / PowerNV driver model: partitionable endpoints (PEs) with a default
// 32-bit DMA window at bus address 0 and, on request, a dynamic DMA window (DDW) high up
// or a direct-mapped bypass window; TCE tables built with the same page-table builder as
// VT-d's; map/unmap routed to the window that holds the address; the intent kept per window.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "address_space.h"
#include "arch/spapr/tce.h"
#include "arch/spapr/tce_format.h"
#include "core/expectation.h"
#include "core/invalidation.h"
#include "core/log.h"

namespace iommusim::spapr {

struct DriverConfig {
    PhbCaps caps;
    Addr dma32_size = Addr(1) << 30;  // default window: 1 GiB at bus address 0
    unsigned dma32_page_shift = 12;   // of 4 KiB TCE pages
    unsigned dma32_levels = 1;
    Addr table_base = Addr(96) << 30;  // physical region for TCE tables
    Addr table_size = Addr(1) << 30;
};

class Driver {
public:
    Driver(SparseMemory& mem, const DriverConfig& cfg);
    ~Driver();

    const PhbConfig& phb() const { return phb_; }

    // A new PE with its default 32-bit window; nullopt when PEs or table memory run out.
    std::optional<uint16_t> create_pe(std::string* why = nullptr);
    void assign(uint16_t rid, uint16_t pe) { phb_.set_pe(rid, pe); }

    // ibm,create-pe-dma-window: window 1, 64-bit, at kDdwBusOffset, with large IO pages.
    bool create_ddw(uint16_t pe, Addr size, unsigned page_shift, unsigned levels,
                    std::string* why = nullptr);
    // Window 1 as a direct-mapped bypass: bus kDdwBusOffset + x -> phys_base + x.
    bool create_bypass(uint16_t pe, Addr size, Addr phys_base = 0, std::string* why = nullptr);
    void remove_window(uint16_t pe, unsigned num);

    bool map(uint16_t pe, Addr iova, Addr pa, Addr size, Perm perm, std::string* why = nullptr);
    Addr unmap(uint16_t pe, Addr iova, Addr size);
    // Allocate bus addresses in window `num` (below `limit`) and map them.
    std::optional<Addr> map_alloc(uint16_t pe, unsigned num, Addr pa, Addr size, Perm perm,
                                  Addr limit = ~Addr(0), std::string* why = nullptr);

    Expectation expect(const Requester& req, Addr iova) const;
    AddressSpace* space(uint16_t pe, unsigned num);
    // TCE kills issued: one page-range scope per unmap, tagged with the window's LIOBN.
    const std::vector<InvalidationScope>& invalidations() const { return inv_; }
    // Drop the TCE kills issued so far (the consumer has executed them): flat memory.
    void forget_issued() { inv_.clear(); }
    // The log channel (core/log.h) of this driver, e.g. system.phb0.driver.
    void set_log_name(const std::string& name) { log_ = log::Channel(name); }

private:
    struct Window {
        TceWindow hw;
        std::unique_ptr<TcePteFormat> fmt;
        std::unique_ptr<AddressSpace> as;  // null for bypass windows; uses *fmt

        void reset() {  // the address space goes before the format it reads
            as.reset();
            fmt.reset();
            hw = TceWindow{};
        }
    };
    bool install(uint16_t pe, unsigned num, TceWindow w, std::string* why);
    Window* window_for(uint16_t pe, Addr iova, std::string* why);
    const Window* window_at(uint16_t pe, Addr iova) const;

    SparseMemory& mem_;
    DriverConfig cfg_;
    PhbConfig phb_;
    PhysAllocator alloc_;
    std::map<uint16_t, std::array<Window, kWindowsPerPe>> pes_;
    uint16_t next_pe_ = 0;
    std::vector<InvalidationScope> inv_;
    log::Channel log_;  // windows, maps, unmaps, TCE kills
};

}  // namespace iommusim::spapr
