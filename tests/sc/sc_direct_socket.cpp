// DirectTargetSocket (core/direct_target_socket.h): b_transport and transport_dbg reach the
// module's callbacks with the caller's payload and delay; several initiators may share a
// socket bound with N = 0 (the multiplexer's case); the non-blocking path is refused with an
// error report, and DMI is never granted. DirectMultiTargetSocket: each initiator reaches the
// module with its binding index, in binding order.
#include <tlm_utils/simple_initiator_socket.h>

#include <string>
#include <vector>

#include "core/direct_target_socket.h"
#include "sc_harness.h"

using namespace iommusim;

namespace {

struct Target : sc_core::sc_module {
    void b_transport(tlm::tlm_generic_payload& p, sc_core::sc_time& d) {
        ++calls;
        last = &p;
        d += sc_core::sc_time(7, sc_core::SC_NS);
        p.set_response_status(tlm::TLM_OK_RESPONSE);
    }
    unsigned int transport_dbg(tlm::tlm_generic_payload& p) { return p.get_data_length() + 1; }

    DirectTargetSocket<Target, &Target::b_transport, &Target::transport_dbg, 0> in;
    int calls = 0;
    const tlm::tlm_generic_payload* last = nullptr;

    explicit Target(sc_core::sc_module_name n) : sc_module(n), in("in", this) {}
};

// A target that records which binding called.
struct MultiTarget : sc_core::sc_module {
    void b_transport(int port, tlm::tlm_generic_payload& p, sc_core::sc_time& d) {
        ports.push_back(port);
        d += sc_core::sc_time(port + 1, sc_core::SC_NS);
        p.set_response_status(tlm::TLM_OK_RESPONSE);
    }
    unsigned int transport_dbg(int port, tlm::tlm_generic_payload&) { return 100 + port; }

    DirectMultiTargetSocket<MultiTarget, &MultiTarget::b_transport, &MultiTarget::transport_dbg> in;
    std::vector<int> ports;

    explicit MultiTarget(sc_core::sc_module_name n) : sc_module(n), in("in", this) {}
};

struct Initiator : sc_core::sc_module {
    tlm_utils::simple_initiator_socket<Initiator> out;
    explicit Initiator(sc_core::sc_module_name n) : sc_module(n), out("out") {}
};

}  // namespace

int sc_main(int, char*[]) {
    test::Checker check;
    Target t("t");
    Initiator a("a"), b("b");
    a.out.bind(t.in);
    b.out.bind(t.in);
    MultiTarget m("m");
    Initiator m0("m0"), m1("m1"), m2("m2");
    m0.out.bind(m.in);
    m1.out.bind(m.in);
    m2.out.bind(m.in);
    sc_core::sc_start(sc_core::SC_ZERO_TIME);

    uint8_t buf[16] = {};
    tlm::tlm_generic_payload p;
    p.set_command(tlm::TLM_READ_COMMAND);
    p.set_data_ptr(buf);
    p.set_data_length(16);
    p.set_streaming_width(16);
    sc_core::sc_time d(3, sc_core::SC_NS);
    a.out->b_transport(p, d);
    check(t.calls == 1 && t.last == &p, "b_transport reaches the module with the payload");
    check(d == sc_core::sc_time(10, sc_core::SC_NS), "the module's delay adds to the caller's");
    check(p.is_response_ok(), "the module's response status is the caller's");
    b.out->b_transport(p, d);
    check(t.calls == 2, "a second initiator on the same socket reaches the module");
    check(b.out->transport_dbg(p) == 17, "transport_dbg returns the module's answer");

    // The multi-socket: each initiator's index, whatever the order of the calls.
    check(m.in.size() == 3, "the multi-socket counts its three bindings");
    for (Initiator* i : {&m2, &m0, &m1, &m2}) {
        sc_core::sc_time md = sc_core::SC_ZERO_TIME;
        i->out->b_transport(p, md);
    }
    check(m.ports == std::vector<int>{2, 0, 1, 2}, "each initiator arrives with its binding index");
    sc_core::sc_time md = sc_core::SC_ZERO_TIME;
    m1.out->b_transport(p, md);
    check(md == sc_core::sc_time(2, sc_core::SC_NS), "the module's delay reaches the caller");
    check(m0.out->transport_dbg(p) == 100 && m2.out->transport_dbg(p) == 102,
          "transport_dbg carries the binding index");

    tlm::tlm_dmi dmi;
    check(!a.out->get_direct_mem_ptr(p, dmi), "no DMI");
    check(dmi.get_start_address() == 0 && dmi.get_end_address() == ~sc_dt::uint64(0),
          "DMI is refused for the whole address range");

    // The non-blocking path: an error report (SystemC throws it), the payload marked.
    sc_core::sc_report_handler::set_actions(sc_core::SC_ERROR, sc_core::SC_THROW);
    tlm::tlm_phase ph = tlm::BEGIN_REQ;
    bool reported = false;
    try {
        a.out->nb_transport_fw(p, ph, d);
    } catch (const sc_core::sc_report& r) {
        reported = std::string(r.get_msg()).find("loosely timed") != std::string::npos;
    }
    check(reported, "nb_transport_fw reports that the target is loosely timed");
    check(t.calls == 2, "nb_transport_fw does not reach b_transport");
    reported = false;
    try {
        m1.out->nb_transport_fw(p, ph, d);
    } catch (const sc_core::sc_report& r) {
        reported = std::string(r.get_msg()).find("loosely timed") != std::string::npos;
    }
    check(reported && m.ports.size() == 5, "the multi-socket refuses nb_transport_fw too");
    check(!m2.out->get_direct_mem_ptr(p, dmi), "no DMI through the multi-socket");
    return check.finish();
}
