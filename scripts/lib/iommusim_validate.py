#!/usr/bin/env python3
"""Validation of iommusim against published hardware measurements (docs/validation.md).

  iommusim_validate.py run --iommusim BIN [--out DIR] [--jobs N] [--quick] [--no-docs]
        [--check-baseline] [--update-baseline]
      run every validation experiment the simulator can run (the sweep runner,
      scripts/lib/iommusim_sweep.py), write DIR/validation.csv and the plots, regenerate
      docs/validation.md; --quick runs only the CI subset (the baseline's points)
  iommusim_validate.py check CSV [--baseline FILE]
      compare a validation.csv with the recorded baseline (exit 1 if a point moved beyond
      its tolerance)
  iommusim_validate.py compare --iommusim BIN --stats STATS.json [-- RUN ARGS...]
      one line per measured quantity of the run's experiment (scripts/run's summary), after a
      companion run with one DMA in flight for the unloaded latency

The measured data is tests/validation/measured.csv (with its sources); the CI baseline is
tests/validation/baseline.csv. Exit status: 0 fine, 1 a run failed or a point moved, 2 bad
input."""
import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iommusim_sweep as sw  # noqa: E402

ROOT = sw.ROOT
MEASURED = os.path.join(ROOT, "tests", "validation", "measured.csv")
BASELINE = os.path.join(ROOT, "tests", "validation", "baseline.csv")
DOC = os.path.join(ROOT, "docs", "validation.md")
DOC_IMG = os.path.join(ROOT, "docs", "img", "validation")
CONFIGS = ["platforms/broadwell-dmabench.ini", "workloads/dmabench-rd64-random.ini"]
# The whole bus address space bypasses the IOMMU (a structural key, so a config file).
NO_IOMMU = "tests/validation/no-iommu.ini"
COLUMNS = ["experiment", "point", "metric", "measured", "simulated", "error_pct"]

WINDOWS = ["4K", "8K", "16K", "32K", "64K", "128K", "256K", "512K", "1M", "2M", "4M", "8M",
           "16M", "32M", "64M"]
QUICK_WINDOWS = ["4K", "512K", "2M", "64M"]
# (experiment, op, size): 64 B reads are the calibration series; the rest are predictions.
SERIES = [("pciebench-rd64", "read", 64), ("pciebench-rd128", "read", 128),
          ("pciebench-rd256", "read", 256), ("pciebench-rd512", "read", 512),
          ("pciebench-wr64", "write", 64), ("pciebench-wr256", "write", 256)]
BW_COUNT = 200000  # the workload's own count: the default experiment of scripts/run
LAT_COUNT = 10000  # one DMA in flight: enough for a stable median
# F&S (Rubin et al., SOSP 2024): DCTCP RX through a Linux-like NIC in strict mode. `flows` is
# the experiment's parameter (5 the calibration point, the others held out); one queue and
# core per flow while the Xeon Gold 6234's 8 cores last.
FS_CONFIGS = ["platforms/fs-cascadelake.ini", "workloads/fs-dctcp-rx.ini"]
FS_EXP = "fs-rx-strict"
FS_FLOWS = [1, 2, 5, 8]  # queues = flows
FS_FLOWS_SHARED = [10, 16]  # queues = 8: several flows per core
FS_CORES = 8
FS_QUICK_FLOWS = [5]
FS_L0_NS, FS_LM_NS, FS_P_BYTES = 65.0, 197.0, 4096  # F&S's model T = p / (l0 + M * lm)
METRIC_UNITS = {"bandwidth_gbps": "Gb/s", "latency_p50_ns": "ns", "miss_added_latency_ns": "ns",
                "mtransfers_per_s": "M transfers/s", "iotlb_misses_per_4kb": "per 4 KB",
                "ptcache_l1_misses_per_4kb": "per 4 KB", "ptcache_l2_misses_per_4kb": "per 4 KB",
                "ptcache_l3_misses_per_4kb": "per 4 KB", "iommu_mem_reads_per_4kb": "per 4 KB",
                "model_throughput_gbps": "Gb/s", "rx_throughput_gbps": "Gb/s",
                "rx_drop_pct": "%"}
FS_METRICS = {"iotlb_misses_per_4kb": ("iotlb", "misses"),
              "ptcache_l1_misses_per_4kb": ("walk_cache", "l4_misses"),
              "ptcache_l2_misses_per_4kb": ("walk_cache", "l3_misses"),
              "ptcache_l3_misses_per_4kb": ("walk_cache", "l2_misses"),
              "iommu_mem_reads_per_4kb": ("walker", "memory_reads")}


class InputError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Data files


