"""Captures made with four configurations, none the default of ../shared/traces (legacy or
scalable, strict, caching mode on, local clock, basic workload), each import with 0 errors and
the clock fit in the summary, and replay with every recorded translation checked and none wrong:
  scalable-tsc         scalable mode, trace_clock=x86-tsc (raw TSC counts; the importer fits
                       their rate from the qi_submit anchors)
  legacy-global-block  legacy mode, trace_clock=global, block:* events (skipped by the importer)
  lazy-cmoff-counter   --lazy with caching mode off (lazy really in effect: DMA-FQ domains),
                       trace_clock=counter
  scalable-aw48-heavy  scalable, aw-bits=48 with iommu.forcedac=1 (IOVAs above 2^39: only a
                       4-level walk reaches them), kprobes (domain and device of each map),
                       the heavy workload, --lazy that Linux 6.1 overrides (caching mode on:
                       strict), no tp_printk, gzip ftrace dump
Each capture's own properties are checked too. Exits 77 (skipped) when QEMU or the cloud kernel
is not installed, like capture_qemu.py. The captures run one after another (80-105 s on 2
cores on a busy machine); IOMMUSIM_CAPTURE_VARIANTS=NAME,... runs only those.
Usage: capture_variants.py [IOMMUSIM [SOURCE_ROOT]]"""
import ast
import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

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

for opts, message in ((["--trace-clock", "tai"], "--trace-clock must be"),
                      (["--events", "qi_submit"], "--events must be"),
                      (["--aw-bits", "57"], "--aw-bits must be 39 or 48"),
                      (["--dump", "zip"], "--dump must be text or gzip"),
                      (["--workload", "heavy", "--disk-size", "4M"], "at least 8M for the heavy workload")):
    r = subprocess.run([script] + opts, capture_output=True, text=True)
    check(r.returncode != 0 and message in r.stderr, f"{' '.join(opts)} rejected ({r.stderr.strip()})")

TRANSLATE = re.compile(r":vtd_dmar_translate dev (\S+) iova 0x([0-9a-f]+) -> gpa 0x([0-9a-f]+)")
KMAP = re.compile(r"^\s*.+?-(\d+)\s+\[.*: iommusim_map: \(__iommu_map\+0x0/0x[0-9a-f]+\) "
                  r"domain=0x([0-9a-f]+) iova=0x([0-9a-f]+) paddr=0x([0-9a-f]+) size=(\d+)$")
KUNMAP = re.compile(r"^\s*.+?-(\d+)\s+\[.*: iommusim_unmap: \(__iommu_unmap\+0x0/0x[0-9a-f]+\) "
                    r"domain=0x([0-9a-f]+) iova=0x([0-9a-f]+) size=(\d+)$")
MAP = re.compile(r"^\s*.+?-(\d+)\s+\[.*: map: IOMMU: iova=0x([0-9a-f]+) - 0x([0-9a-f]+) paddr=0x([0-9a-f]+) size=(\d+)")
UNMAP = re.compile(r"^\s*.+?-(\d+)\s+\[.*: unmap: IOMMU: iova=0x([0-9a-f]+) ")
ATTACH = re.compile(r": iommusim_attach: \(intel_iommu_attach_device\+0x0/0x[0-9a-f]+\) "
                    r"domain=0x([0-9a-f]+) dev=\"([^\"]*)\"$")
PCI_NAME = {"00:02.00": "0000:00:02.0", "00:03.00": "0000:00:03.0"}


def group_types(console):
    """IOMMU group type of each PCI device, from the init's DMACAP lines."""
    groups = dict(re.findall(r"DMACAP: pci (\S+) \S+ group=(\d+)", console))
    types = dict(re.findall(r"DMACAP: group (\d+) type=(\S+)", console))
    return {dev: types.get(g) for dev, g in groups.items()}


def check_tsc(name, guest, console, qemu):
    check(re.search(r"^\s*\S.*\s\d{6,}: map: IOMMU:", guest, re.M) is not None,
          f"{name}: guest timestamps are raw counts")


def check_block(name, guest, console, qemu):
    check(" block_rq_issue: " in guest and " block_rq_complete: " in guest,
          f"{name}: the guest traced block:block_rq_issue and block_rq_complete")


