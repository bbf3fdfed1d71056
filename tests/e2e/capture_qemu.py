"""scripts/capture-qemu-trace records real guest DMA: when QEMU and a Debian cloud kernel are
installed (this test never installs them), capture in legacy and scalable VT-d mode into a temp
dir and check the recording: console, QEMU trace with vtd_dmar_translate events for both disks,
guest ftrace with iommu map events, every translation inside a guest mapping, the workload's
read-back verified. Otherwise print "skipped: ..." and exit 77 (ctest reports it skipped).
Usage: capture_qemu.py [IOMMUSIM [SOURCE_ROOT]]"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

from e2e_common import Check, skip, tmpdir

iommusim = sys.argv[1] if len(sys.argv) > 1 else ""
root = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../.."))
script = os.path.join(root, "scripts/capture-qemu-trace")
if not os.access(script, os.X_OK):
    print(f"FAILED: {script} is missing or not executable (is SOURCE_ROOT right?)")
    print("0 passed, 1 failed")
    sys.exit(1)
TIMEOUT = int(os.environ.get("IOMMUSIM_CAPTURE_TIMEOUT", "240"))


def missing_prerequisite():
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
    kernels = [k for k in glob.glob("/boot/vmlinuz-*-cloud-amd64")
               if os.path.isdir("/lib/modules/" + os.path.basename(k)[len("vmlinuz-"):])]
    if not kernels:
        return "no Debian cloud kernel with modules (/boot/vmlinuz-*-cloud-amd64, package linux-image-cloud-amd64)"
    if not any(os.access(k, os.R_OK) for k in kernels):
        return "the cloud kernel in /boot is not readable by this user"
    if not os.access("/bin/busybox", os.X_OK):
        return "busybox is not installed (Debian package busybox-static)"
    if subprocess.run(["ldd", "/bin/busybox"], capture_output=True).returncode == 0:
        return "/bin/busybox is dynamically linked (Debian package busybox-static)"
    for tool in ("cpio", "timeout"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if shutil.which("modprobe") is None and not os.access("/sbin/modprobe", os.X_OK):
        return "modprobe is not installed (Debian package kmod)"
    return None


why = missing_prerequisite()
if why:
    skip(why)

check = Check()

# Bad options fail at once with a clear message.
r = subprocess.run([script, "--mode", "bogus"], capture_output=True, text=True)
check(r.returncode != 0 and "--mode must be legacy or scalable" in r.stderr,
      f"--mode bogus rejected (rc {r.returncode}: {r.stderr.strip()})")

MAP = re.compile(r": map: IOMMU: iova=0x([0-9a-f]+) - 0x([0-9a-f]+) paddr=0x([0-9a-f]+)")
TRANSLATE = re.compile(r":vtd_dmar_translate dev (\S+) iova 0x([0-9a-f]+) -> gpa 0x([0-9a-f]+)")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


for mode in ("legacy", "scalable"):
    out = tmpdir(f"capture-{mode}-")
    cmd = [script, "--no-install", "--mode", mode, "--timeout", str(TIMEOUT), "--out", out]
    cmd += ["--iommusim", iommusim] if iommusim else ["--no-import"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT + 120)
    except subprocess.TimeoutExpired:
        check(False, f"{mode}: capture-qemu-trace did not return within {TIMEOUT + 120}s")
        continue
    check(r.returncode == 0, f"{mode}: capture-qemu-trace exited {r.returncode}:\n{r.stdout}{r.stderr}")
    files = {name: os.path.join(out, name) for name in ("qemu-trace.log", "guest-ftrace.log", "console.log")}
    for name, path in files.items():
        check(os.path.isfile(path) and os.path.getsize(path) > 0, f"{mode}: {name} exists and is not empty")
    if not all(os.path.isfile(p) for p in files.values()):
        continue
    qemu, ftrace, console = (read(files[n]) for n in ("qemu-trace.log", "guest-ftrace.log", "console.log"))
    translations = TRANSLATE.findall(qemu)
    maps = MAP.findall(ftrace)
    check(len(translations) > 0, f"{mode}: qemu-trace.log has vtd_dmar_translate lines")
    devices = {t[0] for t in translations}
    check({"00:02.00", "00:03.00"} <= devices, f"{mode}: translations for NVMe and virtio-blk (got {sorted(devices)})")
    check(len(maps) > 0, f"{mode}: guest-ftrace.log has iommu map events")
    check("DMACAP: /dev/nvme0n1 readback OK" in console and "DMACAP: /dev/vda readback OK" in console,
          f"{mode}: the guest verified its direct-I/O read-back on both disks")
    check("DMACAP: status ok" in console, f"{mode}: the guest workload finished without failures")
    # Every IOVA->GPA translation QEMU did lies in some mapping the guest made (ignoring time).
    ranges = [(int(a, 16), int(b, 16), int(p, 16)) for a, b, p in maps]
    stray = [t for t in translations
             if not any(lo <= int(t[1], 16) < hi and int(t[2], 16) == pa + int(t[1], 16) - lo
                        for lo, hi, pa in ranges)]
    check(not stray, f"{mode}: {len(stray)} of {len(translations)} translations match no guest map, e.g. {stray[:3]}")
    imported = re.search(r"^  import: (.*)$", r.stdout, re.M)
    check(imported is not None, f"{mode}: the summary says what happened to the import")
    if imported and not imported.group(1).startswith("skipped"):
        path = os.path.join(out, "run.trace")
        check(os.path.isfile(path) and os.path.getsize(path) > 0, f"{mode}: run.trace imported")
        # The fresh recording replays through the platform with every translation right.
        rout = os.path.join(out, "replay")
        rr = subprocess.run([iommusim, "replay", path, "-q", "--out", rout], capture_output=True, text=True)
        stats = os.path.join(rout, "stats.json")
        rp = json.load(open(stats))["system"]["replay"] if os.path.isfile(stats) else {}
        check(rr.returncode == 0 and rp.get("mismatches") == 0 and
              rp.get("translations_checked") == len(translations),
              f"{mode}: replay checks all {len(translations)} translations, none wrong "
              f"({rp.get('translations_checked')} checked, {rp.get('mismatches')} mismatches)")

check.finish()
