"""scripts/sweep --emit slurm on a real (single-node, local) Slurm cluster: munged, slurmctld
and slurmd from Debian's munge/slurm-wlm packages are started on localhost with a minimal
slurm.conf in a temporary directory, the emitted job-array script is submitted with sbatch,
the results are merged, and everything is stopped. The packages are installed with apt-get
when missing and this runs as root; when they cannot be installed or the daemons do not
start, the test is skipped (77). Bounded to about two minutes.
Usage: sweep_slurm.py IOMMUSIM SOURCE_ROOT"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from e2e_common import Check
from sweep_helpers import SKIP, rows, run_sweep, write_spec

iommusim, root = sys.argv[1], sys.argv[2]
T0 = time.monotonic()
BUDGET = 110  # seconds for everything after the package installation
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scancel")
PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")


def skip(why):
    print(f"skipped: {why}")
    sys.exit(SKIP)


def have_programs():
    return all(shutil.which(p) or os.path.exists(f"/usr/sbin/{p}") for p in PROGRAMS)


def prog(p):
    return shutil.which(p) or f"/usr/sbin/{p}"


if not have_programs():
    if os.geteuid() != 0:
        skip("munge/slurm are not installed and this is not root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
                           capture_output=True, text=True, timeout=150, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        skip(f"apt-get install {' '.join(PACKAGES)} failed: {e}")
    if r.returncode != 0 or not have_programs():
        skip(f"apt-get install {' '.join(PACKAGES)} failed: {r.stderr.strip()[-300:]}")
if os.geteuid() != 0:
    skip("starting slurmd needs root")

tmp = tempfile.mkdtemp(prefix="iommusim-slurm-")
os.chmod(tmp, 0o755)
daemons = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_all():
    if shutil.which("scancel"):
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=10)
    for p in reversed(daemons):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in reversed(daemons):
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def log_tail(name):
    try:
        with open(os.path.join(tmp, name)) as f:
            return "".join(f.readlines()[-15:])
    except OSError:
        return ""


key = os.path.join(tmp, "munge.key")
with open(key, "wb") as f:
    f.write(os.urandom(1024))
os.chmod(key, 0o600)
sock = os.path.join(tmp, "munge.sock")
node = socket.gethostname().split(".")[0]
ctld_port, d_port = free_port(), free_port()
conf = os.path.join(tmp, "slurm.conf")
with open(conf, "w") as f:
    f.write(f"""ClusterName=iommusim-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/slurmctld.log
SlurmdLogFile={tmp}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=10 State=UP
""")
for d in ("state", "spool"):
    os.makedirs(os.path.join(tmp, d))
env = dict(os.environ, SLURM_CONF=conf)
check = Check()
try:
    daemons.append(subprocess.Popen(
        [prog("munged"), "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
         f"--pid-file={tmp}/munged.pid", f"--log-file={tmp}/munged.log", f"--seed-file={tmp}/munge.seed"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for _ in range(50):
        if os.path.exists(sock):
            break
        time.sleep(0.1)
    else:
        skip(f"munged did not start: {log_tail('munged.log')}")
    daemons.append(subprocess.Popen([prog("slurmctld"), "-D", "-i", "-f", conf], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    daemons.append(subprocess.Popen([prog("slurmd"), "-D", "-f", conf, "-N", node], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    ready = False
    while time.monotonic() - T0 < 45 and all(p.poll() is None for p in daemons):
        r = subprocess.run([prog("sinfo"), "-h", "-N", "-o", "%t"], env=env, capture_output=True,
                           text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip() in ("idle", "mix"):
            ready = True
            break
        time.sleep(0.5)
    if not ready:
        skip("the local Slurm cluster did not come up:\n"
             f"{log_tail('slurmctld.log')}{log_tail('slurmd.log')}")
    print(f"single-node cluster up in {time.monotonic() - T0:.1f} s")

    spec = write_spec("""
[sweep]
config = platforms/broadwell-dmabench.ini workloads/dmabench-rd64-random.ini
[set]
system.bench0.count = 5000
[grid]
system.iommu0.iotlb.entries = 16, 32, 64, 128, 256
""")
    out = os.path.join(tmp, "sweep")
    r = run_sweep(root, iommusim, spec, "--out", out, "--emit", "slurm", "--chunk", "2",
                  "--max-running", "2", "--partition", "test", "--time", "00:05:00", check=0)
    script = os.path.join(out, "sweep.sbatch")
    text = open(script).read()
    check("#SBATCH --array=0-2%2" in text, "5 points in chunks of 2: array 0-2, 2 at a time")
    check("#SBATCH --partition=test" in text and "#SBATCH --time=00:05:00" in text,
          "partition and time limit")
    left = max(10, BUDGET - (time.monotonic() - T0))
    r = subprocess.run([prog("sbatch"), "--wait", script], env=env, capture_output=True, text=True,
                       timeout=left)
    print(r.stdout + r.stderr)
    check(r.returncode == 0, f"sbatch --wait: the array job succeeded (exit {r.returncode})")
    outs = os.listdir(os.path.join(out, "slurm"))
    check(len(outs) == 3, f"one log per array task (got {outs})")
    r = run_sweep(root, iommusim, "--merge", out)
    print(r.stdout)
    check(r.returncode == 0 and "5 of 5 points done" in r.stdout, "merge: 5 of 5 done")
    res = rows(out)
    check([x["system.iommu0.iotlb.entries"] for x in res] == ["16", "32", "64", "128", "256"],
          "results.csv has the 5 points in order")
except subprocess.TimeoutExpired as e:
    check(False, f"timed out: {e}\n{log_tail('slurmctld.log')}{log_tail('slurmd.log')}")
finally:
    stop_all()
print(f"{time.monotonic() - T0:.1f} s")
if not check.failed:
    shutil.rmtree(tmp, ignore_errors=True)
check.finish()
