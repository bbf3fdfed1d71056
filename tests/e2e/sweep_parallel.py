"""scripts/sweep --emit parallel writes a GNU parallel job list of the unfinished points;
running it with parallel and merging gives the same results as a local sweep.
Skipped (77) when GNU parallel is not installed. Usage: sweep_parallel.py IOMMUSIM SOURCE_ROOT"""
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile

from e2e_common import Check
from sweep_helpers import SKIP, finished, rows, run_sweep, write_spec

iommusim, root = sys.argv[1], sys.argv[2]
parallel = shutil.which("parallel")
if not parallel or "GNU parallel" not in subprocess.run([parallel, "--version"], capture_output=True,
                                                        text=True).stdout:
    print("GNU parallel is not installed: skipped")
    sys.exit(SKIP)
check = Check()
spec = write_spec("""
[sweep]
config = platforms/broadwell-dmabench.ini workloads/dmabench-rd64-random.ini
[set]
system.bench0.count = 5000
system.bench0.window = 1M
[grid]
system.iommu0.iotlb.entries = 64, 256
system.bench0.map.page_size = 4K, 2M
""")
out = tempfile.mkdtemp(prefix="iommusim-sweep-par-")
r = run_sweep(root, iommusim, spec, "--out", out, "--emit", "parallel", check=0)
jobs = os.path.join(out, "jobs.txt")
with open(jobs) as f:
    lines = f.read().splitlines()
check(len(lines) == 4, f"4 jobs (got {len(lines)})")
check(not finished(out), "emitting runs nothing")
# One point done beforehand (as by an earlier, partial run) is left out of a new list.
subprocess.run(lines[0].split(), check=True, capture_output=True)
run_sweep(root, iommusim, spec, "--out", out, "--emit", "parallel", check=0)
with open(jobs) as f:
    lines = f.read().splitlines()
check(len(lines) == 3, f"a finished point is left out: 3 jobs (got {len(lines)})")
p = subprocess.run([parallel, "--will-cite", "--jobs", "2", "--joblog", os.path.join(out, "joblog")],
                   stdin=open(jobs), capture_output=True, text=True, timeout=120)
check(p.returncode == 0, f"parallel ran every job (exit {p.returncode}): {p.stderr[-500:]}")
r = run_sweep(root, iommusim, "--merge", out)
print(r.stdout)
check(r.returncode == 0 and "4 of 4 points done" in r.stdout, "merge: 4 of 4 done")
res = rows(out)
check(len(res) == 4 and all(x["status"] == "done" for x in res), "results.csv has 4 done rows")
# The same sweep run locally gives the same results.csv.
local = tempfile.mkdtemp(prefix="iommusim-sweep-local-")
run_sweep(root, iommusim, spec, "--out", local, "-q", check=0)
check(filecmp.cmp(os.path.join(out, "results.csv"), os.path.join(local, "results.csv"), shallow=False),
      "results.csv identical to a local run's")
if not check.failed:
    for d in (out, local):
        shutil.rmtree(d, ignore_errors=True)
check.finish()
