// The POWER sPAPR bundle: a PHB's TCE translation (the timed unit with the TCE walker), the
// host's PE and window management (one PE per device, a 64-bit dynamic DMA window of the
// mapping page size), and the DMA API over it, whose unmaps kill TCEs.
#include <fmt/format.h>

#include "arch/spapr/spapr_walker.h"
#include "bundles/bundle.h"
#include "host/dma_api.h"
#include "spapr_bundle.h"

namespace iommusim {
namespace {

// Every device's DDW: 64 GiB of bus address space from the window's start (TVE #1).
constexpr Addr kDdwSize = Addr(64) << 30;
constexpr unsigned kDdwLevels = 2;

// A TCE kill: the PHB's caches forget the killed entries.
class TceKill final : public InvalidationPort {
public:
    explicit TceKill(IommuUnit& phb) : phb_(phb) {}
    Tick invalidate(const InvalidationScope& s, Tick at) override {
        return phb_.engine().invalidate(s, at);
    }

private:
    IommuUnit& phb_;
};

class SpaprBundle;

class SpaprDomain final : public DeviceDomain {
public:
    SpaprDomain(SpaprBundle& b, uint16_t pe) : b_(b), pe_(pe) {}
    std::optional<Addr> map_long(Addr pa, uint64_t len, std::string* why) override;
    std::optional<Addr> map_buffer(Addr pa, uint64_t len, size_t slot, std::string* why) override;
    std::unique_ptr<DmaMapper> dma_api() override;

private:
    SpaprBundle& b_;
    uint16_t pe_;
};

class SpaprBundle final : public IommuBundle {
public:
    void bind(ParamRegistry& r, const std::string& key) override {
        r.bind(key, unit_);
        r.bind(key + ".driver", driver_);
    }
    UnitParams& unit_params() override { return unit_; }

    void build(const std::string& name, const BundleEnv& env) override {
        spapr::DriverConfig sc;
        sc.table_base = env.struct_base;
        drv_ = std::make_unique<spapr::Driver>(env.store, sc);
        drv_->set_log_name(env.stats.path() + ".driver");
        walker_ = std::make_unique<spapr::SpaprWalker>(drv_->phb());
        phb_ = std::make_unique<IommuUnit>(name.c_str(), unit_, *walker_, env.stats);
        kill_ = std::make_unique<TceKill>(*phb_);
    }
    IommuUnit& unit() override { return *phb_; }

    // One PE per device with a DDW of the device's page size.
    std::unique_ptr<DeviceDomain> attach(const Requester& req, uint64_t page_size,
                                         std::string* why) override {
        unsigned shift = 0;
        while ((Addr(1) << shift) < page_size) ++shift;
        auto pe = drv_->create_pe(why);
        if (!pe || !drv_->create_ddw(*pe, kDdwSize, shift, kDdwLevels, why)) return nullptr;
        drv_->assign(req.rid, *pe);
        return std::make_unique<SpaprDomain>(*this, *pe);
    }

    void bring_up() override {
        phb_->engine().set_oracle(
            [d = drv_.get()](const Requester& q, Addr a) { return d->expect(q, a); });
    }

private:
    friend class SpaprDomain;
    UnitParams unit_;
    HostDriverParams driver_;
    std::unique_ptr<spapr::Driver> drv_;
    std::unique_ptr<spapr::SpaprWalker> walker_;
    std::unique_ptr<IommuUnit> phb_;
    std::unique_ptr<TceKill> kill_;
    size_t tce_kills_ = 0;  // the driver's kills already sent (shared by its PEs)
};

std::optional<Addr> SpaprDomain::map_long(Addr pa, uint64_t len, std::string* why) {
    return b_.drv_->map_alloc(pe_, 1, pa, len, kPermRW, ~Addr(0), why);
}

// Each PE has its own window: every device's buffer starts at the window's bus address.
std::optional<Addr> SpaprDomain::map_buffer(Addr pa, uint64_t len, size_t, std::string* why) {
    if (!b_.drv_->map(pe_, spapr::kDdwBusOffset, pa, len, kPermRW, why)) return std::nullopt;
    return spapr::kDdwBusOffset;
}

std::unique_ptr<DmaMapper> SpaprDomain::dma_api() {
    return std::make_unique<SpaprDmaApi>(*b_.drv_, *b_.kill_, pe_, b_.driver_, b_.tce_kills_);
}

}  // namespace

IOMMUSIM_REGISTER_ARCH(spapr, "POWER sPAPR PHB with TCE tables (one PE and DDW per device)",
                       SpaprBundle, spapr_lookup);

}  // namespace iommusim
