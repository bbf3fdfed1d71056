// Shared pieces of the SystemC benches: a checker that counts and prints, the payload of one
// DMA as a device sends it, and an initiator that issues one under a quantum keeper.
#pragma once
#include <fmt/format.h>

#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>
#include <systemc>
#include <tlm>

#include "core/pcie_ext.h"

namespace iommusim::test {

// Counts and prints checks. A bench whose checks run in an SC_THREAD constructs it with
// Where::Thread and calls reached_end() as the thread's last statement: sc_start() also returns
// when a thread stalls (waits for an event nobody notifies), and such a run checked only part
// of what it should, so finish() fails it. A run with no checks at all fails too.
struct Checker {
    enum class Where { Main, Thread };
    int passed = 0, failed = 0;
    Where where;
    bool ended = false;

    explicit Checker(Where w = Where::Main) : where(w) {}
    void operator()(bool ok, const std::string& what) {
        ok ? ++passed : ++failed;
        if (!ok) fmt::print("FAILED: {}\n", what);
    }
    void reached_end() { ended = true; }
    int finish() {
        if (where == Where::Thread && !ended)
            (*this)(false, fmt::format("the bench thread stalled after {} checks (it never "
                                       "reached its end, at {})",
                                       passed + failed, sc_core::sc_time_stamp().to_string()));
        if (passed + failed == 0) (*this)(false, "no checks ran");
        fmt::print("{} passed, {} failed\n", passed, failed);
        return failed ? 1 : 0;
    }
};

// One DMA request as a device sends it: a memory read or write of `len` bytes at `iova` with
// the requester's PCIe attributes attached (detached again when it goes away: the payload
// must not outlive them), the response status still incomplete.
struct DmaPayload {
    tlm::tlm_generic_payload p;
    PcieAttr attr;

    DmaPayload(const Requester& req, bool write, Addr iova, uint8_t* buf, unsigned len) {
        attr.req = req;
        attr.tlp = write ? PcieAttr::Tlp::MemWrite : PcieAttr::Tlp::MemRead;
        p.set_extension(&attr);
        p.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        p.set_address(iova);
        p.set_data_ptr(buf);
        p.set_data_length(len);
        p.set_streaming_width(len);
        p.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    }
    ~DmaPayload() { p.clear_extension(&attr); }
    DmaPayload(const DmaPayload&) = delete;
    DmaPayload& operator=(const DmaPayload&) = delete;
};

class Initiator : public sc_core::sc_module {
public:
    tlm_utils::simple_initiator_socket<Initiator> socket;
    tlm_utils::tlm_quantumkeeper qk;

    explicit Initiator(sc_core::sc_module_name n) : sc_module(n), socket("socket") {}

    // One DMA at the keeper's local time; returns the response and the latency it reported.
    tlm::tlm_response_status dma(const Requester& req, Addr iova, uint8_t* buf, unsigned len,
                                 bool write, sc_core::sc_time* latency = nullptr) {
        DmaPayload d(req, write, iova, buf, len);
        sc_core::sc_time delay = qk.get_local_time();
        const sc_core::sc_time before = delay;
        socket->b_transport(d.p, delay);
        if (latency) *latency = delay - before;
        qk.set(delay);
        if (qk.need_sync()) qk.sync();
        return d.p.get_response_status();
    }
    unsigned dbg(const Requester& req, Addr iova, uint8_t* buf, unsigned len) {
        tlm::tlm_generic_payload p;
        PcieAttr attr;
        attr.req = req;
        p.set_extension(&attr);
        p.set_command(tlm::TLM_READ_COMMAND);
        p.set_address(iova);
        p.set_data_ptr(buf);
        p.set_data_length(len);
        unsigned n = socket->transport_dbg(p);
        p.clear_extension(&attr);
        return n;
    }
};

}  // namespace iommusim::test
