"""The quantum's effect on results, measured, not assumed (docs/architecture.md, "Timing").
Reference workload: four devices sharing one VT-d unit (platforms/x86-vtd-4dev.ini,
workloads/dmabench-4dev-random.ini). Documented bound (docs/platforms.md, "The quantum"): a
quantum of up to 100 ns changes bandwidth by < 3 % and IOTLB misses by < 10 % against quantum 0.
Larger quanta let each device run a burst alone, which raises the shared IOTLB's hit rate;
the test prints those figures and checks they stay plausible. Usage: IOMMUSIM SOURCE_ROOT"""
import sys

from e2e_common import Check, run

iommusim, root = sys.argv[1], sys.argv[2]
files = ["platforms/x86-vtd-4dev.ini", "workloads/dmabench-4dev-random.ini"]
sets = [f"system.bench{i}.count=20000" for i in range(4)]
check = Check()
res = {}
for q in ("0", "100ns", "1us", "10us"):
    s = run(iommusim, root, files, sets, ["--quantum", q])
    bw = sum(s["system"][f"bench{i}"]["bandwidth"] for i in range(4))
    misses = s["system"]["iommu0"]["iotlb"]["misses"]
    res[q] = (bw, misses)
    print(f"quantum {q:>5}: {bw / 1e9:7.3f} GB/s total, {misses} IOTLB misses")
bw0, m0 = res["0"]
bw1, m1 = res["100ns"]
check(abs(bw1 - bw0) < 0.03 * bw0, "100 ns quantum: bandwidth within 3 % of quantum 0")
check(abs(m1 - m0) < 0.10 * m0, "100 ns quantum: IOTLB misses within 10 % of quantum 0")
for q in ("1us", "10us"):
    check(res[q][0] >= 0.9 * bw0, f"{q} quantum: no loss of bandwidth from out-of-order resource use")
check.finish()
