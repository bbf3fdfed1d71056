#include "viommu_domain.h"

#include <fmt/format.h>

namespace iommusim {

namespace {

// Benchmark buffers at the guest IOVAs the host's own domains use (4 GiB + slot * 64 GiB).
constexpr Addr kBufferBase = Addr(1) << 32;
constexpr Addr kBufferSpan = Addr(64) << 30;

class ViommuDomain final : public DeviceDomain {
public:
    ViommuDomain(std::unique_ptr<DeviceDomain> host, std::unique_ptr<Viommu> v)
        : host_(std::move(host)), v_(std::move(v)) {}

    std::optional<Addr> map_long(Addr pa, uint64_t len, std::string* why) override {
        return v_->map_long(pa, len, why);
    }
    std::optional<Addr> map_buffer(Addr pa, uint64_t len, size_t slot, std::string* why) override {
        if (!v_->windows().empty()) return v_->map_long(pa, len, why);  // inside a TCE window
        if (len > kBufferSpan || slot >= (~Addr(0) - kBufferBase) / kBufferSpan) {
            *why = fmt::format("a buffer of {:#x} bytes in slot {} (expected at most {:#x} bytes)",
                               len, slot, kBufferSpan);
            return std::nullopt;
        }
        const Addr iova = kBufferBase + Addr(slot) * kBufferSpan;
        if (!v_->map_at(iova, pa, len, why)) return std::nullopt;
        return iova;
    }
    std::unique_ptr<DmaMapper> dma_api() override { return v_->dma_api(); }

private:
    std::unique_ptr<DeviceDomain> host_;  // keeps the host side alive
    std::unique_ptr<Viommu> v_;
};

}  // namespace

std::unique_ptr<DeviceDomain> attach_viommu(std::unique_ptr<DeviceDomain> host,
                                            const ViommuParams& p, StatGroup& stats,
                                            std::string* why) {
    ViommuHost h;
    if (!host->viommu_host(&h)) {
        *why = "its unit's architecture cannot host a guest IOMMU (expected a VT-d unit)";
        return nullptr;
    }
    auto v = Viommu::create(p, h, stats, why);
    if (!v) return nullptr;
    return std::make_unique<ViommuDomain>(std::move(host), std::move(v));
}

}  // namespace iommusim