def check_lazy(name, guest, console, qemu):
    types = group_types(console)
    check(types.get("0000:00:02.0") == "DMA-FQ" and types.get("0000:00:03.0") == "DMA-FQ",
          f"{name}: lazy mode in effect, both disks in DMA-FQ groups ({types})")
    # Lazy: unmaps are flushed in batches, not one page-selective invalidation per unmap.
    unmaps = len(re.findall(r": unmap: IOMMU:", guest))
    page_invs = len(re.findall(r":vtd_inv_desc_iotlb_pages ", qemu))
    check(page_invs < unmaps, f"{name}: fewer page invalidations ({page_invs}) than unmaps ({unmaps})")


def check_heavy(name, guest, console, qemu):
    # aw-bits=48: the DMAR capability offers 48-bit (4-level) tables and the guest uses them:
    # with iommu.forcedac=1 it allocates IOVAs from 2^48 down, which a 3-level walk cannot reach.
    cap = re.search(r"DMACAP: dmar0 cap=([0-9a-f]+)", console)
    cap = int(cap.group(1), 16) if cap else 0
    check((cap >> 8) & 0x4 and (cap >> 16) & 0x3F == 47,
          f"{name}: DMAR cap offers 48-bit (4-level) tables (SAGAW {(cap >> 8) & 0x1F:#x}, MGAW {(cap >> 16) & 0x3F})")
    translations = TRANSLATE.findall(qemu)
    high = sum(1 for t in translations if int(t[1], 16) >= 1 << 39)
    check(high > 0.9 * len(translations), f"{name}: {high} of {len(translations)} IOVAs lie above 2^39 (4-level walks)")
    # --lazy is on the command line, yet caching mode makes 6.1 use strict mode.
    check("iommu.strict=0" in console and "IOMMU batching disallowed due to virtualization" in console,
          f"{name}: iommu.strict=0 given and overridden (batching disallowed)")
    types = group_types(console)
    check(types.get("0000:00:02.0") == "DMA" and types.get("0000:00:03.0") == "DMA",
          f"{name}: strict in effect, both disks in DMA (not DMA-FQ) groups ({types})")
    # The heavy workload: the random and concurrent reads ran; 1 MiB NVMe requests were split into
    # 512 KiB commands with PRP lists; a QEMU log of 100-250 k lines.
    check(len(re.findall(r"DMACAP: /dev/(nvme0n1|vda) (random reads|1 MiB reader|readback) OK", console)) == 6,
          f"{name}: random reads, 1 MiB reader and 1 MiB read-back OK on both disks")
    prp_lists = len(re.findall(r":pci_nvme_map_prp trans_len \d+ len \d+ prp1 \S+ prp2 \S+ "
                               r"num_prps (?:[3-9]|\d\d+)\b", qemu))
    big = len(re.findall(r":pci_nvme_(?:read|write) .* count (?:[5-9]\d|\d{3})\d{4} ", qemu))
    check(prp_lists >= 20 and big >= 20 and ":pci_nvme_map_sgl " not in qemu,
          f"{name}: {big} NVMe commands of 500 KiB or more, {prp_lists} with PRP lists, no SGLs")
    lines = qemu.count("\n")
    check(100_000 <= lines <= 250_000, f"{name}: {lines} QEMU log lines (100-250 k)")
    # The kprobes: each iommu:map/unmap has its kprobe hit in the same task with the same values
    # (no hit missed), both disks' attaches were caught at boot, and every translation lies in a
    # mapping of the domain attached to its device, so the domain pointers are consistent.
    attach, pending, maps, unpaired = {}, {}, [], 0
    for line in guest.splitlines():
        line = line.rstrip("\r")
        m = ATTACH.search(line)
        if m:
            attach[m.group(2)] = m.group(1)
            continue
        m = KMAP.match(line) or KUNMAP.match(line)
        if m:
            pending[m.group(1)] = m.groups()[1:]
            continue
        m = MAP.match(line)
        if m:
            k = pending.pop(m.group(1), None)
            if k is None or len(k) != 4 or (int(k[1], 16), int(k[2], 16), k[3]) != (
                    int(m.group(2), 16), int(m.group(4), 16), m.group(5)):
                unpaired += 1
            else:
                maps.append((k[0], int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)))
            continue
        m = UNMAP.match(line)
        if m:
            k = pending.pop(m.group(1), None)
            unpaired += k is None or len(k) != 3 or int(k[1], 16) != int(m.group(2), 16)
    check(unpaired == 0 and maps,
          f"{name}: {len(maps)} maps and every unmap paired with their kprobe hits ({unpaired} not)")
    check(set(PCI_NAME.values()) <= set(attach), f"{name}: attaches of both disks recorded ({sorted(attach)})")
    by_domain = collections.defaultdict(list)
    for dom, lo, hi, pa in maps:
        by_domain[dom].append((lo, hi, pa))
    outside = [t for t in translations
               if not any(lo <= int(t[1], 16) < hi and int(t[2], 16) == pa + int(t[1], 16) - lo
                          for lo, hi, pa in by_domain[attach.get(PCI_NAME.get(t[0]))])]
    check(not outside, f"{name}: {len(outside)} of {len(translations)} translations lie in no map of their "
          f"device's attached domain, e.g. {outside[:3]}")


