// SystemC bench: the host programs a VT-d unit over MMIO as Linux does (RTADDR + SRTP, IQA +
// QIE, TE), maps and unmaps buffers for a device with strict invalidation through the
// in-memory invalidation queue, and reads faults back from the fault recording registers.
// Until the queue's wait descriptor completes a stale IOTLB entry may still be used (and is
// counted); after it, the unmapped IOVA faults.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <systemc>

#include "arch/vtd/vtd_fault.h"
#include "arch/vtd/vtd_regs.h"
#include "bundles/vtd/vtd_iommu.h"
#include "host/vtd_driver.h"
#include "host/vtd_inv_queue.h"
#include "memory/fixed_memory.h"
#include "sc_harness.h"

using namespace iommusim;
using namespace sc_core;
namespace reg = iommusim::vtd::reg;

namespace {
const Requester kNic = Requester::bdf(0x3a, 0, 0);
// The unit writes its stale-hit report at the end of simulation; it goes to the temporary
// folder (per process, so parallel runs do not collide) and is removed once read.
const std::string& report_path() {
    static const std::string path = (std::filesystem::temp_directory_path() /
                                     fmt::format("iommusim-sc_vtd_qi-{}.stale.txt", ::getpid()))
                                        .string();
    return path;
}

struct Host : sc_module {
    tlm_utils::simple_initiator_socket<Host> mmio{"mmio"};
    explicit Host(sc_module_name n) : sc_module(n) {}
    uint64_t read(uint32_t off, unsigned n = 4) {
        uint64_t v = 0;
        access(tlm::TLM_READ_COMMAND, off, n, v);
        return v;
    }
    void write(uint32_t off, uint64_t v, unsigned n = 4) {
        access(tlm::TLM_WRITE_COMMAND, off, n, v);
    }

private:
    void access(tlm::tlm_command c, uint32_t off, unsigned n, uint64_t& v) {
        uint8_t b[8];
        for (unsigned i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
        tlm::tlm_generic_payload p;
        p.set_command(c);
        p.set_address(off);
        p.set_data_ptr(b);
        p.set_data_length(n);
        p.set_streaming_width(n);
        sc_time d = SC_ZERO_TIME;
        mmio->b_transport(p, d);
        wait(d);  // the driver waits for its register access
        v = 0;
        for (unsigned i = 0; i < n; ++i) v |= uint64_t(b[i]) << (8 * i);
    }
};

struct Bench : sc_module {
    SparseMemory store;
    vtd::Driver drv{store, [] {
                        vtd::DriverConfig c;
                        c.hw.scalable = true;
                        return c;
                    }()};
    vtd::InvQueueWriter queue{store, Addr(80) << 30, 0, true};
    StatGroup stats{"iommu0"};
    VtdIommu iommu;
    Host host{"host"};
    test::Initiator nic{"nic"};
    FixedMemory data{"data", store, sc_time(50, SC_NS)};
    FixedMemory tables{"tables", store, sc_time(90, SC_NS)};
    test::Checker check{test::Checker::Where::Thread};
    size_t submitted = 0;

    SC_HAS_PROCESS(Bench);
    explicit Bench(sc_module_name n)
        : sc_module(n),
          iommu("iommu", vtd::RegFileConfig::scalable_unit(), drv.hw(), UnitParams{}, stats) {
        host.mmio.bind(iommu.mmio);
        nic.socket.bind(iommu.unit().upstream);
        iommu.unit().downstream.bind(data.target);
        iommu.unit().walk.bind(tables.target);
        iommu.unit().engine().set_oracle(
            [this](const Requester& r, Addr a) { return drv.expect(r, a); });
        iommu.unit().set_stale_report(report_path());
        SC_THREAD(run);
    }

    // Linux's qi_submit_sync: queue what the driver issued, bump IQT, wait for the status.
    void submit() {
        const auto& all = drv.descriptors();
        std::vector<vtd::InvDesc> batch(all.begin() + long(submitted), all.end());
        submitted = all.size();
        auto iqt = queue.append(batch, host.read(reg::IQH, 8));
        check(bool(iqt), "descriptors fit in the queue");
        host.write(reg::IQT, *iqt, 8);
        uint32_t status = 0;
        for (int spins = 0; spins < 100 && status != drv.wait_sequence(); ++spins) {
            store.read(drv.wait_status(), &status, 4);
            if (status != drv.wait_sequence()) wait(sc_time(100, SC_NS));
        }
        check(status == drv.wait_sequence(), "the wait descriptor's status write arrived");
    }

