// Linux ftrace text dumps of iommu:* and dma:* events -> GuestOps -> trace records.
#include "traces/import_ftrace.h"

#include <algorithm>
#include <map>

#include "traces/ftrace_line.h"
#include "traces/import_bdf.h"
#include "traces/import_fields.h"
#include "traces/import_lines.h"
#include "traces/trace_line.h"

namespace iommusim::trace {

namespace {

using ftrace::classify;
using ftrace::Ev;
using ftrace::locate;
using ftrace::Located;
using ftrace::Probe;
using import::field;
using import::hex_field;
using import::seconds_ns;
using import::trim;

constexpr Addr kPage = 4096;
// How far back a dma:* event looks for the iommu:* events of the same mapping (the kernel
// traces iommu:map inside dma_map_page, just before dma:dma_map_page).
constexpr size_t kAttributeWindow = 64;

Addr page_down(Addr a) {
    return a & ~(kPage - 1);
}
Addr page_up(Addr a) {
    return (a + kPage - 1) & ~(kPage - 1);
}

// Linux's decode_dma_data_direction: what the device may do with the memory.
std::optional<Perm> dma_perm(std::string_view payload) {
    const size_t p = import::value_pos(payload, "dir");
    if (p == std::string_view::npos) return kPermR | kPermW;  // dma_alloc: coherent, both
    const std::string_view d = payload.substr(p, payload.find(' ', p) - p);
    if (d == "BIDIRECTIONAL") return kPermR | kPermW;
    if (d == "TO_DEVICE") return kPermR;
    if (d == "FROM_DEVICE") return kPermW;
    if (d == "NONE") return kPermNone;
    return std::nullopt;
}

// "key={0x1,0x2}" as numbers (Linux __print_array).
std::optional<std::vector<uint64_t>> array_field(std::string_view payload, std::string_view key) {
    size_t p = import::value_pos(payload, key);
    if (p == std::string_view::npos || payload[p] != '{') return std::nullopt;
    std::vector<uint64_t> v;
    for (++p; p < payload.size() && payload[p] != '}';) {
        while (p < payload.size() && (payload[p] == ' ' || payload[p] == ',')) ++p;
        if (p < payload.size() && payload[p] == '}') break;
        size_t used = 0;
        const auto x = import::number(payload.substr(p), &used);
        if (!x) return std::nullopt;
        v.push_back(*x);
        p += used;
    }
    if (p >= payload.size()) return std::nullopt;
    return v;
}

class Parser {
public:
    Parser(GuestTrace& out, ImportReport& report) : out_(out), report_(report) {}

    void read(const std::string& path) {
        raw_ = raw_clock(path);
        if (raw_) out_.raw_clock = true;
        LineSource src(path, report_);
        file_ = uint32_t(out_.files.size());
        out_.files.push_back(path);
        pending_.clear();
        drop_kprobes();
        std::string text;
        while (src.next(text)) {
            line_ = src.line();
            const std::string_view line = text;
            if (!line.empty() && line[0] == '#') {
                header(line);
                ++report_.skipped;
                continue;
            }
            Located ev;
            std::string_view bad_time;
            if (!locate(line, ev, bad_time, raw_)) {
                if (bad_time.empty())
                    ++report_.skipped;
                else if (raw_)
                    report_.error(out_.files[file_], line_,
                                  "expected a raw clock count (digits, as every event of this "
                                  "file has) before the event, got " +
                                      detail::quoted(bad_time));
                else
                    report_.error(out_.files[file_], line_,
                                  "expected a timestamp SECONDS.FRACTION (at most " +
                                      std::to_string(UINT64_MAX / 1000000000u) +
                                      " s) before the event, got " + detail::quoted(bad_time));
                continue;
            }
            if (!parse(ev)) ++report_.skipped;
        }
        drop_kprobes();
    }

private:
    // trace_clock=x86-tsc and counter print counts with no unit: a file is read so when no
    // event line has a SECONDS.FRACTION timestamp but some have a count.
    static bool raw_clock(const std::string& path) {
        ImportReport scratch;
        LineSource src(path, scratch);
        std::string text;
        bool counts = false;
        while (src.next(text)) {
            if (!text.empty() && text[0] == '#') continue;
            Located ev;
            std::string_view bad;
            if (locate(text, ev, bad, false)) return false;
            if (!counts && locate(text, ev, bad, true)) counts = true;
        }
        return counts;
    }

