#!/usr/bin/env python3
"""Render an iommusim --timeline file (Chrome trace-event JSON) as a PNG: one row per track
(thread), spans as horizontal bars coloured by name, counters below. Made for the picture in
docs/timeline.md; ui.perfetto.dev is the interactive view.
Usage: timeline_png.py TIMELINE.json OUT.png [--from US] [--to US] [--max-lanes N]"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("timeline")
    ap.add_argument("png")
    ap.add_argument("--from", dest="t0", type=float, default=None, help="start, us")
    ap.add_argument("--to", dest="t1", type=float, default=None, help="end, us")
    ap.add_argument("--max-lanes", type=int, default=3,
                    help="lanes shown per track (a track's overlapping spans spill to lanes #2...)")
    a = ap.parse_args()
    try:
        with open(a.timeline) as f:
            events = json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"timeline_png: {a.timeline}: not a trace-event file ({e})")
    procs, threads, order = {}, {}, {}
    for e in events:
        if e["ph"] == "M" and e["name"] == "process_name":
            procs[e["pid"]] = e["args"]["name"]
        elif e["ph"] == "M" and e["name"] == "thread_name":
            threads[(e["pid"], e["tid"])] = e["args"]["name"]
            order[(e["pid"], e["tid"])] = e["tid"]

    def inside(e):
        end = e["ts"] + e.get("dur", 0)
        return (a.t0 is None or end >= a.t0) and (a.t1 is None or e["ts"] <= a.t1)

    spans = [e for e in events if e["ph"] == "X" and inside(e)]
    counters = [e for e in events if e["ph"] == "C" and inside(e)]

    def lane_no(name):
        return int(name.split("#")[1]) if "#" in name else 1

    used = sorted({(e["pid"], e["tid"]) for e in spans
                   if lane_no(threads.get((e["pid"], e["tid"]), "")) <= a.max_lanes},
                  key=lambda k: (procs.get(k[0], ""), order.get(k, 0)))
    row = {k: i for i, k in enumerate(used)}
    names = sorted({e["name"] for e in spans if (e["pid"], e["tid"]) in row and not e["name"].startswith("level")})
    cmap = plt.get_cmap("tab10")
    colour = {n: cmap(i % 10) for i, n in enumerate(names)}
    series = sorted({(procs.get(e["pid"], "?"), e["name"]) for e in counters})

    fig, axes = plt.subplots(
        1 + len(series), 1, sharex=True, figsize=(13, 0.32 * len(used) + 1.1 * len(series) + 1.6),
        gridspec_kw={"height_ratios": [max(len(used), 1) * 0.32] + [1.0] * len(series)},
        squeeze=False)
    ax = axes[0][0]
    for e in spans:
        k = (e["pid"], e["tid"])
        if k not in row:
            continue
        y = row[k]
        if e["name"].startswith("level"):  # a walk's steps: thin bars inside the walk
            ax.broken_barh([(e["ts"], e["dur"])], (y - 0.1, 0.2), facecolors="black", alpha=0.5)
        else:
            ax.broken_barh([(e["ts"], max(e["dur"], 1e-4))], (y - 0.35, 0.7),
                           facecolors=colour[e["name"]], edgecolors="white", linewidth=0.3)
    ax.set_yticks(range(len(used)))
    ax.set_yticklabels([f"{procs.get(p, '?')} / {threads.get((p, t), t)}" for p, t in used], fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    handles = [matplotlib.patches.Patch(color=colour[n], label=n) for n in names]
    handles.append(matplotlib.patches.Patch(color="black", alpha=0.5, label="walk step (level N)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title(f"iommusim timeline: {a.timeline.split('/')[-1]} (simulated time)")
    x_end = a.t1 if a.t1 is not None else max(e["ts"] + e.get("dur", 0) for e in spans + counters)
    for i, (proc, name) in enumerate(series):
        cax = axes[i + 1][0]
        # Samples at the same time: the last one written wins, as in Perfetto.
        last = {e["ts"]: e["args"]["value"] for e in counters
                if procs.get(e["pid"]) == proc and e["name"] == name}
        pts = sorted(last.items())
        # A counter is recorded when it changes: hold its last value to the right edge.
        pts.append((x_end, pts[-1][1]))
        cax.step([p[0] for p in pts], [p[1] for p in pts], where="post")
        cax.set_ylabel(f"{proc}\n{name}", fontsize=8, rotation=0, ha="right", va="center")
        cax.grid(alpha=0.3)
    axes[-1][0].set_xlabel("simulated time (us)")
    if a.t0 is not None or a.t1 is not None:
        ax.set_xlim(a.t0, a.t1)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
