"""scripts/plot: line plots, latency CDFs and heat maps of a sweep, and an HTML gallery."""
import argparse
import csv
import html
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402

import iommusim_stats  # noqa: E402
from iommusim_sweep import SpecError, load_plan, parse_number  # noqa: E402

DEFAULT_METRICS = ("system.*.iotlb.hit_rate", "system.*.bandwidth", "system.*.latency.mean",
                   "system.*.rx.throughput", "system.*.iops", "system.*.replay.mismatches")
CDF_FIELDS = (("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0))


def main(argv):
    ap = argparse.ArgumentParser(prog="scripts/plot", description="Plot a sweep's results.csv.")
    ap.add_argument("dir", help="sweep directory (has results.csv and sweep.json)")
    ap.add_argument("--out", help="where the PNGs and index.html go (default DIR/plots)")
    ap.add_argument("--x", help="parameter on the x axis (default: the [plot] x, else the "
                    "numeric axis with most values)")
    ap.add_argument("--lines", help="parameter with one line per value (default: [plot] lines, "
                    "else another axis)")
    ap.add_argument("--metrics", help="comma-separated results.csv columns to plot")
    ap.add_argument("--cdf", help="comma-separated points (names or indexes) for latency CDFs "
                    "(default: first, middle and last)")
    ap.add_argument("--cdf-stat", help="histogram for the CDFs (default: the first device latency)")
    ap.add_argument("--heatmap", help="metric of the heat map of a two-axis grid (default: the first metric)")
    a = ap.parse_args(argv)
    try:
        files = plot_sweep(a)
    except SpecError as e:
        print(f"plot: {e}", file=sys.stderr)
        return 2
    for f in files:
        print(f"wrote {f}")
    return 0


class Sweep:
    def __init__(self, d):
        self.dir = d
        self.plan = load_plan(d)
        path = os.path.join(d, "results.csv")
        try:
            with open(path) as f:
                self.rows = [r for r in csv.DictReader(f) if r["status"] == "done"]
        except OSError as e:
            raise SpecError(f"cannot read '{path}': {e.strerror} (run scripts/sweep --merge {d})")
        if not self.rows:
            raise SpecError(f"'{path}' has no finished point")
        self.columns = list(self.rows[0])
        self.axes = self.plan["axes"]
        self.units = self.plan.get("units", {})

    def num(self, param, text):
        """A swept value as a number for the axis (None when it is not one)."""
        unit = self.units.get(param, "")
        v = parse_number(text, unit.lower() in ("bytes", "b") or unit.endswith("iB"))
        return float(v) if v is not None else None

    def values(self, param):
        seen = []
        for r in self.rows:
            if r[param] not in seen:
                seen.append(r[param])
        return seen


def pick_metrics(sw, wanted):
    if wanted:
        out = [m.strip() for m in wanted.split(",") if m.strip()]
        bad = [m for m in out if m not in sw.columns]
        if bad:
            raise SpecError(f"no column {', '.join(bad)} in results.csv (columns: {', '.join(sw.columns)})")
        return out
    import fnmatch

    out = []
    for pattern in DEFAULT_METRICS:
        out += [c for c in sw.columns if fnmatch.fnmatchcase(c, pattern) and c not in out]
    return out


def scaled(metric, values):
    """Values and axis label in readable units."""
    unit = iommusim_stats.unit_of(metric)
    name = metric.removeprefix("system.")
    if unit == "bytes/s":
        return [v / 1e9 if v is not None else None for v in values], f"{name} (GB/s)"
    if unit == "bit/s":
        return [v / 1e9 if v is not None else None for v in values], f"{name} (Gbit/s)"
    if unit in ("IO/s", "packets/s"):
        return [v / 1e6 if v is not None else None for v in values], f"{name} (M{unit})"
    return values, f"{name} ({unit})" if unit else name


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def choose_axes(sw, a):
    hint = sw.plan.get("plot", {})
    x = a.x or (hint.get("x") or [None])[0]
    lines = a.lines or (hint.get("lines") or [None])[0]
    for name, p in (("--x", x), ("--lines", lines)):
        if p and p not in sw.axes:
            raise SpecError(f"{name} {p} is not an axis of this sweep (axes: {', '.join(sw.axes)})")
    if not x:
        numeric = [p for p in sw.axes if p != lines and all(sw.num(p, v) is not None for v in sw.values(p))]
        numeric.sort(key=lambda p: -len(sw.values(p)))
        x = numeric[0] if numeric else (sw.axes[0] if sw.axes else None)
    if not lines:
        others = [p for p in sw.axes if p != x and len(sw.values(p)) > 1]
        lines = others[0] if others else None
    return x, lines


def line_plot(sw, x, lines, metric, out):
    fixed = {p: sw.values(p)[0] for p in sw.axes if p not in (x, lines)}
    rows = [r for r in sw.rows if all(r[p] == v for p, v in fixed.items())]
    groups = sw.values(lines) if lines else [None]
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    xnum = all(sw.num(x, v) is not None for v in sw.values(x))
    xs_all = sorted({r[x] for r in rows}, key=lambda v: sw.num(x, v) if xnum else sw.values(x).index(v))
    markers = "osD^vP*X"
    for i, g in enumerate(groups):
        sel = [r for r in rows if lines is None or r[lines] == g]
        sel.sort(key=lambda r: xs_all.index(r[x]))
        xs = [sw.num(x, r[x]) if xnum else xs_all.index(r[x]) for r in sel]
        ys, label = scaled(metric, [_float(r.get(metric)) for r in sel])
        ax.plot(xs, ys, marker=markers[i % len(markers)], linewidth=1.8, markersize=5,
                label=g if lines else None)
    ax.set_ylabel(label)
    unit = sw.units.get(x, "")
    ax.set_xlabel(f"{short(x)}" + (f" ({unit})" if unit else ""))
    ticks = [sw.num(x, v) if xnum else i for i, v in enumerate(xs_all)]
    if xnum and len(ticks) > 2 and min(ticks) > 0 and max(ticks) / min(ticks) >= 16:
        ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    ax.set_xticklabels(xs_all, rotation=45 if len(xs_all) > 10 else 0)
    ax.minorticks_off()
    ax.grid(True, alpha=0.3)
    if lines:
        # Outside, right: inside it would hide some lines.
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title=short(lines), title_fontsize=9)
    title = f"{short(metric)} vs {short(x)}"
    if fixed:
        title += "\n(" + ", ".join(f"{short(p)}={v}" for p, v in fixed.items()) + ")"
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    path = os.path.join(out, f"line-{slug(metric)}.png")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path, f"{short(metric)} against {short(x)}" + (f", one line per {short(lines)}" if lines else "")


def heatmap(sw, x, y, metric, out):
    xs, ys = sw.values(x), sw.values(y)
    if all(sw.num(x, v) is not None for v in xs):
        xs.sort(key=lambda v: sw.num(x, v))
    if all(sw.num(y, v) is not None for v in ys):
        ys.sort(key=lambda v: sw.num(y, v))
    fixed = {p: sw.values(p)[0] for p in sw.axes if p not in (x, y)}
    grid = [[None] * len(xs) for _ in ys]
    for r in sw.rows:
        if all(r[p] == v for p, v in fixed.items()):
            grid[ys.index(r[y])][xs.index(r[x])] = _float(r.get(metric))
    vals, label = scaled(metric, [v for row in grid for v in row])
    grid = [vals[i * len(xs):(i + 1) * len(xs)] for i in range(len(ys))]
    data = [[float("nan") if v is None else v for v in row] for row in grid]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(xs) + 2.5), max(3.2, 0.5 * len(ys) + 2)), dpi=110)
    im = ax.imshow(data, aspect="auto", origin="lower", cmap="viridis")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label(label)
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels(xs, rotation=45 if len(xs) > 8 else 0)
    ax.set_yticks(range(len(ys)))
    ax.set_yticklabels(ys)
    ax.set_xlabel(short(x) + (f" ({sw.units[x]})" if sw.units.get(x) else ""))
    ax.set_ylabel(short(y) + (f" ({sw.units[y]})" if sw.units.get(y) else ""))
    finite = [v for row in data for v in row if not math.isnan(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0, 1)
    if len(xs) * len(ys) <= 120:
        for i, row in enumerate(data):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    dark = hi > lo and (v - lo) / (hi - lo) < 0.6
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
    title = f"{short(metric)}"
    if fixed:
        title += "  (" + ", ".join(f"{short(p)}={v}" for p, v in fixed.items()) + ")"
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    path = os.path.join(out, f"heatmap-{slug(metric)}.png")
    fig.savefig(path)
    plt.close(fig)
    return path, f"{short(metric)} over {short(x)} × {short(y)}"


def find_histograms(stats):
    """Dotted paths of device-level latency histograms (the CDF candidates)."""
    out, units = [], []
    for name, node in stats.get("system", {}).items():
        if name in ("memory", "rc", "router") or not isinstance(node, dict):
            continue
        if "iotlb" in node:
            # Devices first: the IOMMU's latency is one part of theirs.
            if iommusim_stats.is_histogram(node.get("latency")):
                units.append(f"system.{name}.latency")
            continue
        for key in ("latency", "dma_latency", "translation_latency"):
            if iommusim_stats.is_histogram(node.get(key)):
                out.append(f"system.{name}.{key}")
        for sub in ("rx", "tx"):
            if isinstance(node.get(sub), dict) and iommusim_stats.is_histogram(node[sub].get("latency")):
                out.append(f"system.{name}.{sub}.latency")
    return out + units


def get_path(stats, path):
    node = stats
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def cdf_plot(sw, chosen, stat, out):
    pts = {p["name"]: p for p in sw.plan["points"]}
    done = [r["point"] for r in sw.rows]
    if chosen:
        names = []
        for c in chosen.split(","):
            c = c.strip()
            if c.isdigit() and int(c) < len(sw.plan["points"]):
                c = sw.plan["points"][int(c)]["name"]
            if c not in done:
                raise SpecError(f"--cdf: '{c}' is no finished point of this sweep")
            names.append(c)
    else:
        names = sorted({done[0], done[len(done) // 2], done[-1]}, key=done.index)
    first = iommusim_stats.load(os.path.join(sw.dir, "points", names[0], "stats.json"))
    if not stat:
        cands = find_histograms(first)
        if not cands:
            return None
        stat = cands[0]
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    unit = "ns"
    styles = ("-", "--", ":", "-.")
    span = []
    for i, n in enumerate(names):
        h = get_path(iommusim_stats.load(os.path.join(sw.dir, "points", n, "stats.json")), stat)
        if not iommusim_stats.is_histogram(h):
            raise SpecError(f"--cdf-stat: {stat} is no histogram in point {n}")
        unit = h.get("unit", unit)
        # The percentiles joined by straight lines, the maximum drawn at 0.9999: an
        # approximation of the CDF from what stats.json keeps of the histogram.
        xs = [max(h[f], 0.5) for f, _ in CDF_FIELDS]
        ys = [q if f != "max" else 0.9999 for f, q in CDF_FIELDS]
        label = ", ".join(f"{short(k)}={v}" for k, v in pts[n]["values"].items()) or n
        span += xs[1:]
        ax.plot(xs[1:], ys[1:], linestyle=styles[i % len(styles)], marker="o", markersize=5,
                linewidth=1.8, label=label)
    logx = max(span) / min(span) > 10
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_yscale("logit")
    ax.set_ylim(0.4, 0.99995)
    ax.set_yticks([0.5, 0.9, 0.99, 0.999, 0.9999])
    ax.set_yticklabels(["p50", "p90", "p99", "p99.9", "max"])
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xlabel(f"{short(stat)} ({unit}{', log scale' if logx else ''})")
    ax.set_ylabel("percentile (logit scale)")
    ax.grid(True, which="major", alpha=0.3)
    # Below the axes: a legend inside would hide the tails it is about.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    ax.set_title(f"{short(stat)} CDF from the histogram's percentiles", fontsize=11)
    fig.tight_layout()
    path = os.path.join(out, f"cdf-{slug(stat)}.png")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path, f"{short(stat)} distribution (p50, p90, p99, p99.9, max) of {len(names)} points"


def short(p):
    return p.removeprefix("system.") if p else p


def slug(p):
    return short(p).replace(".", "_").replace("/", "_")


def plot_sweep(a):
    sw = Sweep(a.dir)
    out = a.out or os.path.join(a.dir, "plots")
    os.makedirs(out, exist_ok=True)
    hint = sw.plan.get("plot", {})
    metrics = pick_metrics(sw, a.metrics or ",".join(hint.get("metrics", [])))
    if not metrics:
        raise SpecError("no metric to plot: give --metrics")
    x, lines = choose_axes(sw, a)
    made = []
    if x:
        for m in metrics:
            made.append(line_plot(sw, x, lines, m, out))
    twoaxes = [p for p in sw.axes if len(sw.values(p)) > 1]
    if len(twoaxes) >= 2:
        y = lines if lines and lines != x else next(p for p in twoaxes if p != x)
        made.append(heatmap(sw, x, y, a.heatmap or (hint.get("heatmap") or [metrics[0]])[0], out))
    c = cdf_plot(sw, a.cdf or ",".join(hint.get("cdf", [])), a.cdf_stat, out)
    if c:
        made.append(c)
    index = write_gallery(sw, out, made)
    return [p for p, _ in made] + [index]


def write_gallery(sw, out, made):
    spec = ""
    try:
        with open(os.path.join(sw.dir, "spec.ini")) as f:
            spec = f.read()
    except OSError:
        pass
    plan = sw.plan
    rel_csv = os.path.relpath(os.path.join(sw.dir, "results.csv"), out)
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>sweep {html.escape(plan['name'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "figure{display:inline-block;margin:0 1em 2em 0;vertical-align:top}"
        "img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:1em;overflow:auto}"
        "</style></head><body>",
        f"<h1>Sweep {html.escape(plan['name'])}</h1>",
    ]
    if plan.get("description"):
        parts.append(f"<p>{html.escape(plan['description'])}</p>")
    parts.append(f"<p>{len(sw.rows)} of {len(plan['points'])} points finished; axes: "
                 f"{html.escape(', '.join(plan['axes']))}; data: "
                 f'<a href="{html.escape(rel_csv)}">results.csv</a>.</p>')
    for path, caption in made:
        name = os.path.basename(path)
        parts.append(f'<figure><a href="{html.escape(name)}"><img src="{html.escape(name)}" '
                     f'alt="{html.escape(caption)}"></a><figcaption>{html.escape(caption)}'
                     "</figcaption></figure>")
    parts.append("<h2>Sweep file</h2>")
    parts.append(f"<pre>{html.escape(spec)}</pre>")
    parts.append("</body></html>")
    path = os.path.join(out, "index.html")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")
    return path

