#include "device_kind.h"

#include <algorithm>

#include "dma_bench.h"
#include "nic.h"
#include "nvme.h"
#include "sva_accel.h"

namespace iommusim {

namespace {

// Wires what every device model offers (finished, its event, summary, its `dma` socket).
template <typename M>
BuiltDevice built(std::unique_ptr<M> m) {
    BuiltDevice b;
    M* p = m.get();
    b.dma = &p->dma;
    b.finished = [p] { return p->finished(); };
    b.finished_event = &p->finished_event();
    b.summary = [p] { return p->summary(); };
    b.module = std::move(m);
    return b;
}

class DmaBenchKind final : public DeviceKind {
public:
    explicit DmaBenchKind(uint8_t device) { p_.device = device; }
    void bind(ParamRegistry& r, const std::string& key) override { r.bind(key, p_); }
    Requester requester() const override { return p_.requester(); }
    uint64_t& seed() override { return p_.seed; }
    bool valid(std::string* why) const override { return p_.valid(why); }
    const char* size_key() const override { return "window"; }
    BuiltDevice build(const std::string& name, const DmaEngineParams& engine, DeviceMemory& mem,
                      StatGroup& stats) override {
        const Addr iova = mem.map_buffer(p_.window);
        auto m = std::make_unique<DmaBench>(name.c_str(), p_, engine, iova, stats);
        DmaBench* b = m.get();
        const double count = double(p_.count ? p_.count : 1);
        BuiltDevice d = built(std::move(m));
        d.progress = [b, count] { return std::min(1.0, double(b->result().transfers) / count); };
        d.ats = b->ats();
        d.pri = p_.ats.pri;
        return d;
    }

private:
    DmaBenchParams p_;
};

// The SVA accelerator: its processes' address spaces come from the host (DeviceMemory::sva).
class SvaAccelKind final : public DeviceKind {
public:
    explicit SvaAccelKind(uint8_t device) { p_.device = device; }
    void bind(ParamRegistry& r, const std::string& key) override { r.bind(key, p_); }
    Requester requester() const override { return p_.requester(); }
    uint64_t& seed() override { return p_.seed; }
    bool valid(std::string* why) const override { return p_.valid(why); }
    const char* size_key() const override { return "buffer"; }
    BuiltDevice build(const std::string& name, const DmaEngineParams& engine, DeviceMemory& mem,
                      StatGroup& stats) override {
        SvaSpaces* spaces = mem.sva();
        if (!spaces)
            throw std::invalid_argument(
                "type = sva-accel: its iommu gives no process address spaces (expected a VT-d "
                "unit in scalable mode: mode = scalable)");
        auto m = std::make_unique<SvaAccel>(name.c_str(), p_, *spaces, engine.mps, stats);
        SvaAccel* a = m.get();
        BuiltDevice d = built(std::move(m));
        d.progress = [a] { return a->progress(); };
        d.ats = a->ats();
        d.pri = p_.ats.pri;
        return d;
    }

private:
    SvaAccelParams p_;
};

// A device that maps per I/O through the DMA API (NIC, NVMe): its rings and pools are laid
// out by `layout`, its per-I/O buffers mapped by the model itself.
template <typename P, typename M, typename L>
class PerIoKind final : public DeviceKind {
public:
    using Layout = L (*)(const P&, DeviceMemory&);
    PerIoKind(uint8_t device, Layout layout) : layout_(layout) { p_.device = device; }
    void bind(ParamRegistry& r, const std::string& key) override { r.bind(key, p_); }
    Requester requester() const override { return p_.requester(); }
    uint64_t& seed() override { return p_.seed; }
    bool valid(std::string* why) const override { return p_.valid(why); }
    const char* size_key() const override { return "type"; }
    BuiltDevice build(const std::string& name, const DmaEngineParams& engine, DeviceMemory& mem,
                      StatGroup& stats) override {
        auto m =
            std::make_unique<M>(name.c_str(), p_, engine, layout_(p_, mem), mem.dma_api(), stats);
        M* n = m.get();
        BuiltDevice d = built(std::move(m));
        d.progress = [n] { return n->progress(); };
        return d;
    }

private:
    P p_;
    Layout layout_;
};

// Rings mapped for the run; packet buffers a pool mapped once, or mapped per packet.
NicLayout nic_layout(const NicParams& p, DeviceMemory& mem) {
    NicLayout lay;
    lay.rx_ring = mem.map_long(p.ring_bytes());
    lay.tx_ring = mem.map_long(p.ring_bytes());
    lay.buffers = p.buffers == NicBufferPolicy::Pool ? mem.map_long(p.buffer_region_bytes())
                                                     : mem.alloc(p.buffer_region_bytes());
    return lay;
}

// Queues and PRP lists mapped for the run; data buffers a pool, or mapped per command.
NvmeLayout nvme_layout(const NvmeParams& p, DeviceMemory& mem) {
    NvmeLayout lay;
    lay.sq = mem.map_long(p.sq_bytes());
    lay.cq = mem.map_long(p.cq_bytes());
    lay.prp_lists = mem.map_long(p.prp_list_bytes());
    lay.buffers = p.buffers == NvmeBufferPolicy::Pool ? mem.map_long(p.buffer_region_bytes())
                                                      : mem.alloc(p.buffer_region_bytes());
    return lay;
}

DeviceKind::Entry dma_bench() {
    return {"dma-bench", [](uint8_t device) -> std::unique_ptr<DeviceKind> {
                return std::make_unique<DmaBenchKind>(device);
            }};
}

template <typename P, typename M, typename L>
DeviceKind::Entry per_io(const char* name, L (*layout)(const P&, DeviceMemory&)) {
    return {name, [layout](uint8_t device) -> std::unique_ptr<DeviceKind> {
                return std::make_unique<PerIoKind<P, M, L>>(device, layout);
            }};
}

}  // namespace

const std::vector<DeviceKind::Entry>& DeviceKind::all() {
    static const std::vector<Entry> kinds = {
        dma_bench(),
        per_io<NicParams, Nic>("nic", nic_layout),
        per_io<NvmeParams, Nvme>("nvme", nvme_layout),
        {"sva-accel",
         [](uint8_t device) -> std::unique_ptr<DeviceKind> {
             return std::make_unique<SvaAccelKind>(device);
         }},
    };
    return kinds;
}

std::unique_ptr<DeviceKind> DeviceKind::create(const std::string& type, uint8_t device) {
    for (const Entry& e : all())
        if (e.name == type) return e.make(device);
    return nullptr;
}

std::string DeviceKind::names() {
    std::string out;
    const auto& e = all();
    for (size_t i = 0; i < e.size(); ++i)
        out += (i == 0 ? "" : i + 1 == e.size() ? " or " : ", ") + e[i].name;
    return out;
}

}  // namespace iommusim
