"""Bad input to `iommusim replay` and `iommusim import` is a clear error, never a silently
different run: a trace with bad lines or nothing to replay stops before the platform is built
(exit 2, file:line, no SystemC error); records past the replay limits (a 1 TiB DMA, hours of
idle time, times near 2^64 ns) are refused with file:line instead of running forever; a DMA
recorded before the map of its IOVA faults as recorded at every quantum and pacing; a failed
import leaves nothing at its output path.
Usage: replay_errors.py IOMMUSIM SOURCE_ROOT"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

from e2e_common import Check

iommusim = sys.argv[1]
check = Check()
tmpdir = tempfile.TemporaryDirectory(prefix="iommusim-e2e-replay-errors-")
tmp = tmpdir.name
HEAD = "#iommusim-trace 1 time=ns\n"
MAP = "0 map 00:02.0 iova=0x10000 pa=0x200000 size=0x1000 perm=rw domain=1\n"
DMA = "100 dma 00:02.0 iova=0x10000 size=64 dir=w pa=0x200000\n"


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def replay(trace, *args):
    out = tempfile.mkdtemp(dir=tmp)
    r = subprocess.run([iommusim, "replay", trace, "-q", "--out", out, *args],
                       capture_output=True, text=True, timeout=120)
    path = os.path.join(out, "stats.json")
    return r, (json.load(open(path)) if os.path.exists(path) else None)


def refused(name, r, stats, *wanted):
    """Exit 2 before any simulation, each wanted text in stderr, no SystemC report."""
    check(r.returncode == 2, f"{name}: exit 2 (got {r.returncode}: {r.stderr.strip()[:300]})")
    check(stats is None, f"{name}: nothing simulated, no stats.json")
    check("E109" not in r.stderr and "Error: (E" not in r.stderr, f"{name}: no SystemC error ({r.stderr[:200]})")
    for w in wanted:
        check(w in r.stderr, f"{name}: stderr names {w!r} ({r.stderr.strip()[:300]})")


# 1. Traces with nothing valid to replay, or bad lines.
t = write("header-only.trace", HEAD + "# nothing else\n")
r, s = replay(t)
refused("header only", r, s, "nothing to replay")
t = write("all-bad.trace", HEAD + "100 dma 00:02.0 iova=0x1000 size=64 dir=sideways\n"
          "200 mapp 00:02.0 iova=0x1000\n")
r, s = replay(t)
refused("every record bad", r, s, f"{t}:2: expected dir=r|w|?", f"{t}:3: unknown record kind 'mapp'",
        "nothing to replay")
t = write("one-bad.trace", HEAD + MAP + DMA + "150 dma 00:02.0 iova=0x10000 size=64 dir=w pa=banana\n" +
          "200 dma 00:02.0 iova=0x10000 size=64 dir=r pa=0x200000\n")
r, s = replay(t)
refused("one bad line", r, s, f"{t}:4: expected pa=<hex>", "stop_on_error=0")
r, s = replay(t, "--set", "system.replay.stop_on_error=0")
check(r.returncode == 1 and s and s["system"]["replay"]["translations_checked"] == 2,
      f"stop_on_error=0: the good records replay, exit 1 ({r.returncode})")
check(f"{t}:4:" in r.stderr, "stop_on_error=0: the skipped line is still reported")

# 2. Limits: refused with file:line, never an endless run.
for name, line, args, wanted in [
    ("a 1 TiB DMA", "200 dma 00:02.0 iova=0x10000 size=1099511627776 dir=w\n", [], "(1073741824 bytes at most)"),
    ("a 1 TiB map", "200 map 00:02.0 iova=0x0 pa=0x0 size=0x10000000000 perm=rw domain=1\n", [],
     "(68719476736 bytes at most)"),
    ("a range past 2^64", "200 dma 00:02.0 iova=0xfffffffffffff000 size=8192 dir=w\n", [],
     "runs past the 64-bit address space"),
    ("a 10^16 ns gap", "10000000000000000 dma 00:02.0 iova=0x10000 size=64 dir=w\n", [], "gaps of at most"),
    ("a time near 2^64", "18446744073709551000 dma 00:02.0 iova=0x10000 size=64 dir=w\n",
     ["--set", "system.replay.timed=1"], "ns after the previous record's"),
]:
    t = write("limit.trace", HEAD + MAP + DMA + line)
    r, s = replay(t, *args)
    refused(name, r, s, f"{t}:4:", wanted)
# Closed loop ignores recorded times: the same gap replays at once.
t = write("gap.trace", HEAD + MAP + DMA + "10000000000000000 dma 00:02.0 iova=0x10000 size=64 dir=w pa=0x200000\n")
r, s = replay(t, "--set", "system.replay.timed=0")
check(r.returncode == 0 and s["system"]["replay"]["translations_checked"] == 2,
      f"closed loop: a 10^16 ns gap is no limit ({r.returncode}: {r.stderr[:200]})")

# 3. A DMA recorded before the map of its IOVA faulted; it must fault in the replay too,
# however far the device lags the host (quantum) and however the replay is paced.
pre = write("dma-before-map.trace", HEAD +
            "0 map 00:02.0 iova=0x10000 pa=0x200000 size=0x4000 perm=rw domain=1\n"
            "100 dma 00:02.0 iova=0x20000 size=64 dir=w\n"
            "101 fault 00:02.0 iova=0x20000 reason=0x6 dir=w\n"
            "150 dma 00:02.0 iova=0x10000 size=9000 dir=r pa=0x200000\n"
            "200 map 00:02.0 iova=0x20000 pa=0x300000 size=0x1000 perm=rw domain=1\n"
            "300 dma 00:02.0 iova=0x20000 size=64 dir=r pa=0x300000\n")
slow = ["--set", "system.replay.engine.tags=1", "--set", "system.replay.link.gen=1",
        "--set", "system.replay.link.lanes=1"]
for q in ("0", "1us", "10us"):
    for pacing, args in (("timed", []), ("closed loop", ["--set", "system.replay.timed=0"]),
                         ("closed loop, 1 tag, Gen1 x1", ["--set", "system.replay.timed=0", *slow])):
        r, s = replay(pre, "--quantum", q, *args)
        rp = s["system"]["replay"]
        what = f"DMA before its map, quantum {q}, {pacing}"
        check(rp["faults"] == 1 and rp["mismatches"] == 0 and rp["translations_checked"] == 2,
              f"{what}: 1 fault, 0 mismatches, 2 checked (got {rp['faults']}, {rp['mismatches']}, "
              f"{rp['translations_checked']})")
        check(r.returncode == 0, f"{what}: exit 0")

# 4. Import: a failed import writes nothing at its output; a good one leaves no temporary file.
ft_lines = "".join(f" k-1 [000] ..... 1.{100000 + i:06d}: map: IOMMU: iova={0x100000 + i * 0x1000:#x} - "
                   f"{0x101000 + i * 0x1000:#x} paddr=0x9000 size=4096\n" for i in range(3000))
whole = gzip.compress(ft_lines.encode())
for name, data, wanted in [("truncated", whole[:len(whole) // 2], "truncated or corrupt gzip data"),
                           ("trailing garbage", whole + b"junk", "trailing data after the end of the gzip stream")]:
    d = tempfile.mkdtemp(dir=tmp)
    src = os.path.join(d, "ftrace.log.gz")
    open(src, "wb").write(data)
    out = os.path.join(d, "out.trace.gz")
    r = subprocess.run([iommusim, "import", "ftrace", src, "-o", out], capture_output=True, text=True)
    check(r.returncode == 2 and wanted in r.stderr and f"{src}:" in r.stderr,
          f"import of {name} gzip: exit 2 naming the file ({r.returncode}: {r.stderr.strip()[:200]})")
    check(sorted(os.listdir(d)) == ["ftrace.log.gz"], f"import of {name} gzip: nothing written ({os.listdir(d)})")
    open(out, "w").write("keep me")
    subprocess.run([iommusim, "import", "ftrace", src, "-o", out], capture_output=True, text=True)
    check(open(out).read() == "keep me", f"import of {name} gzip: an existing output is left as it was")
d = tempfile.mkdtemp(dir=tmp)
src = os.path.join(d, "ftrace.log.gz")
open(src, "wb").write(whole + gzip.compress(b" k-1 [000] ..... nan: map: IOMMU: iova=0x1000 - 0x2000 paddr=0x9000 size=4096\n"))
out = os.path.join(d, "out.trace")
r = subprocess.run([iommusim, "import", "ftrace", src, "-o", out], capture_output=True, text=True)
check(r.returncode == 1 and "3000 map" in r.stdout and "1 errors" in r.stdout and f"{src}:3001: expected a timestamp" in r.stdout,
      f"two gzip members import whole; a NaN time is an error at its line ({r.returncode}: {r.stdout[-400:]})")
check(sorted(os.listdir(d)) == ["ftrace.log.gz", "out.trace"], f"no temporary file left ({os.listdir(d)})")
r, s = replay(out)
check(r.returncode == 0 and s["system"]["replay"]["maps"] == 3000, "the imported trace replays")
check.finish()