def read_commented_csv(path, required):
    """Rows of a CSV whose lines starting with # are comments; checks the header."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InputError(f"cannot read '{path}': {e.strerror}")
    body = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
    if not body:
        raise InputError(f"{path}: no header line (expected {','.join(required)})")
    header_line, header = body[0][0], next(csv.reader([body[0][1]]))
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}:{header_line}: header lacks {', '.join(missing)} "
                         f"(expected {','.join(required)})")
    rows = []
    for n, ln in body[1:]:
        cells = next(csv.reader([ln]))
        if len(cells) != len(header):
            raise InputError(f"{path}:{n}: {len(cells)} fields, expected {len(header)}")
        rows.append((n, dict(zip(header, cells))))
    return rows


def number(text, where):
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{where}: '{text}' is not a number")
    if v != v or v in (float("inf"), float("-inf")):
        raise InputError(f"{where}: '{text}' is not a finite number")
    return v


def load_measured(path=MEASURED):
    """{(experiment, point, metric): (value, source, note)}"""
    out = {}
    for n, r in read_commented_csv(path, ["experiment", "point", "metric", "measured", "source"]):
        key = (r["experiment"], r["point"], r["metric"])
        if key in out:
            raise InputError(f"{path}:{n}: {'/'.join(key)} is given twice")
        if r["metric"] not in METRIC_UNITS:
            raise InputError(f"{path}:{n}: unknown metric '{r['metric']}' "
                             f"(expected one of {', '.join(METRIC_UNITS)})")
        out[key] = (number(r["measured"], f"{path}:{n}"), r["source"], r.get("note", ""))
    return out


def load_baseline(path=BASELINE):
    """{(experiment, point, metric): (value, tolerance_pct, resolution)}: the resolution is half
    a unit of the value's last written digit (the baseline is rounded to it), so a point
    recorded as 0.00 accepts anything that rounds to it."""
    out = {}
    for n, r in read_commented_csv(path, ["experiment", "point", "metric", "simulated",
                                          "tolerance_pct"]):
        tol = number(r["tolerance_pct"], f"{path}:{n}")
        if tol <= 0:
            raise InputError(f"{path}:{n}: tolerance_pct must be above 0, got {tol:g}")
        text = r["simulated"].strip()
        decimals = len(text.split(".")[1]) if "." in text and "e" not in text.lower() else 0
        out[(r["experiment"], r["point"], r["metric"])] = (number(text, f"{path}:{n}"), tol,
                                                           0.5 * 10.0 ** -decimals)
    return out


# ---------------------------------------------------------------------------------------------
# Runs (one sweep of scripts/sweep's runner per group of points)


def _sweep_text(name, fixed, zipped, grid, extra_configs=(), base=None):
    configs = " ".join((base or CONFIGS) + list(extra_configs))
    lines = ["[sweep]", f"name = {name}", f"config = {configs}", "", "[set]"]
    lines += [f"{k} = {v}" for k, v in fixed]
    if zipped:
        lines += ["", "[zip.series]"] + [f"{k} = {', '.join(map(str, v))}" for k, v in zipped]
    if grid:
        lines += ["", "[grid]"] + [f"{k} = {', '.join(map(str, v))}" for k, v in grid]
    return "\n".join(lines) + "\n"


def plan_sweeps(quick):
    """(group, sweep file text) of every group of runs: the sweep file repeats no value of
    an axis, so one sweep per operation, its sizes and windows a grid."""
    series = SERIES[:1] if quick else SERIES
    windows = QUICK_WINDOWS if quick else WINDOWS
    ops = list(dict.fromkeys(op for _, op, _ in series))
    out = []
    for op in ops:
        sizes = ("system.bench0.size", [size for _, o, size in series if o == op])
        out.append((f"bandwidth-{op}", _sweep_text(
            f"validation-bandwidth-{op}", [("system.bench0.op", op),
                                           ("system.bench0.count", BW_COUNT)],
            [], [sizes, ("system.bench0.window", windows)])))
        out.append((f"noiommu-{op}", _sweep_text(
            f"validation-noiommu-{op}", [("system.bench0.op", op),
                                         ("system.bench0.count", BW_COUNT),
                                         ("system.bench0.window", "64M")],
            [], [sizes], [NO_IOMMU])))
    lat = [("system.bench0.count", LAT_COUNT), ("system.bench0.outstanding", 1)]
    out.append(("latency", _sweep_text("validation-latency", lat, [],
                                       [("system.bench0.window",
                                         ["4K", "64M"] if quick else WINDOWS)])))
    out.append(("noiommu-latency", _sweep_text("validation-noiommu-latency",
                                               lat + [("system.bench0.window", "64M")], [], [],
                                               [NO_IOMMU])))
    flows = FS_QUICK_FLOWS if quick else FS_FLOWS
    out.append(("fs", _sweep_text("validation-fs", [], [("system.nic0.flows", flows),
                                                         ("system.nic0.queues", flows)], [],
                                  base=FS_CONFIGS)))
    if not quick:
        out.append(("fs-shared", _sweep_text(
            "validation-fs-shared", [("system.nic0.queues", FS_CORES)], [],
            [("system.nic0.flows", FS_FLOWS_SHARED)], base=FS_CONFIGS)))
    return out


def run_sweeps(iommusim, out, jobs, quick, quiet):
    """Run every group from scratch (a point's name does not depend on the binary, so old
    points would be reused after a model change). Returns {group: [(values, stats)]}."""
    runs = os.path.join(out, "runs")
    shutil.rmtree(runs, ignore_errors=True)
    os.makedirs(runs)
    results = {}
    for group, text in plan_sweeps(quick):
        d = os.path.join(runs, group)
        spec_path = os.path.join(runs, f"{group}.ini")
        with open(spec_path, "w") as f:
            f.write(text)
        spec = sw.parse_spec(spec_path)
        sw.resolve(spec, sw.query_params(iommusim, spec.configs))
        plan = sw.build_plan(spec, iommusim)
        sw.prepare_dir(d, spec, plan)
        if not quiet:
            print(f"validate: {group}: {len(plan['points'])} runs", file=sys.stderr)
        failures = sw.run_points(d, plan, plan["points"], jobs)
        if failures:
            for name, err in failures:
                print(f"validate: {group} {name} failed: {err} "
                      f"(see {os.path.join(d, 'failed', name, 'log.txt')})", file=sys.stderr)
            raise RuntimeError(f"{len(failures)} validation runs failed")
        sw.rebuild_results(d, plan)
        rows = []
        for p in plan["points"]:
            with open(os.path.join(d, "points", p["name"], "stats.json")) as f:
                rows.append((dict(p["values"]), json.load(f)))
        results[group] = rows
    return results


def bench_metrics(stats):
    """What pcie-bench reports of one dma-bench run, and whether the IOMMU translated."""
    sysd = stats["system"]
    b = sysd["bench0"]
    router = sysd["router"]
    iommu = "on" if router["translated"] and not router["bypassed"] else (
        "off" if router["bypassed"] and not router["translated"] else "mixed")
    elapsed = b["elapsed_ns"]
    return {"bandwidth_gbps": b["bandwidth"] * 8 / 1e9,
            "latency_p50_ns": float(b["latency"]["p50"]),
            "mtransfers_per_s": b["transfers"] / elapsed * 1e3 if elapsed else 0.0,
            "faults": b["faults"], "iommu": iommu}


def fs_model_gbps(reads_per_4kb):
    """F&S's analytic throughput for M IOMMU memory reads per 4 KB."""
    return FS_P_BYTES * 8 / (FS_L0_NS + reads_per_4kb * FS_LM_NS)


def fs_metrics(stats, where):
    """F&S's counts per 4 KB received, the run's throughput and drops, and F&S's model at the
    simulated memory reads."""
    sysd = stats["system"]
    unit, nic = sysd["iommu0"], sysd["nic0"]
    rx = nic["rx"]
    if nic["faults"] or unit["faults"] or unit["stale_hits"] or not rx["bytes"]:
        raise RuntimeError(f"{where}: {nic['faults']} DMA faults, {unit['stale_hits']} stale "
                           f"IOTLB hits, {rx['bytes']} bytes received (expected no faults, no "
                           f"stale hits, traffic): the run is not the experiment")
    per = FS_P_BYTES / rx["bytes"]
    m = {k: unit[g][c] * per for k, (g, c) in FS_METRICS.items()}
    m["model_throughput_gbps"] = fs_model_gbps(m["iommu_mem_reads_per_4kb"])
    m["rx_throughput_gbps"] = rx["throughput"] / 1e9
    m["rx_drop_pct"] = 100.0 * (rx["offered"] - rx["packets"]) / rx["offered"]
    return m


def simulated_rows(results):
    """{(experiment, point, metric): value} from the runs."""
    sim = {}
    exp_of = {(op, size): e for e, op, size in SERIES}

    def check(m, want, what):
        if m["faults"] or m["iommu"] != want:
            raise RuntimeError(f"{what}: {m['faults']} faults, IOMMU {m['iommu']} (expected "
                               f"no faults, IOMMU {want}): the run is not the experiment")

    def group(prefix):
        return [(dict(v, op=g.split("-", 1)[1]), st) for g, rows in results.items()
                if g.startswith(prefix + "-") for v, st in rows]

    for values, stats in group("bandwidth"):
        e = exp_of[(values["op"], int(values["system.bench0.size"]))]
        w = values["system.bench0.window"]
        m = bench_metrics(stats)
        check(m, "on", f"{e} {w}")
        sim[(e, w, "bandwidth_gbps")] = m["bandwidth_gbps"]
        if w == "64M":
            sim[(e, w, "mtransfers_per_s")] = m["mtransfers_per_s"]
    for values, stats in group("noiommu"):
        if values["op"] == "latency":
            continue
        e = exp_of[(values["op"], int(values["system.bench0.size"]))]
        m = bench_metrics(stats)
        check(m, "off", f"{e}-noiommu")
        sim[(e + "-noiommu", "64M", "bandwidth_gbps")] = m["bandwidth_gbps"]
    for values, stats in results["latency"]:
        w = values["system.bench0.window"]
        m = bench_metrics(stats)
        check(m, "on", f"latency {w}")
        sim[("pciebench-rd64", w, "latency_p50_ns")] = m["latency_p50_ns"]
    for _, stats in results["noiommu-latency"]:
        m = bench_metrics(stats)
        check(m, "off", "latency without IOMMU")
        sim[("pciebench-rd64-noiommu", "64M", "latency_p50_ns")] = m["latency_p50_ns"]
    for g in ("fs", "fs-shared"):
        for values, stats in results.get(g, []):
            point = f"flows={values['system.nic0.flows']}"
            for metric, v in fs_metrics(stats, f"{FS_EXP} {point}").items():
                sim[(FS_EXP, point, metric)] = v
    lat = {k[1]: v for k, v in sim.items() if k[0] == "pciebench-rd64" and k[2] == "latency_p50_ns"}
    if "4K" in lat and "64M" in lat:
        sim[("pciebench-rd64", "64M", "miss_added_latency_ns")] = lat["64M"] - lat["4K"]
    return sim


