"""Helpers for end-to-end tests: run the iommusim program and read its statistics."""
import json
import os
import subprocess
import sys
import tempfile


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
        sys.exit(1 if self.failed else 0)


def run(iommusim, root, configs, sets=(), extra=()):
    """Run `iommusim run` and return its stats.json as a dict."""
    out = tempfile.mkdtemp(prefix="iommusim-e2e-")
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
