#include "device_kind.h"

#include <algorithm>

#include "dma_bench.h"
#include "nic.h"
#include "nvme.h"

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
        return d;
    }

private:
    DmaBenchParams p_;
};

class NicKind final : public DeviceKind {
public:
    explicit NicKind(uint8_t device) { p_.device = device; }
    void bind(ParamRegistry& r, const std::string& key) override { r.bind(key, p_); }
    Requester requester() const override { return Requester::bdf(p_.bus, p_.device, p_.function); }
    uint64_t& seed() override { return p_.seed; }
    bool valid(std::string* why) const override { return p_.valid(why); }
    const char* size_key() const override { return "type"; }
    BuiltDevice build(const std::string& name, const DmaEngineParams& engine, DeviceMemory& mem,
                      StatGroup& stats) override {
        NicLayout lay;
        lay.rx_ring = mem.map_long(p_.ring_bytes());
        lay.tx_ring = mem.map_long(p_.ring_bytes());
        lay.buffers = p_.buffers == NicBufferPolicy::Pool ? mem.map_long(p_.buffer_region_bytes())
                                                          : mem.alloc(p_.buffer_region_bytes());
        auto m = std::make_unique<Nic>(name.c_str(), p_, engine, lay, mem.dma_api(), stats);
        Nic* n = m.get();
        BuiltDevice d = built(std::move(m));
        d.progress = [n] { return n->progress(); };
        return d;
    }

private:
    NicParams p_;
};

class NvmeKind final : public DeviceKind {
public:
    explicit NvmeKind(uint8_t device) { p_.device = device; }
    void bind(ParamRegistry& r, const std::string& key) override { r.bind(key, p_); }
    Requester requester() const override { return Requester::bdf(p_.bus, p_.device, p_.function); }
    uint64_t& seed() override { return p_.seed; }
    bool valid(std::string* why) const override { return p_.valid(why); }
    const char* size_key() const override { return "type"; }
    BuiltDevice build(const std::string& name, const DmaEngineParams& engine, DeviceMemory& mem,
                      StatGroup& stats) override {
        NvmeLayout lay;
        lay.sq = mem.map_long(p_.sq_bytes());
        lay.cq = mem.map_long(p_.cq_bytes());
        lay.prp_lists = mem.map_long(p_.prp_list_bytes());
        lay.buffers = p_.buffers == NvmeBufferPolicy::Pool ? mem.map_long(p_.buffer_region_bytes())
                                                           : mem.alloc(p_.buffer_region_bytes());
        auto m = std::make_unique<Nvme>(name.c_str(), p_, engine, lay, mem.dma_api(), stats);
        Nvme* n = m.get();
        BuiltDevice d = built(std::move(m));
        d.progress = [n] { return n->progress(); };
        return d;
    }

private:
    NvmeParams p_;
};

template <typename K>
DeviceKind::Entry entry(const char* name) {
    return {name, [](uint8_t device) { return std::unique_ptr<DeviceKind>(new K(device)); }};
}

}  // namespace

const std::vector<DeviceKind::Entry>& DeviceKind::all() {
    static const std::vector<Entry> kinds = {
        entry<DmaBenchKind>("dma-bench"),
        entry<NicKind>("nic"),
        entry<NvmeKind>("nvme"),
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