    void run() {
        namespace gcmd = vtd::gcmd;
        namespace gsts = vtd::gsts;
        tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_time(1, SC_US));
        // Bring-up, as intel-iommu does: root table, queued invalidation, translation.
        host.write(reg::RTADDR, drv.hw().rtaddr | (uint64_t(vtd::Ttm::Scalable) << 10), 8);
        host.write(reg::GCMD, gcmd::SRTP);
        check(host.read(reg::GSTS) & gsts::RTPS, "SRTP latched the root table");
        host.write(reg::IQA, queue.iqa(), 8);
        host.write(reg::GCMD, gcmd::QIE);
        host.write(reg::GCMD, gcmd::QIE | gcmd::TE);
        check((host.read(reg::GSTS) & (gsts::QIES | gsts::TES)) == (gsts::QIES | gsts::TES),
              "queued invalidation and translation enabled");

        const uint16_t did = *drv.create_domain({});
        drv.attach(kNic.rid, did);
        submit();  // context and PASID cache invalidations for the attach
        auto iova = drv.map_alloc(did, 0x2'4000'0000, 0x2000, kPermRW);
        check(bool(iova), "buffer mapped");
        uint8_t buf[64] = {};
        nic.qk.reset();
        check(nic.dma(kNic, *iova, buf, 64, false) == tlm::TLM_OK_RESPONSE,
              "DMA to the mapped buffer");

        // Unmapped but not yet invalidated: the IOTLB still translates (stale, counted).
        drv.unmap(did, *iova, 0x2000);
        check(nic.dma(kNic, *iova, buf, 64, false) == tlm::TLM_OK_RESPONSE, "stale entry used");
        check(stats.counter("stale_hits", "").value() == 1, "the stale hit was counted");
        nic.qk.sync();
        submit();
        check(nic.dma(kNic, *iova, buf, 64, false) == tlm::TLM_ADDRESS_ERROR_RESPONSE,
              "after the invalidation completes the IOVA faults");
        check(stats.counter("stale_hits", "").value() == 1, "no stale hit after the invalidation");
        nic.qk.sync();

        // The fault is in FRCD[0]; software clears it with a write of F=1.
        const vtd::RegFileConfig cfg = vtd::RegFileConfig::scalable_unit();
        check(host.read(reg::FSTS) & vtd::fsts::PPF, "primary pending fault");
        const uint32_t frcd = cfg.cap.frcd_offset(0);
        auto rec = vtd::FaultRecord::decode(host.read(frcd, 8), host.read(frcd + 8, 8));
        check(rec.f && rec.sid == kNic.rid && rec.fi == (*iova & ~Addr(0xFFF)),
              "fault record names the requester and the page");
        check(rec.fr == vtd::kSmNoRead, fmt::format("fault reason {:#x} is 0x86", rec.fr));
        host.write(frcd + 12, 1u << 31);
        check(!(host.read(reg::FSTS) & vtd::fsts::PPF), "clearing F clears PPF");
        // The attach's PASID-cache and context-cache invalidations, the unmap's page one.
        const uint64_t n = stats.counter("invalidations", "").value();
        check(n == 3, fmt::format("the unit executed {} invalidations", n));
        check.reached_end();
        sc_stop();  // end of simulation: the unit writes its reports
    }
};
}  // namespace

int sc_main(int, char*[]) {
    Bench b("bench");
    sc_start();
    // The stale hit before the invalidation completed, reported with time, requester, IOVA.
    std::ifstream f(report_path());
    std::string header, line, rest;
    std::getline(f, header);
    std::getline(f, line);
    b.check(header == "# time_ns requester iova used expected stale", "stale report header");
    b.check(
        line.find(" 3a:00.0 0x") != std::string::npos && line.find("unmapped") != std::string::npos,
        "stale report line: " + line);
    b.check(!std::getline(f, rest), "exactly one stale hit reported");
    f.close();
    std::remove(report_path().c_str());
    return b.check.finish();
}
