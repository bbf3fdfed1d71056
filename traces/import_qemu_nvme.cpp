// Access size and direction of an emulated NVMe controller's DMA, from QEMU's pci_nvme_*
// events. QEMU translates once per page per access, so a translation's full IOVA is the start
// of one access; what the controller was doing there follows from the addresses it was given:
//   - data: the pci_nvme_map_addr ranges of a command in flight, direction from the opcode
//     (NVMe opcode bits 1:0: 01 host-to-controller = DMA read, 10 = DMA write);
//   - PRP list: at PRP2 when the transfer needs more than two pages (read);
//   - submission queue entries (read) and completion queue entries (write);
//   - shadow doorbells (read; written by QEMU for the admin queue's MMIO doorbells and at
//     Doorbell Buffer Config) and event indexes (write), 4 bytes each.
// The controller's requester is not in those events: the one whose translations these rules
// explain is taken (one NVMe controller per log).
#include <algorithm>
#include <list>
#include <map>
#include <optional>
#include <unordered_map>

#include "traces/import_qemu_log.h"

namespace iommusim::trace::qemu {

namespace {

using NT = NvmeEvent::Type;
constexpr uint64_t kPage = 4096;  // the controller's memory page size (CC.MPS = 0, as Linux sets)
constexpr uint8_t kOpDbbufConfig = 0x7c;
constexpr size_t kMaxInflight = 4096;  // more than the queues of a Linux guest hold

struct Range {
    Addr lo = 0, hi = 0;
    bool contains(Addr a) const { return a >= lo && a < hi; }
};

struct Queue {
    Addr base = 0;
    uint64_t entries = 0;
    uint16_t cqid = 0;
};

struct Command {
    uint16_t cid = 0, sqid = 0;
    uint8_t opc = 0;
    bool admin = false;
    std::vector<Range> data;
    Range prp_list;
    std::vector<uint32_t> deferred;  // translations during Doorbell Buffer Config
};

Dir data_dir(uint8_t opc) {
    switch (opc & 3) {
        case 1: return Dir::Read;
        case 2: return Dir::Write;
        default: return Dir::Unknown;
    }
}

class Controller {
public:
    Controller(Log& log, bool apply, std::optional<uint16_t> rid)
        : log_(log), apply_(apply), rid_(rid) {}

    // Number of translations explained, per requester.
    std::map<uint16_t, uint64_t> run() {
        for (const Item& it : log_.items) {
            if (it.type == Item::Type::Nvme) event(log_.nvme[it.index]);
            if (it.type == Item::Type::Translate) translation(it.index);
        }
        return explained_;
    }

private:
    void event(const NvmeEvent& e) {
        switch (e.type) {
            case NT::AdminCmd:
            case NT::IoCmd: {
                Command c;
                c.cid = uint16_t(e.a);
                c.sqid = uint16_t(e.b);
                c.opc = uint8_t(e.c);
                c.admin = e.type == NT::AdminCmd;
                inflight_.push_front(c);
                current_[e.pid] = &inflight_.front();
                // Commands whose completion the log lacks must not pile up forever.
                if (inflight_.size() > kMaxInflight) forget(&inflight_.back());
                break;
            }
            case NT::MapPrp:
                if (Command* c = current(e.pid)) {
                    // More than two pages: PRP2 points to a list of the remaining pages.
                    const uint64_t rest = e.c > e.d ? e.c - e.d : 0;
                    if (rest > kPage) {
                        const uint64_t need = (rest + kPage - 1) / kPage * 8;
                        c->prp_list = {e.b, e.b + std::min(need, kPage - e.b % kPage)};
                    }
                }
                break;
            case NT::MapAddr:
                if (Command* c = current(e.pid)) c->data.push_back({e.a, e.a + e.b});
                break;
            case NT::Completion: complete(uint16_t(e.a), uint16_t(e.b)); break;
            case NT::CreateSq: sq_[uint16_t(e.b)] = {e.a, e.d + 1, uint16_t(e.c)}; break;
            case NT::CreateCq: cq_[uint16_t(e.b)] = {e.a, e.d + 1, uint16_t(e.b)}; break;
            case NT::DelSq: sq_.erase(uint16_t(e.b)); break;
            case NT::DelCq: cq_.erase(uint16_t(e.b)); break;
            case NT::DbbufConfig: dbbuf_config(e); break;
            case NT::Asq: asq_ = (asq_ & ~0xffffffffull) | (e.a & 0xffffffffull), admin(); break;
            case NT::AsqHi: asq_ = e.a, admin(); break;
            case NT::Acq: acq_ = (acq_ & ~0xffffffffull) | (e.a & 0xffffffffull), admin(); break;
            case NT::AcqHi: acq_ = e.a, admin(); break;
            case NT::Aqattr: aqa_ = e.a, admin(); break;
            case NT::Cfg: {
                // CC.IOSQES (19:16) and CC.IOCQES (23:20): queue entry sizes as powers of two.
                const unsigned s = (e.a >> 16) & 0xf, c = (e.a >> 20) & 0xf;
                if (s) sqes_ = 1u << s;
                if (c) cqes_ = 1u << c;
                break;
            }
            case NT::DoorbellSq:
            case NT::DoorbellCq:
                // QEMU copies the admin queue's MMIO doorbells into the shadow doorbell at once.
                if (dbbuf_ && e.b == 0) mirror_[e.pid] = dbs_ + (e.type == NT::DoorbellCq ? 4 : 0);
                break;
            case NT::Reset:
                sq_.clear();
                cq_.clear();
                admin();
                inflight_.clear();
                current_.clear();
                dbbuf_ = false;
                break;
        }
    }

