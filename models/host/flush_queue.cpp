#include "flush_queue.h"

#include <iterator>

namespace iommusim {

bool FlushQueue::push(const DeferredUnmap& u) {
    q_.push_back(u);
    return q_.size() >= cfg_.entries;
}

bool FlushQueue::due(uint64_t now_ns) const {
    // A clock earlier than the entry's stamp means it has not waited at all.
    return !q_.empty() && now_ns >= q_.front().when_ns &&
           now_ns - q_.front().when_ns >= cfg_.timeout_ns;
}

std::vector<DeferredUnmap> FlushQueue::drain() {
    std::vector<DeferredUnmap> out(std::make_move_iterator(q_.begin()),
                                   std::make_move_iterator(q_.end()));
    q_.clear();
    return out;
}

}  // namespace iommusim