    // "# entries-in-buffer/entries-written: 283/283": fewer in the buffer means it wrapped.
    void header(std::string_view line) {
        const size_t p = line.find("entries-in-buffer/entries-written:");
        if (p == std::string_view::npos) return;
        std::string_view v = trim(line.substr(p + 34));
        size_t n = 0;
        const auto in = import::number(v, &n);
        if (!in || n >= v.size() || v[n] != '/') return;
        const auto written = import::number(v.substr(n + 1));
        if (written && *written > *in)
            report_.notes.push_back(out_.files[file_] + ": the ftrace ring buffer overwrote " +
                                    std::to_string(*written - *in) +
                                    " events; mappings made before the oldest kept event are "
                                    "missing");
    }

    // A malformed event line; true because the line was an event (not to be counted skipped).
    bool error(const Located& ev, const char* expected) {
        report_.error(out_.files[file_], line_,
                      std::string(ev.name) + ": expected '" + expected + "', got " +
                          detail::quoted(ev.payload));
        return true;
    }
    // A well-formed event whose values make no sense.
    bool bad(const Located& ev, const std::string& what) {
        report_.error(out_.files[file_], line_,
                      std::string(ev.name) + ": " + what + ", in " + detail::quoted(ev.payload));
        return true;
    }
    std::string where() const { return out_.files[file_] + ":" + std::to_string(line_); }

    // An iommu:map/unmap range: not empty, within 64 bits, and where the event prints its end
    // ("iova=0x.. - 0x.."), the end is iova + size. Reports and returns false otherwise.
    bool range_ok(const Located& ev, Addr iova, uint64_t size) {
        if (size == 0) return !bad(ev, "size=0 (an empty range)");
        if (iova + size < iova) return !bad(ev, "iova + size beyond 2^64");
        const std::string_view p = ev.payload;
        const size_t at = import::value_pos(p, "iova");
        size_t used = 0;
        if (at == std::string_view::npos || !import::number(p.substr(at), &used)) return true;
        std::string_view rest = p.substr(at + used);
        while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
        if (rest.empty() || rest[0] != '-') return true;  // no end printed
        const auto end = import::number(trim(rest.substr(1)));
        if (!end || *end != iova + size)
            return !bad(ev, "the range's end is not iova + size" +
                                std::string(end && *end < iova ? " (reversed range)" : ""));
        return true;
    }

    GuestOp op(GuestOp::Type t, uint64_t ns) const {
        GuestOp o;
        o.type = t;
        o.guest_ns = ns;
        o.file = file_;
        o.line = line_;
        return o;
    }

