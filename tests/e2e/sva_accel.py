"""The SVA accelerator end to end (docs/devices.md, docs/sva.md): workloads/sva-accel.ini
(native) and workloads/sva-accel-nested.ini (the processes in a guest, nested translation)
run on platforms/x86-vtd-sva.ini through `iommusim run`, briefly. Each run exits 0 with the
device's summary line; every descriptor completes, pages fault in through PRI (faults > 0),
every page request is answered once (device, unit and host agree, nothing unanswered), no
translation differs from the process tables, and the statistics docs/stats.md lists are in
stats.json. Nested page requests go to the guest's handler and cost more. The same seed gives
the same stats.json. Faults faster than the host serves them overflow the PRQ: the unit
answers, the descriptors fail with a page-fault status, nothing is left unanswered.
Usage: sva_accel.py IOMMUSIM SOURCE_ROOT"""
import json
import os
import subprocess
import sys

from e2e_common import Check, tmpdir

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
PLATFORM = "platforms/x86-vtd-sva.ini"
BRIEF = ["system.accel0.descriptors=200"]


def run(workload, sets=()):
    out = tmpdir("sva-")
    cmd = [iommusim, "run", "-q", "--out", out, "-c", os.path.join(root, PLATFORM),
           "-c", os.path.join(root, workload)]
    for s in list(BRIEF) + list(sets):
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True)
    stats = None
    if r.returncode == 0:
        with open(os.path.join(out, "stats.json")) as f:
            stats = json.load(f)
    return r, stats


latency = {}
for wl, guest in (("workloads/sva-accel.ini", False), ("workloads/sva-accel-nested.ini", True)):
    name = os.path.basename(wl)
    r, stats = run(wl)
    check(r.returncode == 0, f"{name}: exit {r.returncode} {r.stderr.strip()[:400]}")
    if stats is None:
        continue
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("accel0: sva-accel")), "")
    check(line != "" and "0 translation mismatches" in line and "fault latency" in line,
          f"{name}: the summary has the device's line ({line[:120]})")
    s = stats["system"]
    a, unit = s["accel0"], s["iommu0"]
    prq, pri = unit["prq"], a["ats"]["pri"]
    descriptors = 4 * 200
    check(a["submitted"] == descriptors and a["completed"] == descriptors and a["failed"] == 0,
          f"{name}: every descriptor completed ({a['completed']} of {descriptors})")
    check(a["faults"] > 0 and pri["page_requests"] > 0,
          f"{name}: pages fault in through PRI ({a['faults']} faults)")
    check(pri["page_requests"] == pri["responses_success"] == prq["responses"]["success"]
          == prq["requests"] and pri["unanswered"] == 0 and pri["responses_unexpected"] == 0,
          f"{name}: every page request answered once ({pri['page_requests']} requests, "
          f"{prq['responses']['success']} responses)")
    check(a["translation_mismatches"] == 0 and a["access_errors"] == 0 and unit["stale_hits"] == 0,
          f"{name}: every translation as the process tables say")
    check(prq["faults"]["populated"] > 0 and prq["faults"]["no_vma"] == 0,
          f"{name}: the service populated the pages")
    check((prq["guest_groups"] == prq["groups"]) if guest else prq["guest_groups"] == 0,
          f"{name}: page request groups {'forwarded to the guest' if guest else 'handled natively'}")
    for key in ("atc_hit_rate_ppm", "page_requests_per_fault_milli", "faults_per_s",
                "bandwidth_mbps"):
        check(a.get(key, 0) > 0, f"{name}: accel0.{key} = {a.get(key)}")
    check(a["fault_latency"]["count"] == a["faults"] and a["ats"]["round_trip"]["count"] > 0,
          f"{name}: fault latency per fault, ATS round trips counted")
    check(prq["occupancy"]["count"] > 0 and prq["overflows_seen"] == 0,
          f"{name}: PRQ occupancy recorded, no overflow")
    check(prq["read_wait_ns"]["count"] == prq["requests"]
          and prq["read_wait_ns"]["mean"] <= prq["service_latency_ns"]["mean"]
          <= a["fault"]["pri_ns"]["mean"] <= a["fault_latency"]["mean"],
          f"{name}: the fault latency's parts nest (PRQ wait, service, PRI round trip, total)")
    latency[guest] = a["fault_latency"]["p50"]
    print(f"{name:>24}: {a['faults']} faults, fault latency p50 {a['fault_latency']['p50']} ns, "
          f"ATC hit rate {a['atc_hit_rate_ppm'] / 1e4:.2f} %")

if len(latency) == 2:
    check(latency[True] > latency[False],
          f"the guest's faults cost more ({latency[True]} ns > {latency[False]} ns)")

# Same seed, same bytes (the run's wall time aside).
outs = []
for _ in range(2):
    r, stats = run("workloads/sva-accel.ini", ["system.seed=5"])
    if stats:
        stats.pop("run", None)
    outs.append(json.dumps(stats, sort_keys=True))
check(outs[0] == outs[1] and outs[0] != "null", "the same seed gives the same statistics")

# Faults faster than the host serves them: the PRQ (128 entries) overflows, the unit answers
# the refused requests itself (Success), their retries still find no rights and those
# descriptors complete with a page-fault status; nothing is left unanswered, the run passes.
r, stats = run("workloads/sva-accel.ini",
               ["system.accel0.engines=256", "system.accel0.processes=32",
                "system.accel0.unpopulated=1", "system.accel0.descriptors=30",
                "system.accel0.inflight=16", "system.accel0.wq_size=1024",
                "system.accel0.ats.outstanding=512"])
check(r.returncode == 0, f"overflow: exit {r.returncode} {r.stderr.strip()[:300]}")
if stats:
    s = stats["system"]
    a, prq, regs = s["accel0"], s["iommu0"]["prq"], s["iommu0"]["regs"]
    pri = a["ats"]["pri"]
    check(prq["overflows_seen"] > 0 and prq["overflow_clears"] == prq["overflows_seen"],
          f"overflow: the PRQ overflowed and recovered ({prq['overflows_seen']} times)")
    check(prq["auto_responses"] == regs["page_responses_auto"] == pri["failures"] > 0,
          f"overflow: {prq['auto_responses']} requests answered by the unit, each a failed access")
    check(pri["page_requests"] == pri["responses_success"] and pri["unanswered"] == 0,
          "overflow: every page request answered once")
    check(a["completed"] == a["submitted"] == 32 * 30 and a["failed"] > 0,
          f"overflow: every descriptor completed, {a['failed']} with a page-fault status")
    check(a["translation_mismatches"] == 0, "overflow: no translation differs from the tables")

# A device whose unit cannot give process address spaces is refused with the reason.
r, _ = run("workloads/sva-accel.ini", ["system.iommu0.mode=legacy"])
check(r.returncode == 2 and "scalable" in r.stderr and "accel0" in r.stderr,
      f"legacy mode refused with the reason: {r.stderr.strip()[:200]}")
check.finish()