# ---------------------------------------------------------------------------------------------
# The table


def fmt_value(metric, v):
    if v is None:
        return ""
    if metric.endswith("_ns"):
        return f"{v:.0f}"
    return f"{v:.2f}"


def error_pct(measured, simulated):
    if measured is None or simulated is None or measured == 0:
        return None
    return 100.0 * (simulated - measured) / measured


def _order(key):
    exps = [e for e, _, _ in SERIES]
    e, point, metric = key
    base = e.replace("-noiommu", "")
    ei = exps.index(base) if base in exps else len(exps)
    pi = WINDOWS.index(point) if point in WINDOWS else (
        int(point.split("=")[1]) if point.startswith("flows=") else -1)
    mi = list(METRIC_UNITS).index(metric) if metric in METRIC_UNITS else 99
    return (ei, e.endswith("-noiommu"), e, mi, pi, point)


def build_table(measured, sim):
    """Rows of validation.csv: every simulated point, and every measured point (simulated
    left empty where the simulator cannot run it)."""
    keys = sorted(set(measured) | set(sim), key=_order)
    rows = []
    for k in keys:
        m = measured[k][0] if k in measured else None
        s = sim.get(k)
        err = error_pct(m, s)
        rows.append({"experiment": k[0], "point": k[1], "metric": k[2],
                     "measured": "" if m is None else f"{m:g}", "simulated": fmt_value(k[2], s),
                     "error_pct": "" if err is None else f"{err:+.1f}",
                     "_m": m, "_s": s, "_err": err})
    return rows


def write_csv(path, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([r[c] for c in COLUMNS])
    with open(path, "w") as f:
        f.write(buf.getvalue())


def read_validation_csv(path):
    out = {}
    for n, r in read_commented_csv(path, COLUMNS):
        if r["simulated"] != "":
            out[(r["experiment"], r["point"], r["metric"])] = number(r["simulated"], f"{path}:{n}")
    return out


def check_baseline(sim, baseline):
    """Lines describing each baseline point, and the number outside its tolerance."""
    lines, bad = [], 0
    for key, (base, tol, res) in baseline.items():
        name = "/".join(key)
        if key not in sim:
            lines.append(f"FAIL {name}: not in this run (baseline {base:g})")
            bad += 1
            continue
        v = sim[key]
        d = 100.0 * (v - base) / base if base else (0.0 if v == base else float("inf"))
        ok = abs(d) <= tol or abs(v - base) <= res
        bad += not ok
        lines.append(f"{'ok  ' if ok else 'FAIL'} {name}: {v:g} against baseline {base:g} "
                     f"({d:+.2f}%, tolerance {tol:g}%)")
    return lines, bad


def write_baseline(path, sim, keys, tol=3.0):
    head = """# CI baseline of the reduced validation (tests/e2e/validation.py, docs/validation.md):
# today's simulated values of the calibration points it runs, each with the relative
# tolerance beyond which the test fails. These are NOT the hardware values (those are in
# measured.csv): the model is not calibrated yet, so this only guards against unnoticed
# drift. Calibration (and any change that moves these points on purpose) re-baselines it
# with `scripts/validate --quick --update-baseline`; say why in the commit.
"""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["experiment", "point", "metric", "simulated", "tolerance_pct"])
    for k in sorted(keys, key=_order):
        w.writerow(list(k) + [fmt_value(k[2], sim[k]), f"{tol:g}"])
    with open(path, "w") as f:
        f.write(head + buf.getvalue())


# ---------------------------------------------------------------------------------------------
# Plots


def window_bytes(w):
    return int(w[:-1]) * (1024 if w[-1] == "K" else 1024 * 1024)


