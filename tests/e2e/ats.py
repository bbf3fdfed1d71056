"""ATS from configuration on the shipped x86 platform: `system.bench0.ats = true` sends each
DMA through the function's ATC (docs/devices.md, "ATS and PRI agent"); misses are Translation
Requests on the device's link, translated in the unit; hits go out translated without a walk.
Usage: ats.py IOMMUSIM SOURCE_ROOT"""
import subprocess
import sys

from e2e_common import Check, run

iommusim, root = sys.argv[1], sys.argv[2]
files = ["platforms/broadwell-dmabench.ini", "workloads/dmabench-rd64-random.ini"]
n = 5000
check = Check()
for mode in ("legacy", "scalable"):
    s = run(iommusim, root, files, [f"system.bench0.count={n}", "system.bench0.ats=true",
                                    f"system.iommu0.mode={mode}"])["system"]
    b, u = s["bench0"], s["iommu0"]
    a = b["ats"]
    pages = 256 * 1024 // 4096  # the workload's window
    check(b["faults"] == 0 and b["transfers"] == n, f"{mode}: every DMA completed")
    check(a["atc"]["hits"] + a["atc"]["misses"] == n, f"{mode}: one ATC lookup per DMA")
    check(a["atc"]["misses"] == pages and a["translation_requests"] == pages,
          f"{mode}: one Translation Request per page of the window ({a['atc']['misses']})")
    check(u["ats"]["translation_requests"] == pages and u["translations"] == pages,
          f"{mode}: the unit translated only the Translation Requests")
    check(u["ats"]["translated_requests"] == n and u["ats"]["translated_rejected"] == 0,
          f"{mode}: every DMA arrived translated and was accepted")
    check(b["link"]["upstream"]["mrd_tlps"] == n + pages,
          f"{mode}: Translation Requests are reads on the device's link")
    check(a["round_trip"]["count"] == pages and a["round_trip"]["min"] > 0,
          f"{mode}: ATS round trips timed")

# An ATC smaller than the footprint thrashes under a random pattern.
s = run(iommusim, root, files, [f"system.bench0.count={n}", "system.bench0.ats=true",
                                "system.bench0.ats.atc_entries=4"])["system"]
a = s["bench0"]["ats"]
check(a["atc"]["misses"] > 0.8 * n and a["atc"]["evictions"] > 0,
      f"a 4-entry ATC over 64 pages misses most lookups ({a['atc']['misses']} of {n})")

# ATS on an architecture without it is refused, naming the key.
r = subprocess.run([iommusim, "run", "-q", "-c", f"{root}/platforms/power-spapr.ini", "-c",
                    f"{root}/{files[1]}", "--set", "system.bench0.ats=true"],
                   capture_output=True, text=True)
check(r.returncode != 0 and "system.bench0.ats" in r.stderr and "has no ATS" in r.stderr,
      f"ATS on sPAPR refused: {r.stderr.strip()}")
sys.exit(check.finish())
