"""The reduced validation (docs/validation.md): scripts/validate --quick runs the CI subset of
pcie-bench's calibration points and fails when one moved beyond its tolerance from
tests/validation/baseline.csv. Also checks validation.csv's shape, the error column, and that
the baseline check reports a moved point, a missing point and a malformed baseline.
Usage: validation.py IOMMUSIM SOURCE_ROOT"""
import csv
import os
import subprocess
import sys

from e2e_common import Check, tmpdir

iommusim, root = sys.argv[1], sys.argv[2]
tool = os.path.join(root, "scripts", "lib", "iommusim_validate.py")
check = Check()


def validate(*args):
    r = subprocess.run([sys.executable, tool, *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


out = tmpdir("validation-")
code, text = validate("run", "--iommusim", iommusim, "--out", out, "--quick", "--no-docs",
                      "--no-plots", "--jobs", "2", "-q")
print(text)
check(code == 0, f"scripts/validate --quick: every baseline point within tolerance (exit {code})")

with open(os.path.join(out, "validation.csv")) as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = [dict(zip(header, r)) for r in reader]
check(header == ["experiment", "point", "metric", "measured", "simulated", "error_pct"],
      f"validation.csv columns: {header}")
by = {(r["experiment"], r["point"], r["metric"]): r for r in rows}
four_k = by.get(("pciebench-rd64", "4K", "bandwidth_gbps"))
check(four_k is not None and four_k["measured"] == "26.8" and four_k["simulated"] != "",
      "64 B reads at 4 KiB: measured and simulated")
for r in rows:
    if r["measured"] and r["simulated"]:
        m, s, e = float(r["measured"]), float(r["simulated"]), float(r["error_pct"])
        # Both printed rounded: error_pct to 0.1, simulated to 0.01 (latencies to 1 ns).
        slack = 0.05 + 100 * (0.5 if r["metric"].endswith("_ns") else 0.005) / m + 1e-9
        check(abs(e - 100 * (s - m) / m) <= slack, f"{r['experiment']} {r['point']} "
              f"{r['metric']}: error_pct {e} = (simulated - measured) / measured")
    else:
        check(r["error_pct"] == "", f"{r['point']} {r['metric']}: no error without both values")
fs = [r for r in rows if r["experiment"] == "fs-rx-strict" and r["measured"]]
check(len(fs) == 6 and all(r["simulated"] and r["point"] == "flows=5" for r in fs),
      "F&S rows at 5 flows: measured and simulated")
noiommu = by.get(("pciebench-rd64-noiommu", "64M", "bandwidth_gbps"))
check(noiommu is not None and noiommu["simulated"] != "", "no-IOMMU point simulated")

# The check against a baseline: a point moved by 5 % fails a 3 % tolerance, one moved by 1 %
# passes; a point the run lacks fails; a malformed baseline is bad input with file:line.
csv_path = os.path.join(out, "validation.csv")
moved = float(four_k["simulated"]) * 1.05
near = float(noiommu["simulated"]) * 1.01
base = os.path.join(out, "baseline.csv")
with open(base, "w") as f:
    f.write("# perturbed\nexperiment,point,metric,simulated,tolerance_pct\n"
            f"pciebench-rd64,4K,bandwidth_gbps,{moved},3\n"
            f"pciebench-rd64-noiommu,64M,bandwidth_gbps,{near},3\n")
code, text = validate("check", csv_path, "--baseline", base)
print(text)
check(code == 1, f"a point 5 % off its baseline fails (exit {code})")
check("FAIL pciebench-rd64/4K/bandwidth_gbps" in text, "the failing point is named")
check("ok   pciebench-rd64-noiommu/64M/bandwidth_gbps" in text, "a point 1 % off passes")
with open(base, "a") as f:
    f.write("pciebench-rd64,32K,bandwidth_gbps,44,3\n")
code, text = validate("check", csv_path, "--baseline", base)
check(code == 1 and "FAIL pciebench-rd64/32K/bandwidth_gbps: not in this run" in text,
      "a baseline point the run lacks fails")
with open(base, "a") as f:
    f.write("pciebench-rd64,64M,bandwidth_gbps,fast,3\n")
code, text = validate("check", csv_path, "--baseline", base)
check(code == 2 and f"{base}:6: 'fast' is not a number" in text,
      f"malformed baseline: exit 2 with file:line ({text.strip()})")
check.finish()