def make_plots(rows, outdir):
    try:
        import matplotlib
    except ImportError:
        raise InputError(f"matplotlib is missing for {sys.executable} (Debian: apt-get install "
                         f"python3-matplotlib), or give --no-plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    os.makedirs(outdir, exist_ok=True)
    by = {}
    for r in rows:
        by.setdefault((r["experiment"], r["metric"]), []).append(r)
    files = []

    def axis_windows(ax, windows):
        ax.set_xscale("log", base=2)
        ticks = [window_bytes(w) for w in windows]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([w + "iB" for w in windows], rotation=45)
        ax.set_xlabel("window: host buffer the random accesses fall in (bytes, log scale)")
        ax.grid(True, alpha=0.3)

    def curve(ax, rs, which, **kw):
        pts = [(window_bytes(r["point"]), r[which]) for r in rs
               if r[which] is not None and r["point"] in WINDOWS]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], **kw)

    def save(fig, name):
        path = os.path.join(outdir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        files.append(path)

    # 1. The calibration series: bandwidth against window, measured and simulated.
    rs = by.get(("pciebench-rd64", "bandwidth_gbps"), [])
    if rs:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        curve(ax, rs, "_m", marker="o", color="black", label="measured (pcie-bench)")
        curve(ax, rs, "_s", marker="s", color="tab:blue", label="iommusim")
        for r in by.get(("pciebench-rd64-noiommu", "bandwidth_gbps"), []):
            if r["_m"] is not None:
                ax.axhline(r["_m"], color="black", ls=":", label="measured, no IOMMU (64 MiB)")
            if r["_s"] is not None:
                ax.axhline(r["_s"], color="tab:blue", ls=":", label="iommusim, no IOMMU (64 MiB)")
        axis_windows(ax, WINDOWS)
        ax.set_ylabel("bandwidth (Gb/s)")
        ax.set_ylim(bottom=0)
        ax.set_title("64 B random DMA reads, IOMMU on, 4 KiB pages")
        ax.legend(fontsize=8)
        save(fig, "pciebench-rd64-bandwidth.png")
    # 2. Unloaded latency against window.
    rs = by.get(("pciebench-rd64", "latency_p50_ns"), [])
    if rs:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        curve(ax, rs, "_m", marker="o", color="black", ls="none", label="measured (pcie-bench, approx.)")
        curve(ax, rs, "_s", marker="s", color="tab:blue", label="iommusim")
        axis_windows(ax, WINDOWS)
        ax.set_ylabel("median latency, one DMA in flight (ns)")
        ax.set_ylim(bottom=0)
        ax.set_title("64 B random DMA reads: unloaded latency")
        ax.legend(fontsize=8)
        save(fig, "pciebench-rd64-latency.png")
    # 3. Predictions: the series without measurements.
    pred = [(e, op, size) for e, op, size in SERIES[1:] if (e, "bandwidth_gbps") in by]
    if pred:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for e, op, size in [SERIES[0]] + pred:
            note = " (calibration series)" if e == SERIES[0][0] else ""
            curve(ax, by[(e, "bandwidth_gbps")], "_s", marker=".",
                  label=f"iommusim {op} {size} B{note}")
        axis_windows(ax, WINDOWS)
        ax.set_ylabel("bandwidth (Gb/s)")
        ax.set_ylim(bottom=0)
        ax.set_title("Predictions (held-out points: no measurement used)")
        ax.legend(fontsize=8)
        save(fig, "pciebench-predictions.png")
    # 4. F&S per-4-KB counts: measured bars, simulated bars where available.
    fs = [r for r in rows if r["experiment"] == FS_EXP and r["point"] == "flows=5"
          and r["metric"] in FS_METRICS]
    if fs:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        xs = range(len(fs))
        ax.bar([x - 0.2 for x in xs], [r["_m"] or 0 for r in fs], 0.4, color="black",
               label="measured (F&S, 5 flows)")
        sim_ok = [r for r in fs if r["_s"] is not None]
        if sim_ok:
            ax.bar([x + 0.2 for x in xs], [r["_s"] or 0 for r in fs], 0.4, color="tab:blue",
                   label="iommusim")
        else:
            ax.text(0.5, 0.95, "iommusim: not run",
                    transform=ax.transAxes, ha="center", va="top", fontsize=8)
        ax.set_ylim(0, 1.3 * max(max(r["_m"] or 0, r["_s"] or 0) for r in fs))
        ax.set_xticks(list(xs))
        names = {"iotlb_misses_per_4kb": "IOTLB misses",
                 "ptcache_l1_misses_per_4kb": "PTcache-L1 misses",
                 "ptcache_l2_misses_per_4kb": "PTcache-L2 misses",
                 "ptcache_l3_misses_per_4kb": "PTcache-L3 misses",
                 "iommu_mem_reads_per_4kb": "IOMMU memory reads"}
        ax.set_xticklabels([names.get(r["metric"], r["metric"]) for r in fs], fontsize=8)
        ax.set_xlabel("event (per 4 KB of received data)")
        ax.set_ylabel("events per 4 KB received")
        ax.set_title("F&S: IOMMU events per 4 KB, strict mode")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, 0.9))
        save(fig, "fs-per-4kb.png")
    # 5. F&S against the number of flows (held out but the calibration point).
    pts = sorted({int(r["point"].split("=")[1]) for r in rows
                  if r["experiment"] == FS_EXP and r["_s"] is not None})
    if len(pts) > 1:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for metric, label, color in (("iotlb_misses_per_4kb", "IOTLB misses", "tab:blue"),
                                     ("ptcache_l3_misses_per_4kb", "PTcache-L3 misses", "tab:orange"),
                                     ("iommu_mem_reads_per_4kb", "IOMMU memory reads", "tab:green")):
            vals = [(f, _get(rows, FS_EXP, f"flows={f}", metric)) for f in pts]
            ax.plot([f for f, r in vals if r and r["_s"] is not None],
                    [r["_s"] for f, r in vals if r and r["_s"] is not None], marker="s",
                    color=color, label=f"iommusim: {label}")
            m = _get(rows, FS_EXP, "flows=5", metric)
            if m and m["_m"] is not None:
                ax.plot([5], [m["_m"]], marker="o", color=color, ls="none", mfc="white",
                        label=f"measured (F&S, 5 flows): {label}")
        ax.set_xlabel("DCTCP flows (queues = flows, at most 8)")
        ax.set_ylabel("events per 4 KB received")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.set_title("F&S: per-4-KB events against flows (held out except 5)")
        ax.legend(fontsize=7)
        save(fig, "fs-flows.png")
    return files


# ---------------------------------------------------------------------------------------------
# docs/validation.md


def _md_table(header, body):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def _pct(e):
    return "" if e is None else f"{e:+.1f}%"


def _get(rows, e, p, m):
    for r in rows:
        if (r["experiment"], r["point"], r["metric"]) == (e, p, m):
            return r
    return None


