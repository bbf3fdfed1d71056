"""Multi-tenant replay: N copies of one recording (the legacy-mode sample) replayed together
through one shared IOMMU, closed loop and at recorded times. Each tenant checks as many
recorded translations as the recording alone, with no mismatch; the total IOTLB misses grow
with N (a 16-entry IOTLB); the per-tenant statistics are there and sum to the totals and to
the unit's own counters. A time shift moves a tenant later. Bad input (requesters colliding
after remapping, a bus past 255, a bad shift or rate, tenant keys with one trace) is refused
with exit 2 naming the file:line or the option.
Usage: replay_tenants.py IOMMUSIM SOURCE_ROOT"""
import json
import os
import subprocess
import sys

from e2e_common import Check, skip, tmpdir

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
tmp = tmpdir()
sample = os.path.join(root, "traces", "samples", "qemu-vtd-legacy-strict")
if not os.path.isdir(sample):
    skip(f"no sample recording at {sample}")
trace = os.path.join(tmp, "legacy.trace")
r = subprocess.run([iommusim, "import", "qemu-vtd", os.path.join(sample, "qemu-trace.log.gz"),
                    os.path.join(sample, "guest-ftrace.log.gz"), "-o", trace],
                   capture_output=True, text=True, timeout=120)
check(r.returncode == 0, f"the sample imports ({r.returncode}: {r.stderr[-300:]})")
SMALL = ["--set", "system.iommu0.iotlb.entries=16"]


def replay(traces, *args):
    out = tmpdir()
    r = subprocess.run([iommusim, "replay", *traces, "-q", "--out", out, *args],
                       capture_output=True, text=True, timeout=120)
    path = os.path.join(out, "stats.json")
    return r, (json.load(open(path)) if os.path.exists(path) else None)


HOST = ["records", "maps", "unmaps", "invalidations", "dmas", "faults_recorded", "barrier_waits",
        "pasid_stripped"]
CHECK = ["translations", "translations_checked", "mismatches", "faults"]

for pacing, extra in (("closed loop", ["--set", "system.replay.timed=0"]), ("timed", [])):
    misses = {}
    alone = None
    for n in (1, 2, 4):
        name = f"{pacing}, N={n}"
        r, s = replay([trace] * n, *SMALL, *extra)
        check(r.returncode == 0 and s is not None, f"{name}: exit 0 ({r.returncode}: {r.stderr[-300:]})")
        if s is None:
            continue
        rp, unit = s["system"]["replay"], s["system"]["iommu0"]["iotlb"]
        misses[n] = unit["misses"]
        check(rp["mismatches"] == 0 and rp["faults"] == 0, f"{name}: no mismatch, no fault")
        if n == 1:
            alone = rp
            check(rp["translations_checked"] == 480, f"{name}: 480 translations checked alone "
                  f"({rp['translations_checked']})")
            check(not any(k.startswith("tenant") for k in rp), f"{name}: no tenant statistics alone")
            continue
        tenants = [rp.get(f"tenant{t}") for t in range(n)]
        check(all(tenants) and f"tenant{n}" not in rp, f"{name}: statistics of exactly {n} tenants")
        if not all(tenants):
            continue
        for t, ts in enumerate(tenants):
            check(ts["translations_checked"] == alone["translations_checked"] and ts["mismatches"] == 0,
                  f"{name}: tenant {t} checks {ts['translations_checked']} translations as alone "
                  f"({alone['translations_checked']}), {ts['mismatches']} mismatches")
            check(ts["records"] == alone["records"] and ts["dmas"] == alone["dmas"],
                  f"{name}: tenant {t} replays the whole recording")
            check(ts["iotlb_hits"] + ts["iotlb_misses"] == ts["translations"],
                  f"{name}: tenant {t}'s hits and misses are its translations")
            check(ts["miss_latency"]["count"] == ts["iotlb_misses"] and
                  ts["dma_latency"]["count"] == ts["dmas"],
                  f"{name}: tenant {t}'s latency histograms count its misses and DMAs")
        for k in HOST + CHECK:
            total = sum(ts[k] for ts in tenants)
            check(total == rp[k], f"{name}: tenants' {k} sum to the total ({total} vs {rp[k]})")
        for k in ("hits", "misses"):
            total = sum(ts["iotlb_" + k] for ts in tenants)
            check(total == unit[k], f"{name}: tenants' iotlb_{k} sum to the unit's ({total} vs {unit[k]})")
        devs = [k for k in s["system"] if k.startswith("req")]
        check(len(devs) == n * len([k for k in devs if k.startswith("req00_")]),
              f"{name}: every tenant's requesters on their own bus ({sorted(devs)})")
    if len(misses) == 3:
        check(misses[1] < misses[2] < misses[4],
              f"{pacing}: IOTLB misses grow with the tenants ({misses})")

