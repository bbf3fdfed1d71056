"""Design-space sweeps over iommusim parameters (scripts/sweep; format in docs/sweeps.md).

A sweep file names the run (platform and workload files, or traces to replay), fixed
overrides and the grid. Every point runs `iommusim` in its own directory, written under a
temporary name and renamed when complete, so a sweep killed at any moment is resumed by
running it again. Standard library only.
"""
import csv
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal, InvalidOperation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iommusim_stats  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP_SCRIPT = os.path.join(ROOT, "scripts", "sweep")
MAX_POINTS = 100000
MAX_RANGE_VALUES = 10000


class SpecError(Exception):
    """A problem in a sweep file or on the command line: the message says where and what."""


# ---------------------------------------------------------------------------------------------
# The sweep file


class Spec:
    def __init__(self):
        self.path = None
        self.name = ""
        self.description = ""
        self.mode = "run"  # or "replay"
        self.configs = []  # absolute paths
        self.configs_written = []  # as written (for the point hash and the gallery)
        self.traces = []
        self.traces_written = []
        self.iommusim = None
        self.fixed = []  # (param, value, where)
        self.axes = []  # Axis, in file order; zipped groups share .group
        self.plot = {}
        self.text = ""


class Axis:
    def __init__(self, param, items, where, group=None):
        self.param = param
        self.items = items  # the right-hand side, as written
        self.where = where  # "file:line"
        self.group = group  # zip group name or None
        self.values = []  # strings handed to iommusim


def _strip_comment(line):
    # '#' or ';' at the start or after whitespace starts a comment (as in iommusim's INI).
    m = re.search(r"(^|\s)[#;]", line)
    return line[: m.start()] if m else line


