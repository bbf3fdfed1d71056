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
check.finish()
