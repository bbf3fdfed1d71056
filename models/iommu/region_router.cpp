#include "region_router.h"

#include <fmt/format.h>

#include <algorithm>

namespace iommusim {

RegionRouter::RegionRouter(sc_core::sc_module_name name, StatGroup& stats)
    : sc_module(name),
      upstream("upstream", this),
      units("units"),
      bypass("bypass"),
      log_(stats.path()) {
    translated_ = &stats.counter("translated", "DMAs sent to a translation unit");
    bypassed_ = &stats.counter("bypassed", "DMAs in a direct-mapped window");
    reserved_ = &stats.counter("reserved", "DMAs into a reserved hole (error completion)");
    outside_ =
        &stats.counter("outside", "DMAs outside every region of the requester (error completion)");
}

std::string RegionRouter::check(std::vector<DmaRegion>& r) {
    std::sort(r.begin(), r.end(),
              [](const DmaRegion& a, const DmaRegion& b) { return a.base < b.base; });
    for (size_t i = 0; i < r.size(); ++i) {
        if (r[i].size == 0) return fmt::format("region {} is empty", r[i].name);
        if (r[i].last() < r[i].base) return fmt::format("region {} wraps around 2^64", r[i].name);
        if (i && r[i].base <= r[i - 1].last())
            return fmt::format("regions {} and {} overlap", r[i - 1].name, r[i].name);
    }
    return {};
}

std::string RegionRouter::set_regions(uint16_t rid, std::vector<DmaRegion> regions) {
    std::string err = check(regions);
    if (err.empty()) {
        by_rid_[rid] = std::move(regions);
        cached_rid_ = -1;  // it may have been cached as having no list of its own
        last_list_ = nullptr, routed_ = nullptr;
    }
    return err;
}

std::string RegionRouter::set_default_regions(std::vector<DmaRegion> regions) {
    std::string err = check(regions);
    if (err.empty()) {
        default_ = std::move(regions);
        cached_rid_ = -1;
        last_list_ = nullptr, routed_ = nullptr;
    }
    return err;
}

void RegionRouter::end_of_elaboration() {
    for (unsigned i = 0; i < units.size(); ++i)
        unit_if_.push_back({units[int(i)], IommuUnit::behind(units[int(i)])});
}

// Inline into b_transport, which every DMA passes.
inline const DmaRegion* RegionRouter::find(const tlm::tlm_generic_payload& p,
                                           const PcieAttr* attr) const {
    const std::vector<DmaRegion>* list = &default_;
    if (attr) {
        if (attr->req.rid != cached_rid_) {
            auto it = by_rid_.find(attr->req.rid);
            cached_rid_ = attr->req.rid;
            cached_list_ = it != by_rid_.end() ? &it->second : &default_;
        }
        list = cached_list_;
    }
    const Addr a = p.get_address(), len = std::max(1u, p.get_data_length());
    if (list == last_list_ && last_region_->holds(a, len)) return last_region_;
    auto it = std::upper_bound(list->begin(), list->end(), a,
                               [](Addr x, const DmaRegion& r) { return x < r.base; });
    if (it == list->begin()) return nullptr;
    --it;
    if (!it->holds(a, len)) return nullptr;
    last_list_ = list, last_region_ = &*it;
    return last_region_;
}

namespace {
// One line per DMA: where its region sends it.
void log_route(const log::Channel& ch, const tlm::tlm_generic_payload& p, const DmaRegion* r,
               Tick at) {
    const PcieAttr* attr = p.get_extension<PcieAttr>();
    if (attr && !log::wants(attr->req)) return;
    std::string to = "outside every region: error completion";
    if (r && r->kind == DmaRegion::Kind::Translate)
        to = fmt::format("translated region {} -> unit {}", r->name, r->unit);
    else if (r && r->kind == DmaRegion::Kind::Bypass)
        to = fmt::format("bypass region {} -> {:#x}", r->name,
                         p.get_address() - r->base + r->phys_base);
    else if (r)
        to = fmt::format("reserved region {}: error completion", r->name);
    IOMMUSIM_LOG(ch, Trace, at, "{} {} {:#x}+{}: {}",
                 attr ? to_string(attr->req) : std::string("no requester"),
                 p.is_write() ? "write" : "read", p.get_address(), p.get_data_length(), to);
}
}  // namespace

inline void RegionRouter::to_unit(const UnitTarget& u, tlm::tlm_generic_payload& p,
                                  sc_core::sc_time& delay, const PcieAttr* attr) {
    if (u.direct)
        u.direct->transport(p, delay, attr);
    else
        u.fw->b_transport(p, delay);
}

void RegionRouter::b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& delay) {
    const PcieAttr* attr = p.get_extension<PcieAttr>();
    const DmaRegion* r = find(p, attr);
    if (IOMMUSIM_LOG_ON(log_, Trace))
        log_route(log_, p, r, to_ticks(sc_core::sc_time_stamp() + delay));
    if (r && r == routed_) {  // the region routed last: already judged a translated one
        ++*translated_;
        return to_unit(*routed_to_, p, delay, attr);
    }
    if (!r || r->kind == DmaRegion::Kind::Reserved ||
        (r->kind == DmaRegion::Kind::Translate && r->unit >= unit_if_.size())) {
        ++*(r ? reserved_ : outside_);
        p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
        return;
    }
    if (r->kind == DmaRegion::Kind::Translate) {
        ++*translated_;
        routed_ = r, routed_to_ = &unit_if_[r->unit];
        return to_unit(*routed_to_, p, delay, attr);
    }
    ++*bypassed_;
    const Addr a = p.get_address();
    p.set_address(a - r->base + r->phys_base);
    bypass->b_transport(p, delay);
    p.set_address(a);
}

unsigned int RegionRouter::transport_dbg(tlm::tlm_generic_payload& p) {
    const DmaRegion* r = find(p, p.get_extension<PcieAttr>());
    if (!r || r->kind == DmaRegion::Kind::Reserved ||
        (r->kind == DmaRegion::Kind::Translate && r->unit >= units.size()))
        return 0;
    if (r->kind == DmaRegion::Kind::Translate) return units[r->unit]->transport_dbg(p);
    const Addr a = p.get_address();
    p.set_address(a - r->base + r->phys_base);
    unsigned n = bypass->transport_dbg(p);
    p.set_address(a);
    return n;
}

}  // namespace iommusim
