// The Intel VT-d architecture bundle: a remapping hardware unit (VtdIommu: the timed unit with
// the VT-d walker and register file), Linux's intel-iommu driver model programming it through
// its invalidation queue, and the DMA API over that driver.
#include <fmt/format.h>

#include "bundles/bundle.h"
#include "host/dma_api.h"
#include "host/viommu.h"
#include "host/vtd_bringup.h"
#include "vtd_bundle.h"
#include "vtd_iommu.h"
#include "vtd_sva.h"

namespace iommusim {

enum class VtdMode : uint8_t { Legacy, Scalable };

template <>
struct EnumParam<VtdMode> {
    static std::optional<VtdMode> parse(std::string_view s) {
        if (s == "legacy") return VtdMode::Legacy;
        if (s == "scalable") return VtdMode::Scalable;
        return std::nullopt;
    }
    static std::string name(VtdMode m) { return m == VtdMode::Scalable ? "scalable" : "legacy"; }
    static std::vector<VtdMode> values() { return {VtdMode::Legacy, VtdMode::Scalable}; }
};

namespace {

struct VtdModeParams {
    VtdMode mode = VtdMode::Legacy;

    template <typename V>
    void visit(V&& v) {
        v("mode", mode, "", "translation table mode software selects (RTADDR_REG.TTM)", 0, 1);
    }
};

// Benchmark buffers: device slot s's at 4 GiB + s * 64 GiB, so buffers of up to 64 GiB on
// one unit never overlap, and none sits in the x86 MSI range below 4 GiB.
constexpr Addr kBufferBase = Addr(1) << 32;
constexpr Addr kBufferSpan = Addr(64) << 30;
// The invalidation queue: 1 GiB into the unit's structure region (page tables grow below);
// the page request queue and its responses' status word after it.
constexpr Addr kQueueOffset = Addr(1) << 30;
constexpr Addr kPrqOffset = kQueueOffset + (Addr(1) << 20);
constexpr Addr kPrqStatusOffset = kQueueOffset + (Addr(2) << 20);

class VtdBundle;

// A replay's maps, unmaps and recorded invalidations through the driver of one domain.
class VtdRecorded final : public RecordedDomain {
public:
    VtdRecorded(vtd::Driver& drv, VtdQueueFeeder& feeder, IommuUnit& unit, uint16_t did,
                uint16_t rid, const HostDriverParams& costs)
        : drv_(drv), feeder_(feeder), unit_(unit), did_(did), rid_(rid), costs_(costs) {}

    bool takes_pasids() const override { return drv_.hw().scalable; }
    bool attach_pasid(uint32_t pasid, Tick at, Tick* done, std::string* why) override {
        const bool ok = drv_.attach_pasid(rid_, pasid, did_, false, why);
        *done = feeder_.submit(at);
        return ok;
    }
    bool mapped(Addr iova, uint64_t len) const override {
        const AddressSpace* as = drv_.space(did_);
        return as && as->intent().overlaps(iova, len);
    }
    bool map(Addr iova, Addr pa, uint64_t len, Perm perm, Tick at, Tick* done,
             std::string* why) override {
        const bool ok = drv_.map(did_, iova, pa, len, perm, why);
        const Tick t1 = at + ticks_from_ns(costs_.map_ns);
        const Tick queued = feeder_.submit(t1);
        *done = costs_.strict ? queued : t1;
        return ok;
    }
    Tick unmap(Addr iova, uint64_t len, Tick at) override {
        return vtd_unmap(drv_, feeder_, did_, iova, len, costs_, at, false);
    }
    Tick invalidate(InvalidationScope s, Tick at) override {
        s.domain = did_;
        return unit_.engine().invalidate(s, at);
    }
    Tick invalidate_unit(const InvalidationScope& s, Tick at) override {
        return unit_.engine().invalidate(s, at);
    }
    const void* unit_id() const override { return &unit_; }

private:
    vtd::Driver& drv_;
    VtdQueueFeeder& feeder_;
    IommuUnit& unit_;
    uint16_t did_, rid_;
    const HostDriverParams& costs_;
};

class VtdDomain final : public DeviceDomain {
public:
    VtdDomain(VtdBundle& b, uint16_t did, uint16_t rid) : b_(b), did_(did), rid_(rid) {}
    std::optional<Addr> map_long(Addr pa, uint64_t len, std::string* why) override;
    std::optional<Addr> map_buffer(Addr pa, uint64_t len, size_t slot, std::string* why) override;
    std::unique_ptr<DmaMapper> dma_api() override;
    std::unique_ptr<RecordedDomain> recorded() override;
    bool viommu_host(ViommuHost* h) override;
    SvaSpaces* sva(std::function<Addr(uint64_t)> alloc) override;

private:
    VtdBundle& b_;
    uint16_t did_, rid_;
};

class VtdBundle final : public IommuBundle {
public:
    void bind(ParamRegistry& r, const std::string& key) override {
        r.bind(key, unit_);
        r.bind(key, mode_);
        r.bind(key + ".regs", regs_);
        r.bind(key + ".driver", driver_);
        r.bind(key + ".prq", prq_);
    }
    UnitParams& unit_params() override { return unit_; }

