"""Bad configuration and command-line input gets a clear error (exit 2, the origin and what
was expected), never a silent wrong result; and the corrected behaviours of the platform
assembly (derived seeds, hit rate in the outputs, scaled times, paired outputs).
Usage: bad_input.py IOMMUSIM SOURCE_ROOT"""
import csv
import json
import os
import subprocess
import sys
import time

from e2e_common import Check, tmpdir

iommusim, root = sys.argv[1], sys.argv[2]
platform = os.path.join(root, "platforms/broadwell-dmabench.ini")
workload = os.path.join(root, "workloads/dmabench-rd64-random.ini")
nic_nvme = [os.path.join(root, "platforms/x86-vtd-nic-nvme.ini"),
            os.path.join(root, "workloads/nic-nvme-strict.ini")]
check = Check()
work = tmpdir("bad-input-")


def run(*args, verb="run", out=None):
    cmd = [iommusim, verb] + (["-q", "--out", out or tmpdir()] if verb == "run" else []) + list(args)
    r = subprocess.run(cmd, capture_output=True)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def ini(name, text):
    p = os.path.join(work, name)
    with open(p, "wb") as f:
        f.write(text.encode("latin-1") if isinstance(text, str) else text)
    return p


def expect_error(what, args, *needles, verb="run"):
    rc, out = run(*args, verb=verb)
    check(rc == 2, f"{what}: exit 2 (got {rc}): {out[:300]}")
    for n in needles:
        check(n in out, f"{what}: message has {n!r}: {out[:600]}")
    return out


base = ["-c", platform, "-c", workload, "--set", "system.bench0.count=200"]

# Two devices on one requester ID: rejected, naming both and the line that set the RID.
expect_error("duplicate RID", ["-c", nic_nvme[0], "-c", nic_nvme[1],
                               "--set", "system.nvme0.requester.bus=2",
                               "--set", "system.nvme0.requester.device=1"],
             "--set: system.nvme0.requester.device: requester 02:01.0 of nvme0 is already nic0's")

# Numbers out of range: --quantum, region bases and sizes.
for q, why in [("1e30", "is out of range"), ("inf", "is not a time"),
               ("18446744073709551615", "is out of range"), ("-5", "is not a time"),
               ("0.3ps", "is not a whole number of ns")]:
    expect_error(f"--quantum {q}", base + ["--quantum", q], f"--quantum: '{q}' {why}",
                 "expected a whole number of ns from 0 to 1000000000")
rc, out = run(*base, "--quantum", "250ns")
check(rc == 0, f"--quantum 250ns runs ({rc}): {out[:200]}")
expect_error("--seed -1", base + ["--seed", "-1"], "--seed: system.seed: '-1' is not a non-negative integer")

# A place in the topology that is not declared: the key that names it, for a device and a
# switch, every one at once.
topo = ini("topology.ini", "[system]\nswitches = sw0\n[system.sw0]\nrc = nope\n")
expect_error("unknown root complex and switch",
             base + ["-c", topo, "--set", "system.bench0.rc=xx", "--set", "system.bench0.switch=yy"],
             f"{topo}:4: system.sw0.rc: no root complex 'nope' in system.root_complexes",
             "--set: system.bench0.rc: no root complex 'xx' in system.root_complexes",
             "--set: system.bench0.switch: no switch 'yy' in system.switches")
for region, needle in [("a:bypass:0x40000000000000T:4K", "base: '0x40000000000000T' is too large"),
                       ("a:bypass:-4096:4K", "base: '-4096' is not a non-negative integer"),
                       ("a:bypass:0x1000:-4096", "size: '-4096' is not a non-negative integer"),
                       ("a:bypass:0xfffffffffffff000:8K", "passes 2^64")]:
    expect_error(f"region {region}", base + ["--set", f"system.bench0.regions={region}"],
                 "--set: system.bench0.regions: region", needle)

# lookup: a physical address beyond the address width, or a number that wraps.
expect_error("lookup PA beyond HAW", ["--map", "0x10000:0x1000000000000000:4K:rw", "--iova", "0x10010"],
             "ends beyond the unit's 52-bit host address width", verb="lookup")
expect_error("lookup size wraps", ["--map", "0x10000:0x1000:0x40000000000000T:rw", "--iova", "0x10010"],
             "--map: '0x40000000000000T' is too large", verb="lookup")

# A 10 MB key: a quick error, the key cut with its length, no closest-key search over it.
big = ini("big.ini", "[system]\n" + "k" * (10 << 20) + " = 1\n")
t0 = time.monotonic()
out = expect_error("10 MB key", ["-c", platform, "-c", workload, "-c", big],
                   f"{big}:2: unknown key 'system.kkkk", "' (10485767 bytes)")
check(time.monotonic() - t0 < 5, "10 MB key: error within seconds")
check(len(out) < 1000, f"10 MB key: short message ({len(out)} bytes)")

# Raw bytes are escaped, never written to the terminal.
binary = ini("binary.ini", b"[system]\nquantum_ns = \x1b[31m\x01\xff\n")
out = expect_error("binary value", ["-c", platform, "-c", workload, "-c", binary],
                   f"{binary}:2: system.quantum_ns: '\\x1b[31m\\x01\\xff' is not an integer")
check("\x1b" not in out and "\x01" not in out, "binary value: no raw control bytes in the message")

# Module checks name the line to change.
bad = ini("bad.ini", "[system.bench0.link]\nlanes = 3\n[system.bench0]\ncount = 0\n")
expect_error("bad lanes", ["-c", platform, "-c", workload, "-c", bad],
             f"{bad}:2: system.bench0.link.lanes: pcie lanes = 3 is not a width")
