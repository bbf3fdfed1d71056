// What host software models reach of an IOMMU unit, without a bus in between: its registers
// (VT-d's invalidation queue tail, command register) and, for units that take invalidations
// as single commands (a PHB's TCE kill), that command. Both return when the work they start
// is done, so a driver model knows how long it waits.
#pragma once
#include <cstdint>

#include "invalidation.h"
#include "time.h"

namespace iommusim {

class RegisterAccess {
public:
    virtual ~RegisterAccess() = default;
    virtual uint64_t mmio_read(uint32_t offset, unsigned size) = 0;
    virtual Tick mmio_write(uint32_t offset, unsigned size, uint64_t value, Tick at) = 0;
};

class InvalidationPort {
public:
    virtual ~InvalidationPort() = default;
    virtual Tick invalidate(const InvalidationScope& scope, Tick at) = 0;
};

}  // namespace iommusim