    // Returns false for events recognised but not used (counted as skipped).
    bool parse(const Located& ev) {
        const std::string_view p = ev.payload;
        if (ev.probe != Probe::None) return kprobe(ev);
        switch (classify(ev.name)) {
            case Ev::Map: {
                static const char* kWant = "IOMMU: iova=0x.. - 0x.. paddr=0x.. size=N";
                const auto iova = field(p, "iova"), pa = field(p, "paddr"), size = field(p, "size");
                if (p.substr(0, 6) != "IOMMU:" || !iova || !pa || !size) return error(ev, kWant);
                GuestOp o = op(GuestOp::Type::Map, ev.ns);
                o.domain_ptr = pair(ev, Probe::Map, *iova, *size);
                if (!range_ok(ev, *iova, *size)) return true;
                o.iova = *iova, o.pa = *pa, o.size = *size;
                add_iommu(o);
                return true;
            }
            case Ev::Unmap: {
                static const char* kWant = "IOMMU: iova=0x.. - 0x.. size=N unmapped_size=N";
                const auto iova = field(p, "iova"), size = field(p, "size");
                const auto done = field(p, "unmapped_size");
                if (p.substr(0, 6) != "IOMMU:" || !iova || !size) return error(ev, kWant);
                const auto ptr = pair(ev, Probe::Unmap, *iova, *size);
                if (!range_ok(ev, *iova, *size)) return true;
                // Linux unmaps more than asked when the range lies in a large page; the event
                // does not say where that page starts, so the range removed is unknown.
                if (done && *done > *size)
                    return bad(ev, "unmapped_size=" + std::to_string(*done) +
                                       " exceeds size=" + std::to_string(*size) +
                                       " (a large-page unmap: the range "
                                       "removed is not known)");
                if (done && *done == 0) {  // nothing was mapped there: nothing to record
                    if (!unmapped_nothing_++) first_unmapped_nothing_ = where();
                    return true;
                }
                GuestOp o = op(GuestOp::Type::Unmap, ev.ns);
                o.domain_ptr = ptr;
                o.iova = *iova, o.size = done ? *done : *size;  // what was actually unmapped
                add_iommu(o);
                return true;
            }
            case Ev::Fault: {
                static const char* kWant = "IOMMU:DRIVER DEVICE iova=0x.. flags=0x..";
                const auto iova = field(p, "iova"), flags = field(p, "flags");
                if (p.substr(0, 6) != "IOMMU:" || !iova || !flags) return error(ev, kWant);
                GuestOp o = op(GuestOp::Type::Fault, ev.ns);
                o.iova = *iova;
                o.dir = (*flags & 1) ? Dir::Write : Dir::Read;  // IOMMU_FAULT_WRITE
                const std::string_view words = p.substr(6);
                const size_t sp = words.find(' ');
                if (sp != std::string_view::npos)
                    o.rid = import::bdf(words.substr(sp + 1, words.find(' ', sp + 1) - sp - 1));
                out_.ops.push_back(o);
                return true;
            }
            case Ev::QiSubmit: return qi_submit(ev);
            case Ev::BlockIssue:
            case Ev::BlockComplete: return block(ev, classify(ev.name) == Ev::BlockComplete);
            case Ev::DmaMap:
            case Ev::DmaUnmap: return dma(ev, classify(ev.name) == Ev::DmaMap);
            case Ev::DmaMapSg:
            case Ev::DmaUnmapSg: return dma_sg(ev, classify(ev.name) == Ev::DmaMapSg);
            case Ev::DmaOther:
            case Ev::None: return false;
        }
        return false;
    }

    // A kprobe on __iommu_map/__iommu_unmap waits for its tracepoint (same task and CPU, same
    // iova and size, next after it); one on intel_iommu_attach_device is an Attach.
    bool kprobe(const Located& ev) {
        const std::string_view p = ev.payload;
        const auto domain = field(p, "domain");
        if (ev.probe == Probe::Attach) {
            static const char* kWant = "(intel_iommu_attach_device+..) domain=0x.. dev=\"NAME\"";
            const size_t at = import::value_pos(p, "dev");
            if (!domain || at == std::string_view::npos || p[at] != '"' ||
                p.find('"', at + 1) == std::string_view::npos)
                return error(ev, kWant);
            const std::string_view name = p.substr(at + 1, p.find('"', at + 1) - at - 1);
            const auto rid = import::bdf(name);
            if (!rid) {  // not a PCI function (an ACPI or platform device): no requester ID
                if (!not_pci_++) first_not_pci_ = where() + " (" + std::string(name) + ")";
                return true;
            }
            out_.attach.push_back({ev.ns, *domain, *rid});
            return true;
        }
        const bool map = ev.probe == Probe::Map;
        const auto iova = field(p, "iova"), size = field(p, "size");
        const auto pa = field(p, "paddr");
        if (!domain || !iova || !size || (map && !pa))
            return error(ev, map ? "(__iommu_map+..) domain=0x.. iova=0x.. paddr=0x.. size=N"
                                 : "(__iommu_unmap+..) domain=0x.. iova=0x.. size=N");
        out_.kprobes = true;
        auto& q = kprobes_[std::string(ev.who)];
        if (q.size() == kMaxPendingKprobes) {  // never followed by its event (a failed map)
            ++report_.kprobes_unpaired;
            q.erase(q.begin());
        }
        q.push_back({ev.probe, *domain, *iova, *size});
        return true;
    }

    // The domain of the kprobe this map/unmap event follows, if any.
    std::optional<uint64_t> pair(const Located& ev, Probe probe, Addr iova, uint64_t size) {
        const auto it = kprobes_.find(ev.who);
        if (it != kprobes_.end()) {
            auto& q = it->second;
            for (size_t i = q.size(); i-- > 0;)
                if (q[i].probe == probe && q[i].iova == iova && q[i].size == size) {
                    const uint64_t d = q[i].domain;
                    q.erase(q.begin() + ptrdiff_t(i));
                    ++report_.ops_kprobe;
                    return d;
                }
        }
        if (!without_kprobe_++) first_without_kprobe_ = where();
        return std::nullopt;
    }

