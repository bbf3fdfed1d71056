"""scripts/plot draws a sweep: line plots, a heat map, a latency CDF and an HTML gallery.
Checks the PNGs exist, are images of real size with many colours (not blank), and that the
gallery lists them with the sweep file. Skipped (77) without matplotlib.
Usage: plot_gallery.py IOMMUSIM SOURCE_ROOT"""
import os
import shutil
import subprocess
import sys
import tempfile

from e2e_common import Check
from sweep_helpers import SKIP, run_sweep, write_spec

iommusim, root = sys.argv[1], sys.argv[2]
py = None
for cand in (sys.executable, "/usr/bin/python3"):
    if os.path.exists(cand) and subprocess.run([cand, "-c", "import matplotlib"], capture_output=True).returncode == 0:
        py = cand
        break
if not py:
    print("matplotlib is not installed: skipped")
    sys.exit(SKIP)
check = Check()
spec = write_spec("""
[sweep]
name = plot-test
description = hit rate and bandwidth against IOTLB entries
config = platforms/broadwell-dmabench.ini workloads/dmabench-rd64-random.ini
[set]
system.bench0.window = 1M
system.bench0.count = 5000
[grid]
system.bench0.map.page_size = 4K, 2M
system.iommu0.iotlb.entries = 16..256 *4
""")
out = tempfile.mkdtemp(prefix="iommusim-plot-")
run_sweep(root, iommusim, spec, "--out", out, "-q", check=0)
r = subprocess.run([py, os.path.join(root, "scripts", "plot"), out], capture_output=True, text=True)
print(r.stdout + r.stderr)
check(r.returncode == 0, f"scripts/plot exits 0 (got {r.returncode})")
plots = os.path.join(out, "plots")
pngs = sorted(f for f in os.listdir(plots) if f.endswith(".png")) if os.path.isdir(plots) else []
want = ["cdf-bench0_latency.png", "heatmap-iommu0_iotlb_hit_rate.png", "line-bench0_bandwidth.png",
        "line-bench0_latency_mean.png", "line-iommu0_iotlb_hit_rate.png", "line-iommu0_latency_mean.png"]
check(pngs == want, f"the expected plots: {pngs}")
# Pixel statistics in the python that has matplotlib: size and number of distinct colours.
probe = """
import sys, matplotlib.image as im
for p in sys.argv[1:]:
    a = im.imread(p)
    colours = len({tuple(px) for row in a[::3] for px in row[::3]})
    print(p, a.shape[1], a.shape[0], colours)
"""
r = subprocess.run([py, "-c", probe, *[os.path.join(plots, p) for p in pngs]], capture_output=True, text=True)
for line in r.stdout.splitlines():
    path, w, h, colours = line.rsplit(" ", 3)
    name = os.path.basename(path)
    check(int(w) >= 500 and int(h) >= 300, f"{name}: {w}x{h} pixels")
    check(int(colours) >= 50, f"{name}: {colours} colours (not blank)")
    check(os.path.getsize(path) > 15000, f"{name}: {os.path.getsize(path)} bytes")
with open(os.path.join(plots, "index.html")) as f:
    page = f.read()
check(all(f'src="{p}"' in page for p in pngs), "the gallery shows every plot")
check("system.iommu0.iotlb.entries = 16..256 *4" in page, "the gallery shows the sweep file")
check('href="../results.csv"' in page and "6 of 6 points" in page, "the gallery links results.csv")
r = subprocess.run([py, os.path.join(root, "scripts", "plot"), out, "--metrics", "nosuch"],
                   capture_output=True, text=True)
check(r.returncode == 2 and "no column nosuch" in r.stderr, "an unknown metric is an error naming it")
if not check.failed:
    shutil.rmtree(out, ignore_errors=True)
check.finish()
