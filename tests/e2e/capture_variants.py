"""Captures made with configurations other than the default import with every translation
explained and replay with every recorded translation checked and none wrong: scalable mode with
trace_clock=x86-tsc (raw TSC counts: the importer fits their rate from the qi_submit anchors)
and legacy mode with trace_clock=global plus block:* events (unknown to the importer: skipped).
The import summary must show the clock fit. Exits 77 (skipped) when QEMU or the cloud kernel is
not installed, like capture_qemu.py. Usage: capture_variants.py [IOMMUSIM [SOURCE_ROOT]]"""
import ast
import glob
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import Check, skip, tmpdir

iommusim = sys.argv[1] if len(sys.argv) > 1 else ""
root = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../.."))
script = os.path.join(root, "scripts/capture-qemu-trace")
TIMEOUT = int(os.environ.get("IOMMUSIM_CAPTURE_TIMEOUT", "240"))
if not iommusim or not os.access(iommusim, os.X_OK):
    print(f"FAILED: no iommusim binary given ({iommusim!r})")
    print("0 passed, 1 failed")
    sys.exit(1)

# The same prerequisites as capture_qemu.py: its missing_prerequisite() alone (importing the
# module would run that test).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "capture_qemu.py")) as f:
    tree = ast.parse(f.read())
fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "missing_prerequisite"]
scope = {"glob": glob, "os": os, "shutil": shutil, "subprocess": subprocess}
exec(compile(ast.Module(body=fn, type_ignores=[]), "capture_qemu.py", "exec"), scope)
why = scope["missing_prerequisite"]()
if why:
    skip(why)

check = Check()

r = subprocess.run([script, "--trace-clock", "tai"], capture_output=True, text=True)
check(r.returncode != 0 and "--trace-clock must be" in r.stderr, f"--trace-clock tai rejected ({r.stderr.strip()})")
r = subprocess.run([script, "--events", "qi_submit"], capture_output=True, text=True)
check(r.returncode != 0 and "--events must be" in r.stderr, f"--events without a subsystem rejected ({r.stderr.strip()})")

CONFIGS = [
    ("scalable-tsc", ["--mode", "scalable", "--trace-clock", "x86-tsc"], r"rate [0-9.]+ MHz of guest counts"),
    ("legacy-global-block", ["--mode", "legacy", "--trace-clock", "global", "--events",
                             "intel_iommu:qi_submit,block:block_rq_issue,block:block_rq_complete"],
     r"rate a = [0-9.]+ guest s per QEMU s"),
]

for name, opts, rate in CONFIGS:
    out = tmpdir(f"capture-{name}-")
    cmd = [script, "--no-install", "--no-import", "--timeout", str(TIMEOUT), "--out", out] + opts
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT + 120)
    except subprocess.TimeoutExpired:
        check(False, f"{name}: capture-qemu-trace did not return within {TIMEOUT + 120}s")
        continue
    check(r.returncode == 0, f"{name}: capture-qemu-trace exited {r.returncode}:\n{r.stdout}{r.stderr}")
    if r.returncode != 0:
        continue
    qemu, guest = os.path.join(out, "qemu-trace.log"), os.path.join(out, "guest-ftrace.log")
    with open(qemu, errors="replace") as f:
        translations = sum(1 for line in f if ":vtd_dmar_translate " in line)
    with open(guest, errors="replace") as f:
        text = f.read()
    check(" qi_submit: " in text, f"{name}: the guest traced intel_iommu:qi_submit")
    if "tsc" in name:
        check(re.search(r"^\s*\S.*\s\d{6,}: map: IOMMU:", text, re.M) is not None,
              f"{name}: guest timestamps are raw counts")
    else:
        check(" block_rq_issue: " in text, f"{name}: the guest traced block:block_rq_issue")
    trace = os.path.join(out, "run.trace")
    im = subprocess.run([iommusim, "import", "qemu-vtd", qemu, guest, "-o", trace], capture_output=True, text=True)
    summary = im.stdout + im.stderr
    check(im.returncode == 0 and ", 0 errors" in summary, f"{name}: imports with 0 errors:\n{summary[-1500:]}")
    fit = re.search(r"clock fit: .*", summary)
    check(fit is not None and re.search(rate, fit.group(0)) and "error bound" in fit.group(0),
          f"{name}: the summary shows the fitted rate and error bound ({fit.group(0) if fit else summary[-600:]})")
    if fit:
        print(f"{name}: {fit.group(0)}")
    rout = os.path.join(out, "replay")
    rr = subprocess.run([iommusim, "replay", trace, "-q", "--out", rout], capture_output=True, text=True)
    stats = os.path.join(rout, "stats.json")
    rp = json.load(open(stats))["system"]["replay"] if os.path.isfile(stats) else {}
    check(rr.returncode == 0 and rp.get("mismatches") == 0 and rp.get("translations_checked") == translations,
          f"{name}: replay checks all {translations} translations, none wrong "
          f"({rp.get('translations_checked')} checked, {rp.get('mismatches')} mismatches; {rr.stderr.strip()[-300:]})")

check.finish()