    void drop_kprobes() {
        for (const auto& [who, q] : kprobes_) report_.kprobes_unpaired += q.size();
        kprobes_.clear();
    }

    void add_iommu(const GuestOp& o) {
        pending_.push_back(out_.ops.size());
        if (pending_.size() > kAttributeWindow) pending_.erase(pending_.begin());
        out_.ops.push_back(o);
    }

    // "iotlb_inv dmar0: 0x.. 0x.. 0x.. 0x..": the four descriptor words after the unit's name.
    bool qi_submit(const Located& ev) {
        std::string_view p = ev.payload;
        const size_t colon = p.find(':');
        std::vector<uint64_t> w;
        if (colon != std::string_view::npos) {
            p = trim(p.substr(colon + 1));
            while (!p.empty() && w.size() < 4) {
                size_t used = 0;
                const auto v = import::number(p, &used);
                if (!v || p.substr(0, 2) != "0x") break;
                w.push_back(*v);
                p = trim(p.substr(used));
            }
        }
        if (w.size() != 4) return error(ev, "TYPE dmarN: 0x.. 0x.. 0x.. 0x..");
        QiSubmit q;
        q.guest_ns = ev.ns;
        q.qw0 = w[0], q.qw1 = w[1];
        q.file = file_;
        q.line = line_;
        out_.qi.push_back(q);
        return true;
    }

    // "259,0 RS 4096 () 128 + 8 [dd]" (issue: with bytes) / "259,0 R () 128 + 8 [0]"
    // (complete): device, flags, sector + count. Requests without data (flush: "N") and lines
    // of other layouts are only counted as skipped: these events are a clock check.
    bool block(const Located& ev, bool complete) {
        const std::string_view p = ev.payload;
        const size_t comma = p.find(','), sp = p.find(' '), plus = p.find(" + ");
        if (comma == std::string_view::npos || sp == std::string_view::npos || comma > sp ||
            plus == std::string_view::npos)
            return false;
        size_t used = 0;
        const auto major = import::number(p.substr(0, comma), &used);
        const auto minor = import::number(p.substr(comma + 1, sp - comma - 1));
        const std::string_view flags = p.substr(sp + 1, p.find(' ', sp + 1) - sp - 1);
        size_t b = plus;
        while (b > 0 && p[b - 1] != ' ') --b;
        const auto sector = import::number(p.substr(b, plus - b));
        const auto count = import::number(p.substr(plus + 3));
        if (!major || !minor || !sector || !count || !*count || flags.empty() ||
            (flags[0] != 'R' && flags[0] != 'W'))
            return false;
        BlockRq r;
        r.guest_ns = ev.ns;
        r.dev = uint32_t(*major << 20 | (*minor & 0xfffff));
        r.sector = *sector, r.sectors = *count;
        r.write = flags[0] == 'W';
        r.complete = complete;
        out_.block.push_back(r);
        return true;
    }

    // The device name is the first word: "0000:00:02.0 dir=... dma_addr=...".
    static std::optional<uint16_t> device(std::string_view p) {
        return import::bdf(p.substr(0, p.find(' ')));
    }

    bool dma(const Located& ev, bool map) {
        const std::string_view p = ev.payload;
        const auto addr = hex_field(p, "dma_addr"), size = field(p, "size");  // size: %zu
        const auto phys = hex_field(p, "phys_addr");
        const auto perm = dma_perm(p);
        if (!addr || !size || !perm)
            return error(ev, map ? "DEVICE dir=D dma_addr=X size=N phys_addr=X"
                                 : "DEVICE dir=D dma_addr=X size=N");
        add_dma(ev, map, device(p), *addr, *size, phys, *perm);
        return true;
    }

