"""Reading iommusim's stats.json: flattening to dotted paths and choosing headline statistics.

Shared by scripts/sweep (results.csv), scripts/plot and scripts/regress. Standard library only.
"""
import json

# Fields of a histogram as stats.json writes them (docs/stats.md); "unit" is not a number.
HIST_FIELDS = ("count", "sum", "mean", "min", "p50", "p90", "p99", "p99.9", "max")


def is_histogram(node):
    return isinstance(node, dict) and "unit" in node and "p50" in node and "count" in node


def load(path):
    with open(path) as f:
        return json.load(f)


def flatten(tree, prefix="system"):
    """Dotted path -> number for every statistic of a stats tree, in the file's order.
    A histogram gives one entry per field (path.count, path.mean, ... path.max)."""
    out = {}

    def walk(node, path):
        for key, value in node.items():
            p = f"{path}.{key}"
            if is_histogram(value):
                for f in HIST_FIELDS:
                    if f in value:
                        out[f"{p}.{f}"] = value[f]
            elif isinstance(value, dict):
                walk(value, p)
            else:
                out[p] = value

    walk(tree, prefix)
    return out


# Headline statistics (results.csv, plots): a small, platform-independent selection. Leaf
# names kept at the top of a unit or device node, at one level below in the listed groups
# (a NIC's rx/tx, a unit's iotlb), and the histograms summarised by mean and p99.
_LEAVES = ("translations", "faults", "stale_hits", "invalidations", "mismatches",
           "translations_checked", "dmas", "transfers", "bandwidth", "throughput", "iops",
           "packet_rate", "elapsed_ns", "hit_rate", "drops_no_buffer")
_HISTOGRAMS = ("latency", "miss_latency", "dma_latency", "translation_latency")
_GROUPS = ("rx", "tx", "iotlb", "walker")
_SKIP = ("memory", "rc", "router")


def headline(stats):
    """Ordered dict of headline statistics of a parsed stats.json (plain numbers).
    `<unit>.iotlb.hit_rate` (percent of lookups that hit) is derived from hits and lookups
    when the file does not carry it."""
    out = {"run.simulated_ns": _number(stats.get("run", {}).get("simulated_ns"))}
    system = stats.get("system", {})

    def take(node, path, depth):
        for key, value in node.items():
            p = f"{path}.{key}"
            if is_histogram(value):
                if key in _HISTOGRAMS:
                    out[f"{p}.mean"] = value.get("mean")
                    out[f"{p}.p99"] = value.get("p99")
            elif isinstance(value, dict):
                if depth == 0 and key in _GROUPS:
                    take(value, p, depth + 1)
                if key == "walker" and "walks" in value:
                    out[f"{p}.walks"] = value["walks"]
            elif key in _LEAVES:
                out[p] = value
        iotlb = node.get("iotlb")
        if isinstance(iotlb, dict) and "hit_rate" not in iotlb and iotlb.get("lookups"):
            out[f"{path}.iotlb.hit_rate"] = round(100.0 * iotlb["hits"] / iotlb["lookups"], 4)

    for name, node in system.items():
        if name in _SKIP or not isinstance(node, dict):
            continue
        take(node, f"system.{name}", 0)
    return out


def _number(text):
    if text is None:
        return None
    try:
        return int(text)
    except (TypeError, ValueError):
        try:
            return float(text)
        except (TypeError, ValueError):
            return text


# Units of headline statistics for axis labels, by the statistic's last path component.
UNITS = {
    "bandwidth": "bytes/s", "throughput": "bit/s", "iops": "IO/s", "packet_rate": "packets/s",
    "hit_rate": "%", "elapsed_ns": "ns", "simulated_ns": "ns", "mean": "ns", "p99": "ns",
    "p50": "ns", "p90": "ns", "max": "ns", "min": "ns",
}


def unit_of(stat):
    return UNITS.get(stat.rsplit(".", 1)[-1], "")