bad = ini("bad2.ini", "[system.bench0]\ncount = 0\nsize = 4096\nwindow = 64\n[system.bench0.engine]\nmps = 384\n")
out = expect_error("bad bench and engine", ["-c", platform, "-c", workload, "-c", bad],
                   f"{bad}:2: system.bench0.count: dma-bench: count and duration_ns both 0",
                   f"{bad}:6: system.bench0.engine.mps: dma engine parameter mps out of range")
bad = ini("bad3.ini", "[system.bench0]\nsize = 4096\nwindow = 64\n")
expect_error("window < size", ["-c", platform, "-c", workload, "-c", bad],
             f"{bad}:3: system.bench0.window: dma-bench: window smaller than one unit")

# Names: twice, reserved, not a name; one message each, no cascade.
for name, text, needle in [
        ("twice", "[system]\ndevices = bench0, bench0\n", "'bench0' is declared twice (also in system.devices)"),
        ("iommu-and-device", "[system]\ndevices = iommu0\n", "'iommu0' is declared twice (also in system.iommus)"),
        ("memory", "[system]\ndevices = memory\n", "'memory' is reserved (system.memory.* is the DRAM)"),
        ("replay", "[system]\ndevices = replay\n", "'replay' is reserved"),
        ("dotted", "[system]\ndevices = a.b\n", "'a.b' is not a name")]:
    p = ini(name + ".ini", text)
    out = expect_error(f"device name {name}", ["-c", platform, "-c", workload, "-c", p], f"{p}:2: system.devices: " + needle)
    check(out.count("iommusim:") == 1, f"device name {name}: one message, not a cascade: {out[:500]}")

# ways must divide entries.
expect_error("ways=3", base + ["--set", "system.iommu0.iotlb.ways=3"],
             "--set: system.iommu0.iotlb.ways: iotlb.ways = 3 does not divide system.iommu0.iotlb.entries = 64")
# A window past the 64 GiB of memory each device has.
expect_error("window 65G", base + ["--set", "system.bench0.window=65G"],
             "--set: system.bench0.window: bench0's buffers", "64 GiB")

# --seed reaches dma-bench's addresses (no per-device seed in the workload); an explicit
# per-device seed pins the stream.
def stats(*args):
    out = tmpdir()
    rc, text = run(*base, *args, out=out)
    check(rc == 0, f"run {args}: exit 0 ({rc}): {text[:300]}")
    with open(os.path.join(out, "stats.json")) as f:
        return json.load(f), text, out

s1, _, _ = stats("--seed", "1")
s1b, _, _ = stats("--seed", "1")
s2, _, _ = stats("--seed", "2")
check(s1["system"] == s1b["system"], "same --seed: same statistics")
check(s1["params"]["system.bench0.seed"] != s2["params"]["system.bench0.seed"],
      "--seed changes the derived dma-bench seed")
check(s1["system"]["iommu0"] != s2["system"]["iommu0"], "--seed changes the address stream's effect")
p1, _, _ = stats("--seed", "1", "--set", "system.bench0.seed=7")
p2, _, _ = stats("--seed", "2", "--set", "system.bench0.seed=7")
check(p1["params"]["system.bench0.seed"] == "7" and p1["system"]["bench0"] == p2["system"]["bench0"],
      "an explicit device seed pins its stream")

# ... and the IOMMU's random cache replacement (the address stream pinned, the IOTLB thrashing).
rnd = ("--set", "system.bench0.seed=7", "--set", "system.iommu0.iotlb.policy=random",
       "--set", "system.bench0.window=512K")
r1, _, _ = stats("--seed", "1", *rnd)
r1b, _, _ = stats("--seed", "1", *rnd)
r2, _, _ = stats("--seed", "2", *rnd)
check(r1["system"] == r1b["system"] and r1["system"]["iommu0"]["iotlb"] != r2["system"]["iommu0"]["iotlb"],
      "--seed reaches random IOTLB replacement, reproducibly")

# Hit rate in stats.json and stats.csv; scaled simulated time on the terminal.
s, text, out = stats()
it = s["system"]["iommu0"]["iotlb"]
check(it["hit_rate_ppm"] == round(1e6 * it["hits"] / it["lookups"]), f"hit_rate_ppm = hits/lookups ({it})")
with open(os.path.join(out, "stats.csv")) as f:
    rows = list(csv.reader(f))
check(rows[1][rows[0].index("system.iommu0.iotlb.hit_rate_ppm")] == str(it["hit_rate_ppm"]),
      "hit_rate_ppm in stats.csv")
first = text.splitlines()[0]
check(first.startswith("simulated ") and " ps " not in first and first.split()[2] in ("ns", "us", "ms", "s"),
      f"simulated time in scaled units: {first}")
check(not [f for f in os.listdir(out) if f.endswith(".tmp")], "no .tmp files left")

# A run shorter than one quantum ends when its last transfer completes, not at time 0 (the
# devices finish at their local time, ahead of the kernel).
for q in ("0", "10us"):
    short, _, _ = stats("--quantum", q, "--set", "system.bench0.count=10")
    el = short["system"]["bench0"]["elapsed_ns"]
    check(el > 0 and int(short["run"]["simulated_ns"]) >= el,
          f"quantum {q}: simulated {short['run']['simulated_ns']} ns covers the bench's {el} ns")

# No IOMMU: no empty IOMMU table.
none = ini("none.ini", "[system]\ndevices = bench0\n[system.bench0]\ncount = 50\n")
rc, text = run("-c", none)
check(rc == 0 and "statistic" not in text, f"no IOMMU: no IOMMU table: {text[:400]}")

print(f"bad_input: {check.passed} passed, {check.failed} failed")
sys.exit(1 if check.failed else 0)
