// The QEMU VT-d importer: reads both inputs, classifies DMA, aligns the guest's map/unmap with
// QEMU's timeline and writes everything in time order.
#include "traces/import_qemu.h"

#include <cstdio>
#include <map>
#include <tuple>

#include "traces/import_align.h"
#include "traces/import_align_fit.h"
#include "traces/import_ftrace.h"
#include "traces/import_kprobe_domains.h"
#include "traces/import_qemu_log.h"

namespace iommusim::trace {

namespace {

using qemu::Item;
using qemu::Log;

// The alignment's view of the log: translations and page-selective invalidations.
std::vector<align::Point> timeline(const Log& log) {
    std::vector<align::Point> tl;
    tl.reserve(log.items.size());
    for (const Item& it : log.items) {
        align::Point p;
        if (it.type == Item::Type::Translate) {
            const qemu::Translation& t = log.translations[it.index];
            p.type = align::Point::Type::Translation;
            p.ns = t.ns;
            p.iova = t.iova;
            p.gpa = t.gpa;
            p.rid = t.rid;
            if (t.domain_known) p.domain = t.domain;
            if (t.pte_known) p.writable = (t.pte & 2) != 0;
        } else if (it.type == Item::Type::Record) {
            const Record& r = log.records[it.index];
            p.ns = r.time_ns;
            const auto k = r.scope.kind;
            if (r.kind == Kind::Invalidate && r.scope.bytes() &&
                (k == InvalidationScope::Kind::Page || k == InvalidationScope::Kind::PasidPage)) {
                p.type = align::Point::Type::PageInval;
                p.domain = r.scope.domain;
                p.addr = r.scope.addr;
                p.bytes = r.scope.bytes();
            }
        } else {
            continue;
        }
        tl.push_back(p);
    }
    return tl;
}

// The guest's clock against QEMU's from the qi_submit <-> vtd_inv_desc anchors: guest times
// of `ops` moved onto QEMU's clock when fitted, and the causal slot window of each op.
align::Windows clock_anchors(const Log& log, const GuestTrace& guest, std::vector<GuestOp>& ops,
                             size_t timeline_size, ImportReport& report) {
    // Items -> timeline slots (NVMe items are not on the timeline).
    std::vector<size_t> slot(log.items.size() + 1, 0);
    for (size_t i = 0; i < log.items.size(); ++i)
        slot[i + 1] = slot[i] + (log.items[i].type == Item::Type::Nvme ? 0 : 1);
    std::vector<align::HostDesc> host;
    host.reserve(log.descs.size());
    for (const qemu::Desc& d : log.descs)
        host.push_back({d.ns, d.lo, d.hi, slot[d.before], slot[d.after]});
    std::vector<align::GuestDesc> gd;
    gd.reserve(guest.qi.size());
    for (const QiSubmit& q : guest.qi) gd.push_back({q.guest_ns, q.qw0, q.qw1});
    const auto pairs = align::match(gd, host);
    std::vector<std::pair<uint64_t, uint64_t>> hg;
    hg.reserve(pairs.size());
    for (const auto& [g, h] : pairs) hg.push_back({host[h].ns, gd[g].t});
    align::ClockFit f = align::fit(hg);
    for (const align::GuestDesc& d : gd) f.pasid += (d.qw0 & 0xf) == 6 || (d.qw0 & 0xf) == 7;
    f.unmatched = gd.size() - pairs.size() - f.pasid;
    if (!gd.empty() || guest.raw_clock || !ops.empty())
        report.notes.push_back(f.describe(guest.raw_clock));
    if (f.fitted && !guest.block.empty()) {
        // Requests pair issue -> complete per device, sectors and direction, in order.
        std::map<std::tuple<uint32_t, uint64_t, uint64_t, bool>, std::vector<size_t>> open;
        std::vector<align::GuestBlock> gb;
        for (const BlockRq& r : guest.block) {
            auto& q = open[{r.dev, r.sector, r.sectors, r.write}];
            if (!r.complete) {
                q.push_back(gb.size());
                gb.push_back({r.guest_ns, 0, r.sector, r.sectors, r.write});  // complete: below
            } else if (!q.empty()) {
                gb[q.front()].complete = r.guest_ns;
                q.erase(q.begin());
            }
        }
        std::vector<align::HostBlock> hb;
        for (const qemu::DevCmd& d : log.dev_cmds)
            hb.push_back({d.ns, d.sector, d.sectors, d.write});
        const align::BlockCheck c = align::check_block(f, gb, hb);
        report.notes.push_back(c.describe(f));
    }
    std::vector<uint64_t> times;
    times.reserve(ops.size());
    for (const GuestOp& o : ops) times.push_back(o.guest_ns);
    align::Windows w = align::causal_windows(times, gd, host, pairs, timeline_size);
    if (f.fitted)
        for (GuestOp& o : ops) o.guest_ns = f.host(o.guest_ns);
    if (pairs.empty()) w.clear();
    return w;
}

std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

// The map/unmap whose domain the inputs did not decide, in guest order, with examples.
void ambiguity(const std::vector<GuestOp>& ops, const align::Result& placed,
               const GuestTrace& guest, ImportReport& report) {
    enum Why { Unmap, Map, None };
    std::map<size_t, Why> why;
    for (size_t k : placed.guessed_unmaps) why.emplace(k, Unmap);
    for (size_t k : placed.conflicting_domains) why.emplace(k, Map);
    for (size_t k = 0; k < ops.size(); ++k)
        if (!placed.ops[k].domain) why.emplace(k, None);
    for (const auto& [k, w] : why) {
        const GuestOp& o = ops[k];
        const align::Placement& p = placed.ops[k];
        const std::string what = std::string(o.type == GuestOp::Type::Map ? "map" : "unmap") +
                                 " iova=" + hex(o.iova) + " size=" + hex(o.size);
        const std::string dom = p.domain ? std::to_string(*p.domain) : "?";
        switch (w) {
            case Unmap:
                report.ambiguous(report.ambiguous_unmaps,
                                 guest.where(o) + ": " + what +
                                     ": mappings of several domains live there, the most "
                                     "recent one's (domain " +
                                     dom + ") taken");
                break;
            case Map:
                report.ambiguous(report.ambiguous_maps,
                                 guest.where(o) + ": " + what +
                                     ": translated in several domains, domain " + dom +
                                     " recorded");
                break;
            case None:
                report.ambiguous(report.ambiguous_none,
                                 guest.where(o) + ": " + what +
                                     ": no translation, invalidation or kprobe names its domain");
                break;
        }
    }
}

}  // namespace

ImportReport import_qemu_vtd(const std::string& qemu_log, const std::string& guest_ftrace,
                             const RecordSink& sink) {
    ImportReport report;
    Log log = qemu::read_log(qemu_log, report);
    GuestTrace guest;
    if (!guest_ftrace.empty()) guest = read_ftrace({guest_ftrace}, report);
    qemu::classify_nvme(log, report);
    qemu::classify_by_pte(log);

    std::vector<GuestOp> ops;
    uint64_t guest_faults = 0;
    for (const GuestOp& o : guest.ops)
        if (o.type == GuestOp::Type::Fault)
            ++guest_faults;
        else
            ops.push_back(o);
    const std::vector<align::Point> tl = timeline(log);
    // Kprobes name the domain (on the guest clock, before the clock fit moves the ops).
    align::KprobeDomains kd;
    if (guest.kprobes) {
        kd = align::kprobe_domains(ops, guest, tl);
        for (size_t k = 0; k < ops.size(); ++k) {
            if (kd.rid[k] && !ops[k].rid) ops[k].rid = kd.rid[k];
            report.ops_by_kprobe += kd.domain[k].has_value();
        }
        for (std::string& n : kd.notes) report.notes.push_back(std::move(n));
    }
    const align::Windows causal =
        guest_ftrace.empty() ? align::Windows{} : clock_anchors(log, guest, ops, tl.size(), report);
    const align::Result placed = align::align(ops, tl, log.first_ns, causal, kd.domain);
    ambiguity(ops, placed, guest, report);
    if (placed.causal_conflicts)
        report.notes.push_back(std::to_string(placed.causal_conflicts) +
                               " guest map/unmap events lie outside the window their qi_submit "
                               "anchors allow (the translations' window was used)");

    // Translations no mapping explains contradict the inputs: name them.
    std::vector<size_t> line_of;  // timeline index -> log line
    for (const Item& it : log.items) {
        if (it.type == Item::Type::Translate) line_of.push_back(log.translations[it.index].line);
        if (it.type == Item::Type::Record) line_of.push_back(log.record_lines[it.index]);
    }
    // Without the guest's ftrace there are no mappings to explain translations with.
    if (guest_ftrace.empty() && !placed.unexplained.empty())
        report.notes.push_back(std::to_string(placed.unexplained.size()) +
                               " translations without the mappings they used: no guest ftrace "
                               "was given, so the trace has no map/unmap records");
    for (size_t i : guest_ftrace.empty() ? std::vector<size_t>{} : placed.unexplained) {
        const align::Point& p = tl[i];
        report.error(qemu_log, line_of[i],
                     "translation of " + to_string(Requester{p.rid}) + " " + hex(p.iova) + " -> " +
                         hex(p.gpa) + " lies in no mapping of " + guest_ftrace +
                         " live at that point");
    }
    if (!placed.unmatched_unmaps.empty())
        report.notes.push_back(std::to_string(placed.unmatched_unmaps.size()) +
                               " guest unmaps (first at " +
                               guest.where(ops[placed.unmatched_unmaps.front()]) +
                               ") remove nothing the trace mapped (mapped before tracing began)");
    if (!placed.conflicting_domains.empty())
        report.notes.push_back(std::to_string(placed.conflicting_domains.size()) +
                               " guest maps are translated in more than one domain; the first "
                               "domain is recorded");
    if (guest_faults)
        report.notes.push_back(std::to_string(guest_faults) +
                               " guest iommu:io_page_fault events not written: QEMU's "
                               "vtd_dmar_fault events are the fault records");

    // Merge: the ops placed before each timeline item, then the item.
    const uint64_t t0 = log.first_ns;
    size_t j = 0, point = 0;
    auto put_ops = [&](size_t slot) {
        for (; j < ops.size() && placed.ops[j].slot == slot; ++j) {
            const GuestOp& o = ops[j];
            const align::Placement& p = placed.ops[j];
            Record r;
            r.kind = o.type == GuestOp::Type::Map ? Kind::Map : Kind::Unmap;
            r.time_ns = p.ns - t0;
            r.req.rid = p.rid.value_or(0);
            r.iova = o.iova;
            r.size = o.size;
            r.pa = o.pa;
            r.perm = p.perm;
            r.domain = p.domain.value_or(0);
            ++(p.anchored ? report.ops_anchored : report.ops_interpolated);
            if (!p.domain) ++report.ops_unattributed;
            emit(r, sink, report);
        }
    };
    for (const Item& it : log.items) {
        if (it.type == Item::Type::Nvme) continue;
        put_ops(point++);
        if (it.type == Item::Type::Record) {
            Record r = log.records[it.index];
            r.time_ns -= t0;
            emit(r, sink, report);
            continue;
        }
        const qemu::Translation& t = log.translations[it.index];
        Record r;
        r.kind = Kind::Dma;
        r.time_ns = t.ns - t0;
        r.req.rid = t.rid;
        r.iova = t.iova;
        r.size = t.size;
        r.size_known = t.size_known;
        r.dir = t.dir;
        r.pa = t.gpa;
        r.has_pa = true;
        emit(r, sink, report);
    }
    put_ops(point);

    if (report.dma_unsized)
        report.notes.push_back(std::to_string(report.dma_unsized) +
                               " DMA records have size=? (vtd_* events carry no access size; "
                               "only pci_nvme_* events give them) and " +
                               std::to_string(report.dma_dir_unknown) +
                               " dir=? (a leaf entry with W does not tell the direction)");
    if (report.ops_unattributed)
        report.notes.push_back(std::to_string(report.ops_unattributed) +
                               " guest map/unmap used by no translation and anchored to no "
                               "invalidation: written in domain 0, as requester 00:00.0 unless "
                               "an attach kprobe named the device");
    return report;
}

ImportReport import_qemu_vtd(const std::string& qemu_log, const std::string& guest_ftrace,
                             Writer& out) {
    return import_qemu_vtd(qemu_log, guest_ftrace, [&](const Record& r) { out.write(r); });
}

}  // namespace iommusim::trace
