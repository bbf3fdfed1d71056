"""Helpers for end-to-end tests: run the iommusim program and read its statistics.

Importing this module gives the test one temporary folder, removed when the test exits
(normally, on an exception, on SIGTERM or SIGINT): tempfile's default folder and $TMPDIR of
the programs it runs point into it, so every tempfile.mkdtemp() of the test and every temporary
file of iommusim or a script lands there. IOMMUSIM_E2E_KEEP=1 keeps it (its path is printed)."""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

SKIP = 77  # exit status ctest reports as skipped (SKIP_RETURN_CODE in CMakeLists.txt)

_script = os.path.splitext(os.path.basename(sys.argv[0] or "e2e"))[0]
TMP = tempfile.mkdtemp(prefix=f"iommusim-e2e-{_script}-")
tempfile.tempdir = TMP
os.environ["TMPDIR"] = TMP


def _cleanup():
    if os.environ.get("IOMMUSIM_E2E_KEEP") == "1":
        print(f"outputs kept in {TMP}")
    else:
        shutil.rmtree(TMP, ignore_errors=True)


def _terminated(signum, _frame):
    sys.exit(128 + signum)  # runs the atexit cleanup


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _terminated)


def tmpdir(prefix=None):
    """A new folder inside the test's temporary folder."""
    return tempfile.mkdtemp(prefix=prefix, dir=TMP)


def skip(why):
    """The test cannot run here: say why and exit with the status ctest reports as skipped."""
    print(f"skipped: {why}")
    sys.exit(SKIP)


class Check:
    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAILED: {what}")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        if self.passed + self.failed == 0:
            print("FAILED: no checks ran")
            sys.exit(1)
        if self.failed and os.environ.get("IOMMUSIM_E2E_KEEP") != "1":
            print("(IOMMUSIM_E2E_KEEP=1 keeps the outputs for a look)")
        sys.exit(1 if self.failed else 0)


def run(iommusim, root, configs, sets=(), extra=()):
    """Run `iommusim run` and return its stats.json as a dict."""
    out = tmpdir("run-")
    cmd = [iommusim, "run", "-q", "--out", out]
    for c in configs:
        cmd += ["-c", os.path.join(root, c)]
    for s in sets:
        cmd += ["--set", s]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    with open(os.path.join(out, "stats.json")) as f:
        return json.load(f)