    bool dma_sg(const Located& ev, bool map) {
        const std::string_view p = ev.payload;
        const auto rid = device(p);
        const auto phys = array_field(p, "phys_addrs");
        const auto perm = dma_perm(p);
        if (!map) {
            if (!phys || !perm) return error(ev, "DEVICE dir=D phys_addrs={..}");
            // dma_unmap_sg names only the physical addresses: find the entries mapped for them.
            for (uint64_t pa : *phys) {
                const auto it = sg_.find({rid.value_or(0), pa});
                if (it == sg_.end()) continue;
                add_dma(ev, false, rid, it->second.first, it->second.second, pa, *perm);
                sg_.erase(it);
            }
            return true;
        }
        const auto addrs = array_field(p, "dma_addrs"), sizes = array_field(p, "sizes");
        if (!phys || !addrs || !sizes || !perm || addrs->size() != sizes->size() ||
            phys->size() < addrs->size())
            return error(ev, "DEVICE dir=D dma_addrs={..} sizes={..} phys_addrs={..}");
        for (size_t i = 0; i < addrs->size(); ++i) {
            sg_[{rid.value_or(0), (*phys)[i]}] = {(*addrs)[i], (*sizes)[i]};
            add_dma(ev, true, rid, (*addrs)[i], (*sizes)[i], (*phys)[i], *perm);
        }
        return true;
    }

    // A dma:* mapping names the device of the iommu:* events that made it; without such
    // events (a kernel tracing only dma:*) it is a mapping of its own.
    void add_dma(const Located& ev, bool map, std::optional<uint16_t> rid, Addr addr, uint64_t size,
                 std::optional<Addr> phys, Perm perm) {
        if (size == 0) {
            bad(ev, "size=0 (an empty range)");
            return;
        }
        if (addr + size < addr || page_up(addr + size) < addr) {
            bad(ev, "dma_addr + size beyond 2^64");
            return;
        }
        const Addr lo = page_down(addr), hi = page_up(addr + size);
        const GuestOp::Type want = map ? GuestOp::Type::Map : GuestOp::Type::Unmap;
        bool matched = false;
        for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
            GuestOp& o = out_.ops[*it];
            if (o.type != want || o.rid || o.iova >= hi || o.iova + o.size <= lo) continue;
            o.rid = rid;
            if (map) o.perm = perm;
            matched = true;
        }
        if (matched) return;
        if (map && !phys) {
            ++report_.skipped;  // dma_alloc of kernels that do not print the physical address
            return;
        }
        GuestOp o = op(want, ev.ns);
        o.rid = rid;
        o.iova = lo;
        o.size = hi - lo;
        o.pa = phys ? page_down(*phys) : 0;
        o.perm = perm;
        out_.ops.push_back(o);
    }

    GuestTrace& out_;
    ImportReport& report_;
    uint32_t file_ = 0;
    uint64_t line_ = 0;
    bool raw_ = false;             // this file's timestamps are raw counts
    std::vector<size_t> pending_;  // recent iommu:* ops no dma:* event has claimed yet
    uint64_t unmapped_nothing_ = 0;
    std::string first_unmapped_nothing_;
    // Kprobes waiting for their map/unmap event, per "TASK-PID [CPU]" (an interrupt may map
    // between a kprobe and its event on the same CPU: a few are kept).
    struct PendingKprobe {
        Probe probe;
        uint64_t domain;
        Addr iova;
        uint64_t size;
    };
    static constexpr size_t kMaxPendingKprobes = 8;
    std::map<std::string, std::vector<PendingKprobe>, std::less<>> kprobes_;
    uint64_t not_pci_ = 0, without_kprobe_ = 0;
    std::string first_not_pci_, first_without_kprobe_;

public:
    // A note for the unmaps that removed nothing (counted skips, not errors).
    void notes() {
        if (unmapped_nothing_)
            report_.notes.push_back(std::to_string(unmapped_nothing_) +
                                    " iommu:unmap events removed nothing (unmapped_size=0, first "
                                    "at " +
                                    first_unmapped_nothing_ + "): not written");
        if (not_pci_)
            report_.notes.push_back(std::to_string(not_pci_) +
                                    " intel_iommu_attach_device kprobes name a device that is "
                                    "not a PCI function (first at " +
                                    first_not_pci_ + "): no requester ID, not used");
        if (out_.kprobes) report_.ops_without_kprobe = without_kprobe_;
        if (report_.ops_without_kprobe)
            report_.notes.push_back(
                std::to_string(report_.ops_without_kprobe) +
                " iommu:map/unmap events follow no __iommu_map/__iommu_unmap kprobe of the same "
                "task, CPU, iova and size (first at " +
                first_without_kprobe_ + "): their domain is found as without kprobes");
        if (report_.kprobes_unpaired)
            report_.notes.push_back(std::to_string(report_.kprobes_unpaired) +
                                    " __iommu_map/__iommu_unmap kprobes were followed by no "
                                    "iommu:map/unmap event (failed calls): not used");
    }
    std::map<std::pair<uint16_t, Addr>, std::pair<Addr, uint64_t>> sg_;  // (rid, pa) -> dma
};

}  // namespace

