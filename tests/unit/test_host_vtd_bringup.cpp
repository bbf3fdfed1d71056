#include <catch2/catch.hpp>

#include <vector>

#include "arch/vtd/vtd_regs.h"
#include "host/vtd_bringup.h"

using namespace iommusim;

namespace {

// Records each write; a write issued at `at` completes `cost` later, and every write costs
// 10 ps more than the one before, so that which time each was issued at shows in the result.
struct Recorder final : RegisterAccess {
    struct Write {
        uint32_t offset;
        unsigned size;
        uint64_t value;
        Tick at;
    };
    std::vector<Write> writes;
    uint64_t mmio_read(uint32_t, unsigned) override { return 0; }
    Tick mmio_write(uint32_t offset, unsigned size, uint64_t value, Tick at) override {
        writes.push_back({offset, size, value, at});
        return at + 10 * writes.size();
    }
};

}  // namespace

TEST_CASE("enable_unit writes intel-iommu's bring-up sequence", "[vtd-bringup]") {
    using namespace vtd;
    const Addr rtaddr = 0x1234000, iqa = 0x5678000 | 2;
    Recorder legacy, scalable;
    enable_unit(legacy, rtaddr, false, iqa, 0, WriteOrder::AtOnce);
    enable_unit(scalable, rtaddr, true, iqa, 0, WriteOrder::AtOnce);
    REQUIRE(legacy.writes.size() == 5);
    REQUIRE(scalable.writes.size() == 5);
    const uint32_t offsets[] = {reg::RTADDR, reg::GCMD, reg::IQA, reg::GCMD, reg::GCMD};
    const unsigned sizes[] = {8, 4, 8, 4, 4};
    const uint64_t values[] = {rtaddr, gcmd::SRTP, iqa, gcmd::QIE, gcmd::QIE | gcmd::TE};
    for (size_t i = 0; i < 5; ++i) {
        CHECK(legacy.writes[i].offset == offsets[i]);
        CHECK(legacy.writes[i].size == sizes[i]);
        CHECK(legacy.writes[i].value == values[i]);
        CHECK(scalable.writes[i].offset == offsets[i]);
        CHECK(scalable.writes[i].value == (i == 0 ? rtaddr | (1u << 10) : values[i]));
    }
    CHECK(Rtaddr::decode(legacy.writes[0].value).ttm == Ttm::Legacy);
    CHECK(Rtaddr::decode(scalable.writes[0].value).ttm == Ttm::Scalable);
}

TEST_CASE("enable_unit issues the writes at once or each after the previous one", "[vtd-bringup]") {
    using namespace vtd;
    Recorder once, chained;
    const Tick at = 1000;
    // At once: every write at `at`; the result is the last write's completion.
    CHECK(enable_unit(once, 0x1000, true, 0x2000, at, WriteOrder::AtOnce) == at + 50);
    for (const auto& w : once.writes) CHECK(w.at == at);
    // Chained: each at the previous one's completion (10, 20, 30, 40, 50 ps apart).
    CHECK(enable_unit(chained, 0x1000, true, 0x2000, at, WriteOrder::Chained) == at + 150);
    const Tick starts[] = {at, at + 10, at + 30, at + 60, at + 100};
    REQUIRE(chained.writes.size() == 5);
    for (size_t i = 0; i < 5; ++i) CHECK(chained.writes[i].at == starts[i]);
}