def write_doc(rows, measured, baseline, path=DOC, img_rel="img/validation"):
    get = lambda e, p, m: _get(rows, e, p, m)  # noqa: E731
    calibrated = [r for r in rows if r["_m"] is not None and r["_s"] is not None]
    over = [r for r in calibrated if abs(r["_err"]) > 10]
    sources = {}
    for k, (_, src, _) in measured.items():
        sources.setdefault(src, set()).add(k[0])
    o = []
    o.append("# Validation against hardware measurements\n")
    o.append("<!-- Generated by scripts/validate from tests/validation/measured.csv and the runs; "
             "edit the generator (scripts/lib/iommusim_validate.py), not this file. -->\n")
    o.append(
        "`scripts/validate` runs every experiment of the public validation data that the simulator "
        "can run today, writes `results/validation/validation.csv` (columns `experiment, point, "
        "metric, measured, simulated, error_pct`; `measured` is empty for the held-out points, "
        "`simulated` for experiments the model cannot run yet), its plots "
        "(`results/validation/*.png`, copied to `docs/img/validation/`) and this page. "
        "`error_pct` = (simulated − measured) / measured × 100. The measured numbers and their "
        "sources are in `tests/validation/measured.csv`; nothing else in the repository holds "
        "them.\n")
    o.append("```sh\nscripts/validate                 # builds build/iommusim as scripts/run does, "
             "then every run (about a minute on 2 cores)\n"
             "scripts/validate --quick         # the CI subset only; checks it against the baseline\n"
             "scripts/validate --no-docs       # leave docs/ alone\n```\n")
    n_over = len(over)
    o.append(f"**Status: the targets are not met.** The issue's target is every calibrated point "
             f"within 10 % (held-out points within 15 %). Today {n_over} of the "
             f"{len(calibrated)} calibrated points are outside 10 % — the model is not calibrated "
             f"yet and lacks structure the hardware has (see [what the model misses]"
             f"(#what-the-model-still-misses-and-why)). This page reproduces those errors; it does "
             f"not hide them.\n")
    o.append("## Calibrated points\n")
    o.append(_md_table(["experiment", "point", "metric", "measured", "iommusim", "error"],
                       [[r["experiment"], r["point"], f"{r['metric']} ({METRIC_UNITS[r['metric']]})",
                         r["measured"], r["simulated"], _pct(r["_err"])] for r in calibrated]) + "\n")

    # pcie-bench
    o.append("## 1. pcie-bench: IOTLB reach on a Broadwell server\n")
    o.append("**Source.** R. Neugebauer, G. Antichi, J. F. Zazo, Y. Audzevich, S. López-Buedo, "
             "A. W. Moore, *Understanding PCIe performance for end host networking*, ACM SIGCOMM "
             "2018 (pcie-bench). Hardware: Intel Xeon E5-2630 v4 (Broadwell) with a Netronome "
             "NFP-6000 on PCIe Gen3 x8, MPS 256 B, IOMMU on with 4 KiB pages (superpages off), "
             "cold cache; random 64 B DMA reads over a host buffer window. Latency is the median "
             "of DMAs issued one at a time.\n")
    o.append(f"**Setup in iommusim.** `platforms/broadwell-dmabench.ini` + "
             f"`workloads/dmabench-rd64-random.ini` (the default experiment of `scripts/run`), "
             f"`system.bench0.window` = 4 KiB … 64 MiB (powers of two), {BW_COUNT} transfers per "
             f"bandwidth point (64 tags in flight). Unloaded latency: the same with "
             f"`system.bench0.outstanding = 1` and {LAT_COUNT} transfers, median "
             f"(`system.bench0.latency.p50`). No IOMMU: `-c {NO_IOMMU}` (every "
             f"DMA bypasses translation; checked with `system.router.bypassed`). Gb/s = "
             f"`system.bench0.bandwidth` × 8 / 10⁹ (also `bandwidth_mbps`).\n")
    body = []
    for w in WINDOWS:
        r = get("pciebench-rd64", w, "bandwidth_gbps")
        lat = get("pciebench-rd64", w, "latency_p50_ns")
        if r or lat:
            body.append([w + "iB", r["measured"] if r else "", r["simulated"] if r else "",
                         _pct(r["_err"]) if r else "", lat["measured"] if lat else "",
                         lat["simulated"] if lat else "", _pct(lat["_err"]) if lat else ""])
    o.append(_md_table(["window", "measured Gb/s", "iommusim Gb/s", "error",
                        "measured latency ns", "iommusim latency ns", "error"], body) + "\n")
    extra = []
    for e, p, m, label in (("pciebench-rd64-noiommu", "64M", "bandwidth_gbps", "no IOMMU, 64 MiB: bandwidth (Gb/s)"),
                           ("pciebench-rd64-noiommu", "64M", "latency_p50_ns", "no IOMMU, 64 MiB: unloaded latency (ns)"),
                           ("pciebench-rd64", "64M", "miss_added_latency_ns", "latency added by an IOTLB miss: 64 MiB − 4 KiB (ns)"),
                           ("pciebench-rd64", "64M", "mtransfers_per_s", "translations per second at 64 MiB (M/s)")):
        r = get(e, p, m)
        if r:
            extra.append([label, r["measured"], r["simulated"], _pct(r["_err"])])
    o.append(_md_table(["quantity", "measured", "iommusim", "error"], extra) + "\n")
    o.append(f"![64 B reads: bandwidth against window]({img_rel}/pciebench-rd64-bandwidth.png)\n")
    o.append(f"![64 B reads: unloaded latency against window]({img_rel}/pciebench-rd64-latency.png)\n")

    # predictions
    o.append("### Predictions: points held out\n")
    o.append("Other transfer sizes and 64 B / 256 B writes, same platform and windows, IOMMU on "
             "(and off at 64 MiB). No measurement is used or stored for them (except the 256 B "
             "translation rate at 64 MiB that the fidelity issue quotes, among the calibrated "
             "points above): they judge the model's predictions (target 15 %) once calibrated on "
             "the data above.\n")
    pred = [s for s in SERIES[1:] if get(s[0], "4K", "bandwidth_gbps")]
    if pred:
        body = []
        for w in WINDOWS:
            body.append([w + "iB"] + [(get(e, w, "bandwidth_gbps") or {}).get("simulated", "")
                                      for e, _, _ in pred])
        body.append(["no IOMMU, 64 MiB"] + [(get(e + "-noiommu", "64M", "bandwidth_gbps") or {})
                                            .get("simulated", "") for e, _, _ in pred])
        body.append(["M translations/s at 64 MiB"] + [(get(e, "64M", "mtransfers_per_s") or {})
                                                      .get("simulated", "") for e, _, _ in pred])
        o.append(_md_table(["iommusim Gb/s"] + [f"{op} {size} B" for _, op, size in pred], body)
                 + "\n")
        o.append(f"![Predictions]({img_rel}/pciebench-predictions.png)\n")
    else:
        o.append("(Not run: `--quick`.)\n")

    # F&S
    o.append("## 2. F&S: IOMMU events per 4 KB of received data\n")
    o.append("**Source.** Rubin et al., *Fast & Safe IO Memory Protection*, ACM SOSP 2024 (F&S). "
             "Hardware: Xeon Gold 6234 (Cascade Lake), 100 Gb/s ConnectX-5 on PCIe 3.0 x16, Linux "
             "6.0, DCTCP, 4 KB MTU, RX ring of 256, DDIO off, strict IOMMU mode, 5 flows. Their "
             "analytic model T = p / (l0 + M·lm), l0 = 65 ns, lm = 197 ns, predicts throughput "
             "within 10 %.\n")
    o.append(
        f"**Setup in iommusim.** `{FS_CONFIGS[0]}` + `{FS_CONFIGS[1]}`: each value of the "
        f"platform names its source (or says that there is no public figure). A multi-queue NIC "
        f"([devices.md](devices.md#nic)): one RX queue and driver context (CPU) per flow, flows "
        f"steered to their queue (aRFS), in bursts of 16 frames (64 KiB TSO bursts at 4 KB MTU), "
        f"mlx5's striding RQ (frames packed in 256 B strides of 256 KiB multi-packet buffers, "
        f"every page of a buffer mapped when it is posted and unmapped, page after page, when "
        f"its frames are done) through the VT-d DMA API in strict mode (a page-selective "
        f"invalidation with IH = 1 and a wait per unmap, as Linux does), the unit dropping its "
        f"PDE cache entries on each such flush (`walk_cache.psi = leaf_table`, "
        f"[iommu.md](iommu.md)), IOVAs from an allocator with Linux's per-CPU range caches "
        f"(`driver.iova_rcache`), the queues' rings filled at once at interface up (so their "
        f"IOVAs interleave), a TCP ACK per 16-frame GRO burst sent back through the queue's TX "
        f"ring (`ack_every`, each a mapped TX frame). Driver cost per 4 KB packet "
        f"`sw_ns` = 780 ns: a core receives about 42 Gb/s with the copy to user space "
        f"(Cai et al., *Understanding Host Network Stack Overheads*, SIGCOMM 2021). Frames of "
        f"4114 B (4096 B IP packets), 60000 per run; `flows` = {', '.join(map(str, FS_FLOWS))} "
        f"with `queues` = flows, and {', '.join(map(str, FS_FLOWS_SHARED))} flows on "
        f"{FS_CORES} queues (the Xeon Gold 6234's cores).\n")
    o.append(
        "**Per 4 KB** = count × 4096 / `nic0.rx.bytes` (frame bytes received): IOTLB misses = "
        "`system.iommu0.iotlb.misses`; F&S's PTcache-L1/L2/L3 are VT-d's paging-structure caches "
        "from the root down, i.e. PTcache-L1 = PML4E cache = `walk_cache.l4_misses`, PTcache-L2 = "
        "PDPTE cache = `walk_cache.l3_misses`, PTcache-L3 = PDE cache (the last level above the "
        "leaf) = `walk_cache.l2_misses`; IOMMU memory reads = `walker.memory_reads` (every "
        "paging-structure, context and PASID entry the walkers read). Every run is checked for "
        "no DMA faults and no stale IOTLB hits (checking mode). **Cross-check**: F&S's model "
        f"T = p / (l0 + M·lm) with p = 4 KB, l0 = {FS_L0_NS:g} ns, lm = {FS_LM_NS:g} ns, M = "
        "memory reads per 4 KB: `measured` is the model at F&S's measured M (1.76), `iommusim` "
        "the model at the simulated M; the simulated RX throughput is beside it.\n")
    body = [[r["metric"], r["measured"], r["simulated"] or "—", _pct(r["_err"])]
            for r in rows if r["experiment"] == FS_EXP and r["point"] == "flows=5"]
    o.append(_md_table(["5 flows (calibration point)", "measured", "iommusim", "error"], body)
             + "\n")
    pts = sorted({int(r["point"].split("=")[1]) for r in rows
                  if r["experiment"] == FS_EXP and r["_s"] is not None and r["point"] != "flows=5"})
    if pts:
        o.append("Held-out points (no measurement used or stored):\n")
        metrics = [m for m in METRIC_UNITS if any(r["metric"] == m for r in rows
                                                  if r["experiment"] == FS_EXP)]
        body = []
        for f in [5] + pts:
            body.append([f"{f}" + (" (calibration)" if f == 5 else "")] +
                        [(_get(rows, FS_EXP, f"flows={f}", m) or {}).get("simulated", "")
                         for m in metrics])
        o.append(_md_table(["flows"] + metrics, body) + "\n")
        o.append(f"![F&S against flows]({img_rel}/fs-flows.png)\n")
    o.append(f"![F&S per-4-KB counts]({img_rel}/fs-per-4kb.png)\n")

    # Misses
    o.append("## What the model still misses, and why\n")
    o.append("Every calibrated point over 10 %:\n")
    o.append(_md_table(["experiment", "point", "metric", "measured", "iommusim", "error"],
                       [[r["experiment"], r["point"], r["metric"], r["measured"], r["simulated"],
                         _pct(r["_err"])] for r in over]) + "\n" if over else "None.\n")
    lim = get("pciebench-rd64", "4K", "bandwidth_gbps")
    noi = get("pciebench-rd64-noiommu", "64M", "bandwidth_gbps")
    add = get("pciebench-rd64", "64M", "miss_added_latency_ns")
    wr = get("pciebench-wr64", "512K", "bandwidth_gbps")
    rd = get("pciebench-rd64", "512K", "bandwidth_gbps")
    o.append("Why, as analysed on the model this page was generated with (revise with the model):\n")
    if lim and noi:
        o.append(
            f"- **pcie-bench, structure and calibration** (`platforms/broadwell-dmabench.ini` "
            f"names each parameter's source). The card limits small DMAs: the NFP-6000's DMA "
            f"issue rate (54.9 M requests/s, calibrated on the no-IOMMU point) holds 64 B reads at "
            f"{noi['simulated']} Gb/s, below the link's 44 Gb/s. A miss reads one leaf entry (the "
            f"64-entry PDE cache, F&S's estimate, covers every window), from the LLC through the "
            f"IIO (250 ns, calibrated on the +280 ns per miss; F&S measure 197 ns per IOMMU read on "
            f"a later Xeon), by one of 5 walkers (calibrated on 19.2 M translations/s at 64 MiB). "
            f"Writes are posted: a write frees the device's tag when it leaves, and waits for its "
            f"translation in the root port's posted buffer (Intel's published IIO credits: 32 "
            f"headers, 160 data credits for x8), so writes no longer behave exactly like reads.")
    if add:
        o.append(
            f"- **What remains.** The miss adds {add['simulated']} ns against ≈ {add['measured']} ns: "
            f"the walk's LLC latency is the one knob for both the miss latency and (with the "
            f"walker count) the walk throughput, set to balance the 64 MiB bandwidth against the "
            f"latency. Between 512 KiB and 2 MiB the model's knee is slightly steeper than the "
            f"hardware's (1 MiB: −7 %): hits and misses share the walkers' time exactly as a "
            f"fully associative LRU IOTLB gives (hit rate 64 / pages); the hardware's IOTLB "
            f"organisation (sets, replacement) is not public. The walk LLC always hits here (the "
            f"page tables of a 64 MiB window are 128 KiB): a window whose tables exceed the LLC "
            f"is not modelled by capacity (`walk_llc_hit` is a fraction).")
    o.append(
        "- The issue's knob-only fit (issue rate and walk-step time fitted to the 64 B read "
        "row) left 256 B reads and 64 B writes 17–33 % off; the structure above (device issue "
        "rate, posted writes and credits, a walk read through the LLC) replaces it. The held-out "
        "rows judge whether it does.")
    r4 = get("pciebench-rd256", "4K", "bandwidth_gbps")
    if r4:
        o.append(
            f"- **Read completions.** The root complex returns a read's data one 64 B cache line "
            f"(the RCB) per completion (`cpl_rcb_chunks`, a case of pcie-bench's own model; "
            f"AMD/Xilinx PG213 calls combining RCB-sized completions an optional host feature): "
            f"reads of 128 B and more are held at 44.1 Gb/s by the completions' headers (256 B "
            f"at 4 KiB: {r4['simulated']} Gb/s), where MPS-sized completions gave the link's "
            f"53.7 Gb/s — the 17–28 % the issue reports at every window. 64 B reads, one "
            f"completion either way, do not move.")
    t256 = get("pciebench-rd256", "64M", "mtransfers_per_s")
    if t256 and t256["_s"] is not None:
        o.append(
            f"- **A miss's cost against the transfer size.** At 64 MiB the model translates "
            f"{t256['simulated']} M requests/s at 256 B, as at 64 B, against the hardware's "
            f"{t256['measured']} M/s ({_pct(t256['_err'])}): a walker is held for the walk "
            f"only, so the miss costs the same whatever the size. The hardware's miss path holds "
            f"something per cache line of the request (about 9 ns more per translation at 256 B, "
            f"i.e. ~45 ns per walker over three more lines); where — translation per cache line "
            f"in the IIO, or the walk's reads sharing the IIO's read tracker with the data lines "
            f"— is not published, and one knob fitted to this one point would not be structure. "
            f"Not fitted.")
    w1 = get("pciebench-wr64", "1M", "bandwidth_gbps")
    if wr and w1:
        o.append(
            f"- **The write knee.** The issue quotes the hardware's 64 B write knee at 1 MiB; "
            f"the model's writes fall at 512 KiB as its reads do ({wr['simulated']} Gb/s at "
            f"512 KiB, {w1['simulated']} at 1 MiB, a little below the reads: posted writes "
            f"drain the root port in order, so a hit waits behind a miss, holding its posted "
            f"credits). A posted write no longer holds the device, but its miss still needs one "
            f"of the same 5 walkers, and at 512 KiB half of the ~53 M writes/s the card issues "
            f"miss, more than the walkers' ~19.5 M walks/s. Either of two structures would move "
            f"the knee: a card that issues 64 B writes slower than reads (the NFP must fetch a "
            f"write's data from its own memory first; at ~40 M writes/s half of them missing "
            f"fits the walkers, as the issue's \"up to 33 %\" over-prediction of 64 B writes "
            f"suggests), or about 1.4x the reads' walk throughput for writes. Neither has a "
            f"published figure for this card and host, so the model issues reads and writes at "
            f"one rate and keeps one miss path.")
    fsr = {m: get(FS_EXP, "flows=5", m) for m in FS_METRICS}
    if all(r and r["_s"] is not None for r in fsr.values()):
        o.append(
            f"- **F&S: IOTLB misses.** {fsr['iotlb_misses_per_4kb']['simulated']} per 4 KB "
            f"against {fsr['iotlb_misses_per_4kb']['measured']}. With mlx5's striding RQ a "
            f"4114 B frame takes 17 strides of 256 B (4352 B), so about 1.06 freshly mapped "
            f"pages per frame, each missing once (every unmap invalidates its page). TCP's ACKs "
            f"add about 0.11: one per 16-frame GRO burst (`ack_every`), each a freshly mapped "
            f"TX buffer and a TX descriptor page the 64-entry IOTLB has lost since the queue's "
            f"previous ACK. Left out: the TX completion queue and mlx5's UMR work requests that "
            f"post each buffer's page list (both in rings the NIC reads and writes through the "
            f"IOMMU), and pages mlx5e's page cache recycles with their mapping.")
        o.append(
            f"- **F&S: paging-structure caches.** With Linux's IH = 1 on every strict unmap the "
            f"PML4E/PDPTE caches are never flushed: PTcache-L1/L2 misses "
            f"{fsr['ptcache_l1_misses_per_4kb']['simulated']} / "
            f"{fsr['ptcache_l2_misses_per_4kb']['simulated']} against "
            f"{fsr['ptcache_l1_misses_per_4kb']['measured']} / "
            f"{fsr['ptcache_l2_misses_per_4kb']['measured']}; the model has no event that empties "
            f"them (no domain-selective flush, no other domain competing for them, separate "
            f"caches per level). PTcache-L3 (PDE cache) misses "
            f"{fsr['ptcache_l3_misses_per_4kb']['simulated']} against "
            f"{fsr['ptcache_l3_misses_per_4kb']['measured']}: the unit drops every PDE of the "
            f"domain on each page-selective flush (`walk_cache.psi = leaf_table`), and the driver "
            f"now unmaps a finished buffer's 64 pages one at a time, each flush reaching the unit "
            f"at its own time among the other queues' DMA (before, the whole burst's flushes "
            f"landed at once and cost one miss: 0.08). The queues fill their rings at once, so "
            f"their IOVAs interleave in the same 2 MiB regions, and Linux's per-CPU IOVA caches "
            f"keep them so. The other reading of the hardware, dropping only the PDEs in the "
            f"flushed range, gave 0.29 in an experiment with that rule in the unit (0.10 with "
            f"the queues' IOVAs not interleaved); every PDE "
            f"of the domain, the platform's choice, "
            f"{fsr['ptcache_l3_misses_per_4kb']['simulated']}: about one flush falls between "
            f"two walks (1.07 unmaps and "
            f"1.24 walks per 4 KB). What would bring it down is fewer flushes per 4 KB: mlx5e's "
            f"page cache in Linux 6.0 (256 pages per queue) recycles a buffer's pages still "
            f"mapped when the stack has let go of them, and how often it has is set by how far "
            f"the receiving application lags, which neither the model nor the data give. The "
            f"memory reads ({fsr['iommu_mem_reads_per_4kb']['simulated']} against "
            f"{fsr['iommu_mem_reads_per_4kb']['measured']}) are the IOTLB misses plus the "
            f"PTcache misses, as in F&S's counts.")
    o.append(
        "- **F&S: open-loop traffic.** Frames arrive at line rate whatever the receiver does; "
        "DCTCP senders would slow down instead. Where the receiving cores cannot keep up the "
        "model drops (`rx_drop_pct`) where the hardware would run slower without losses; the "
        "counts per 4 KB are of the delivered frames. With striding buffers a core unmaps a "
        "buffer's 64 pages back to back (a page-selective invalidation and a wait each), which "
        "at 5 flows drops about a fifth of the frames.")
    mt = get(FS_EXP, "flows=5", "model_throughput_gbps")
    tp = get(FS_EXP, "flows=5", "rx_throughput_gbps")
    if mt and tp and mt["_s"] is not None and tp["_s"] is not None:
        o.append(
            f"- **F&S's model against the simulated throughput.** At the simulated M their model "
            f"gives {mt['simulated']} Gb/s; the simulated NIC receives {tp['simulated']} Gb/s, "
            f"bound by the driver cores' unmap bursts (in the simulator translations overlap: "
            f"several walkers, posted writes pipelined), where F&S's fit (l0 + M·lm per 4 KB) "
            f"charges the translations serially; the two agree here without being the same "
            f"bound.")
    o.append("")

    # CI
    o.append("## CI: the reduced validation\n")
    o.append(
        f"`tests/e2e/validation.py` (ctest `e2e_validation`) runs `scripts/validate --quick`: "
        f"{len(baseline)} calibration points (64 B reads at windows {', '.join(QUICK_WINDOWS)}, "
        f"no IOMMU at 64 MiB, unloaded latency at 4 KiB and 64 MiB, F&S's per-4-KB counts at 5 "
        f"flows; a few seconds) and fails if "
        f"one moves beyond its tolerance from `tests/validation/baseline.csv`. Because the model "
        f"is not calibrated, the baseline holds **today's simulated values** (± 3 %, or half a "
        f"unit of the last digit they are rounded to), not the "
        f"hardware's: it catches unnoticed drift. A change that moves them on purpose "
        f"(calibration) re-baselines with `scripts/validate --quick --update-baseline` and says "
        f"why in its commit; then the baseline should move toward `measured`. The test also "
        f"checks that a perturbed baseline is reported as failing.\n")
    o.append(_md_table(["experiment", "point", "metric", "baseline", "tolerance"],
                       [[k[0], k[1], k[2], fmt_value(k[2], v), f"± {t:g} %"]
                        for k, (v, t, _) in sorted(baseline.items(), key=lambda kv: _order(kv[0]))])
             + "\n")
    o.append("## Summary of `scripts/run`\n")
    o.append(
        "`scripts/run` prints, after the run's own summary (which gives GB/s and Gb/s), how the "
        "run compares with the measurement at the same point, and runs a short companion with "
        "one DMA in flight (`results/unloaded/`) for the unloaded median latency, e.g.:\n")
    ex = get("pciebench-rd64", "256K", "bandwidth_gbps")
    exl = get("pciebench-rd64", "256K", "latency_p50_ns")
    if ex and exl:
        o.append("```\n" + "\n".join(compare_lines(
            {"bandwidth_gbps": ex["_s"], "latency_p50_ns": exl["_s"]}, "read", 64, "256K", "on",
            measured, False)) + "\n```\n")
    text = "\n".join(o)
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------
# scripts/run's comparison