    void admin() {
        sq_[0] = {asq_, (aqa_ & 0xfff) + 1, 0};
        cq_[0] = {acq_, ((aqa_ >> 16) & 0xfff) + 1, 0};
    }

    Command* current(uint32_t pid) {
        const auto it = current_.find(pid);
        return it == current_.end() ? nullptr : it->second;
    }

    void complete(uint16_t cid, uint16_t cqid) {
        for (auto it = inflight_.begin(); it != inflight_.end(); ++it) {
            const auto sq = sq_.find(it->sqid);
            const uint16_t its_cq = it->sqid == 0 ? 0 : sq != sq_.end() ? sq->second.cqid : cqid;
            if (it->cid != cid || its_cq != cqid) continue;
            return forget(&*it);
        }
    }

    void forget(Command* cmd) {
        for (auto c = current_.begin(); c != current_.end();)
            c = c->second == cmd ? current_.erase(c) : std::next(c);
        inflight_.remove_if([&](const Command& x) { return &x == cmd; });
    }

    void dbbuf_config(const NvmeEvent& e) {
        dbbuf_ = true;
        dbs_ = e.a;
        eis_ = e.b;
        // QEMU writes the current doorbell values of the existing queues into the new buffer.
        if (Command* c = current(e.pid))
            for (uint32_t i : c->deferred) {
                const Addr v = log_.translations[i].iova;
                if (in_page(v, dbs_) || in_page(v, eis_)) set(i, 4, Dir::Write);
            }
    }

    static bool in_page(Addr v, Addr base) { return v >= base && v - base < kPage && !(v & 3); }

    void translation(uint32_t i) {
        const Translation& t = log_.translations[i];
        if (rid_ && t.rid != *rid_) return;
        const Addr v = t.iova, page_end = (v | t.mask) + 1;
        const auto m = mirror_.find(t.pid);
        if (m != mirror_.end()) {
            const bool hit = m->second == v;
            mirror_.erase(m);
            if (hit) return set(i, 4, Dir::Write);
        }
        for (const Command& c : inflight_) {
            for (const Range& r : c.data)
                if (r.contains(v)) return set(i, std::min(r.hi, page_end) - v, data_dir(c.opc));
            if (c.prp_list.contains(v))
                return set(i, std::min(c.prp_list.hi, page_end) - v, Dir::Read);
        }
        for (const auto& [id, q] : sq_)
            if (entry(q, sqes_, v)) return set(i, sqes_, Dir::Read);
        for (const auto& [id, q] : cq_)
            if (entry(q, cqes_, v)) return set(i, cqes_, Dir::Write);
        if (dbbuf_ && in_page(v, dbs_)) return set(i, 4, Dir::Read);
        if (dbbuf_ && in_page(v, eis_)) return set(i, 4, Dir::Write);
        for (Command& c : inflight_)
            if (c.admin && c.opc == kOpDbbufConfig) return c.deferred.push_back(i);
    }

    static bool entry(const Queue& q, unsigned size, Addr v) {
        return q.entries && v >= q.base && v - q.base < q.entries * size &&
               (v - q.base) % size == 0;
    }

    void set(uint32_t i, uint64_t size, Dir dir) {
        Translation& t = log_.translations[i];
        ++explained_[t.rid];
        if (!apply_) return;
        t.size = size;
        t.size_known = true;
        t.dir = dir;
    }

    Log& log_;
    const bool apply_;
    const std::optional<uint16_t> rid_;
    std::map<uint16_t, uint64_t> explained_;
    unsigned sqes_ = 64, cqes_ = 16;
    Addr asq_ = 0, acq_ = 0;
    uint64_t aqa_ = 0;
    std::map<uint16_t, Queue> sq_, cq_;
    bool dbbuf_ = false;
    Addr dbs_ = 0, eis_ = 0;
    std::list<Command> inflight_;  // newest first; std::list keeps `current_` pointers valid
    std::unordered_map<uint32_t, Command*> current_;  // per QEMU thread
    std::unordered_map<uint32_t, Addr> mirror_;       // per thread: shadow doorbell QEMU writes
};

}  // namespace

void classify_nvme(Log& log, ImportReport& report) {
    if (log.nvme.empty()) return;
    // First pass over every device: which requester do the controller's addresses explain?
    const auto counts = Controller(log, false, std::nullopt).run();
    const auto best = std::max_element(counts.begin(), counts.end(),
                                       [](auto& a, auto& b) { return a.second < b.second; });
    if (best == counts.end()) return;
    const uint16_t rid = best->first;
    Controller(log, true, rid).run();
    Requester r;
    r.rid = rid;
    report.notes.push_back("NVMe controller (pci_nvme_* events) taken to be " + to_string(r) +
                           ": its DMA sizes and directions come from those events");
}

}  // namespace iommusim::trace::qemu