# A shift moves one tenant later: the run ends that much later; a rate of 2 halves its times.
r1, s1 = replay([trace, trace], *SMALL)
r2, s2 = replay([trace, trace], *SMALL, "--set", "system.replay.tenant1.shift_ns=5000000000")
r3, s3 = replay([trace, trace], *SMALL, "--set", "system.replay.tenant0.rate=2",
                "--set", "system.replay.tenant1.rate=2")
if s1 and s2 and s3:
    t1, t2, t3 = (int(s["run"]["simulated_ns"]) for s in (s1, s2, s3))
    check(4.9e9 < t2 - t1 < 5.1e9, f"shift_ns=5 s ends the run 5 s later ({t1} -> {t2} ns)")
    check(0.45 < t3 / t1 < 0.55, f"rate=2 halves the run ({t1} -> {t3} ns)")
    check(s2["system"]["replay"]["mismatches"] == 0 and s3["system"]["replay"]["mismatches"] == 0,
          "shifted and rescaled tenants translate as recorded")
else:
    check(False, f"shifted and rescaled replays ran ({r1.returncode} {r2.returncode} {r3.returncode})")


def refused(name, r, s, *wanted):
    check(r.returncode == 2 and s is None, f"{name}: exit 2, nothing simulated ({r.returncode})")
    for w in wanted:
        check(w in r.stderr, f"{name}: stderr names {w!r} ({r.stderr.strip()[:400]})")


# Requesters on buses 0 and 1: a second copy one bus up collides with the first.
two = os.path.join(tmp, "two-buses.trace")
with open(two, "w") as f:
    f.write("#iommusim-trace 1 time=ns\n"
            "0 map 00:02.0 iova=0x10000 pa=0x200000 size=0x1000 perm=rw domain=1\n"
            "0 map 01:02.0 iova=0x10000 pa=0x300000 size=0x1000 perm=rw domain=2\n"
            "100 dma 00:02.0 iova=0x10000 size=64 dir=w pa=0x200000\n")
r, s = replay([two, two])
refused("colliding requesters", r, s, f"{two}:2: requester 00:02.0 of tenant 1 becomes 01:02.0",
        f"tenant 0's requester 01:02.0 ({two}:3)", "system.replay.tenant_bus_stride")
r, s = replay([two, two], "--set", "system.replay.tenant_bus_stride=2")
check(r.returncode == 0 and s and s["system"]["replay"]["tenant1"]["translations_checked"] == 1,
      f"a stride of 2 separates them ({r.returncode}: {r.stderr[-300:]})")
r, s = replay([trace] * 3, "--set", "system.replay.tenant_bus_stride=200")
refused("bus past 255", r, s, "of tenant 2 would be on bus 400", "buses end at 255")
r, s = replay([trace, trace], "--set", "system.replay.tenant1.rate=0")
refused("rate 0", r, s, "system.replay.tenant1.rate: 0 is out of range")
r, s = replay([trace, trace], "--set", "system.replay.tenant1.rate=fast")
refused("rate not a number", r, s, "system.replay.tenant1.rate")
r, s = replay([trace, trace], "--set", "system.replay.tenant1.shift_ns=-5")
refused("negative shift", r, s, "system.replay.tenant1.shift_ns")
r, s = replay([trace, trace], "--set", "system.replay.tenant1.shift_ns=9223372036854775")
refused("shift past the span", r, s, "system.replay.tenant1.shift_ns: tenant 1", "spans at most")
r, s = replay([trace, trace], "--set", "system.replay.tenant2.shift_ns=1")
refused("a tenant that is not there", r, s, "unknown key 'system.replay.tenant2.shift_ns'")
r, s = replay([trace], "--set", "system.replay.tenant_bus_stride=2")
refused("tenant keys with one trace", r, s, "unknown key 'system.replay.tenant_bus_stride'")
check.finish()
