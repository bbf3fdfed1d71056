// PRP construction: how an NVMe command describes its data buffer (NVM Express Base
// Specification 2.0, 4.1.1 "Physical Region Page Entry and List"). Plain C++, header-only.
#pragma once
#include <cstdint>
#include <vector>

#include "core/types.h"

namespace iommusim {

constexpr uint32_t kNvmePrpBytes = 8;  // one PRP entry

// Memory pages the transfer [addr, addr + len) touches.
constexpr uint64_t nvme_data_pages(Addr addr, uint64_t len, uint32_t page) {
    return len ? ((addr & (page - 1)) + len + page - 1) / page : 0;
}

// PRP list pages a transfer over `data_pages` pages needs: none when PRP1 and PRP2 describe
// it (one or two pages). A list page holds page/8 entries; when more entries remain than
// fit, its last entry points to the next list page instead.
constexpr uint64_t nvme_prp_list_pages(uint64_t data_pages, uint32_t page) {
    if (data_pages <= 2) return 0;
    const uint64_t per = page / kNvmePrpBytes;
    uint64_t left = data_pages - 1, n = 1;
    for (; left > per; ++n) left -= per - 1;
    return n;
}

struct NvmePrps {
    struct ListRead {
        Addr addr;
        uint32_t bytes;  // the entries the controller needs from this list page
    };
    Addr prp1 = 0, prp2 = 0;
    uint64_t pages = 0;                // data pages (PRP1, then one entry per further page)
    std::vector<ListRead> list_reads;  // list pages in chain order
    std::vector<uint64_t> list;        // their entries, page after page
};

// The PRPs of a transfer of `len` bytes at `data`, contiguous in the device's address space,
// with memory page size `page` (CC.MPS). PRP1 = data (its offset kept). One page: PRP2 is
// unused (0). Two: PRP2 = the second page. More: PRP2 points to the PRP list, built at
// `list_base` (page-aligned, consecutive pages); entries name pages 2..n, and a page that
// cannot hold the rest ends with a pointer to the next list page.
inline void nvme_build_prps(Addr data, uint64_t len, uint32_t page, Addr list_base, NvmePrps& out) {
    out.prp1 = data;
    out.prp2 = 0;
    out.pages = nvme_data_pages(data, len, page);
    out.list_reads.clear();
    out.list.clear();
    const Addr first = data & ~Addr(page - 1);
    if (out.pages == 2) out.prp2 = first + page;
    if (out.pages <= 2) return;
    out.prp2 = list_base;
    const uint64_t per = page / kNvmePrpBytes;
    Addr lp = list_base;
    uint64_t next = 1;  // the next data page to list
    while (next < out.pages) {
        const uint64_t left = out.pages - next;
        const uint64_t n = left <= per ? left : per - 1;
        for (uint64_t i = 0; i < n; ++i) out.list.push_back(first + (next + i) * page);
        next += n;
        if (next < out.pages) out.list.push_back(lp + page);  // chain to the next list page
        out.list_reads.push_back({lp, uint32_t((n + (next < out.pages)) * kNvmePrpBytes)});
        lp += page;
    }
}

}  // namespace iommusim
