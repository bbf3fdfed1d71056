// The generic DMA engine's parameters: tags, issue rate, MPS and MRRS. Plain C++,
// header-only, so the unit tests and the platform check them without SystemC.
#pragma once
#include <cstdint>
#include <string>

namespace iommusim {

struct DmaEngineParams {
    uint32_t tags = 32;       // outstanding non-posted requests the device can track
    double issue_rate = 0.0;  // Mreq/s; 0 = only tags limit the rate
    uint32_t mps = 256;       // Max_Payload_Size, bytes
    uint32_t mrrs = 512;      // Max_Read_Request_Size, bytes

    // v(name, field, unit, doc, min, max) for every parameter, in documentation order.
    template <typename V>
    void visit(V&& v) {
        v("tags", tags, "tags", "outstanding requests (tags) the engine can have in flight", 1,
          16384);
        v("issue_rate", issue_rate, "Mreq/s",
          "maximum request issue rate; 0 = unlimited (tags only)", 0.0, 1e6);
        v("mps", mps, "bytes", "Max_Payload_Size: largest write request (power of two)", 128, 4096);
        v("mrrs", mrrs, "bytes", "Max_Read_Request_Size: largest read request (power of two)", 128,
          4096);
    }
    // Every field within its range and MPS/MRRS powers of two; otherwise false with the
    // offending parameter named in *why.
    bool valid(std::string* why = nullptr) const {
        auto pow2 = [](uint32_t x) { return x && !(x & (x - 1)); };
        const char* bad = tags < 1 || tags > 16384                    ? "tags"
                          : !(issue_rate >= 0.0 && issue_rate <= 1e6) ? "issue_rate"
                          : mps < 128 || mps > 4096 || !pow2(mps)     ? "mps"
                          : mrrs < 128 || mrrs > 4096 || !pow2(mrrs)  ? "mrrs"
                                                                      : nullptr;
        if (bad && why)
            *why = std::string("dma engine parameter ") + bad +
                   " out of range (tags 1..16384, issue_rate 0..1e6 Mreq/s, mps and mrrs "
                   "powers of two in 128..4096)";
        return !bad;
    }
};

}  // namespace iommusim
