#include "vtd_bringup.h"

#include "arch/vtd/vtd_regs.h"

namespace iommusim::vtd {

Tick enable_unit(RegisterAccess& unit, Addr rtaddr, bool scalable, uint64_t iqa, Tick at,
                 WriteOrder order) {
    const uint64_t ttm = scalable ? uint64_t(Ttm::Scalable) << 10 : 0;
    const struct {
        uint32_t offset;
        unsigned size;
        uint64_t value;
    } writes[] = {{reg::RTADDR, 8, rtaddr | ttm},
                  {reg::GCMD, 4, gcmd::SRTP},
                  {reg::IQA, 8, iqa},
                  {reg::GCMD, 4, gcmd::QIE},
                  {reg::GCMD, 4, gcmd::QIE | gcmd::TE}};
    Tick done = at;
    for (const auto& w : writes)
        done = unit.mmio_write(w.offset, w.size, w.value, order == WriteOrder::Chained ? done : at);
    return done;
}

}  // namespace iommusim::vtd
