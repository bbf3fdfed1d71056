"""A shared PCIe link does not depend on the quantum (docs/platforms.md, "The quantum").
On tests/e2e/switch-topology.ini, bench0 and bench1 share switch sw0's uplink. Every link
direction is a gap-filling server (models/core/resource.h), so a device that runs a quantum
ahead alone does not push the other one behind its reservations: the bandwidth of each device
behind the uplink stays within 3 % across quanta 0, 1 us and 10 us. What still moves with the
quantum is the shared IOTLB's order (devices on their own links). Usage: IOMMUSIM SOURCE_ROOT"""
import sys

from e2e_common import Check, run

iommusim, root = sys.argv[1], sys.argv[2]
files = ["platforms/x86-vtd-4dev.ini", "workloads/dmabench-4dev-random.ini",
         "tests/e2e/switch-topology.ini"]
sets = [f"system.bench{i}.count=20000" for i in range(4)]
check = Check()
res = {}
for q in ("0", "1us", "10us"):
    s = run(iommusim, root, files, sets, ["--quantum", q])["system"]
    bw = [s[f"bench{i}"]["bandwidth"] for i in range(4)]
    up = s["sw0"]["uplink"]["upstream"]["queueing"]
    down = s["sw0"]["uplink"]["downstream"]["queueing"]
    res[q] = bw
    print(f"quantum {q:>4}: GB/s per device " + " ".join(f"{b / 1e9:.3f}" for b in bw) +
          f"; uplink queueing p99 {up['p99']} ns up, {down['p99']} ns down")
    check(s["sw0"]["uplink"]["upstream"]["tlps"] == 40000, f"{q}: the uplink carried both devices")
for dev in (0, 1):
    base = res["0"][dev]
    for q in ("1us", "10us"):
        check(abs(res[q][dev] - base) <= 0.03 * base,
              f"bench{dev} behind the shared uplink: {q} within 3 % of quantum 0 "
              f"({res[q][dev] / 1e9:.3f} vs {base / 1e9:.3f} GB/s)")
check.finish()
