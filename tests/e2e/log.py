"""--log: per-module log lines with simulated time. On a tiny NIC + NVMe run with per-I/O
mapping, `--log system.iommu0=debug` shows a requester's walk (structure reads), its cache
decisions and the invalidations the driver submits, the queue executes and the unit applies;
--log-requester keeps one requester; the [log] section and --log-file work; without --log no
line is written and the statistics are the same; bad rules are clear errors (exit 2).
Usage: log.py IOMMUSIM SOURCE_ROOT"""
import json
import os
import re
import subprocess
import sys

from e2e_common import Check, tmpdir

iommusim, root = sys.argv[1], sys.argv[2]
check = Check()
CONFIGS = ["platforms/x86-vtd-nic-nvme.ini", "workloads/nic-nvme-strict.ini"]
SETS = ["system.nic0.count=8", "system.nvme0.count=2"]
LINE = re.compile(r"^\[\s*(\d+)\.(\d{6}) us\] (system(?:\.[\w-]+)*) (error|warn|info|debug|trace): ")


def run(*extra, configs=CONFIGS):
    out = tmpdir("run-")
    cmd = [iommusim, "run", "-q", "--out", out]
    for c in configs:
        cmd += ["-c", c if os.path.isabs(c) else os.path.join(root, c)]
    for s in SETS:
        cmd += ["--set", s]
    r = subprocess.run(cmd + list(extra), capture_output=True, text=True, timeout=300)
    return r, out


def log_lines(text):
    return [l for l in text.splitlines() if LINE.match(l)]


def stats(out):
    with open(os.path.join(out, "stats.json")) as f:
        return json.load(f)["system"]


# 1. Off by default: no log line, and logging changes no statistic.
plain, plain_out = run()
check(plain.returncode == 0, f"a run without --log exits 0 ({plain.stderr[-300:]})")
check(not log_lines(plain.stderr) and not log_lines(plain.stdout), "without --log, no log lines")

r, out = run("--log", "system.iommu0=debug")
check(r.returncode == 0, f"--log system.iommu0=debug exits 0 ({r.stderr[-300:]})")
lines = log_lines(r.stderr)
check(len(lines) > 20, f"log lines on stderr ({len(lines)})")
check(all(LINE.match(l).group(3).startswith("system.iommu0") for l in lines),
      "only system.iommu0 and the modules below it log")
check(not any(" trace: " in l for l in lines), "nothing above the debug level")
check(any(LINE.match(l).group(3) == "system.iommu0" for l in lines), "the translation unit logs")
check(any(m.startswith("system.iommu0.driver") for m in (LINE.match(l).group(3) for l in lines)),
      "the driver model logs")
check(any(m.startswith("system.iommu0.regs") for m in (LINE.match(l).group(3) for l in lines)),
      "the register file logs")
times = [int(LINE.match(l).group(1)) * 10**6 + int(LINE.match(l).group(2)) for l in lines]
check(max(times) > 0, "lines carry simulated time")
check(stats(out) == stats(plain_out), "the statistics are those of the run without --log")

# 2. One requester followed: its walk, its cache decisions, invalidations.
rids = sorted(set(re.findall(r"\b([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\b", "\n".join(lines))))
check(len(rids) >= 2, f"two requesters appear in the log ({rids})")
rid = rids[0] if rids else "00:00.0"
r, out = run("--log", "system.iommu0=debug", "--log-requester", rid)
check(r.returncode == 0, f"--log-requester {rid} exits 0 ({r.stderr[-300:]})")
one = log_lines(r.stderr)
others = set(re.findall(r"\b([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\b", "\n".join(one))) - {rid}
check(not others, f"no other requester's lines with --log-requester ({sorted(others)[:3]})")
unit = [l for l in one if LINE.match(l).group(3) == "system.iommu0"]
check(any(rid in l and "IOTLB miss" in l for l in unit), "an IOTLB miss of the requester")
check(any(rid in l and "IOTLB hit" in l for l in unit), "an IOTLB hit of the requester")
walk = [l for l in unit if "walk" in l and re.search(r"read 0x[0-9a-f]+", l)]
check(len(walk) >= 2, f"the walk's structure reads with their addresses ({len(walk)})")
check(any("IOTLB fill" in l for l in unit), "the fill after the walk")
check(any("invalidation submitted" in l for l in one), "the driver's invalidations")
check(any("descriptor" in l for l in one), "the invalidation queue's descriptors")
check(any(re.search(r"invalidat\w+ .*entr", l) for l in unit), "the unit's invalidations")

# 3. The [log] section, --log-file, trace level of another module.
ini = os.path.join(tmpdir("ini-"), "log.ini")
logfile = os.path.join(tmpdir("lf-"), "run.log")
with open(ini, "w") as f:
    f.write(f"[log]\nsystem.nic0.engine = trace\nfile = {logfile}\n")
r, out = run(configs=CONFIGS + [ini])
check(r.returncode == 0, f"[log] section accepted ({r.stderr[-300:]})")
with open(logfile) as f:
    filed = log_lines(f.read())
check(filed and all(" system.nic0.engine trace: " in l for l in filed),
      f"[log] lines go to log.file ({len(filed)})")
check(not log_lines(r.stderr), "nothing on stderr with a log file")

# 4. Bad rules: exit 2, what was wrong and where.
r, _ = run("--log", "system.iommu0=loud")
check(r.returncode == 2 and "'loud' is not a level" in r.stderr, "a bad level is refused")
r, _ = run("--log", "system.iommu7=debug")
check(r.returncode == 2 and "no module logs under 'system.iommu7'" in r.stderr
      and "system.iommu0" in r.stderr, "an unknown module is refused with the closest names")
r, _ = run("--log", "system..iommu0")
check(r.returncode == 2 and "is not MODULE or MODULE=LEVEL" in r.stderr, "a bad name is refused")
r, _ = run("--log", "system.iommu0", "--log-requester", "0:3.0")
check(r.returncode == 2 and "--log-requester: '0:3.0' is not a requester" in r.stderr,
      "a bad requester is refused")
bad = os.path.join(tmpdir("bad-"), "bad.ini")
with open(bad, "w") as f:
    f.write("[log]\n\nsystem.iommu0 = verbose\n")
r, _ = run(configs=CONFIGS + [bad])
check(r.returncode == 2 and f"{bad}:3: log.system.iommu0: 'verbose' is not a level" in r.stderr,
      "a bad level in the INI is named with file:line")
check.finish()