GUEST_SECONDS = r"rate a = [0-9.]+ guest s per QEMU s"
CONFIGS = [
    ("scalable-tsc", ["--mode", "scalable", "--trace-clock", "x86-tsc"],
     r"rate [0-9.]+ MHz of guest counts", check_tsc),
    ("legacy-global-block", ["--mode", "legacy", "--trace-clock", "global", "--events",
                             "intel_iommu:qi_submit,block:block_rq_issue,block:block_rq_complete"],
     GUEST_SECONDS, check_block),
    ("lazy-cmoff-counter", ["--lazy", "--caching-mode", "off", "--trace-clock", "counter"],
     r"rate [0-9.]+ MHz of guest counts", check_lazy),
    ("scalable-aw48-heavy", ["--mode", "scalable", "--aw-bits", "48", "--append", "iommu.forcedac=1",
                             "--kprobes", "--workload", "heavy", "--lazy", "--no-tp-printk", "--dump", "gzip"],
     GUEST_SECONDS, check_heavy),
]


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


# IOMMUSIM_CAPTURE_VARIANTS=NAME[,NAME...] runs only those (when working on one).
only = [v for v in os.environ.get("IOMMUSIM_CAPTURE_VARIANTS", "").split(",") if v]
unknown = set(only) - {c[0] for c in CONFIGS}
check(not unknown, f"IOMMUSIM_CAPTURE_VARIANTS names no configuration {sorted(unknown)}")
for name, opts, rate, check_capture in CONFIGS:
    if only and name not in only:
        continue
    out = tmpdir(f"capture-{name}-")
    cmd = [script, "--no-install", "--no-import", "--timeout", str(TIMEOUT), "--out", out] + opts
    start = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT + 120)
    except subprocess.TimeoutExpired:
        check(False, f"{name}: capture-qemu-trace did not return within {TIMEOUT + 120}s")
        continue
    check(r.returncode == 0, f"{name}: capture-qemu-trace exited {r.returncode}:\n{r.stdout}{r.stderr}")
    if r.returncode != 0:
        continue
    print(f"{name}: captured in {time.monotonic() - start:.1f} s")
    qemu_log, guest_log = os.path.join(out, "qemu-trace.log"), os.path.join(out, "guest-ftrace.log")
    qemu, guest, console = read(qemu_log), read(guest_log), read(os.path.join(out, "console.log"))
    translations = qemu.count(":vtd_dmar_translate ")
    check(" qi_submit: " in guest, f"{name}: the guest traced intel_iommu:qi_submit")
    check_capture(name, guest, console, qemu)
    trace = os.path.join(out, "run.trace")
    start = time.monotonic()
    im = subprocess.run([iommusim, "import", "qemu-vtd", qemu_log, guest_log, "-o", trace],
                        capture_output=True, text=True)
    took = time.monotonic() - start
    summary = im.stdout + im.stderr
    check(im.returncode == 0 and ", 0 errors" in summary, f"{name}: imports with 0 errors:\n{summary[-1500:]}")
    fit = re.search(r"clock fit: .*", summary)
    check(fit is not None and re.search(rate, fit.group(0)) and "error bound" in fit.group(0),
          f"{name}: the summary shows the fitted rate and error bound ({fit.group(0) if fit else summary[-600:]})")
    print(f"{name}: {qemu.count(chr(10))} QEMU log lines imported in {took:.2f} s; "
          f"{fit.group(0) if fit else 'no clock fit'}")
    rout = os.path.join(out, "replay")
    rr = subprocess.run([iommusim, "replay", trace, "-q", "--out", rout], capture_output=True, text=True)
    stats = os.path.join(rout, "stats.json")
    rp = json.load(open(stats))["system"]["replay"] if os.path.isfile(stats) else {}
    check(rr.returncode == 0 and rp.get("mismatches") == 0 and rp.get("translations_checked") == translations,
          f"{name}: replay checks all {translations} translations, none wrong "
          f"({rp.get('translations_checked')} checked, {rp.get('mismatches')} mismatches; {rr.stderr.strip()[-300:]})")

check.finish()
