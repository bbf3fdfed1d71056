"""Guest IOMMUs on a host VT-d unit (docs/viommu.md): each workloads/viommu-*.ini runs briefly
through `iommusim run`, strict and (where the guest has a lazy mode) lazy: no faults, no stale
translation used, and the vIOMMU's statistics in stats.json (maps and unmaps counted, VM exits
and invalidations where the path has them). Then scripts/viommu-table at a small scale must
produce every cell of the documented table.
Usage: viommu.py IOMMUSIM SOURCE_ROOT"""
import os
import subprocess
import sys

from e2e_common import Check, run

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
brief = ["system.nic0.count=600", "system.nvme0.count=120"]
for wl in ("none", "shadow", "nested", "nested-direct", "spapr"):
    policies = ("strict", "lazy") if wl in ("shadow", "nested", "nested-direct") else ("strict",)
    for policy in policies:
        g = "true" if policy == "strict" else "false"
        sets = brief + ([f"system.{d}.viommu.guest_strict={g}" for d in ("nic0", "nvme0")]
                        if wl != "none" else [])
        s = run(iommusim, root, ["platforms/x86-vtd-nic-nvme.ini", f"workloads/viommu-{wl}.ini"],
                sets)["system"]
        name, mmu = f"{wl} {policy}", s["iommu0"]
        check(mmu["faults"] == 0 and s["nic0"]["faults"] == 0 and s["nvme0"]["faults"] == 0,
              f"{name}: no faults")
        check(mmu["stale_hits"] == 0, f"{name}: no stale translation used ({mmu['stale_hits']})")
        check(s["nvme0"]["completed"] == 120, f"{name}: every NVMe command completed")
        for d in ("nic0", "nvme0"):
            v = s[d].get("viommu")
            if wl == "none":
                check(v is None, f"{name}: {d} has no vIOMMU statistics")
                continue
            check(v is not None, f"{name}: {d}.viommu statistics present")
            if v is None:
                continue
            exits = v["vm_exits"]["inv_queue"] + v["vm_exits"]["hcall"]
            some = 1 if policy == "strict" else 0  # a brief lazy run may never fill its queue
            check(v["guest_maps"] > 0 and v["guest_unmaps"] > 0 and v["map_failures"] == 0,
                  f"{name}: {d} guest maps and unmaps counted, none failed")
            check(v["map_ns"]["count"] == v["guest_maps"], f"{name}: {d} map_ns per map")
            if wl == "nested-direct":
                check(exits == 0 and v["direct_invalidations"] == v["guest_invalidations"] >= some,
                      f"{name}: {d} invalidates without VM exits")
            elif wl == "nested":
                check(v["passed_down"] == v["guest_invalidations"] == exits >= some,
                      f"{name}: {d} passes each trapped invalidation down")
            elif wl == "shadow":
                check(v["shadow_maps"] > 0 and exits == v["guest_invalidations"] > 0,
                      f"{name}: {d} shadows through trapped invalidations")
            else:
                check(v["hcalls"]["tces"] > 0 and exits > 0, f"{name}: {d} TCE hypercalls")
        print(f"{name:>20}: {mmu['stale_hits']} stale hits, NIC tx {s['nic0']['tx']['packets']} "
              f"packets, NVMe {s['nvme0']['completed']} commands")

# The documented table, scaled down: every path, both policies, and the dma-bench experiment.
r = subprocess.run([sys.executable, os.path.join(root, "scripts", "viommu-table"), "--iommusim",
                    iommusim, "--scale", "0.02", "--check"], capture_output=True, text=True)
check(r.returncode == 0, f"viommu-table --check exited {r.returncode}: {r.stderr.strip()}")
rows = [line for line in r.stdout.splitlines() if line.startswith("| ") and "---" not in line]
for path in ("shadow", "nested", "nested-direct"):
    for policy in ("strict", "lazy"):
        check(any(line.startswith(f"| {path} | {policy} |") for line in rows),
              f"table row {path} {policy}")
check(sum(line.startswith("| none |") or line.startswith("| paravirt-spapr |") for line in rows)
      == 2, "dma-bench rows for none and paravirt-spapr")
check(not any("| - |" in line for line in rows
              if line.startswith(("| shadow", "| nested", "| paravirt-spapr (POWER"))
              and "=" not in line), "every vIOMMU cell filled")
check.finish()