def window_name(nbytes):
    for unit, mult in (("M", 1 << 20), ("K", 1 << 10)):
        if nbytes >= mult and nbytes % mult == 0:
            return f"{nbytes // mult}{unit}"
    return f"{nbytes}B"


def parse_bytes(text):
    """A byte value as stats.json's params write it (262144, 256Ki, 64Mi)."""
    t = str(text)
    for suf, mult in (("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("K", 1 << 10),
                      ("M", 1 << 20), ("G", 1 << 30)):
        if t.endswith(suf) and t[:-len(suf)].isdigit():
            return int(t[:-len(suf)]) * mult
    return int(t) if t.isdigit() else None


def compare_lines(sim, op, size, window, iommu, measured, overrides):
    """Lines saying how a dma-bench run compares with pcie-bench at its point."""
    exp = next((e for e, o, s in SERIES if o == op and s == size), None)
    if exp and iommu == "off":
        exp += "-noiommu"
    where = f"{op} {size} B random, window {window[:-1]} {window[-1]}iB, IOMMU {iommu}"
    pts = sorted({k[1] for k in measured if k[0] == exp}, key=lambda w: WINDOWS.index(w)
                 if w in WINDOWS else 99)
    lines = []
    got = False
    for metric, label, unit in (("bandwidth_gbps", "bandwidth", "Gb/s"),
                                ("latency_p50_ns", "unloaded latency (p50)", "ns")):
        if sim.get(metric) is None:
            continue
        m = measured.get((exp, window, metric)) if exp else None
        s = fmt_value(metric, sim[metric])
        if m:
            got = True
            approx = "≈ " if m[2].startswith("approx") else ""
            lines.append(f"  {label:<24} iommusim {s} {unit}, pcie-bench measured {approx}"
                         f"{m[0]:g} {unit} at this point: {error_pct(m[0], sim[metric]):+.0f}%")
    head = f"pcie-bench comparison ({where})"
    if not got:
        return [f"{head}: no measurement at this point"
                + (f" (measured windows: {', '.join(pts)})" if pts else "")
                + "; see docs/validation.md"]
    tail = ("  (your --set overrides change the design: the measurement is of the shipped "
            "platform)" if overrides else None)
    return [head + ":"] + lines + ([tail] if tail else []) + \
        ["  all points: scripts/validate, docs/validation.md"]


def _run_args(args):
    """The --set, --seed and --quantum options of scripts/run's arguments (the companion run
    takes them too), and whether it asked for help."""
    keep, i, help_ = [], 0, False
    while i < len(args):
        a = args[i]
        if a in ("-h", "--help"):
            help_ = True
        for opt in ("--set", "--seed", "--quantum"):
            if a == opt and i + 1 < len(args):
                keep += [a, args[i + 1]]
                i += 1
            elif a.startswith(opt + "="):
                keep.append(a)
        i += 1
    return keep, help_


def compare(iommusim, stats_path, out, run_args):
    keep, help_ = _run_args(run_args)
    for i, a in enumerate(run_args):  # the run wrote its statistics where --out said
        if a == "--out" and i + 1 < len(run_args):
            stats_path = os.path.join(run_args[i + 1], "stats.json")
        elif a.startswith("--out="):
            stats_path = os.path.join(a[len("--out="):], "stats.json")
    if help_ or not os.path.exists(stats_path):
        return 0
    with open(stats_path) as f:
        stats = json.load(f)
    params = stats.get("params", {})
    configs = [v for k, v in stats.get("run", {}).items() if k.startswith("config")]
    if "bench0" not in stats.get("system", {}) or \
            not any(os.path.basename(c) == "broadwell-dmabench.ini" for c in configs):
        return 0  # not pcie-bench's platform: nothing measured to compare with
    if params.get("system.bench0.pattern") != "random" or \
            parse_bytes(params.get("system.bench0.map.page_size", "")) != 4096:
        print("pcie-bench comparison: this run is not pcie-bench's experiment (random "
              "accesses, 4 KiB pages); see docs/validation.md")
        return 0
    m = bench_metrics(stats)
    op = params.get("system.bench0.op")
    size = int(params.get("system.bench0.size", 0))
    window = window_name(parse_bytes(params.get("system.bench0.window", "0")) or 0)
    sim = {"bandwidth_gbps": m["bandwidth_gbps"]}
    if str(params.get("system.bench0.outstanding", "0")) == "1":
        sim["latency_p50_ns"] = m["latency_p50_ns"]
    else:
        # pcie-bench measures latency one DMA at a time: a short companion run.
        argv = [iommusim, "run", "-q", "--out", out]
        for c in configs:
            argv += ["-c", c]
        argv += keep + ["--set", "system.bench0.outstanding=1",
                        "--set", f"system.bench0.count={LAT_COUNT}"]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"pcie-bench comparison: the unloaded-latency run failed:\n{r.stderr}",
                  file=sys.stderr)
            return 1
        with open(os.path.join(out, "stats.json")) as f:
            sim["latency_p50_ns"] = bench_metrics(json.load(f))["latency_p50_ns"]
    overrides = any(k.split("=")[0].split(".")[-1] not in
                    ("window", "count", "op", "size", "outstanding", "duration_ns")
                    for k in keep if "=" in k or not k.startswith("--"))
    for line in compare_lines(sim, op, size, window, m["iommu"], load_measured(), overrides):
        print(line)
    return 0


