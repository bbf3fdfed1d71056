"""--timeline: the file is valid trace-event JSON with the tracks docs/timeline.md names (a
device's DMAs, the IOMMU's translations, a walker with its walk steps, a link direction, the
counters), every event inside --timeline-window, --timeline-max-events honoured and the
truncation noted (file and stderr), bad options rejected, and the statistics unchanged by it.
Usage: timeline.py IOMMUSIM SOURCE_ROOT"""
import filecmp
import json
import os
import subprocess
import sys

from e2e_common import Check, tmpdir

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
CONFIGS = ["platforms/broadwell-dmabench.ini", "workloads/dmabench-rd64-random.ini"]
SETS = ["system.bench0.count=3000"]


def run(*extra, verb="run"):
    out = tmpdir("run-")
    cmd = [iommusim, verb, "-q", "--out", out]
    for c in CONFIGS:
        cmd += ["-c", os.path.join(root, c)]
    for s in SETS:
        cmd += ["--set", s]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return r, out


def load(path):
    with open(path) as f:
        return json.load(f)  # raises on anything that is not JSON


# 1. A whole run: valid JSON, known phases, the tracks, the counters.
plain, plain_out = run()
check(plain.returncode == 0, f"run without --timeline exits 0 ({plain.stderr})")
tl_file = os.path.join(tmpdir("tl-"), "timeline.json")
r, out = run("--timeline", tl_file)
check(r.returncode == 0, f"run with --timeline exits 0 ({r.stderr})")
check(f"wrote {tl_file}" in r.stdout, "the summary names the timeline file")
doc = load(tl_file)
events = doc.get("traceEvents")
check(isinstance(events, list) and len(events) > 100, "traceEvents is a list of many events")
events = events or []
check(all(e.get("ph") in ("X", "C", "M", "i") for e in events), "every phase is X, C, M or i")
check(all(isinstance(e.get("pid"), int) and isinstance(e.get("tid"), int) for e in events),
      "every event has integer pid and tid")
check(all(isinstance(e.get("ts"), (int, float)) and e["ts"] >= 0
          for e in events if e["ph"] != "M"), "every event has a time")
check(all(isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0
          for e in events if e["ph"] == "X"), "every span has a duration")
procs = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
           if e["ph"] == "M" and e["name"] == "thread_name"}


def spans(proc_part, thread_part):
    return [e for e in events if e["ph"] == "X" and proc_part in procs.get(e["pid"], "")
            and threads.get((e["pid"], e["tid"]), "").startswith(thread_part)]


dma = spans("bench0", "transfers")
check(len(dma) > 0 and all(s["name"] == "DMA read" for s in dma), f"DMA read spans of bench0 ({len(dma)})")
check(any(s["args"].get("pieces") == 1 for s in dma), "a DMA span says how many requests it took")
tr = spans("iommu0", "translations")
check(len(tr) > 0, f"translation spans of iommu0 ({len(tr)})")
check({s["name"] for s in tr} >= {"hit", "miss"}, f"hits and misses: {sorted({s['name'] for s in tr})}")
walks = [s for s in spans("iommu0", "walker ") if s["name"] == "walk"]
check(len(walks) > 0 and all(s["args"]["levels"] >= 1 for s in walks),
      f"walk spans on walker tracks, each with its levels ({len(walks)})")
steps = [s for s in spans("iommu0", "walker ") if s["name"].startswith("level ")]
check(len(steps) >= len(walks), "walk steps (level N) inside the walks")
ups = spans("", "upstream")
downs = spans("", "downstream")
check(len(ups) > 0 and {s["name"] for s in ups} <= {"MRd", "MWr"}, f"upstream TLP spans ({len(ups)})")
check(len(downs) > 0 and "CplD" in {s["name"] for s in downs}, f"downstream completion spans ({len(downs)})")
counters = {e["name"] for e in events if e["ph"] == "C"}
check({"iotlb entries", "busy walkers", "queued transfers"} <= counters, f"counters: {sorted(counters)}")
# Lanes: spans of one thread never overlap unless nested (a walk's steps inside the walk).
by_thread = {}
for e in events:
    if e["ph"] == "X":
        by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
bad = 0
for key, ss in by_thread.items():
    ss.sort(key=lambda e: (e["ts"], -e["dur"]))
    stack = []
    for e in ss:
        end = e["ts"] + e["dur"]
        while stack and stack[-1] <= e["ts"] + 1e-9:
            stack.pop()
        if stack and end > stack[-1] + 1e-6:
            bad += 1
        stack.append(end)
check(bad == 0, f"spans of one track nest or follow one another ({bad} overlaps)")
other = doc.get("otherData", {})
check(other.get("truncated") is False and other.get("events") == sum(e["ph"] != "M" for e in events),
      f"otherData counts the events and says not truncated: {other}")

