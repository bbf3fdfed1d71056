#include "vtd_inv_queue.h"

namespace iommusim::vtd {

InvQueueWriter::InvQueueWriter(SparseMemory& mem, Addr base, unsigned qs, bool dw)
    : mem_(mem), iqa_{base, dw, uint8_t(qs)} {}

uint64_t InvQueueWriter::iqa() const {
    return iqa_.encode();
}

std::optional<uint64_t> InvQueueWriter::append(const std::vector<InvDesc>& descs, uint64_t iqh) {
    const uint32_t n = iqa_.entries(), head = iq_index(iqh, iqa_.dw);
    const uint32_t used = (tail_ + n - head) % n;
    if (used + descs.size() >= n) return std::nullopt;  // one slot stays empty: full != empty
    for (const InvDesc& d : descs) {
        mem_.write(iqa_.iqa + Addr(tail_) * iqa_.desc_bytes(), d.qw, iqa_.desc_bytes());
        tail_ = (tail_ + 1) % n;
    }
    return iq_reg(tail_, iqa_.dw);
}

}  // namespace iommusim::vtd
