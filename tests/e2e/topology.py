"""Topology from configuration: devices behind a switch share its uplink, root complexes
count their ports' traffic. Usage: topology.py IOMMUSIM SOURCE_ROOT"""
import sys

from e2e_common import Check, run

iommusim, root = sys.argv[1], sys.argv[2]
sets = [f"system.bench{i}.count=20000" for i in range(4)]
s = run(iommusim, root, ["platforms/x86-vtd-4dev.ini", "workloads/dmabench-4dev-random.ini",
                         "tests/e2e/switch-topology.ini"], sets)["system"]
check = Check()
bw = [s[f"bench{i}"]["bandwidth"] for i in range(4)]
print("GB/s per device:", " ".join(f"{b / 1e9:.2f}" for b in bw))
check(s["sw0"]["uplink"]["upstream"]["tlps"] == 40000, "the switch uplink carries both devices' requests")
check(s["sw0"]["port0"]["requests"] == 20000 and s["sw0"]["port1"]["requests"] == 20000,
      "each switch port counts its device")
check(s["rc1"]["port0"]["requests"] == 40000 and s["rc1"]["port1"]["requests"] == 20000,
      "rc1: the switch's port and bench2's port")
check(s["rc"]["port0"]["requests"] == 20000, "rc: bench3")
check(max(bw[0], bw[1]) < 0.7 * min(bw[2], bw[3]), "devices sharing a Gen4 x8 uplink get less than direct ones")
# DMA address spaces of several regions: an x86-like device with a small translated window
# around its buffer (at 4 GiB) and a large direct-mapped bypass window.
bw_files = ["platforms/broadwell-dmabench.ini", "workloads/dmabench-rd64-random.ini"]
small = "system.bench0.regions=dma:translate:4G:1G, msi:reserved:0xFEE00000:1M, direct:bypass:1T:1T:0"
s = run(iommusim, root, bw_files, [small, "system.bench0.count=2000"])["system"]
check(s["iommu0"]["translations"] == 2000 and s["router"]["translated"] == 2000,
      "the translated window goes through the IOMMU")
s = run(iommusim, root, bw_files, ["system.bench0.regions=direct:bypass:0:1T:0",
                                   "system.bench0.count=2000"])["system"]
check(s["iommu0"]["translations"] == 0 and s["router"]["bypassed"] == 2000 and s["bench0"]["faults"] == 0,
      "a bypass window skips the IOMMU")
s = run(iommusim, root, bw_files, ["system.bench0.regions=low:translate:0:1G", "system.bench0.count=2000"])["system"]
check(s["router"]["outside"] == 2000 and s["bench0"]["faults"] == 2000,
      "DMA outside every region: error completions, counted by the device")
check.finish()