# 2. No effect on the results: stats.json byte-identical with and without the timeline.
check(filecmp.cmp(os.path.join(plain_out, "stats.json"), os.path.join(out, "stats.json"), shallow=False),
      "stats.json is byte-identical with and without --timeline")
# Same seed, same bytes of timeline.
tl2 = os.path.join(tmpdir("tl-"), "timeline.json")
r2, _ = run("--timeline", tl2)
check(r2.returncode == 0 and filecmp.cmp(tl_file, tl2, shallow=False), "two runs write the same timeline bytes")

# 3. A window: every event starts inside it.
win_file = os.path.join(tmpdir("tl-"), "window.json")
r, _ = run("--timeline", win_file, "--timeline-window", "20us:40us")
check(r.returncode == 0, f"windowed run exits 0 ({r.stderr})")
w = load(win_file)
ts = [e["ts"] for e in w["traceEvents"] if e["ph"] != "M"]
check(len(ts) > 0 and all(20 <= t < 40 for t in ts), f"{len(ts)} events, all with 20 us <= ts < 40 us")
check(w["otherData"]["window_start_us"] == 20 and w["otherData"]["window_end_us"] == 40,
      "otherData records the window")

# 4. The event limit: exactly N events kept, the truncation in the file and on stderr.
lim_file = os.path.join(tmpdir("tl-"), "limit.json")
r, _ = run("--timeline", lim_file, "--timeline-max-events", "500")
check(r.returncode == 0, f"limited run exits 0 ({r.stderr})")
lim = load(lim_file)
n = sum(e["ph"] != "M" for e in lim["traceEvents"])
check(n == 500, f"500 events kept ({n})")
check(lim["otherData"]["truncated"] is True and lim["otherData"]["dropped_events"] > 0,
      f"the file notes the truncation: {lim['otherData']}")
check("limit of 500 events was reached" in r.stderr, "stderr notes the truncation")

# 5. Replay takes the same options; its unmaps show as invalidations and a DMA after an
# unmap as a fault.
trace = os.path.join(tmpdir("trace-"), "small.trace")
lines = ["#iommusim-trace 1 time=ns"]
t = 1000
for i in range(40):
    iova, pa = 0x10000000 + 0x10000 * i, 0x100000000 + 0x100000 * i
    lines.append(f"{t} map 00:02.0 iova={iova:#x} pa={pa:#x} size=0x2000 perm=rw domain=1")
    lines.append(f"{t + 100} dma 00:02.0 iova={iova:#x} size=256 dir=r pa={pa:#x}")
    lines.append(f"{t + 200} unmap 00:02.0 iova={iova:#x} size=0x2000 domain=1")
    t += 1000
lines.append(f"{t} dma 00:02.0 iova=0x10000000 size=64 dir=w")
with open(trace, "w") as f:
    f.write("\n".join(lines) + "\n")
rp_file = os.path.join(tmpdir("tl-"), "replay.json")
r = subprocess.run([iommusim, "replay", trace, "-q", "--out", tmpdir("replay-"), "--timeline", rp_file],
                   capture_output=True, text=True, timeout=300)
check(r.returncode in (0, 1) and os.path.exists(rp_file), f"replay writes a timeline ({r.returncode}: {r.stderr})")
if os.path.exists(rp_file):
    rp = load(rp_file)["traceEvents"]
    rthreads = {(e["pid"], e["tid"]): e["args"]["name"] for e in rp if e["ph"] == "M" and e["name"] == "thread_name"}
    inv = [e for e in rp if e["ph"] == "X" and rthreads.get((e["pid"], e["tid"])) == "invalidations"]
    check(len(inv) > 0, f"the replay's unmaps show as invalidation spans ({len(inv)})")
    check(any(e["ph"] == "i" and e["name"] == "fault" for e in rp), "the DMA after its unmap shows as a fault")

# 6. Bad options: a clear message, exit 2, nothing written.
for extra, expect in [
    (["--timeline", os.path.join(tmpdir(), "x.json"), "--timeline-window", "50us"], "has no ':'"),
    (["--timeline", os.path.join(tmpdir(), "x.json"), "--timeline-window", "5:10us"], "has no unit"),
    (["--timeline", os.path.join(tmpdir(), "x.json"), "--timeline-window", "10us:5us"], "is empty"),
    (["--timeline", os.path.join(tmpdir(), "x.json"), "--timeline-max-events", "0"], "at least 1"),
    (["--timeline-window", "0:1us"], "needs --timeline"),
]:
    r, _ = run(*extra)
    check(r.returncode == 2 and expect in r.stderr, f"{extra[-2:]}: exit 2 and {expect!r} ({r.returncode}: {r.stderr.strip()})")

check.finish()
