// Ethernet (IEEE 802.3) framing and the line's rate as a resource. Plain C++, header-only.
#pragma once
#include <cstdint>

#include "core/resource.h"

namespace iommusim {

// IEEE 802.3 framing. A frame (destination MAC through FCS) holds the line for its own bytes
// plus the preamble and SFD (8) and the minimum inter-packet gap (12). The NIC strips the FCS
// on receive and appends it on transmit (the Linux default), so it DMAs frame - 4 bytes.
constexpr uint32_t kEthWireOverhead = 20;
constexpr uint32_t kEthFcsBytes = 4;
constexpr uint32_t kEthMinFrame = 64, kEthMaxFrame = 9216;  // 9216: common jumbo limit
// A TCP ACK: 14 B Ethernet + 20 B IPv4 + 32 B TCP (with the timestamp option Linux sends by
// default) + FCS.
constexpr uint32_t kEthAckFrame = 14 + 20 + 32 + kEthFcsBytes;

constexpr uint64_t eth_wire_bits(uint64_t frame) {
    return (frame + kEthWireOverhead) * 8;
}

// The line is a BandwidthServer in bits (core/resource.h): frames follow each other back to
// back at the line rate, a busy period keeping the exact rate however long it runs.
inline Rate eth_line_rate(double gbps) {
    return Rate::ps_per_unit(1000.0 / gbps);  // Gb/s = bits/ns
}

}  // namespace iommusim
