"""Per-I/O DMA mapping through the driver model: strict invalidation (every unmap waits for
the IOMMU), lazy (flush queue) and persistent pools, on the NIC + NVMe platform. The
software path orders them: persistent >= lazy >= strict in packet rate; strict issues an
invalidation per unmap, lazy batches them; no faults, no stale translations.
Usage: dma_api.py IOMMUSIM SOURCE_ROOT"""
import sys

from e2e_common import Check, run

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
res = {}
for policy in ("strict", "lazy", "persistent"):
    s = run(iommusim, root, ["platforms/x86-vtd-nic-nvme.ini", f"workloads/nic-nvme-{policy}.ini"],
            ["system.nic0.count=20000", "system.nvme0.count=2000"])["system"]
    nic, nvme, mmu = s["nic0"], s["nvme0"], s["iommu0"]
    res[policy] = (nic["tx"]["packet_rate"], mmu["invalidations"])
    print(f"{policy:>10}: NIC TX {res[policy][0] / 1e6:.2f} Mpps, {mmu['invalidations']} invalidations, "
          f"{mmu['stale_hits']} stale hits, NVMe {nvme['completed']} commands")
    check(mmu["faults"] == 0 and nic["faults"] == 0 and nvme["faults"] == 0, f"{policy}: no faults")
    check(mmu["stale_hits"] == 0, f"{policy}: no stale translation used")
    check(nvme["completed"] == 2000, f"{policy}: every NVMe command completed")
check(res["persistent"][0] >= res["lazy"][0] >= res["strict"][0], "packet rate: persistent >= lazy >= strict")
check(res["strict"][1] > 10 * res["lazy"][1], "strict invalidates per unmap, lazy in batches")
check(res["persistent"][1] < 10, "persistent mappings need no invalidations on the I/O path")
check.finish()
