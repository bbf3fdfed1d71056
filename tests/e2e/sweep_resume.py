"""scripts/sweep is resumable: a 6-point sweep SIGKILLed midway (the whole process group)
and started again reruns only the unfinished points, keeps the finished ones untouched and
ends with 6 rows; Ctrl-C stops cleanly; a failing point is recorded and the sweep goes on.
Usage: sweep_resume.py IOMMUSIM SOURCE_ROOT"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from e2e_common import Check
from sweep_helpers import finished, rows, run_sweep, sweep_cmd, tmp_dirs, write_spec

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
# About 0.4 s a point in a release build; the sanitizer pass scales it down.
count = max(20000, int(200000 * float(os.environ.get("IOMMUSIM_PROPERTY_SCALE", "1"))))
spec = write_spec(f"""
[sweep]
config = platforms/broadwell-dmabench.ini workloads/dmabench-rd64-random.ini
[set]
system.bench0.window = 1M
system.bench0.count = {count}
[grid]
system.iommu0.iotlb.entries = 32..1024 *2
""")
out = tempfile.mkdtemp(prefix="iommusim-sweep-resume-")


def stamp(out, name):
    st = os.stat(os.path.join(out, "points", name, "stats.json"))
    return (st.st_ino, st.st_mtime_ns)


# 1. Kill -9 the sweep's process group (the sweep and its running iommusim) midway.
proc = subprocess.Popen(sweep_cmd(root, spec, "--out", out, "--jobs", "1", "--iommusim", iommusim),
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
deadline = time.monotonic() + 120
while len(finished(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
    time.sleep(0.02)
os.killpg(proc.pid, signal.SIGKILL)
proc.wait()
before = finished(out)
check(2 <= len(before) < 6, f"killed midway: {len(before)} of 6 points finished (want 2..5)")
stamps = {n: stamp(out, n) for n in before}
for n in before:
    with open(os.path.join(out, "points", n, "point.json")) as f:
        check(json.load(f)["status"] == "done", f"{n}: point.json says done")
    check(os.path.exists(os.path.join(out, "points", n, "cmd.txt")), f"{n}: has its command line")

# 2. Resume: only the unfinished points run; the finished ones are not touched.
r = run_sweep(root, iommusim, spec, "--out", out, "--jobs", "1")
print(r.stdout + r.stderr)
check(r.returncode == 0, f"resumed sweep exits 0 (got {r.returncode})")
check(f"{len(before)} already done, running {6 - len(before)}" in r.stderr,
      "the resumed sweep reruns only the unfinished points")
check(all(stamp(out, n) == stamps[n] for n in before), "finished points are left untouched")
res = rows(out)
check(len(res) == 6, f"results.csv has 6 rows (got {len(res)})")
check(all(x["status"] == "done" for x in res), "every row is done")
check([x["system.iommu0.iotlb.entries"] for x in res] == ["32", "64", "128", "256", "512", "1024"],
      "rows in grid order with the swept values")
rates = [float(x["system.iommu0.iotlb.hit_rate"]) for x in res]
check(rates == sorted(rates) and rates[-1] > 95, f"hit rate grows with entries: {rates}")
check(not tmp_dirs(out), f"no temporary directories left: {tmp_dirs(out)}")

# 3. Again: nothing to do.
r = run_sweep(root, iommusim, spec, "--out", out, "--jobs", "2")
check(r.returncode == 0 and "6 already done, running 0" in r.stderr, "a complete sweep reruns nothing")

# 4. Ctrl-C (SIGINT to the process group, as a terminal does): exit 130, finished kept.
out2 = tempfile.mkdtemp(prefix="iommusim-sweep-int-")
proc = subprocess.Popen(sweep_cmd(root, spec, "--out", out2, "--jobs", "2", "--iommusim", iommusim),
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        start_new_session=True)
deadline = time.monotonic() + 120
while len(finished(out2)) < 1 and time.monotonic() < deadline and proc.poll() is None:
    time.sleep(0.02)
os.killpg(proc.pid, signal.SIGINT)
text, _ = proc.communicate(timeout=60)
n = len(finished(out2))
check(proc.returncode == 130 or n == 6, f"Ctrl-C: exit status 130 (got {proc.returncode})")
check("interrupted" in text or n == 6, "Ctrl-C: says it was interrupted")
check(not tmp_dirs(out2), f"Ctrl-C: no temporary directories left: {tmp_dirs(out2)}")
check(len(rows(out2)) == n, f"Ctrl-C: results.csv lists the {n} finished points")

# 5. A point that fails is recorded with its error, the others run; the rerun retries it.
bad = write_spec("""
[sweep]
config = platforms/broadwell-dmabench.ini workloads/dmabench-rd64-random.ini
[set]
system.bench0.count = 2000
[grid]
system.bench0.link.lanes = 4, 3, 8
""")
out3 = tempfile.mkdtemp(prefix="iommusim-sweep-fail-")
r = run_sweep(root, iommusim, bad, "--out", out3, "-q")
print(r.stdout + r.stderr)
check(r.returncode == 1, f"a failed point: exit status 1 (got {r.returncode})")
check("failed p0001" in r.stdout and "lanes = 3" in r.stdout, "the summary lists the failure and its error")
res = rows(out3)
check([x["status"] for x in res] == ["done", "failed", "done"], f"rows: done, failed, done")
check(os.path.exists(os.path.join(out3, "failed", res[1]["point"], "log.txt")), "the failure keeps its log")
r = run_sweep(root, iommusim, bad, "--out", out3)
check("2 already done, running 1" in r.stderr, "a rerun retries only the failed point")
if not check.failed:
    for d in (out, out2, out3):
        shutil.rmtree(d, ignore_errors=True)
check.finish()
