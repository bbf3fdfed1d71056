"""scripts/regress: reference runs against golden statistics with per-statistic tolerances
(docs/regression.md). Standard library only."""
import argparse
import concurrent.futures
import difflib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import iommusim_stats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REG = os.path.join(ROOT, "tests", "regression")


class RegressError(Exception):
    pass


def read_ini(path):
    """[section] key = value files (# comments); returns [(section, {key: (value, line)})]."""
    out, errors, cur = [], [], None
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        raise RegressError(f"cannot read '{path}': {e.strerror}")
    for n, raw in enumerate(lines, 1):
        line = re.sub(r"(^|\s)[#;].*", "", raw).strip()
        if not line:
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line)
        if m:
            cur = (m.group(1), {})
            out.append(cur)
        elif "=" in line and cur is not None:
            k, v = (s.strip() for s in line.split("=", 1))
            if k in cur[1]:
                errors.append(f"{path}:{n}: '{k}' given twice in [{cur[0]}]")
            cur[1][k] = (v, n)
        else:
            errors.append(f"{path}:{n}: expected '[section]' or 'key = value' in a section, not '{line}'")
    if errors:
        raise RegressError("\n".join(errors))
    return out


class Run:
    def __init__(self, name, fields, path):
        self.name = name
        where = lambda k: f"{path}:{fields[k][1]}"  # noqa: E731
        unknown = set(fields) - {"config", "set", "import"}
        if unknown:
            k = sorted(unknown)[0]
            raise RegressError(f"{where(k)}: unknown key '{k}' (expected config, set, import)")
        self.configs = fields["config"][0].split() if "config" in fields else []
        self.sets = [s.strip() for s in fields["set"][0].split(",")] if "set" in fields else []
        self.imp = fields["import"][0].split() if "import" in fields else []
        if not self.configs and not self.imp:
            raise RegressError(f"{path}: [{name}] needs config or import")
        for f in self.configs + self.imp[1:]:
            if not os.path.exists(os.path.join(ROOT, f)):
                self.missing = f
                break
        else:
            self.missing = None

    def commands(self, iommusim):
        """The commands, run inside the run's directory (so outputs name no temp path)."""
        cmds = []
        cfg = []
        for c in self.configs:
            cfg += ["-c", os.path.join(ROOT, c)]
        sets = []
        for s in self.sets:
            sets += ["--set", s]
        if self.imp:
            cmds.append([iommusim, "import", self.imp[0], *[os.path.join(ROOT, f) for f in self.imp[1:]],
                         "-o", "trace.gz"])
            cmds.append([iommusim, "replay", "trace.gz", "-q", *cfg, *sets, "--out", "."])
        else:
            cmds.append([iommusim, "run", "-q", *cfg, *sets, "--out", "."])
        return cmds


def load_runs(path):
    return [Run(name, fields, path) for name, fields in read_ini(path)]


class Tolerance:
    def __init__(self, pattern, text, where):
        self.pattern, self.text = pattern, text
        self.kind, self.rel, self.abs = "exact", None, None
        words = text.split()
        if words == ["exact"] or words == ["ignore"]:
            self.kind = words[0]
            return
        self.kind = "tol"
        i = 0
        while i < len(words):
            if words[i] == "rel" and i + 1 < len(words) and words[i + 1].endswith("%"):
                self.rel = _num(words[i + 1][:-1], where)
            elif words[i] == "abs" and i + 1 < len(words):
                self.abs = _num(words[i + 1], where)
            else:
                raise RegressError(f"{where}: bad tolerance '{text}' (expected exact, ignore, "
                                   "'rel P%', 'abs N' or 'rel P% abs N')")
            i += 2

    def accepts(self, golden, now):
        if self.kind == "ignore" or golden == now:
            return True
        if self.kind == "exact" or not _isnum(golden) or not _isnum(now):
            return False
        d = abs(now - golden)
        if self.abs is not None and d <= self.abs:
            return True
        return self.rel is not None and d <= abs(golden) * self.rel / 100

    def __str__(self):
        return f"{self.text} ({self.pattern})"


def _num(s, where):
    try:
        return float(s)
    except ValueError:
        raise RegressError(f"{where}: '{s}' is not a number")


