#include "walker.h"

#include <fmt/format.h>

#include <cstring>

#include "bits.h"
#include "sparse_memory.h"

namespace iommusim {

const char* to_string(WalkStage s) {
    switch (s) {
        case WalkStage::Root: return "root";
        case WalkStage::Context: return "context";
        case WalkStage::PasidDir: return "pasid-dir";
        case WalkStage::PasidEntry: return "pasid-entry";
        case WalkStage::FirstLevel: return "first-level";
        case WalkStage::SecondLevel: return "second-level";
        case WalkStage::Tce: return "tce";
    }
    return "?";
}

bool Walker::same_context(const WalkContext& a, const WalkContext& b) const {
    return a.tag == b.tag && a.pasid == b.pasid && a.complete == b.complete &&
           std::memcmp(a.arch, b.arch, sizeof a.arch) == 0;
}

const WalkResult& walk_functional(Walker& w, SparseMemory& mem, const Requester& req, Addr iova,
                                  Access access, WalkObserver* obs) {
    uint8_t buf[64];
    w.start(req, iova, access);
    for (;;) {
        WalkStep s = w.next();
        switch (s.kind) {
            case WalkStep::Kind::Done: return w.result();
            case WalkStep::Kind::Read:
                if (mem.read(s.addr, buf, s.size)) {
                    if (obs) obs->on_step(w, s, buf);
                    w.feed(buf);
                } else {
                    if (obs) obs->on_step(w, s, nullptr);
                    w.feed_error();
                }
                break;
            case WalkStep::Kind::Write:
                mem.write64(s.addr, s.wdata);
                if (obs) obs->on_step(w, s, nullptr);
                break;
        }
    }
}

namespace {
class Explainer : public WalkObserver {
public:
    std::string text;
    void on_step(const Walker& w, const WalkStep& s, const uint8_t* data) override {
        std::string where = fmt::format("{:<12}", to_string(s.stage));
        if (s.level) where += fmt::format(" L{}", s.level);
        if (s.nested) where += " (nested)";
        if (s.kind == WalkStep::Kind::Write) {
            text += fmt::format("  {:<24} write {:#014x} <- {:#018x} (accessed/dirty)\n", where,
                                s.addr, s.wdata);
        } else if (!data) {
            text += fmt::format("  {:<24} read  {:#014x} failed\n", where, s.addr);
        } else {
            std::string raw;
            for (int q = (s.size + 7) / 8 - 1; q >= 0; --q)
                raw += fmt::format("{:016x}", load_le64(data + 8 * q));
            text += fmt::format("  {:<24} read  {:#014x} = {}\n  {:<24}       {}\n", where, s.addr,
                                raw, "", w.describe(s, data));
        }
    }
};
}  // namespace

std::string explain_walk(Walker& w, SparseMemory& mem, const Requester& req, Addr iova,
                         Access access) {
    Explainer ex;
    const WalkResult& r = walk_functional(w, mem, req, iova, access, &ex);
    std::string out =
        fmt::format("lookup {} iova {:#x} {}\n", to_string(req), iova, to_string(access));
    out += ex.text;
    if (r.ok())
        out += fmt::format("  => {:#x} (page {} KiB, {}, tag {}), {} reads\n", r.tr.out,
                           r.tr.page_size() >> 10, perm_string(r.tr.perm), r.tr.tag, r.reads);
    else
        out += fmt::format("  => fault {} reason {:#x} at level {}, {} reads\n",
                           to_string(r.fault.kind), r.fault.reason, r.fault.level, r.reads);
    return out;
}

}  // namespace iommusim
