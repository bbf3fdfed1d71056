// Internal to the QEMU importer: QEMU's `log` trace backend output parsed into the events the
// join uses, in log order. See docs/traces.md, "Importers".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "traces/import_report.h"

namespace iommusim::trace::qemu {

// One vtd_dmar_translate, completed by the vtd_iotlb_page_hit/update that preceded it.
struct Translation {
    uint64_t ns = 0;  // QEMU's wall clock
    uint64_t line = 0;
    uint32_t pid = 0;  // QEMU thread: hit/update and translate pair up within a thread
    uint16_t rid = 0;
    uint32_t domain = 0;
    bool domain_known = false;  // from the IOTLB event; absent when none preceded
    Addr iova = 0;              // with the page offset when the IOTLB event gave it
    Addr gpa = 0;               // the translation of `iova` (page | offset)
    Addr mask = 0xfff;          // page offset bits
    uint64_t pte = 0;           // leaf entry (bit 0 R, bit 1 W) when pte_known
    bool pte_known = false;
    // Filled by the device classifiers.
    uint64_t size = 0;
    bool size_known = false;
    Dir dir = Dir::Unknown;
};

// A pci_nvme_* event the NVMe classifier follows; fields named per type below.
struct NvmeEvent {
    enum class Type : uint8_t {
        AdminCmd,     // a=cid b=sqid c=opc
        IoCmd,        // a=cid b=sqid c=opc
        MapPrp,       // a=prp1 b=prp2 c=len d=trans_len
        MapAddr,      // a=addr b=len
        Completion,   // a=cid b=cqid
        CreateSq,     // a=addr b=sqid c=cqid d=qsize (entries - 1)
        CreateCq,     // a=addr b=cqid d=qsize
        DelSq,        // b=sqid
        DelCq,        // b=cqid
        DbbufConfig,  // a=dbs_addr b=eis_addr
        Asq,          // a=low half
        AsqHi,        // a=whole address
        Acq,          // a=low half
        AcqHi,        // a=whole address
        Aqattr,       // a=AQA
        Cfg,          // a=CC
        DoorbellSq,   // b=sqid
        DoorbellCq,   // b=cqid
        Reset,        // controller disabled or reset: I/O queues and doorbell buffers gone
    };
    Type type = Type::Reset;
    uint32_t pid = 0;
    uint64_t a = 0, b = 0, c = 0, d = 0;
};

struct Item {
    enum class Type : uint8_t { Translate, Record, Nvme };
    Type type;
    uint32_t index;  // into translations, records or nvme
};

// One vtd_inv_desc line, every type (wait included): the clock anchors of import_align_fit.h.
struct Desc {
    uint64_t ns = 0;
    uint64_t lo = 0, hi = 0;
    size_t before = 0, after = 0;  // items before it; items up to and including its record
};

// A block command the device model started: pci_nvme_read/write, virtio_blk_handle_read/write.
struct DevCmd {
    uint64_t ns = 0;
    uint64_t sector = 0, sectors = 0;  // 512-byte units
    bool write = false;
};

struct Log {
    std::string path;
    std::vector<Desc> descs;       // log order
    std::vector<DevCmd> dev_cmds;  // log order
    std::vector<Item> items;       // log order
    std::vector<Translation> translations;
    std::vector<Record> records;  // inval and fault records; time_ns is QEMU's wall clock
    std::vector<uint64_t> record_lines;
    std::vector<NvmeEvent> nvme;
    uint64_t first_ns = 0;  // the first timestamped line: time 0 of the imported trace
    bool any = false;
};

// Throws std::runtime_error if the file cannot be read; bad lines go to report.errors.
Log read_log(const std::string& path, ImportReport& report);

// Sizes and directions of the NVMe controller's translations, from the pci_nvme_* events
// (import_qemu_nvme.cpp). Adds a note naming the requester taken for the controller.
void classify_nvme(Log& log, ImportReport& report);

// Direction from the leaf entry for translations still without one: no W bit means the device
// may only read.
void classify_by_pte(Log& log);

}  // namespace iommusim::trace::qemu