def _isnum(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_tolerances(path):
    secs = read_ini(path)
    if [s for s, _ in secs] != ["tolerances"]:
        raise RegressError(f"{path}: expected one [tolerances] section")
    tols = [Tolerance(k, v, f"{path}:{n}") for k, (v, n) in secs[0][1].items()]
    if not tols or tols[-1].pattern != "*":
        raise RegressError(f"{path}: the last pattern must be '*' (the default)")
    return tols


def tolerance_for(tols, stat):
    return next(t for t in tols if fnmatch.fnmatchcase(stat, t.pattern))


def golden_stats(stats_json):
    """What a golden keeps: the simulated time and every statistic, flattened."""
    out = {"run.simulated_ns": iommusim_stats._number(stats_json["run"].get("simulated_ns"))}
    out.update(iommusim_stats.flatten(stats_json["system"]))
    return out


def execute(run, iommusim, workdir):
    d = os.path.join(workdir, run.name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for cmd in run.commands(iommusim):
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"{' '.join(cmd)} exited {r.returncode}:\n{(r.stdout + r.stderr).strip()[-2000:]}"
    return iommusim_stats.load(os.path.join(d, "stats.json")), None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def compare(name, golden, now, tols):
    """Rows (run, stat, golden, now, change, tolerance, verdict) of every statistic that moved."""
    rows = []
    for stat, g in golden.items():
        if stat not in now:
            rows.append((name, stat, fmt(g), "-", "missing", "", "FAIL"))
            continue
        n = now[stat]
        if n == g:
            continue
        t = tolerance_for(tols, stat)
        if _isnum(g) and _isnum(n):
            d = n - g
            change = f"{d:+.6g}" + (f" ({100 * d / g:+.3g}%)" if g else "")
        else:
            change = "changed"
        rows.append((name, stat, fmt(g), fmt(n), change, str(t), "ok" if t.accepts(g, n) else "FAIL"))
    for stat in now:
        if stat not in golden:
            rows.append((name, stat, "-", fmt(now[stat]), "new", "", "new"))
    return rows


def table(rows):
    head = ("run", "statistic", "golden", "now", "change", "tolerance", "verdict")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def golden_text(run, stats):
    doc = {"run": run.name, "config": run.configs, "set": run.sets, "import": run.imp, "stats": stats}
    return json.dumps(doc, indent=1) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(prog="scripts/regress",
                                 description="Compare reference runs with their golden statistics.")
    ap.add_argument("--iommusim", help="the simulator (default: $IOMMUSIM or build/iommusim)")
    ap.add_argument("--update", action="store_true", help="rewrite the goldens and show the diff")
    ap.add_argument("--only", help="comma-separated run names")
    ap.add_argument("--jobs", "-j", type=int, default=len(os.sched_getaffinity(0)),
                    help="runs at once (default: the cores available)")
    ap.add_argument("--goldens", default=os.path.join(REG, "golden"), help="golden directory")
    ap.add_argument("--runs", default=os.path.join(REG, "runs.ini"), help="the reference runs")
    ap.add_argument("--tolerances", default=os.path.join(REG, "tolerances.ini"))
    ap.add_argument("--keep", help="keep each run's outputs in KEEP/NAME (default: a temporary "
                    "directory, removed)")
    a = ap.parse_args(argv)
    try:
        return regress(a)
    except RegressError as e:
        print(f"regress: {e}", file=sys.stderr)
        return 2


def regress(a):
    iommusim = os.path.abspath(a.iommusim or os.environ.get("IOMMUSIM") or os.path.join(ROOT, "build", "iommusim"))
    if not os.access(iommusim, os.X_OK):
        raise RegressError(f"'{iommusim}' is not an executable (give --iommusim PATH or build it)")
    runs = load_runs(a.runs)
    tols = load_tolerances(a.tolerances)
    if a.only:
        names = [n.strip() for n in a.only.split(",")]
        bad = [n for n in names if n not in [r.name for r in runs]]
        if bad:
            raise RegressError(f"--only: no run {', '.join(bad)} (runs: {', '.join(r.name for r in runs)})")
        runs = [r for r in runs if r.name in names]
    skipped = [r for r in runs if r.missing]
    for r in skipped:
        print(f"{r.name}: skipped ({r.missing} is missing)")
    runs = [r for r in runs if not r.missing]
    workdir = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="iommusim-regress-")
    os.makedirs(workdir, exist_ok=True)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            results = list(ex.map(lambda r: execute(r, iommusim, workdir), runs))
    finally:
        if not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    errors = [(r.name, e) for r, (_, e) in zip(runs, results) if e]
    for name, e in errors:
        print(f"{name}: FAILED to run: {e}")
    if a.update:
        return update(a, runs, results) or (1 if errors else 0)
    rows, compared, no_golden = [], 0, []
    for r, (stats, e) in zip(runs, results):
        if e:
            continue
        path = os.path.join(a.goldens, f"{r.name}.json")
        try:
            with open(path) as f:
                golden = json.load(f)["stats"]
        except OSError:
            no_golden.append(r.name)
            continue
        except (ValueError, KeyError) as ex:
            raise RegressError(f"'{path}' is not a golden file: {ex}")
        now = golden_stats(stats)
        compared += len(golden)
        rows += compare(r.name, golden, now, tols)
    fails = [x for x in rows if x[6] == "FAIL"]
    if rows:
        print(table(rows))
    for n in no_golden:
        print(f"{n}: no golden (scripts/regress --update --only {n})")
    moved = sum(1 for x in rows if x[6] == "ok")
    new = sum(1 for x in rows if x[6] == "new")
    print(f"{len(runs) - len(errors) - len(no_golden)} runs, {compared} statistics: "
          f"{len(fails)} outside tolerance, {moved} moved within tolerance, {new} new"
          + (f", {len(skipped)} runs skipped" if skipped else ""))
    return 1 if fails or errors or no_golden else 0


def update(a, runs, results):
    os.makedirs(a.goldens, exist_ok=True)
    changed = 0
    for r, (stats, e) in zip(runs, results):
        if e:
            continue
        path = os.path.join(a.goldens, f"{r.name}.json")
        new = golden_text(r, golden_stats(stats))
        old = open(path).read() if os.path.exists(path) else ""
        if new == old:
            continue
        changed += 1
        shown = os.path.relpath(path, ROOT) if os.path.abspath(path).startswith(ROOT + os.sep) else path
        diff = difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{shown}", f"b/{shown}", n=0)
        sys.stdout.writelines(diff)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(new)
        os.replace(tmp, path)
    print(f"updated {changed} of {len(runs) - sum(1 for _, e in results if e)} goldens in {a.goldens}")
    return 0