    void build(const std::string& name, const BundleEnv& env) override {
        vtd::DriverConfig dc;
        dc.hw.scalable = mode_.mode == VtdMode::Scalable;
        dc.strict = driver_.strict;
        // A replay maps the guest's ranges as it mapped them, unless large pages are asked for.
        if (env.replay) dc.large_pages = env.large_pages;
        dc.lazy.entries = driver_.fq_entries;
        dc.lazy.timeout_ns = driver_.fq_timeout_us * 1000;
        dc.table_base = env.struct_base;
        drv_ = std::make_unique<vtd::Driver>(env.store, dc);
        drv_->set_log_name(env.stats.path() + ".driver");
        iommu_ = std::make_unique<VtdIommu>(name.c_str(), vtd::RegFileConfig::scalable_unit(),
                                            drv_->hw(), unit_, env.stats, regs_);
        queue_ = std::make_unique<vtd::InvQueueWriter>(env.store, dc.table_base + kQueueOffset, 0,
                                                       dc.hw.scalable);
        feeder_ = std::make_unique<VtdQueueFeeder>(*drv_, *iommu_, *queue_);
        iommu_->unit().on_attach_function([this, &store = env.store](const Requester& r, bool pri) {
            vtd::enable_device_tlb(store, drv_->hw(), r.rid, pri);
            drv_->set_ats(r.rid, true);  // its domains' invalidations reach its ATC too
        });
        name_ = name;
        store_ = &env.store;
        stats_ = &env.stats;
        if (!prq_.prq_base) prq_.prq_base = env.struct_base + kPrqOffset;
        if (!prq_.status_addr) prq_.status_addr = env.struct_base + kPrqStatusOffset;
    }
    IommuUnit& unit() override { return iommu_->unit(); }

    std::unique_ptr<DeviceDomain> attach(const Requester& req, uint64_t,
                                         std::string* why) override {
        // Linux gives every device of its own IOMMU group a DMA domain of its own.
        auto did = drv_->create_domain({}, why);
        if (!did || !drv_->attach(req.rid, *did, why)) return nullptr;
        return std::make_unique<VtdDomain>(*this, *did, req.rid);
    }

    // As the driver does at boot: root table, queued invalidation, translation enabled, then
    // the invalidations of its attaches.
    void bring_up() override {
        vtd::enable_unit(*iommu_, drv_->hw().rtaddr, mode_.mode == VtdMode::Scalable, queue_->iqa(),
                         0, vtd::WriteOrder::AtOnce);
        feeder_->submit(0);
        iommu_->unit().engine().set_oracle(
            [d = drv_.get()](const Requester& q, Addr a) { return d->expect(q, a); });
        if (sva_) sva_->enable(0);
    }
    std::vector<std::string> defects() const override {
        return sva_ ? sva_->defects() : std::vector<std::string>{};
    }

private:
    friend class VtdDomain;
    UnitParams unit_;
    VtdModeParams mode_;
    vtd::RegFileParams regs_;
    HostDriverParams driver_;
    std::unique_ptr<vtd::Driver> drv_;
    std::unique_ptr<VtdIommu> iommu_;
    std::unique_ptr<vtd::InvQueueWriter> queue_;
    std::unique_ptr<VtdQueueFeeder> feeder_;
    // SVA: made when a device first asks for process address spaces (scalable mode only).
    sva::PrqParams prq_;
    std::unique_ptr<VtdSvaHost> sva_;
    std::string name_;
    SparseMemory* store_ = nullptr;
    StatGroup* stats_ = nullptr;
};

std::optional<Addr> VtdDomain::map_long(Addr pa, uint64_t len, std::string* why) {
    return b_.drv_->map_alloc(did_, pa, len, kPermRW, ~Addr(0), why);
}

std::optional<Addr> VtdDomain::map_buffer(Addr pa, uint64_t len, size_t slot, std::string* why) {
    if (len > kBufferSpan || slot >= (~Addr(0) - kBufferBase) / kBufferSpan) {
        *why = fmt::format("a buffer of {:#x} bytes in slot {} (expected at most {:#x} bytes)", len,
                           slot, kBufferSpan);
        return std::nullopt;
    }
    const Addr iova = kBufferBase + Addr(slot) * kBufferSpan;
    if (!b_.drv_->map(did_, iova, pa, len, kPermRW, why)) return std::nullopt;
    return iova;
}

std::unique_ptr<DmaMapper> VtdDomain::dma_api() {
    return std::make_unique<VtdDmaApi>(*b_.drv_, *b_.feeder_, did_, b_.driver_);
}

std::unique_ptr<RecordedDomain> VtdDomain::recorded() {
    return std::make_unique<VtdRecorded>(*b_.drv_, *b_.feeder_, b_.iommu_->unit(), did_, rid_,
                                         b_.driver_);
}

SvaSpaces* VtdDomain::sva(std::function<Addr(uint64_t)> alloc) {
    if (!b_.drv_->hw().scalable) return nullptr;  // PASIDs need scalable mode
    if (!b_.sva_)
        b_.sva_ = std::make_unique<VtdSvaHost>((b_.name_ + "_sva").c_str(), *b_.drv_, *b_.iommu_,
                                               *b_.store_, *b_.queue_, *b_.feeder_, b_.prq_,
                                               b_.stats_->child("prq"));
    return b_.sva_->spaces(rid_, std::move(alloc));
}

bool VtdDomain::viommu_host(ViommuHost* h) {
    VtdQueueFeeder* f = b_.feeder_.get();
    *h = {b_.drv_.get(), did_, rid_, [f](Tick t) { return f->submit(t); }};
    return true;
}

}  // namespace

IOMMUSIM_REGISTER_DEFAULT_ARCH(vtd, "Intel VT-d remapping hardware unit (legacy or scalable mode)",
                               VtdBundle, vtd_lookup);

}  // namespace iommusim