def parse_spec(path):
    """Parse a sweep file; grid values are expanded later (they need parameter units)."""
    spec = Spec()
    spec.path = os.path.abspath(path)
    try:
        with open(path) as f:
            spec.text = f.read()
    except OSError as e:
        raise SpecError(f"cannot read sweep file '{path}': {e.strerror}")
    section = None
    seen = {}
    errors = []
    sweep_keys = {}
    for n, raw in enumerate(spec.text.splitlines(), 1):
        where = f"{path}:{n}"
        line = _strip_comment(raw).strip()
        if not line:
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line)
        if m:
            section = m.group(1)
            if section not in ("sweep", "grid", "set", "plot") and not re.fullmatch(
                r"zip\.[A-Za-z0-9_-]+", section
            ):
                errors.append(
                    f"{where}: unknown section [{section}] (expected [sweep], [set], [grid], "
                    "[zip.NAME] or [plot])"
                )
                section = "?"
            elif section in seen and section != "?":
                errors.append(f"{where}: section [{section}] given twice (first at line {seen[section]})")
            seen.setdefault(section, n)
            continue
        if "=" not in line:
            errors.append(f"{where}: expected 'key = value' or '[section]', not '{line}'")
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        if section is None:
            errors.append(f"{where}: '{key}' is outside any section (start with [sweep])")
            continue
        if section == "?":
            continue
        if not value:
            errors.append(f"{where}: '{key}' has no value")
            continue
        if section == "sweep":
            if key not in ("name", "description", "config", "trace", "iommusim"):
                errors.append(
                    f"{where}: unknown key '{key}' in [sweep] (expected name, description, "
                    "config, trace or iommusim)"
                )
            elif key in sweep_keys:
                errors.append(f"{where}: '{key}' given twice (first at line {sweep_keys[key]})")
            else:
                sweep_keys[key] = n
                _sweep_key(spec, key, value, where, errors)
        elif section == "set":
            spec.fixed.append((key, value, where))
        elif section == "plot":
            if key not in ("x", "lines", "metrics", "cdf", "heatmap"):
                errors.append(
                    f"{where}: unknown key '{key}' in [plot] (expected x, lines, metrics, cdf or heatmap)"
                )
            else:
                spec.plot[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            group = section[4:] if section.startswith("zip.") else None
            spec.axes.append(Axis(key, value, where, group))
    names = {}
    for a in spec.axes:
        if a.param in names:
            errors.append(f"{a.where}: '{a.param}' is swept twice (first at {names[a.param]})")
        names.setdefault(a.param, a.where)
    for p, _, where in spec.fixed:
        if p in names:
            errors.append(f"{where}: '{p}' is both fixed in [set] and swept at {names[p]}")
    if not spec.configs and not spec.traces and not errors:
        errors.append(f"{path}: [sweep] needs 'config = PLATFORM.ini WORKLOAD.ini' or 'trace = FILE'")
    if errors:
        raise SpecError("\n".join(errors))
    if len(spec.traces) > 1:
        # Several traces: the trace is one more axis (values are the files as written).
        a = Axis("trace", ", ".join(spec.traces_written), f"{path}:{sweep_keys['trace']}")
        a.values = list(spec.traces_written)
        spec.axes.insert(0, a)
    return spec


def _sweep_key(spec, key, value, where, errors):
    if key in ("name", "description"):
        setattr(spec, key, value)
    elif key == "iommusim":
        spec.iommusim = _resolve(spec, value, where, errors)
    else:
        files = [v for v in re.split(r"[,\s]+", value) if v]
        resolved = [_resolve(spec, v, where, errors) for v in files]
        if key == "config":
            spec.configs_written, spec.configs = files, resolved
        else:
            spec.mode = "replay"
            spec.traces_written, spec.traces = files, resolved


def _resolve(spec, name, where, errors):
    """A relative file name is looked up next to the sweep file, then in the source tree."""
    if os.path.isabs(name):
        cands = [name]
    else:
        cands = [os.path.join(os.path.dirname(spec.path), name), os.path.join(ROOT, name)]
    for c in cands:
        if os.path.exists(c):
            return os.path.abspath(c)
    errors.append(f"{where}: file '{name}' not found (looked in {' and '.join(os.path.dirname(c) or '.' for c in cands)})")
    return cands[0]


# ---------------------------------------------------------------------------------------------
# Parameters (asked from `iommusim params`)


class ParamInfo:
    def __init__(self, name, default, unit, range_):
        self.name, self.default, self.unit, self.range = name, default, unit, range_

    @property
    def binary(self):
        # iommusim: K/M/G/T are powers of 1024 for byte units, of 1000 otherwise.
        return self.unit.lower() in ("b", "bytes", "byte") or self.unit.endswith("iB")


def query_params(iommusim, configs):
    """Run `iommusim params -c ...` and parse its table: name -> ParamInfo."""
    cmd = [iommusim, "params"]
    for c in configs:
        cmd += ["-c", c]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except OSError as e:
        raise SpecError(f"cannot run '{iommusim}': {e.strerror} (give --iommusim PATH or build it)")
    if r.returncode != 0:
        raise SpecError(f"'{' '.join(cmd)}' failed (exit {r.returncode}):\n{r.stdout}{r.stderr}".rstrip())
    lines = r.stdout.splitlines()
    if not lines or not lines[0].startswith("parameter"):
        raise SpecError(f"unexpected output of '{' '.join(cmd)}' (no 'parameter ... doc' header)")
    header = lines[0]
    cols = [header.index(c) for c in ("default", "unit", "range", "doc")]
    out = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        name = line[: cols[0]].strip()
        default, unit, range_ = (line[cols[i] : cols[i + 1]].strip() for i in range(3))
        out[name] = ParamInfo(name, default, unit, range_)
    return out


_MULT = {"": 0, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4}


def parse_number(text, binary):
    """iommusim's number syntax (docs/config.md) -> Decimal, or None when it is no number."""
    m = re.fullmatch(r"([+-]?)(0x[0-9a-fA-F_]+|0b[01_]+|[0-9][0-9_]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)"
                     r"\s*(Ki|Mi|Gi|Ti|[kKMGT])?", text.strip())
    if not m:
        return None
    sign, digits, suffix = m.group(1), m.group(2).replace("_", ""), m.group(3) or ""
    try:
        if digits.startswith(("0x", "0b")):
            v = Decimal(int(digits, 0))
        else:
            v = Decimal(digits)
    except (ValueError, InvalidOperation):
        return None
    if suffix.endswith("i"):
        v *= Decimal(1024) ** _MULT[suffix[0]]
    elif suffix:
        v *= Decimal(1024 if binary else 1000) ** _MULT[suffix]
    return -v if sign == "-" else v


def format_number(v, binary):
    """A range's value as iommusim reads it back: 4096 bytes -> '4K', others plain."""
    if v == v.to_integral_value():
        v = int(v)
        if binary and v > 0:
            for suffix, power in (("T", 4), ("G", 3), ("M", 2), ("K", 1)):
                if v % (1024**power) == 0:
                    return f"{v // 1024 ** power}{suffix}"
        return str(v)
    return format(v.normalize(), "f")


def check_value(info, value, where):
    """Best effort check of a value against the parameter's declared range (iommusim checks
    it again exactly): enumerations, booleans and numeric bounds. Returns an error or None."""
    rng = info.range
    if not rng:
        return None
    if rng == "true/false":
        if value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return None
        return f"{where}: {info.name}: '{value}' is not a boolean (expected true or false)"
    m = re.fullmatch(r"(\S+)\.\.(\S+)", rng)
    if m:
        lo, hi = parse_number(m.group(1), True), parse_number(m.group(2), True)
        v = parse_number(value, info.binary)
        if v is None:
            return f"{where}: {info.name}: '{value}' is not a number (expected {rng})"
        if lo is not None and hi is not None and not (lo <= v <= hi):
            return f"{where}: {info.name}: '{value}' is out of range (expected {rng})"
        return None
    choices = [c.strip() for c in rng.split(",")]
    if len(choices) > 1 and value not in choices:
        return f"{where}: {info.name}: '{value}' is not one of: {rng}"
    return None


# ---------------------------------------------------------------------------------------------
# Grid expansion


def expand_items(text, binary, where):
    """'a, b, A..B +S, A..B *F' -> list of value strings (ranges inclusive of B when hit)."""
    values = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            raise SpecError(f"{where}: empty value in '{text}'")
        m = re.fullmatch(r"(\S+?)\s*\.\.\s*(\S+?)(?:\s+([+*])\s*(\S+))?", item)
        if not m:
            if ".." in item:
                raise SpecError(f"{where}: bad range '{item}' (expected A..B, A..B +STEP or A..B *FACTOR)")
            values.append(item)
            continue
        lo, hi = parse_number(m.group(1), binary), parse_number(m.group(2), binary)
        op, arg = m.group(3) or "+", m.group(4) or "1"
        step = parse_number(arg, binary if op == "+" else False)
        for name, v in (("start", lo), ("end", hi), ("step" if op == "+" else "factor", step)):
            if v is None:
                raise SpecError(f"{where}: range '{item}': {name} is not a number")
        if hi < lo:
            raise SpecError(f"{where}: range '{item}' ends below its start")
        if op == "+" and step <= 0:
            raise SpecError(f"{where}: range '{item}': the step must be positive")
        if op == "*" and (step <= 1 or lo <= 0):
            raise SpecError(f"{where}: range '{item}': needs a factor above 1 and a positive start")
        v = lo
        out = []
        while v <= hi:
            out.append(v)
            if len(out) > MAX_RANGE_VALUES:
                raise SpecError(f"{where}: range '{item}' has more than {MAX_RANGE_VALUES} values")
            v = v + step if op == "+" else v * step
        integral = lo == lo.to_integral_value() and hi == hi.to_integral_value() and (
            op == "*" or step == step.to_integral_value())
        if integral and any(x != x.to_integral_value() for x in out):
            raise SpecError(f"{where}: range '{item}' gives non-integer values ({format_number(out[-1], False)})")
        values += [format_number(x, binary) for x in out]
    if len(set(values)) != len(values):
        raise SpecError(f"{where}: a value is repeated in '{text}'")
    return values


def resolve(spec, params):
    """Expand every axis and check every name and value; all errors together."""
    errors = []
    for p, value, where in spec.fixed:
        if p not in params:
            errors.append(f"{where}: unknown parameter '{p}'{_closest(p, params)}")
        else:
            e = check_value(params[p], value, where)
            if e:
                errors.append(e)
    for a in spec.axes:
        if a.param == "trace":
            continue
        if a.param not in params:
            errors.append(f"{a.where}: unknown parameter '{a.param}'{_closest(a.param, params)}")
            continue
        try:
            a.values = expand_items(a.items, params[a.param].binary, a.where)
        except SpecError as e:
            errors.append(str(e))
            continue
        for v in a.values:
            e = check_value(params[a.param], v, a.where)
            if e:
                errors.append(e)
    groups = {}
    for a in spec.axes:
        if a.group:
            groups.setdefault(a.group, []).append(a)
    for g, axes in groups.items():
        lens = {len(a.values) for a in axes if a.values}
        if len(lens) > 1:
            errors.append(
                f"{axes[0].where}: [zip.{g}]: zipped axes need the same number of values: "
                + ", ".join(f"{a.param} has {len(a.values)}" for a in axes)
            )
    if errors:
        raise SpecError("\n".join(errors))


def _closest(name, params):
    import difflib

    near = difflib.get_close_matches(name, list(params), n=3, cutoff=0.6)
    return f"; closest: {', '.join(near)}" if near else " (see `iommusim params`)"


def points(spec):
    """The grid: a list of ordered {param: value} dicts; the product of the plain axes and
    the zipped groups, in file order, the last axis varying fastest."""
    dims = []  # each: list of tuples of (param, value)
    done = set()
    for a in spec.axes:
        if a.group:
            if a.group in done:
                continue
            done.add(a.group)
            members = [b for b in spec.axes if b.group == a.group]
            dims.append([tuple((b.param, b.values[i]) for b in members) for i in range(len(a.values))])
        else:
            dims.append([((a.param, v),) for v in a.values])
    combos = [()]
    for d in dims:
        combos = [c + choice for c in combos for choice in d]
        if len(combos) > MAX_POINTS:
            raise SpecError(f"the grid has more than {MAX_POINTS} points")
    return [dict(c) for c in combos]


# ---------------------------------------------------------------------------------------------
# Points


def point_key(spec, values):
    """What identifies a point across restarts: the run description and its values."""
    desc = {
        "mode": spec.mode,
        "configs": spec.configs_written,
        "traces": spec.traces_written if len(spec.traces) == 1 else [],
        "fixed": [[p, v] for p, v, _ in spec.fixed],
        "values": [[k, v] for k, v in values.items()],
    }
    return hashlib.sha1(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:10]


def point_argv(spec, iommusim, values):
    """The exact command of a point; it runs inside the point's directory (--out .)."""
    argv = [iommusim, spec.mode]
    if spec.mode == "replay":
        trace = values.get("trace")
        if trace is not None:
            trace = spec.traces[spec.traces_written.index(trace)]
        else:
            trace = spec.traces[0]
        argv.append(trace)
    argv.append("-q")
    for c in spec.configs:
        argv += ["-c", c]
    for p, v, _ in spec.fixed:
        argv += ["--set", f"{p}={v}"]
    for p, v in values.items():
        if p != "trace":
            argv += ["--set", f"{p}={v}"]
    argv += ["--out", "."]
    return argv


def build_plan(spec, iommusim):
    pts = []
    for i, values in enumerate(points(spec)):
        name = f"p{i:04d}-{point_key(spec, values)}"
        pts.append({"name": name, "index": i, "values": values, "argv": point_argv(spec, iommusim, values)})
    return {
        "version": 1,
        "name": spec.name or os.path.splitext(os.path.basename(spec.path))[0],
        "description": spec.description,
        "spec_path": spec.path,
        "mode": spec.mode,
        "axes": [a.param for a in spec.axes],
        "zip": {a.param: a.group for a in spec.axes if a.group},
        "units": {},
        "plot": spec.plot,
        "points": pts,
    }


def write_atomic(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prepare_dir(out, spec, plan):
    """Create DIR with the sweep's plan (sweep.json) and a copy of its file (spec.ini)."""
    os.makedirs(os.path.join(out, "points"), exist_ok=True)
    os.makedirs(os.path.join(out, "failed"), exist_ok=True)
    write_atomic(os.path.join(out, "spec.ini"), spec.text)
    write_atomic(os.path.join(out, "sweep.json"), json.dumps(plan, indent=1) + "\n")


def load_plan(out):
    path = os.path.join(out, "sweep.json")
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise SpecError(f"cannot read '{path}': {e.strerror} (is '{out}' a sweep directory?)")
    except json.JSONDecodeError as e:
        raise SpecError(f"'{path}' is not valid JSON: {e}")


def is_done(out, name):
    return os.path.exists(os.path.join(out, "points", name, "point.json"))


def _tmp_prefix():
    return f".tmp-{socket.gethostname()}-{os.getpid()}-"


def clean_stale_tmp(out):
    """Remove temporary point directories left by dead processes of this host (a killed
    sweep). Directories of live processes (another sweep task) are left alone."""
    host = socket.gethostname()
    for sub in ("points", "failed"):
        d = os.path.join(out, sub)
        if not os.path.isdir(d):
            continue
        for entry in os.listdir(d):
            m = re.match(r"\.tmp-(.+)-(\d+)-", entry)
            if not m or m.group(1) != host:
                continue
            try:
                os.kill(int(m.group(2)), 0)
                continue  # alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            shutil.rmtree(os.path.join(d, entry), ignore_errors=True)


class PointRun:
    """One point being run: started by start(), completed by finish(returncode)."""

    def __init__(self, out, point, env_iommusim=None):
        self.out, self.point = out, point
        self.argv = list(point["argv"])
        if env_iommusim:
            self.argv[0] = env_iommusim
        self.tmp = os.path.join(out, "points", _tmp_prefix() + point["name"])
        self.proc = None
        self.start_time = None

    def start(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        with open(os.path.join(self.tmp, "cmd.txt"), "w") as f:
            f.write("# run inside this directory:\n" + shlex.join(self.argv) + "\n")
        self.log = open(os.path.join(self.tmp, "log.txt"), "w")
        self.start_time = time.monotonic()
        self.proc = subprocess.Popen(self.argv, cwd=self.tmp, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def finish(self, rc):
        """Move the point to points/NAME (success) or failed/NAME; returns (ok, error)."""
        self.log.close()
        wall = time.monotonic() - self.start_time
        error = None
        stats_path = os.path.join(self.tmp, "stats.json")
        if rc != 0:
            error = f"exit status {rc}" if rc > 0 else f"killed by signal {-rc}"
        elif not os.path.exists(stats_path):
            error = "no stats.json written"
        else:
            try:
                stats = iommusim_stats.load(stats_path)
                if stats.get("run", {}).get("interrupted") == "true":
                    error = "interrupted"
            except (OSError, ValueError) as e:
                error = f"unreadable stats.json: {e}"
        if error:
            with open(os.path.join(self.tmp, "log.txt")) as f:
                tail = f.read().strip().splitlines()[-5:]
            if tail:
                error += ": " + " | ".join(tail)
        info = {"name": self.point["name"], "index": self.point["index"], "values": self.point["values"],
                "argv": self.argv, "status": "failed" if error else "done", "error": error,
                "wall_s": round(wall, 3), "host": socket.gethostname()}
        write_atomic(os.path.join(self.tmp, "point.json"), json.dumps(info, indent=1) + "\n")
        dest = os.path.join(self.out, "failed" if error else "points", self.point["name"])
        _replace_dir(self.tmp, dest)
        if not error:
            # A point that now succeeded is no longer failed.
            old = os.path.join(self.out, "failed", self.point["name"])
            if os.path.exists(old):
                _replace_dir(None, old)
        return (not error, error)

    def discard(self):
        if self.log and not self.log.closed:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _replace_dir(src, dest):
    """Put directory src at dest (or just remove dest when src is None), never leaving a
    half-written dest: the old one is first renamed away, then removed."""
    if os.path.exists(dest):
        trash = f"{os.path.dirname(dest)}/{_tmp_prefix()}trash-{os.path.basename(dest)}"
        os.rename(dest, trash)
        shutil.rmtree(trash, ignore_errors=True)
    if src is not None:
        os.rename(src, dest)


# ---------------------------------------------------------------------------------------------
# Running


class Progress:
    def __init__(self, total, already, todo, stream=sys.stderr):
        self.total, self.already, self.todo = total, already, todo
        self.done = self.failed = 0
        self.t0 = time.monotonic()
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def update(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < (0.5 if self.tty else 10.0):
            return
        self.last = now
        el = now - self.t0
        n = self.done + self.failed
        rate = n / el if el > 0 else 0.0
        left = self.todo - n
        eta = f"{_duration(left / rate)}" if rate > 0 else "?"
        line = (f"[{self.already + n}/{self.total}] {n}/{self.todo} run this time, "
                f"{rate:.2f} points/s, {self.failed} failed, about {eta} left")
        if self.tty:
            self.stream.write("\r" + line + "\033[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self):
        if self.tty:
            self.stream.write("\n")


def _duration(s):
    s = int(s + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Interrupted(Exception):
    pass


def run_points(out, plan, todo, jobs, iommusim=None, progress=None, on_done=None):
    """Run the given points, up to `jobs` at a time. Ctrl-C (SIGINT) or SIGTERM stops: the
    running points are stopped and discarded (they rerun next time), and Interrupted is
    raised. Returns the list of (name, error) of points that failed."""
    failures = []
    queue = list(todo)
    running = {}
    stop = []

    def on_signal(signum, _frame):
        stop.append(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while (queue or running) and not stop:
            while queue and len(running) < jobs and not stop:
                pr = PointRun(out, queue.pop(0), iommusim)
                pr.start()
                running[pr.proc.pid] = pr
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            pr = running.pop(pid, None)
            if pr is None:
                continue
            if stop:
                # A point that ended because of the interrupt is not a result.
                pr.discard()
                break
            ok, err = pr.finish(os.waitstatus_to_exitcode(status))
            if progress:
                if ok:
                    progress.done += 1
                else:
                    progress.failed += 1
                progress.update(force=not ok)
            if not ok:
                failures.append((pr.point["name"], err))
            if on_done:
                on_done()
    finally:
        for pr in running.values():
            try:
                pr.proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        for pr in running.values():
            try:
                pr.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pr.proc.kill()
                pr.proc.wait()
            pr.discard()
        for s, h in old.items():
            signal.signal(s, h)
    if stop:
        raise Interrupted()
    return failures


# ---------------------------------------------------------------------------------------------
# Results


def rebuild_results(out, plan=None):
    """Write DIR/results.csv from the point directories: one row per point that finished or
    failed, in grid order. Columns: swept parameters, headline statistics, point, status.
    Returns (rows_done, failed [(name, error)], missing [names])."""
    plan = plan or load_plan(out)
    axes = plan["axes"]
    rows, cols, failed, missing = [], [], [], []
    seen_cols = set()
    for p in plan["points"]:
        values = p["values"]
        done_dir = os.path.join(out, "points", p["name"])
        fail_dir = os.path.join(out, "failed", p["name"])
        if os.path.exists(os.path.join(done_dir, "point.json")):
            stats = iommusim_stats.load(os.path.join(done_dir, "stats.json"))
            head = iommusim_stats.headline(stats)
            for k in head:
                if k not in seen_cols:
                    seen_cols.add(k)
                    cols.append(k)
            rows.append((p, head, "done"))
        elif os.path.exists(os.path.join(fail_dir, "point.json")):
            with open(os.path.join(fail_dir, "point.json")) as f:
                failed.append((p["name"], json.load(f).get("error")))
            rows.append((p, {}, "failed"))
        else:
            missing.append(p["name"])
    lines = []
    tmp = os.path.join(out, f"results.csv.tmp{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(axes + cols + ["point", "status"])
        for p, head, status in rows:
            w.writerow([p["values"].get(a, "") for a in axes] + [_cell(head.get(c)) for c in cols]
                       + [p["name"], status])
            lines.append(p["name"])
    os.replace(tmp, os.path.join(out, "results.csv"))
    return sum(1 for r in rows if r[2] == "done"), failed, missing


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) < 1e15 else str(v)
    return str(v)


def summary(out, done, failed, missing, stream=sys.stdout):
    total = done + len(failed) + len(missing)
    stream.write(f"{done} of {total} points done, {len(failed)} failed, {len(missing)} not run; "
                 f"results: {os.path.join(out, 'results.csv')}\n")
    for name, err in failed:
        stream.write(f"  failed {name}: {err}  (see {os.path.join(out, 'failed', name, 'log.txt')})\n")


# ---------------------------------------------------------------------------------------------
# Other engines


def emit_parallel(out, plan, python):
    """One line per unfinished point; each runs it exactly as the local runner does."""
    path = os.path.join(out, "jobs.txt")
    lines = [
        f"{shlex.quote(python)} {shlex.quote(SWEEP_SCRIPT)} --run-point {shlex.quote(os.path.abspath(out))} {p['index']}"
        for p in plan["points"] if not is_done(out, p["name"])
    ]
    write_atomic(path, "".join(line + "\n" for line in lines))
    return path, len(lines)


def emit_slurm(out, plan, python, chunk, limit, partition=None, time_limit=None, extra=()):
    """A job-array script: task i runs points [i*chunk, (i+1)*chunk) (finished ones are
    skipped), at most `limit` tasks at a time."""
    n = len(plan["points"])
    tasks = (n + chunk - 1) // chunk
    d = os.path.abspath(out)
    os.makedirs(os.path.join(d, "slurm"), exist_ok=True)
    lines = [
        "#!/bin/bash",
        f"# iommusim sweep '{plan['name']}': {n} points in {tasks} array tasks of {chunk}.",
        "# Submit with: sbatch " + shlex.quote(os.path.join(d, "sweep.sbatch")),
        f"# then, when every task has ended: {SWEEP_SCRIPT} --merge {d}",
        f"#SBATCH --job-name=iommusim-{re.sub(r'[^A-Za-z0-9_.-]', '_', plan['name'])}",
        f"#SBATCH --array=0-{tasks - 1}%{limit}",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=1",
        f"#SBATCH --output={d}/slurm/%A_%a.out",
    ]
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    if time_limit:
        lines.append(f"#SBATCH --time={time_limit}")
    lines += [f"#SBATCH {e}" for e in extra]
    lines += [
        "set -eu",
        f"first=$((SLURM_ARRAY_TASK_ID * {chunk}))",
        f"exec {shlex.quote(python)} {shlex.quote(SWEEP_SCRIPT)} --run-point {shlex.quote(d)} "
        f"$(seq $first $((first + {chunk} - 1)) | awk '$1 < {n}')",
    ]
    path = os.path.join(d, "sweep.sbatch")
    write_atomic(path, "\n".join(lines) + "\n")
    os.chmod(path, 0o755)
    return path, tasks