# ---------------------------------------------------------------------------------------------


def cmd_run(a):
    iommusim = os.path.abspath(a.iommusim)
    if not os.access(iommusim, os.X_OK):
        raise InputError(f"'{iommusim}' is not an executable iommusim (build it, or give "
                         f"--iommusim PATH)")
    measured = load_measured()
    os.makedirs(a.out, exist_ok=True)
    results = run_sweeps(iommusim, a.out, a.jobs, a.quick, a.quiet)
    sim = simulated_rows(results)
    rows = build_table(measured, sim)
    csv_path = os.path.join(a.out, "validation.csv")
    write_csv(csv_path, rows)
    print(f"wrote {csv_path} ({len(rows)} rows)")
    status = 0
    if a.update_baseline:
        keys = [k for k in sim if k in measured and (
            (k[0] in ("pciebench-rd64", "pciebench-rd64-noiommu")
             and k[2] in ("bandwidth_gbps", "latency_p50_ns"))
            or (k[0] == FS_EXP and k[2] in FS_METRICS))]
        write_baseline(BASELINE, sim, keys)
        print(f"wrote {BASELINE} ({len(keys)} points)")
    if a.quick or a.check_baseline:
        lines, bad = check_baseline(sim, load_baseline())
        print("\n".join(lines))
        print(f"baseline: {len(lines) - bad} of {len(lines)} points within tolerance")
        status = 1 if bad else 0
    if not a.no_plots:
        files = make_plots(rows, a.out)
        print(f"wrote {len(files)} plots in {a.out}")
        if not a.no_docs and not a.quick:
            os.makedirs(DOC_IMG, exist_ok=True)
            for p in files:
                shutil.copy(p, DOC_IMG)
    if not a.no_docs and not a.quick:
        write_doc(rows, measured, load_baseline())
        print(f"wrote {DOC}")
    over = [r for r in rows if r["_err"] is not None and abs(r["_err"]) > 10]
    calibrated = [r for r in rows if r["_err"] is not None]
    print(f"{len(calibrated) - len(over)} of {len(calibrated)} measured points within 10 %"
          + (" (targets not met: docs/validation.md)" if over else ""))
    return status


