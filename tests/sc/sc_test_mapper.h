// Test doubles shared by the device benches: an identity DmaMapper with fixed costs that
// counts its calls and checks that every unmap names a live mapping, a tap between a device
// and memory that checks the requester, records requests and fails an address range, and a
// watcher of a device's finished event.
#pragma once
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>

#include <map>
#include <optional>
#include <systemc>
#include <tlm>
#include <vector>

#include "core/dma_mapper.h"
#include "core/pcie_ext.h"

namespace iommusim::test {

struct TestMapper : DmaMapper {
    Tick map_cost = 0, unmap_cost = 0;
    uint64_t ok_limit = ~uint64_t(0);  // maps after this many successes fail
    uint64_t fail_every = 0;           // every n-th map call fails
    uint64_t maps = 0, unmaps = 0, failures = 0;
    bool consistent = true;  // no double map, every unmap matches a live mapping
    std::map<Addr, uint64_t> live;

    std::optional<Mapped> map(Addr pa, uint64_t len, bool, Tick at) override {
        ++maps;
        if ((fail_every && maps % fail_every == 0) || maps - 1 - failures >= ok_limit) {
            ++failures;
            return std::nullopt;
        }
        consistent &= live.count(pa) == 0;
        live[pa] = len;
        return Mapped{pa, at + map_cost};
    }
    Tick unmap(Addr iova, uint64_t len, Tick at) override {
        ++unmaps;
        auto it = live.find(iova);
        if (it == live.end() || it->second != len) {
            consistent = false;
        } else {
            live.erase(it);
        }
        return at + unmap_cost;
    }
};

struct Tap : sc_core::sc_module {
    struct Req {
        Addr addr;
        uint32_t len;
        bool write;
    };
    tlm_utils::simple_target_socket<Tap> target{"target"};
    tlm_utils::simple_initiator_socket<Tap> down{"down"};
    uint16_t rid = 0;
    bool rid_ok = true;  // every request carried a PcieAttr with `rid`
    bool record = false;
    std::vector<Req> log;
    Addr fail_lo = 0, fail_hi = 0;  // answered with an address error, 100 ns

    Tap(sc_core::sc_module_name n, uint16_t r) : sc_module(n), rid(r) {
        target.register_b_transport(this, &Tap::b_transport);
    }
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& d) {
        const PcieAttr* a = p.get_extension<PcieAttr>();
        rid_ok &= a && a->req.rid == rid;
        if (record) log.push_back({p.get_address(), p.get_data_length(), p.is_write()});
        if (p.get_address() >= fail_lo && p.get_address() < fail_hi) {
            p.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
            d += sc_core::sc_time(100, sc_core::SC_NS);
            return;
        }
        down->b_transport(p, d);
    }
};

// Records when an event (a device's finished_event) is notified.
struct Watcher : sc_core::sc_module {
    const sc_core::sc_event& ev;
    Tick seen = 0;
    SC_HAS_PROCESS(Watcher);
    Watcher(sc_core::sc_module_name n, const sc_core::sc_event& e) : sc_module(n), ev(e) {
        SC_THREAD(run);
    }
    void run() {
        wait(ev);
        seen = to_ticks(sc_core::sc_time_stamp());
    }
};

}  // namespace iommusim::test
