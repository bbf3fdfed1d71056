// QEMU `log` trace backend lines "PID@SECONDS:event args" -> qemu::Log.
#include "traces/import_qemu_log.h"

#include <algorithm>
#include <unordered_map>

#include "arch/vtd/vtd_invdesc.h"
#include "traces/import_bdf.h"
#include "traces/import_fields.h"
#include "traces/import_lines.h"
#include "traces/trace_line.h"

namespace iommusim::trace::qemu {

namespace {

using import::field;
using NT = NvmeEvent::Type;

// The IOTLB event of a thread waiting for its vtd_dmar_translate.
struct Lookup {
    uint16_t sid;
    Addr iova;
    uint64_t pte;
    uint32_t domain;
};

// pci_nvme_* events the classifier follows, with the fields each must have (a, b, c, d).
struct NvmeSpec {
    const char* event;
    NT type;
    const char* keys[4];  // nullptr: not used
};
const NvmeSpec kNvme[] = {
    {"pci_nvme_admin_cmd", NT::AdminCmd, {"cid", "sqid", "opc", nullptr}},
    {"pci_nvme_io_cmd", NT::IoCmd, {"cid", "sqid", "opc", nullptr}},
    {"pci_nvme_map_prp", NT::MapPrp, {"prp1", "prp2", "len", "trans_len"}},
    {"pci_nvme_map_addr", NT::MapAddr, {"addr", "len", nullptr, nullptr}},
    {"pci_nvme_enqueue_req_completion", NT::Completion, {"cid", "cqid", nullptr, nullptr}},
    {"pci_nvme_create_sq", NT::CreateSq, {"addr", "sqid", "cqid", "qsize"}},
    {"pci_nvme_create_cq", NT::CreateCq, {"addr", "cqid", nullptr, "qsize"}},
    {"pci_nvme_del_sq", NT::DelSq, {nullptr, "sqid", nullptr, nullptr}},
    {"pci_nvme_del_cq", NT::DelCq, {nullptr, "cqid", nullptr, nullptr}},
    {"pci_nvme_dbbuf_config", NT::DbbufConfig, {"dbs_addr", "eis_addr", nullptr, nullptr}},
    {"pci_nvme_mmio_asqaddr", NT::Asq, {"address", nullptr, nullptr, nullptr}},
    {"pci_nvme_mmio_asqaddr_hi", NT::AsqHi, {"new_address", nullptr, nullptr, nullptr}},
    {"pci_nvme_mmio_acqaddr", NT::Acq, {"address", nullptr, nullptr, nullptr}},
    {"pci_nvme_mmio_acqaddr_hi", NT::AcqHi, {"new_address", nullptr, nullptr, nullptr}},
    {"pci_nvme_mmio_aqattr", NT::Aqattr, {"attributes", nullptr, nullptr, nullptr}},
    {"pci_nvme_mmio_cfg", NT::Cfg, {"config", nullptr, nullptr, nullptr}},
    {"pci_nvme_mmio_doorbell_sq", NT::DoorbellSq, {nullptr, "sqid", nullptr, nullptr}},
    {"pci_nvme_mmio_doorbell_cq", NT::DoorbellCq, {nullptr, "cqid", nullptr, nullptr}},
    {"pci_nvme_mmio_stopped", NT::Reset, {nullptr, nullptr, nullptr, nullptr}},
    {"pci_nvme_pci_reset", NT::Reset, {nullptr, nullptr, nullptr, nullptr}},
};

class Reader {
public:
    Reader(Log& log, ImportReport& report) : log_(log), report_(report) {}