def main(argv=None):
    ap = argparse.ArgumentParser(prog="iommusim_validate.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the validation experiments")
    r.add_argument("--iommusim", default=os.environ.get("IOMMUSIM")
                   or os.path.join(ROOT, "build", "iommusim"))
    r.add_argument("--out", default=os.path.join(ROOT, "results", "validation"))
    r.add_argument("--jobs", "-j", type=int, default=len(os.sched_getaffinity(0)))
    r.add_argument("--quick", action="store_true",
                   help="the CI subset (baseline points), checked against the baseline")
    r.add_argument("--check-baseline", action="store_true", help="check the baseline points")
    r.add_argument("--update-baseline", action="store_true",
                   help="rewrite tests/validation/baseline.csv from this run")
    r.add_argument("--no-docs", action="store_true", help="do not regenerate docs/validation.md")
    r.add_argument("--no-plots", action="store_true", help="no PNG plots")
    r.add_argument("-q", "--quiet", action="store_true")
    c = sub.add_parser("check", help="compare a validation.csv with the baseline")
    c.add_argument("csv")
    c.add_argument("--baseline", default=BASELINE)
    k = sub.add_parser("compare", help="scripts/run's comparison line")
    k.add_argument("--iommusim", required=True)
    k.add_argument("--stats", required=True)
    k.add_argument("--out", required=True, help="directory of the unloaded-latency run")
    k.add_argument("run_args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "run":
            if a.jobs < 1:
                raise InputError("--jobs must be at least 1")
            return cmd_run(a)
        if a.cmd == "check":
            lines, bad = check_baseline(read_validation_csv(a.csv), load_baseline(a.baseline))
            print("\n".join(lines))
            print(f"baseline: {len(lines) - bad} of {len(lines)} points within tolerance")
            return 1 if bad else 0
        args = a.run_args[1:] if a.run_args[:1] == ["--"] else a.run_args
        return compare(a.iommusim, a.stats, a.out, args)
    except (InputError, sw.SpecError) as e:
        print(f"validate: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"validate: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
