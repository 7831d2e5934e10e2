"""Renders a PACEGC_TRACE file as a timeline PNG (docs/images/trace-timeline.png was made with this).

    /usr/bin/python3 docs/images/render_trace.py TRACE.json OUT.png

Top: the whole run, one row per thread, every complete event as a bar coloured by name. Bottom: the longest
cycle, zoomed, with its phases one above the other. Needs matplotlib (Debian: python3-matplotlib).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "gc": "#bbbbbb",
    "stop the world": "#d62728",
    "mark roots": "#ff7f0e",
    "mark heap": "#2ca02c",
    "finalizer discovery": "#9467bd",
    "verify heap": "#8c564b",
    "sweep": "#1f77b4",
    "start the world": "#e377c2",
    "run finalizers": "#17becf",
    "background scavenge": "#bcbd22",
}
PHASES = ["stop the world", "mark roots", "mark heap", "finalizer discovery", "verify heap", "sweep",
          "start the world"]


def main():
    trace_path, out_path = sys.argv[1], sys.argv[2]
    with open(trace_path, encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "thread_name"}
    xs = [e for e in events if e.get("ph") == "X"]
    tids = sorted({e["tid"] for e in xs}, key=lambda t: min(e["ts"] for e in xs if e["tid"] == t))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6.5), gridspec_kw={"height_ratios": [1.1, 1]})

    for row, tid in enumerate(tids):
        for e in xs:
            if e["tid"] != tid:
                continue
            # The cycle bar is drawn thin under its phases; phases and other events full height.
            height, y = (0.8, row - 0.4) if e["name"] != "gc" else (0.2, row + 0.45)
            top.broken_barh([(e["ts"] / 1000, max(e["dur"] / 1000, 0.004))], (y, height),
                            facecolors=COLORS.get(e["name"], "black"))
    top.set_yticks(range(len(tids)))
    top.set_yticklabels(["%s (tid %d)" % (names.get(t, "?"), t) for t in tids])
    top.set_xlabel("time since the trace started (ms)")
    cycles = [e for e in xs if e["name"] == "gc"]
    top.set_title("PACEGC_TRACE of tests/unit/trace_probe: %d cycles, %d events" % (len(cycles), len(xs)))
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[n]) for n in COLORS if any(e["name"] == n for e in xs)]
    top.legend(handles, [n for n in COLORS if any(e["name"] == n for e in xs)], loc="upper center",
               bbox_to_anchor=(0.5, -0.25), ncol=5, fontsize=8)

    longest = max(cycles, key=lambda e: e["dur"])
    n = longest["args"]["cycle"]
    phases = [e for e in xs if e["name"] in PHASES and e["args"].get("cycle") == n]
    t0 = longest["ts"]
    for i, name in enumerate(PHASES):
        for e in phases:
            if e["name"] == name:
                bottom.broken_barh([((e["ts"] - t0), max(e["dur"], 0.05))], (i - 0.4, 0.8),
                                   facecolors=COLORS[name])
                bottom.text(e["ts"] - t0 + e["dur"] + 2, i, "%.1f µs" % e["dur"], va="center", fontsize=8)
    bottom.set_yticks(range(len(PHASES)))
    bottom.set_yticklabels(PHASES)
    bottom.invert_yaxis()
    bottom.set_xlabel("µs since the cycle started")
    a = longest["args"]
    bottom.set_title("cycle %d (%s), the longest: %.0f µs; heap %d -> %d B, marked %d B" % (
        n, a["reason"], longest["dur"], a["heap_alloc_before_bytes"], a["heap_alloc_after_bytes"],
        a["marked_bytes"]))
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


if __name__ == "__main__":
    main()
