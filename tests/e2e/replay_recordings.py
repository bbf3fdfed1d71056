"""Real recordings: import each with `iommusim import qemu-vtd`, replay it with `iommusim replay`;
every recorded translation is replayed and checked, none differs, and a smaller IOTLB gives
the same translations with more misses.

Usage: replay_recordings.py IOMMUSIM SOURCE_ROOT [--shared]
Without --shared: the sample recordings the repository ships (traces/samples/*/, gzip); a
missing sample is a failure. With --shared: the shared recordings ($IOMMUSIM_SHARED_TRACES,
else ../shared/traces beside the repository), skipped (exit 77) when they are absent."""
import gzip
import json
import os
import subprocess
import sys

from e2e_common import Check, skip, tmpdir

iommusim, root = sys.argv[1], os.path.abspath(sys.argv[2])
shared = "--shared" in sys.argv[3:]
check = Check()

if shared:
    base = os.environ.get("IOMMUSIM_SHARED_TRACES") or os.path.join(root, "..", "shared", "traces")
    if not os.path.isdir(base):
        skip(f"no shared recordings at {base}")
    # What these recordings hold (docs/traces.md): translations per folder.
    expected = {"qemu-vtd-legacy-strict": 480, "qemu-vtd-scalable-strict": 481}
    recordings = [os.path.join(base, r) for r in expected]
else:
    base = os.path.join(root, "traces", "samples")
    recordings = sorted(os.path.join(base, d) for d in (os.listdir(base) if os.path.isdir(base) else ())
                        if os.path.isdir(os.path.join(base, d)))
    if not recordings:
        check(False, f"the repository ships sample recordings under {base}: none found")
        check.finish()


def input_file(d, name):
    """NAME as the shared recordings hold it, NAME.gz as the samples do."""
    plain = os.path.join(d, name)
    return plain if os.path.exists(plain) or not os.path.exists(plain + ".gz") else plain + ".gz"


def read_lines(path):
    with (gzip.open(path, "rt", errors="replace") if path.endswith(".gz") else open(path, errors="replace")) as f:
        return f.readlines()


def replay(tr, *sets):
    out = tmpdir("replay-")
    cmd = [iommusim, "replay", tr, "-q", "--out", out]
    for s in sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True)
    stats = os.path.join(out, "stats.json")
    s = json.load(open(stats))["system"] if os.path.isfile(stats) else None
    return r, s


for d in recordings:
    rec = os.path.basename(d)
    out = tmpdir("import-")
    tr = os.path.join(out, "run.trace.gz")
    qemu, ftrace = input_file(d, "qemu-trace.log"), input_file(d, "guest-ftrace.log")
    r = subprocess.run([iommusim, "import", "qemu-vtd", qemu, ftrace, "-o", tr], capture_output=True, text=True)
    check(r.returncode == 0, f"{rec}: import succeeds ({r.stdout[-300:]}{r.stderr[-300:]})")
    if r.returncode != 0:
        continue
    translations = sum(":vtd_dmar_translate " in line for line in read_lines(qemu))
    guest = read_lines(ftrace)
    maps = sum(": map: IOMMU:" in line for line in guest)
    unmaps = sum(": unmap: IOMMU:" in line for line in guest)
    if shared:
        check(translations == expected[rec], f"{rec}: {translations} translations, {expected[rec]} expected")
    check(translations > 0 and maps > 0 and unmaps > 0,
          f"{rec}: the recording has translations ({translations}), maps ({maps}) and unmaps ({unmaps})")

    r, s = replay(tr)
    check(r.returncode == 0 and s is not None, f"{rec}: replay succeeds (rc {r.returncode}: {r.stderr[-300:]})")
    if s is None:
        continue
    rp = s["replay"]
    print(f"{rec}: {translations} translations recorded, {rp['translations_checked']} checked, "
          f"{rp['mismatches']} mismatches")
    check(rp["dmas"] == translations, f"{rec}: every recorded translation replayed ({rp['dmas']})")
    check(rp["translations_checked"] == translations and rp["mismatches"] == 0,
          f"{rec}: every translation checked, none wrong")

    # The same trace through two IOMMU designs: different timing, the same (correct)
    # translations. Mean latency need not grow with misses (TLPs queued behind a compulsory
    # miss's walk dominate it), so only its change is asserted.
    res = {}
    for entries in (4, 256):
        r, s = replay(tr, f"system.iommu0.iotlb.entries={entries}", "system.iommu0.walkers=1")
        if s is None:
            check(False, f"{rec}: replay with iotlb.entries={entries} (rc {r.returncode}: {r.stderr[-300:]})")
            break
        res[entries] = (s["replay"]["mismatches"], s["replay"]["translations_checked"],
                        s["iommu0"]["iotlb"]["misses"], s["replay"]["translation_latency"]["mean"])
        print(f"{rec}: iotlb.entries={entries}: mismatches, checked, misses, mean latency = {res[entries]}")
    if len(res) == 2:
        check(res[4][0] == 0 and res[256][0] == 0 and res[4][1] == res[256][1] == translations,
              f"{rec}: same translations, all correct, with either IOTLB")
        check(res[4][2] > res[256][2] and res[4][3] != res[256][3],
              f"{rec}: a smaller IOTLB: more misses, other latency")
check.finish()
