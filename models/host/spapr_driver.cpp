#include "spapr_driver.h"

#include <fmt/format.h>

#include "core/why.h"

namespace iommusim::spapr {

Driver::Driver(SparseMemory& mem, const DriverConfig& cfg)
    : mem_(mem), cfg_(cfg), phb_(cfg.caps), alloc_(cfg.table_base, cfg.table_size) {}

Driver::~Driver() = default;

bool Driver::install(uint16_t pe, unsigned num, TceWindow w, std::string* why) {
    Window& slot = pes_[pe][num];
    slot.reset();
    w.liobn = uint32_t(pe) * kWindowsPerPe + num + 1;  // unique per window, like PAPR's LIOBNs
    if (w.mode == TceWindow::Mode::Translate) {
        try {
            slot.fmt = std::make_unique<TcePteFormat>(w);
            slot.as = std::make_unique<AddressSpace>(mem_, alloc_, *slot.fmt, w.bus_offset);
        } catch (const std::exception& e) {
            slot.reset();
            return fail(why, fmt::format("window {} of PE {}: {}", num, pe, e.what()));
        }
        w.table = slot.as->table().root();
        slot.as->iova().add_window({w.bus_offset, w.size, num == 0 ? "dma32" : "ddw"});
    }
    if (const char* bad = check_window(phb_.caps(), w)) {
        slot.reset();
        return fail(why, fmt::format("window {} of PE {}: {}", num, pe, bad));
    }
    slot.hw = w;
    phb_.set_window(pe, num, w);
    IOMMUSIM_LOG(log_, Info, log::now(), "PE {} window {}: {} at {:#x}+{:#x}, LIOBN {:#x}", pe, num,
                 w.mode == TceWindow::Mode::Translate ? "translated" : "bypass", w.bus_offset,
                 w.size, w.liobn);
    return true;
}

std::optional<uint16_t> Driver::create_pe(std::string* why) {
    if (next_pe_ >= phb_.caps().num_pes) {
        fail(why, fmt::format("all {} PEs are in use", phb_.caps().num_pes));
        return std::nullopt;
    }
    uint16_t pe = next_pe_++;
    TceWindow w =
        TceWindow::translated(0, cfg_.dma32_size, 0, cfg_.dma32_page_shift, cfg_.dma32_levels);
    if (!install(pe, 0, w, why)) return std::nullopt;
    return pe;
}

bool Driver::create_ddw(uint16_t pe, Addr size, unsigned page_shift, unsigned levels,
                        std::string* why) {
    if (!pes_.count(pe)) return fail(why, fmt::format("no PE {}", pe));
    return install(pe, 1, TceWindow::translated(kDdwBusOffset, size, 0, page_shift, levels), why);
}

bool Driver::create_bypass(uint16_t pe, Addr size, Addr phys_base, std::string* why) {
    if (!pes_.count(pe)) return fail(why, fmt::format("no PE {}", pe));
    return install(pe, 1, TceWindow::bypass(kDdwBusOffset, size, phys_base), why);
}

void Driver::remove_window(uint16_t pe, unsigned num) {
    auto it = pes_.find(pe);
    if (it == pes_.end() || num >= kWindowsPerPe) return;
    it->second[num].reset();
    phb_.disable_window(pe, num);
}

const Driver::Window* Driver::window_at(uint16_t pe, Addr iova) const {
    auto it = pes_.find(pe);
    if (it == pes_.end()) return nullptr;
    for (const Window& w : it->second)
        if (w.hw.contains(iova)) return &w;
    return nullptr;
}

Driver::Window* Driver::window_for(uint16_t pe, Addr iova, std::string* why) {
    auto* w = const_cast<Window*>(window_at(pe, iova));
    if (!w)
        fail(why, fmt::format("bus address {:#x} is outside every DMA window of PE {}", iova, pe));
    else if (!w->as)
        fail(why, fmt::format("bus address {:#x} is in a bypass window: nothing to map", iova));
    return w && w->as ? w : nullptr;
}

AddressSpace* Driver::space(uint16_t pe, unsigned num) {
    auto it = pes_.find(pe);
    return it == pes_.end() || num >= kWindowsPerPe ? nullptr : it->second[num].as.get();
}

bool Driver::map(uint16_t pe, Addr iova, Addr pa, Addr size, Perm perm, std::string* why) {
    Window* w = window_for(pe, iova, why);
    IOMMUSIM_LOG_IF(log_, Debug, w && log::wants_domain(w->hw.liobn), log::now(),
                    "PE {}: map {:#x}+{:#x} -> {:#x} {}", pe, iova, size, pa, perm_string(perm));
    return w && w->as->map(iova, pa, size, perm, why);
}

Addr Driver::unmap(uint16_t pe, Addr iova, Addr size) {
    Window* w = window_for(pe, iova, nullptr);
    if (!w || size == 0) return 0;
    Addr bytes = w->as->unmap(iova, size);
    if (bytes) {
        // TCE kill of the IO pages touched (in 4 KiB units, naturally aligned).
        inv_.push_back(
            InvalidationScope::covering(InvalidationScope::Kind::Page, w->hw.liobn, iova, size));
        IOMMUSIM_LOG_IF(log_, Debug, log::wants(inv_.back()), log::now(),
                        "PE {}: unmap {:#x}+{:#x}, TCE kill submitted: {}", pe, iova, size,
                        to_string(inv_.back()));
    }
    return bytes;
}

std::optional<Addr> Driver::map_alloc(uint16_t pe, unsigned num, Addr pa, Addr size, Perm perm,
                                      Addr limit, std::string* why) {
    AddressSpace* as = space(pe, num);
    if (!as) {
        fail(why, fmt::format("PE {} has no translated window {}", pe, num));
        return std::nullopt;
    }
    Addr page = Addr(1) << as->min_page_shift();
    Addr base = pa & ~(page - 1);
    Addr len = (size + (pa - base) + page - 1) & ~(page - 1);
    auto iova = as->iova().alloc(len, limit);
    if (!iova) {
        fail(why, fmt::format("no free bus range of {:#x} bytes in window {}", len, num));
        return std::nullopt;
    }
    if (!as->map(*iova, base, len, perm, why)) {
        as->iova().free(*iova);
        return std::nullopt;
    }
    IOMMUSIM_LOG(log_, Debug, log::now(), "PE {} window {}: map {:#x}+{:#x} -> {:#x} {}", pe, num,
                 *iova, len, base, perm_string(perm));
    return *iova + (pa - base);
}

Expectation Driver::expect(const Requester& req, Addr iova) const {
    if (req.has_pasid()) return {};  // IODA has no PASID support
    uint16_t pe = phb_.pe(req.rid);
    if (pe == PhbConfig::kNoPe) return {};
    const Window* w = window_at(pe, iova);
    if (!w) return {};
    if (!w->as) return {true, iova - w->hw.bus_offset + w->hw.phys_base, kPermRW};
    auto hit = w->as->intent().translate(iova);
    if (!hit) return {};
    return {true, hit->pa, Perm(hit->perm & kPermRW)};
}

}  // namespace iommusim::spapr
