"""The regression comparison: every reference run matches its golden statistics; the same
inputs give byte-identical stats.json across two runs and across --jobs; a perturbed golden
fails with a table naming the statistic, the change and the tolerance; --update rewrites
the goldens and shows the diff. Usage: regress_check.py IOMMUSIM SOURCE_ROOT"""
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile

from e2e_common import Check

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
regress = [sys.executable, os.path.join(root, "scripts", "regress"), "--iommusim", iommusim]
golden_dir = os.path.join(root, "tests", "regression", "golden")


def run(*args):
    r = subprocess.run(regress + list(args), capture_output=True, text=True, timeout=900)
    return r.returncode, r.stdout + r.stderr


# 1. Against the checked-in goldens, one run at a time; then again two at a time.
tmp = tempfile.mkdtemp(prefix="iommusim-regress-")
a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
rc, out = run("--jobs", "1", "--keep", a)
print(out)
check(rc == 0, f"the reference runs match their goldens (exit {rc})")
rc2, _ = run("--jobs", "2", "--keep", b)
check(rc2 == rc, "the second run (--jobs 2) agrees")
names = sorted(os.listdir(a))
check(len(names) >= 6, f"at least the six platform runs: {names}")
for n in names:
    same = filecmp.cmp(os.path.join(a, n, "stats.json"), os.path.join(b, n, "stats.json"), shallow=False)
    check(same, f"{n}: stats.json byte-identical across two runs and --jobs 1 / 2")

# 2. A perturbed golden: an exact count +1, a latency within its tolerance, a bandwidth 10 %
# off, a statistic the run no longer has.
g = os.path.join(tmp, "golden")
shutil.copytree(golden_dir, g)
path = os.path.join(g, "broadwell-dmabench.json")
with open(path) as f:
    doc = json.load(f)
s = doc["stats"]
s["system.iommu0.translations"] += 1
s["system.bench0.latency.mean"] = round(s["system.bench0.latency.mean"] * 1.005, 3)
s["system.bench0.bandwidth"] = int(s["system.bench0.bandwidth"] * 1.1)
s["system.iommu0.gone"] = 7
with open(path, "w") as f:
    json.dump(doc, f, indent=1)
rc, out = run("--goldens", g, "--only", "broadwell-dmabench")
print(out)
check(rc == 1, f"a perturbed golden fails (exit {rc})")
lines = out.splitlines()
check(lines and lines[0].split() == ["run", "statistic", "golden", "now", "change", "tolerance", "verdict"],
      "a table with its header")


def row(stat):
    return next((ln for ln in lines if f" {stat} " in ln), "")


check("-1 (" in row("system.iommu0.translations") and "exact" in row("system.iommu0.translations")
      and row("system.iommu0.translations").endswith("FAIL"), "translations: -1 against exact: FAIL")
check("rel 2%" in row("system.bench0.latency.mean") and row("system.bench0.latency.mean").endswith("ok"),
      "latency moved 0.5 %, within rel 2 %: ok")
check("rel 1%" in row("system.bench0.bandwidth") and "%)" in row("system.bench0.bandwidth")
      and row("system.bench0.bandwidth").endswith("FAIL"), "bandwidth 10 % off, beyond rel 1 %: FAIL")
check("missing" in row("system.iommu0.gone"), "a statistic the run lost is reported missing")
check(any("3 outside tolerance, 1 moved within tolerance" in ln for ln in lines), "summary counts")

# 3. --update rewrites the perturbed golden and shows what changed; then it passes.
rc, out = run("--goldens", g, "--only", "broadwell-dmabench", "--update")
print(out)
check(rc == 0 and "updated 1 of 1 goldens" in out, "--update rewrites the golden")
check("-  \"system.iommu0.gone\": 7" in out and "+  \"system.iommu0.translations\"" in out,
      "--update shows the diff")
check(filecmp.cmp(path, os.path.join(golden_dir, "broadwell-dmabench.json"), shallow=False),
      "the rewritten golden equals the checked-in one")
rc, out = run("--goldens", g, "--only", "broadwell-dmabench")
check(rc == 0, "after --update the comparison passes")
if not check.failed:
    shutil.rmtree(tmp, ignore_errors=True)
check.finish()
