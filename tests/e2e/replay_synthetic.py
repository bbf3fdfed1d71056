"""`iommusim replay` on a synthetic trace: maps, DMAs with recorded physical addresses,
unmaps and invalidations. Every recorded translation must be checked and match; a trace with
one wrong recorded address must report exactly that mismatch, with its line.
Usage: replay_synthetic.py IOMMUSIM SOURCE_ROOT"""
import json
import os
import random
import subprocess
import sys
import tempfile

from e2e_common import Check

iommusim = sys.argv[1]
check = Check()


def make_trace(path, n_bufs=200, dmas_per_buf=8, wrong_at=None):
    rnd = random.Random(5)
    lines = ["#iommusim-trace 1 time=ns", "# synthetic: maps, DMAs, unmaps"]
    t = 1000
    live = []
    for b in range(n_bufs):
        iova = 0xFFF00000 - 0x10000 * (b % 64)
        pa = 0x100000000 + 0x1000 * rnd.randrange(1 << 16)
        size = 0x1000 * rnd.randrange(1, 4)
        lines.append(f"{t} map 00:02.0 iova={iova:#x} pa={pa:#x} size={size:#x} perm=rw domain=1")
        for _ in range(dmas_per_buf):
            t += rnd.randrange(10, 500)
            off = rnd.randrange(size // 64) * 64
            rec = pa + off
            if wrong_at is not None and len(lines) == wrong_at:
                rec += 0x1000
            d = rnd.choice("rw")
            lines.append(f"{t} dma 00:02.0 iova={iova + off:#x} size=64 dir={d} pa={rec:#x}")
        t += 100
        lines.append(f"{t} unmap 00:02.0 iova={iova:#x} size={size:#x} domain=1")
        lines.append(f"{t} inval page domain=1 addr={iova:#x} order=2")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


def replay(path):
    out = tempfile.mkdtemp()
    r = subprocess.run([iommusim, "replay", path, "--out", out], capture_output=True, text=True)
    with open(os.path.join(out, "stats.json")) as f:
        return r.returncode, r.stdout + r.stderr, json.load(f)


d = tempfile.mkdtemp()
good = os.path.join(d, "good.trace")
make_trace(good)
rc, out, s = replay(good)
rp = s["system"]["replay"]
print(out.splitlines()[0] if out else "")
check(rc == 0, f"clean replay exits 0 (got {rc}: {out[-500:]})")
check(rp["dmas"] == 1600 and rp["translations_checked"] == 1600, "every recorded translation checked")
check(rp["mismatches"] == 0 and rp["faults"] == 0, "no mismatch, no fault")
check(s["system"]["iommu0"]["iotlb"]["hits"] > 0 and s["system"]["iommu0"]["invalidations"] > 0,
      "the unit cached translations and executed invalidations")
bad = os.path.join(d, "bad.trace")
make_trace(bad, wrong_at=40)
rc, out, s = replay(bad)
check(rc == 1 and s["system"]["replay"]["mismatches"] == 1, "one wrong recorded address: one mismatch, exit 1")
check("mismatch at line 41" in out, "the mismatch names its trace line")
broken = os.path.join(d, "broken.trace")
with open(broken, "w") as f:
    f.write("#iommusim-trace 1 time=ns\n10 map 00:02.0 iova=0x1000 pa=0x2000 size=0x1000 perm=rw domain=1\n20 dmaa 00:02.0\n")
r = subprocess.run([iommusim, "replay", broken, "--out", tempfile.mkdtemp()], capture_output=True, text=True)
check(r.returncode != 0 and "broken.trace:3" in r.stderr, "a bad trace line is named with file:line")
check.finish()
