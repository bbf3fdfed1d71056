"""Bad input to `iommusim run` gives a clear error naming file, line and what was expected,
exit status 2, and no crash. Usage: cli_errors.py IOMMUSIM SOURCE_ROOT"""
import os
import subprocess
import sys
import tempfile

from e2e_common import Check

iommusim, root = sys.argv[1], sys.argv[2]
platform = os.path.join(root, "platforms/broadwell-dmabench.ini")
workload = os.path.join(root, "workloads/dmabench-rd64-random.ini")
check = Check()


def run(*args):
    r = subprocess.run([iommusim, "run", "-q", "--out", tempfile.mkdtemp(), *args],
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


bad = os.path.join(tempfile.mkdtemp(), "bad.ini")
with open(bad, "w") as f:
    f.write("[system.iommu0]\niotlb.entires = 32\niotlb.ways = lots\n")
rc, out = run("-c", platform, "-c", workload, "-c", bad)
check(rc == 2, f"bad file: exit 2 (got {rc})")
check(f"{bad}:2" in out and "iotlb.entries" in out, "unknown key named with file:line and the closest key")
check(f"{bad}:3" in out, "bad value named with file:line")
rc, out = run("-c", platform, "-c", workload, "--set", "system.bench0.size=0")
check(rc == 2 and "system.bench0.size" in out, "out-of-range --set value rejected")
rc, out = run("-c", os.path.join(root, "no-such.ini"))
check(rc == 2 and "no-such.ini" in out, "missing file named")
rc, out = run("-c", platform, "-c", workload, "--set", "system.bench0.count=2000")
check(rc == 0 and "IOTLB hit rate" in out, "a good run prints the summary")
# Ctrl-C: the statistics gathered so far are written, and the run says it was interrupted.
import json
import signal
import time
out = tempfile.mkdtemp()
proc = subprocess.Popen([iommusim, "run", "-q", "--out", out, "-c", platform, "-c", workload,
                         "--set", "system.bench0.count=1000000000"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(1.5)
proc.send_signal(signal.SIGINT)
stdout, _ = proc.communicate(timeout=60)
check(proc.returncode == 130, f"interrupted run exits 130 (got {proc.returncode})")
check("interrupted" in stdout, "the summary says the run was interrupted")
with open(os.path.join(out, "stats.json")) as f:
    stats = json.load(f)
check(stats["run"]["interrupted"] == "true" and stats["system"]["bench0"]["engine"]["pieces"] > 0,
      "stats.json holds the statistics so far")
check.finish()