    void read() {
        LineSource src(log_.path, report_);
        std::string text;
        while (src.next(text)) {
            line_ = src.line();
            if (!parse(text)) ++report_.skipped;
        }
        if (unstamped_)
            report_.notes.push_back(log_.path + ": " + std::to_string(unstamped_) +
                                    " event lines without 'PID@SECONDS:' were not used (run "
                                    "QEMU with -msg timestamp=on)");
        if (bad_desc_)
            report_.notes.push_back(log_.path + ": " + std::to_string(bad_desc_) +
                                    " invalidation descriptors did not decode (not written)");
    }

private:
    // False when the line is not an event the importer uses.
    bool parse(std::string_view line) {
        const size_t at = line.find('@'), colon = line.find(':');
        size_t n = 0;
        const auto pid = import::number(line, &n);
        std::optional<uint64_t> ns;
        if (pid && n == at && colon != std::string_view::npos && at < colon)
            ns = import::seconds_ns(line.substr(at + 1, colon - at - 1));
        if (!ns && pid && n == at && colon != std::string_view::npos && at < colon) {
            // "PID@nan:", "PID@-1.0:", "PID@1e30:": an event whose time is not one.
            const std::string_view ev = line.substr(colon + 1, line.find(' ', colon) - colon - 1);
            if (ev.substr(0, 4) == "vtd_" || ev.substr(0, 9) == "pci_nvme_") {
                report_.error(log_.path, line_,
                              "expected 'PID@SECONDS.FRACTION:' (at most " +
                                  std::to_string(UINT64_MAX / 1000000000u) + " s), got " +
                                  detail::quoted(line.substr(0, colon + 1)));
                return true;
            }
        }
        if (!ns) {
            // The same events without the prefix: the log lacks the timestamps the join needs.
            const std::string_view t = import::trim(line);
            if (t.substr(0, 4) == "vtd_" || t.substr(0, 9) == "pci_nvme_") {
                if (!unstamped_++)
                    report_.error(log_.path, line_,
                                  "expected 'PID@SECONDS:event args', got " + detail::quoted(t));
            }
            return false;
        }
        if (!log_.any) log_.first_ns = *ns, log_.any = true;
        // Log order is the order of events; threads may stamp a line a little before an
        // earlier one was written, so time never goes back.
        ns_ = std::max(ns_, *ns);
        pid_ = uint32_t(pid.value_or(0));
        std::string_view rest = line.substr(colon + 1);
        const size_t sp = rest.find(' ');
        event_ = rest.substr(0, sp);
        args_ = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        if (event_ == "vtd_iotlb_page_hit" || event_ == "vtd_iotlb_page_update") return lookup();
        if (event_ == "vtd_dmar_translate") return translate();
        if (event_ == "vtd_inv_desc") return inv_desc();
        if (event_ == "vtd_dmar_fault") return fault();
        if (event_ == "pci_nvme_read" || event_ == "pci_nvme_write" ||
            event_ == "virtio_blk_handle_read" || event_ == "virtio_blk_handle_write")
            dev_cmd();
        if (event_.substr(0, 9) == "pci_nvme_") return nvme();
        return false;
    }

    bool error(const char* expected) {
        report_.error(
            log_.path, line_,
            std::string(event_) + ": expected '" + expected + "', got " + detail::quoted(args_));
        return true;
    }

    bool lookup() {
        const auto sid = field(args_, "sid"), iova = field(args_, "iova");
        auto pte = field(args_, "slpte");
        if (!pte) pte = field(args_, "pte");  // later QEMU versions
        const auto domain = field(args_, "domain");
        if (!sid || !iova || !pte || !domain)
            return error("IOTLB page ... sid 0x.. iova 0x.. slpte 0x.. domain 0x..");
        pending_[pid_] = {uint16_t(*sid), *iova, *pte, uint32_t(*domain)};
        return true;
    }

    bool translate() {
        static const char* kWant = "dev BB:DD.FF iova 0x.. -> gpa 0x.. mask 0x..";
        const size_t d = import::value_pos(args_, "dev");
        std::optional<uint16_t> rid;
        if (d != std::string_view::npos) rid = import::bdf(args_.substr(d, args_.find(' ', d) - d));
        const auto iova = field(args_, "iova"), gpa = field(args_, "gpa");
        const auto mask = field(args_, "mask");
        if (!rid || !iova || !gpa || !mask) return error(kWant);
        Translation t;
        t.ns = ns_;
        t.line = line_;
        t.pid = pid_;
        t.rid = *rid;
        t.mask = *mask;
        t.iova = *iova;
        const auto it = pending_.find(pid_);
        // The IOTLB event of this thread names the same device and page: take its full IOVA.
        if (it != pending_.end() && it->second.sid == *rid && (it->second.iova & ~*mask) == *iova) {
            t.iova = it->second.iova;
            t.pte = it->second.pte;
            t.pte_known = true;
            t.domain = it->second.domain;
            t.domain_known = true;
        }
        if (it != pending_.end()) pending_.erase(it);
        t.gpa = (*gpa & ~*mask) | (t.iova & *mask);
        log_.items.push_back({Item::Type::Translate, uint32_t(log_.translations.size())});
        log_.translations.push_back(t);
        return true;
    }

