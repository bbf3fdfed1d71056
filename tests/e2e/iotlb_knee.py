"""The IOTLB-reach knee (pcie-bench): with a 64-entry IOTLB of 4 KiB pages, random 64-byte
reads lose throughput between a 256 KiB and a 512 KiB window; with 2 MiB pages they do not.
Usage: iotlb_knee.py IOMMUSIM SOURCE_ROOT"""
import sys

from e2e_common import Check, run

iommusim, root = sys.argv[1], sys.argv[2]
files = ["platforms/broadwell-dmabench.ini", "workloads/dmabench-rd64-random.ini"]
check = Check()
bw = {}
for page in ("4K", "2M"):
    for window in ("256K", "512K"):
        s = run(iommusim, root, files, [f"system.bench0.map.page_size={page}",
                                       f"system.bench0.window={window}",
                                       "system.bench0.count=50000"])
        bench = s["system"]["bench0"]
        tlb = s["system"]["iommu0"]["iotlb"]
        bw[page, window] = bench["bandwidth"]
        print(f"{page} pages, {window} window: {bench['bandwidth'] / 1e9:.3f} GB/s, "
              f"IOTLB hit rate {100 * tlb['hits'] / tlb['lookups']:.2f} %")
        check(bench["faults"] == 0, f"{page}/{window}: no faults")
# pcie-bench measured 27.6 -> 20.2 Gb/s (-27%) across the knee; the device's issue rate, not the
# link, bounds the hits, so the drop is that and not the link-bound halving of an idealised card.
check(bw["4K", "512K"] < 0.8 * bw["4K", "256K"], "4 KiB pages: throughput drops past the IOTLB reach")
check(bw["2M", "512K"] > 0.95 * bw["2M", "256K"], "2 MiB pages: no drop at 512 KiB")
check(bw["2M", "512K"] > 1.25 * bw["4K", "512K"], "2 MiB pages beat 4 KiB pages at 512 KiB")
# The driver maps with the page size asked for, even when a larger one would fit: a 4 MiB
# window of 4 KiB pages overflows the IOTLB, the same window in 2 MiB pages does not.
for page, lo, hi in (("4K", 0, 10), ("2M", 99, 100)):
    s = run(iommusim, root, files, [f"system.bench0.map.page_size={page}", "system.bench0.window=4M",
                                   "system.bench0.count=20000"])
    tlb = s["system"]["iommu0"]["iotlb"]
    rate = 100 * tlb["hits"] / tlb["lookups"]
    check(lo <= rate <= hi, f"{page} pages over 4 MiB: hit rate {rate:.1f} % in [{lo}, {hi}]")
check.finish()