GuestTrace read_ftrace(const std::vector<std::string>& paths, ImportReport& report) {
    GuestTrace t;
    Parser parser(t, report);
    for (const std::string& p : paths) parser.read(p);
    parser.notes();
    std::stable_sort(t.ops.begin(), t.ops.end(),
                     [](const GuestOp& a, const GuestOp& b) { return a.guest_ns < b.guest_ns; });
    std::stable_sort(t.qi.begin(), t.qi.end(),
                     [](const QiSubmit& a, const QiSubmit& b) { return a.guest_ns < b.guest_ns; });
    std::stable_sort(t.block.begin(), t.block.end(),
                     [](const BlockRq& a, const BlockRq& b) { return a.guest_ns < b.guest_ns; });
    std::stable_sort(t.attach.begin(), t.attach.end(),
                     [](const Attach& a, const Attach& b) { return a.guest_ns < b.guest_ns; });
    return t;
}

std::vector<uint16_t> attached(const GuestTrace& t, uint64_t ptr, uint64_t ns) {
    std::map<uint16_t, uint64_t> now;  // device -> its domain at `ns`
    for (const Attach& a : t.attach)
        if (a.guest_ns <= ns || !now.count(a.rid)) now[a.rid] = a.domain_ptr;
    std::vector<uint16_t> v;
    for (const auto& [rid, d] : now)
        if (d == ptr) v.push_back(rid);
    return v;
}

ImportReport import_ftrace(const std::vector<std::string>& paths, const RecordSink& sink) {
    ImportReport report;
    GuestTrace t = read_ftrace(paths, report);
    // Kprobes: the domain numbered in order of first appearance, the device attached to it.
    std::map<uint64_t, uint32_t> number;
    std::vector<uint32_t> domain(t.ops.size(), 0);
    for (size_t i = 0; i < t.ops.size(); ++i) {
        GuestOp& op = t.ops[i];
        if (!op.domain_ptr) continue;
        domain[i] = number.try_emplace(*op.domain_ptr, uint32_t(number.size() + 1)).first->second;
        const auto devs = attached(t, *op.domain_ptr, op.guest_ns);
        if (!op.rid && !devs.empty()) op.rid = devs.front();  // a dma:* event names it exactly
        ++report.ops_by_kprobe;
    }
    for (size_t i = 0; i < t.ops.size(); ++i) {
        const GuestOp& op = t.ops[i];
        Record r;
        r.time_ns = op.guest_ns;
        r.domain = domain[i];
        r.req.rid = op.rid.value_or(0);
        r.iova = op.iova;
        switch (op.type) {
            case GuestOp::Type::Map:
                r.kind = Kind::Map;
                r.size = op.size;
                r.pa = op.pa;
                r.perm = op.perm;
                break;
            case GuestOp::Type::Unmap:
                r.kind = Kind::Unmap;
                r.size = op.size;
                break;
            case GuestOp::Type::Fault:
                r.kind = Kind::Fault;
                r.dir = op.dir;
                break;
        }
        if (!op.rid && op.type != GuestOp::Type::Fault) ++report.ops_unattributed;
        if (!op.rid && op.type != GuestOp::Type::Fault && !op.domain_ptr)
            report.ambiguous(report.ambiguous_none,
                             t.where(op) + ": " +
                                 (op.type == GuestOp::Type::Map ? "map" : "unmap") +
                                 " names no device or domain");
        emit(r, sink, report);
    }
    if (t.raw_clock)
        report.notes.push_back(
            "the timestamps are raw clock counts (trace_clock=x86-tsc or counter): written "
            "unscaled, one count per ns");
    if (report.ops_unattributed)
        report.notes.push_back(
            std::to_string(report.ops_unattributed) +
            " map/unmap records name no device (iommu:map/unmap do not, and no dma:* event "
            "did): written as requester 00:00.0, domain 0, map perm=rw");
    return report;
}

ImportReport import_ftrace(const std::vector<std::string>& paths, Writer& out) {
    return import_ftrace(paths, [&](const Record& r) { out.write(r); });
}

}  // namespace iommusim::trace