    bool inv_desc() {
        const auto hi = field(args_, "high"), lo = field(args_, "low");
        if (!hi || !lo) return error("invalidate desc type NAME high 0x.. low 0x..");
        log_.descs.push_back({ns_, *lo, *hi, log_.items.size(), log_.items.size()});
        const uint64_t qw[4] = {*lo, *hi, 0, 0};
        const auto scope = vtd::scope_of(vtd::decode(qw, false));
        if (!scope) {
            if (std::holds_alternative<vtd::DescError>(vtd::decode(qw, false))) ++bad_desc_;
            return false;  // interrupt entry cache, page group response: no translation cache
        }
        Record r;
        r.kind = Kind::Invalidate;
        r.time_ns = ns_;
        r.scope = *scope;
        r.domain = scope->domain;
        add_record(r);
        log_.descs.back().after = log_.items.size();
        return true;
    }

    bool fault() {
        const auto sid = field(args_, "sid"), code = field(args_, "fault");
        const auto addr = field(args_, "addr"), write = field(args_, "write");
        if (!sid || !code || !addr || !write) return error("sid 0x.. fault N addr 0x.. write 0|1");
        Record r;
        r.kind = Kind::Fault;
        r.time_ns = ns_;
        r.req.rid = uint16_t(*sid);
        r.iova = *addr;
        r.reason = uint16_t(*code);
        r.dir = *write ? Dir::Write : Dir::Read;
        add_record(r);
        return true;
    }

    void add_record(const Record& r) {
        log_.items.push_back({Item::Type::Record, uint32_t(log_.records.size())});
        log_.records.push_back(r);
        log_.record_lines.push_back(line_);
    }

    // Only a clock check (import_align_fit.h): a line without these fields is left to the
    // NVMe classifier, or unused.
    void dev_cmd() {
        DevCmd c;
        c.ns = ns_;
        c.write = event_.back() == 'e';  // ..._write
        if (event_[0] == 'v') {
            const auto sector = field(args_, "sector"), n = field(args_, "nsectors");
            if (!sector || !n) return;
            c.sector = *sector, c.sectors = *n;
        } else {
            const auto lba = field(args_, "lba"), nlb = field(args_, "nlb"),
                       count = field(args_, "count");
            if (!lba || !nlb || !count || !*nlb || *count % (*nlb * 512)) return;
            const uint64_t per = *count / *nlb / 512;  // sectors per LBA
            c.sector = *lba * per, c.sectors = *nlb * per;
        }
        log_.dev_cmds.push_back(c);
    }

    bool nvme() {
        for (const NvmeSpec& s : kNvme) {
            if (event_ != s.event) continue;
            NvmeEvent e;
            e.type = s.type;
            e.pid = pid_;
            uint64_t* out[4] = {&e.a, &e.b, &e.c, &e.d};
            for (int i = 0; i < 4; ++i) {
                if (!s.keys[i]) continue;
                const auto v = field(args_, s.keys[i]);
                if (!v) {
                    const std::string want = std::string(s.keys[i]) + " N";
                    return error(want.c_str());
                }
                *out[i] = *v;
            }
            log_.items.push_back({Item::Type::Nvme, uint32_t(log_.nvme.size())});
            log_.nvme.push_back(e);
            return true;
        }
        return false;
    }

    Log& log_;
    ImportReport& report_;
    uint64_t line_ = 0, ns_ = 0;
    uint32_t pid_ = 0;
    std::string_view event_, args_;
    std::unordered_map<uint32_t, Lookup> pending_;
    uint64_t unstamped_ = 0, bad_desc_ = 0;
};

}  // namespace

Log read_log(const std::string& path, ImportReport& report) {
    Log log;
    log.path = path;
    Reader(log, report).read();
    return log;
}

void classify_by_pte(Log& log) {
    for (Translation& t : log.translations)
        if (t.dir == Dir::Unknown && t.pte_known && !(t.pte & 2)) t.dir = Dir::Read;
}

}  // namespace iommusim::trace::qemu
