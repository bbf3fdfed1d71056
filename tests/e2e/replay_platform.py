"""`iommusim replay` through a platform: seeded random traces (several requesters, remaps,
multi-page DMAs, DMAs after unmap) replayed under stressing configurations must check every
recorded translation with no mismatch; the unmap barrier holds back an unmap until the
requester's DMAs are done; recorded-time and closed-loop pacing differ in time only; declared
replay devices take their place in the topology; the same run gives the same bytes.
Usage: replay_platform.py IOMMUSIM SOURCE_ROOT"""
import json
import os
import random
import subprocess
import sys
import tempfile

from e2e_common import Check

iommusim = sys.argv[1]
check = Check()
tmp = tempfile.mkdtemp(prefix="iommusim-replay-")
RIDS = ["00:02.0", "00:03.0", "01:00.1"]


def random_trace(path, seed, n_ops=1500):
    """Random map/unmap/DMA per requester, like a driver's streaming DMA; returns
    (DMA records with a recorded address, DMAs to unmapped addresses)."""
    rnd = random.Random(seed)
    lines = ["#iommusim-trace 1 time=ns", f"# random replay property trace, seed {seed}"]
    live = {rid: {} for rid in RIDS}  # rid -> {iova: (pa, size)}
    t, checked, unmapped = 1000, 0, 0
    for _ in range(n_ops):
        rid = rnd.choice(RIDS)
        m = live[rid]
        t += rnd.randrange(1, 400)
        op = rnd.random()
        if op < 0.25 or not m:
            iova = 0x10000000 + 0x10000 * rnd.randrange(64)
            pa = 0x100000000 + 0x1000 * rnd.randrange(1 << 18)
            size = 0x1000 * rnd.randrange(1, 9)
            # A map over a live buffer replaces it (a remap): the driver model unmaps first.
            m = {k: v for k, v in m.items() if not (k < iova + size and iova < k + v[1])}
            live[rid] = m
            m[iova] = (pa, size)
            lines.append(f"{t} map {rid} iova={iova:#x} pa={pa:#x} size={size:#x} perm=rw domain={RIDS.index(rid) + 1}")
        elif op < 0.40:
            iova = rnd.choice(list(m))
            size = m.pop(iova)[1]
            lines.append(f"{t} unmap {rid} iova={iova:#x} size={size:#x} domain={RIDS.index(rid) + 1}")
            if rnd.random() < 0.2:  # a device touching a buffer after its unmap: a fault
                lines.append(f"{t + 1} dma {rid} iova={iova:#x} size=64 dir=w")
                unmapped += 1
        else:
            iova = rnd.choice(list(m))
            pa, size = m[iova]
            off = rnd.randrange(size // 64) * 64
            n = min(rnd.choice([64, 256, 1500, 4096, 9000]), size - off)
            d = rnd.choice("rw")
            lines.append(f"{t} dma {rid} iova={iova + off:#x} size={n} dir={d} pa={pa + off:#x}")
            checked += 1
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return checked, unmapped


def replay(trace, *args, ok=True):
    out = tempfile.mkdtemp(dir=tmp)
    r = subprocess.run([iommusim, "replay", trace, "-q", "--out", out, *args], capture_output=True, text=True)
    if ok and r.returncode not in (0, 1):
        raise RuntimeError(f"replay {args} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    path = os.path.join(out, "stats.json")
    s = json.load(open(path)) if os.path.exists(path) else None
    return r, s, path


# 1. Property: every recorded translation checked and right, under every pacing and design.
configs = {
    "timed": [],
    "closed loop": ["--set", "system.replay.timed=0"],
    "closed, 1 tag, Gen1 x1, queue 1": ["--set", "system.replay.timed=0", "--set", "system.replay.engine.tags=1",
                                         "--set", "system.replay.link.gen=1", "--set", "system.replay.link.lanes=1",
                                         "--set", "system.replay.queue_depth=1"],
    "quantum 0": ["--quantum", "0"],
    "quantum 10us, closed": ["--quantum", "10us", "--set", "system.replay.timed=0"],
    "scalable, 4-entry IOTLB, large pages": ["--set", "system.iommu0.mode=scalable", "--set",
                                             "system.iommu0.iotlb.entries=4", "--set", "system.replay.large_pages=1"],
    "lazy invalidation": ["--set", "system.iommu0.driver.strict=0"],
}
for seed in (1, 2):
    tr = os.path.join(tmp, f"random{seed}.trace")
    checked, unmapped = random_trace(tr, seed)
    for name, args in configs.items():
        r, s, _ = replay(tr, *args)
        rp = s["system"]["replay"]
        what = f"seed {seed}, {name}"
        check(rp["translations_checked"] == checked, f"{what}: {rp['translations_checked']} of {checked} checked")
        if "lazy" in name:
            # The recording reused IOVAs at once (a strict guest); a lazy driver leaves the
            # old translation cached until its flush, so a DMA may use it: every mismatch must
            # be such a stale hit, and is reported (exit 1).
            stale = s["system"]["iommu0"]["stale_hits"]
            check(rp["mismatches"] <= stale, f"{what}: {rp['mismatches']} mismatches, all stale hits ({stale})")
            check(rp["faults"] <= unmapped, f"{what}: at most the {unmapped} DMAs after unmap fault")
            check(r.returncode == (1 if rp["mismatches"] else 0), f"{what}: exit 1 when stale")
        else:
            check(rp["mismatches"] == 0, f"{what}: {rp['mismatches']} mismatches ({r.stdout[-400:]})")
            check(rp["faults"] == unmapped, f"{what}: {rp['faults']} faults, {unmapped} DMAs after unmap")
            check(r.returncode == 0, f"{what}: exit 0")

# 2. The unmap barrier: a long DMA, then its buffer remapped elsewhere and DMA'd again. Closed
# loop with one tag on a Gen1 x1 link, the first DMA is still issuing when the host reaches the
# unmap: the unmap must wait for it, or its later pieces would fault or land on the new page.
bar = os.path.join(tmp, "barrier.trace")
with open(bar, "w") as f:
    f.write("#iommusim-trace 1 time=ns\n"
            "0 map 00:02.0 iova=0x40000 pa=0x200000 size=0x10000 perm=rw domain=1\n"
            "1 dma 00:02.0 iova=0x4f000 size=4096 dir=w pa=0x20f000\n"
            "2 dma 00:02.0 iova=0x40000 size=65536 dir=r pa=0x200000\n"
            "3 unmap 00:02.0 iova=0x40000 size=0x10000 domain=1\n"
            "4 map 00:02.0 iova=0x40000 pa=0x900000 size=0x10000 perm=rw domain=1\n"
            "5 dma 00:02.0 iova=0x4f000 size=64 dir=r pa=0x90f000\n")
r, s, _ = replay(bar, "--set", "system.replay.timed=0", "--set", "system.replay.engine.tags=1",
                 "--set", "system.replay.link.gen=1", "--set", "system.replay.link.lanes=1")
rp = s["system"]["replay"]
check(rp["mismatches"] == 0 and rp["faults"] == 0 and rp["translations_checked"] == 3,
      f"barrier: the 64 KiB DMA finishes on the old mapping ({r.stdout[-300:]})")
check(rp["barrier_waits"] >= 1, "barrier: the unmap waited for the device")
dev = s["system"]["req00_02_0"]
check(dev["engine"]["pieces"] == 16 + 128 + 1, "barrier: 4 KiB in 16 writes, 64 KiB in 128 reads, 1 read")

# 3. Pacing: recorded times stretch the run to the recording's span; closed loop does not.
sparse = os.path.join(tmp, "sparse.trace")
with open(sparse, "w") as f:
    f.write("#iommusim-trace 1 time=ns\n0 map 00:02.0 iova=0x1000 pa=0x5000 size=0x1000 perm=rw domain=1\n")
    for i in range(20):
        f.write(f"{1000 + i * 50000} dma 00:02.0 iova=0x1000 size=64 dir=r pa=0x5000\n")
_, timed, _ = replay(sparse)
_, closed, _ = replay(sparse, "--set", "system.replay.timed=0")
t_ns, c_ns = int(timed["run"]["simulated_ns"]), int(closed["run"]["simulated_ns"])
check(t_ns >= 951000 and c_ns < 20000, f"timed run spans the recording ({t_ns} ns), closed loop does not ({c_ns} ns)")
check(timed["system"]["replay"]["translations_checked"] == closed["system"]["replay"]["translations_checked"] == 20,
      "both check every DMA")

# 4. Placement: a declared replay device behind a switch on a slow link; the others placed by
# system.replay.*; the platform's own devices are not built.
plat = os.path.join(tmp, "plat.ini")
with open(plat, "w") as f:
    f.write("[system]\niommus = iommu0\ndevices = bench0, slow\nswitches = sw0\n"
            "[system.iommu0]\narch = vtd\n"
            "[system.bench0]\ntype = dma-bench\ncount = 5\n"
            "[system.slow]\ntype = replay\nrid = 00:03.0\nswitch = sw0\n"
            "[system.slow.link]\ngen = 1\nlanes = 1\n"
            "[system.replay.link]\ngen = 4\nlanes = 16\n")
tr = os.path.join(tmp, "random1.trace")
r, s, _ = replay(tr, "-c", plat, "--set", "system.replay.timed=0")
sysd = s["system"]
check(r.returncode == 0 and sysd["replay"]["mismatches"] == 0, "placement: clean replay")
check("bench0" not in sysd and "slow" in sysd and "req00_02_0" in sysd and "req01_00_1" in sysd,
      "placement: the declared device stands for 00:03.0, the others are placed, bench0 is not built")
check(sysd["slow"]["dmas"] > 0 and sysd["sw0"]["uplink"]["transactions"] > 0,
      "placement: the declared device's DMAs went through the switch")
slow_lat = sysd["slow"]["dma_latency"]["mean"]
fast_lat = sysd["req00_02_0"]["dma_latency"]["mean"]
check(slow_lat > 2 * fast_lat, f"placement: Gen1 x1 behind a switch is slower ({slow_lat} vs {fast_lat} ns)")

# 5. Determinism: the same replay twice gives the same bytes.
_, _, p1 = replay(tr, "--set", "system.replay.timed=0")
_, _, p2 = replay(tr, "--set", "system.replay.timed=0")
check(open(p1).read() == open(p2).read(), "the same replay writes the same stats.json")

# 6. Errors name the file and line.
bad = os.path.join(tmp, "bad.ini")
with open(bad, "w") as f:
    f.write("[system]\niommus = iommu0\n[system.replay]\niommu = nope\n")
r, _, _ = replay(tr, "-c", bad, ok=False)
check(r.returncode == 2 and "bad.ini:4" in r.stderr and "replay needs a unit" in r.stderr,
      f"an unknown replay unit is named with file:line ({r.stderr.strip()[:200]})")
r = subprocess.run([iommusim, "run", "-q", "-c", plat, "--out", tempfile.mkdtemp(dir=tmp)], capture_output=True, text=True)
check(r.returncode == 2 and "plat.ini:" in r.stderr and "replay" in r.stderr,
      f"a replay device under `run` is an error ({r.stderr.strip()[:200]})")
check.finish()
