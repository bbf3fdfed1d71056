"""Helpers of the sweep, plot and regression tests: run scripts/sweep and read a sweep dir."""
import csv
import os
import subprocess
import sys
import tempfile

SKIP = 77  # CTest SKIP_RETURN_CODE of these tests


def sweep_cmd(root, *args):
    return [sys.executable, os.path.join(root, "scripts", "sweep"), *args]


def run_sweep(root, iommusim, *args, check=None, timeout=300):
    """Run scripts/sweep; returns the CompletedProcess (stdout+stderr as text)."""
    cmd = sweep_cmd(root, *args, "--iommusim", iommusim)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check is not None and r.returncode != check:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}, expected {check}:\n{r.stdout}{r.stderr}")
    return r


def write_spec(text):
    fd, path = tempfile.mkstemp(prefix="iommusim-sweep-", suffix=".ini")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def rows(out):
    with open(os.path.join(out, "results.csv")) as f:
        return list(csv.DictReader(f))


def finished(out):
    d = os.path.join(out, "points")
    return sorted(e for e in os.listdir(d) if not e.startswith(".")) if os.path.isdir(d) else []


def tmp_dirs(out):
    found = []
    for sub in ("points", "failed"):
        d = os.path.join(out, sub)
        if os.path.isdir(d):
            found += [e for e in os.listdir(d) if e.startswith(".")]
    return found
