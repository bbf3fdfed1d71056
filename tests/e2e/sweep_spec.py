"""Sweep files: grid expansion (lists, ranges with +step and *factor, size suffixes, zipped
axes), and bad input rejected with file:line before anything runs.
Usage: sweep_spec.py IOMMUSIM SOURCE_ROOT"""
import os
import sys
import tempfile

from e2e_common import Check
from sweep_helpers import run_sweep, write_spec

iommusim, root = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(root, "scripts", "lib"))
import iommusim_sweep as sw  # noqa: E402

check = Check()


def expand(text, binary=False):
    try:
        return sw.expand_items(text, binary, "t.ini:1")
    except sw.SpecError as e:
        return str(e)


check(expand("16,32, 64") == ["16", "32", "64"], "list")
check(expand("4K..64K *2", True) == ["4K", "8K", "16K", "32K", "64K"], "byte range by factor keeps K")
check(expand("4K..1M *4", True) == ["4K", "16K", "64K", "256K", "1M"], "factor 4 up to 1M")
check(expand("1..10 +4") == ["1", "5", "9"], "step range stops before passing the end")
check(expand("1..3") == ["1", "2", "3"], "default step 1")
check(expand("10k..30k +10k") == ["10000", "20000", "30000"], "k is 1000 for a non-byte unit")
check(expand("1K..2K +512", True) == ["1K", "1536", "2K"], "byte step range")
check(expand("0..1 +0.25") == ["0", "0.25", "0.5", "0.75", "1"], "decimal range is exact")
check(expand("4, 16..32 *2") == ["4", "16", "32"], "lists and ranges mix")
check("ends below" in expand("8..4"), "reversed range rejected")
check("factor above 1" in expand("1..8 *1"), "factor 1 rejected")
check("step must be positive" in expand("1..8 +0"), "step 0 rejected")
check("non-integer" in expand("4..20 *1.5"), "integer range with fractional values rejected")
check("repeated" in expand("1, 2, 1"), "repeated value rejected")
check("t.ini:1" in expand("1..x"), "errors carry file:line")

info = sw.ParamInfo("p", "64", "entries", "1..1Mi")
check(sw.check_value(info, "1Mi", "w") is None, "1Mi in 1..1Mi")
check("out of range" in (sw.check_value(info, "2M", "w") or ""), "2M (2 000 000 entries) out of 1..1Mi")
check(sw.check_value(sw.ParamInfo("b", "4096", "bytes", "4096..1Gi"), "1G", "w") is None,
      "1G bytes = 1Gi")
check("boolean" in (sw.check_value(sw.ParamInfo("s", "false", "", "true/false"), "maybe", "w") or ""),
      "bool checked")

# Grid order and zipped axes, through the CLI (--list runs nothing).
spec = write_spec("""
[sweep]
config = platforms/broadwell-dmabench.ini workloads/dmabench-rd64-random.ini
[grid]
system.bench0.map.page_size = 4K, 2M
[zip.footprint]
system.bench0.window = 64K..256K *2
system.bench0.count = 1000, 2000, 4000
""")
r = run_sweep(root, iommusim, spec, "--list", check=0)
lines = [line.split(None, 1)[1] for line in r.stdout.splitlines()]
check(len(lines) == 6, f"2 x zip(3) = 6 points (got {len(lines)})")
check(lines[0] == "system.bench0.map.page_size=4K system.bench0.window=64K system.bench0.count=1000"
      and lines[5] == "system.bench0.map.page_size=2M system.bench0.window=256K system.bench0.count=4000",
      f"zipped values vary together, last axis fastest: {lines[0]!r} ... {lines[5]!r}")
names = [line.split()[0] for line in r.stdout.splitlines()]
r2 = run_sweep(root, iommusim, spec, "--list", check=0)
check(names == [line.split()[0] for line in r2.stdout.splitlines()], "point names are stable")

# Every problem together, with file:line, and nothing created.
bad = write_spec("""[sweep]
config = platforms/broadwell-dmabench.ini workloads/dmabench-rd64-random.ini
[set]
system.bench0.cuont = 5
[grid]
system.iommu0.iotlb.entrys = 16, 32
system.iommu0.iotlb.policy = lru, lfu
system.iommu0.walkers = 0..2
[zip.z]
system.bench0.size = 64, 128
system.bench0.count = 1..3
[bogus]
""")
out = os.path.join(tempfile.mkdtemp(prefix="iommusim-sweep-spec-"), "out")
r = run_sweep(root, iommusim, bad, "--out", out)
print(r.stderr)
check(r.returncode == 2, f"bad sweep file: exit status 2 (got {r.returncode})")
check(not os.path.exists(out), "nothing created or run")
check(f"{bad}:12: unknown section [bogus]" in r.stderr, "unknown section named with file:line")
bad2 = write_spec(open(bad).read().replace("[bogus]\n", ""))
r = run_sweep(root, iommusim, bad2, "--out", out)
print(r.stderr)
for want in (f"{bad2}:4: unknown parameter 'system.bench0.cuont'; closest: system.bench0.count",
             f"{bad2}:6: unknown parameter 'system.iommu0.iotlb.entrys'; closest: system.iommu0.iotlb.entries",
             f"{bad2}:7: system.iommu0.iotlb.policy: 'lfu' is not one of",
             f"{bad2}:8: system.iommu0.walkers: '0' is out of range (expected 1..1024)",
             f"{bad2}:10: [zip.z]: zipped axes need the same number of values"):
    check(want in r.stderr, f"reported: {want}")
check(r.returncode == 2 and not os.path.exists(out), "still nothing created")
for text, want in (("[grid]\nsystem.iommu0.walkers = 1\n", "needs 'config = PLATFORM.ini"),
                   ("[sweep]\nconfig = nosuch.ini\n", "file 'nosuch.ini' not found"),
                   ("[sweep]\nconfig = platforms/broadwell-dmabench.ini\nconfig = x\n", ":3: 'config' given twice"),
                   ("walkers = 1\n", ":1: 'walkers' is outside any section")):
    p = write_spec(text)
    r = run_sweep(root, iommusim, p, "--out", out)
    check(r.returncode == 2 and want in r.stderr, f"{text!r}: {want} (got {r.stderr.strip()!r})")
check.finish()
