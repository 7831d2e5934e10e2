#!/usr/bin/env python3
"""Statistics for scripts/bench.sh: turns raw benchmark output into markdown tables.

  summarize.py gcbench RESULTS [--order a,b,...] [--baseline bdwgc]
      RESULTS holds the RESULT lines printed by the gcbench_* executables, one per run, e.g.
        RESULT allocator=bdwgc wall_ms=186.1 maxrss_kib=23680 gcs=38 gc_pause_ms=20.0 repeats=1
      Prints one row per allocator: median wall ms, min-max, median peak RSS (MiB), ratios of the medians to the
      baseline's, median GC count and GC pause time.

  summarize.py alloc JSON...
      JSON files written by alloc_bench_* with --benchmark_repetitions=N --benchmark_out_format=json. Prints the
      median wall ns per allocation for each (pattern, size) and API, with the ratio to bdwgc's corresponding API
      (GC_MALLOC_ATOMIC for *_atomic, GC_MALLOC otherwise).
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict


def fail(msg):
    print(f"summarize.py: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_result_line(line):
    fields = {}
    for tok in line.split()[1:]:
        key, sep, value = tok.partition("=")
        if not sep:
            fail(f"malformed RESULT field {tok!r} in line: {line.strip()}")
        fields[key] = value
    for key in ("allocator", "wall_ms", "maxrss_kib", "gcs"):
        if key not in fields:
            fail(f"RESULT line lacks {key}=: {line.strip()}")
    return fields


def fmt(x, digits=1):
    return f"{x:.{digits}f}"


def gcbench(args):
    runs = defaultdict(list)
    with open(args.results) as f:
        for line in f:
            if line.startswith("RESULT "):
                r = parse_result_line(line)
                runs[r["allocator"]].append(r)
    if not runs:
        fail(f"no RESULT lines in {args.results}")
    order = args.order.split(",") if args.order else sorted(runs)
    missing = [a for a in order if a not in runs]
    if missing:
        fail(f"no results for: {', '.join(missing)}")

    med = {}
    for a in order:
        wall = [float(r["wall_ms"]) for r in runs[a]]
        rss = [int(r["maxrss_kib"]) / 1024.0 for r in runs[a]]
        med[a] = dict(
            n=len(wall),
            wall=statistics.median(wall),
            lo=min(wall),
            hi=max(wall),
            rss=statistics.median(rss),
            gcs=statistics.median(int(r["gcs"]) for r in runs[a]),
            pause=statistics.median(float(r.get("gc_pause_ms", "0")) for r in runs[a]),
        )
    base = med.get(args.baseline)

    print(f"| allocator | median wall ms | min–max wall ms | median peak RSS MiB | wall ratio vs {args.baseline} "
          f"| RSS ratio vs {args.baseline} | GCs (median) | GC pause ms (median) | runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for a in order:
        m = med[a]
        wr = fmt(m["wall"] / base["wall"], 2) if base else "—"
        rr = fmt(m["rss"] / base["rss"], 2) if base else "—"
        gcs = f"{m['gcs']:g}"
        pause = fmt(m["pause"]) if m["gcs"] else "—"
        print(f"| {a} | {fmt(m['wall'])} | {fmt(m['lo'])}–{fmt(m['hi'])} | {fmt(m['rss'])} | {wr} | {rr} "
              f"| {gcs} | {pause} | {m['n']} |")


UNIT_TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
API_ORDER = ["pgc_malloc", "pgc_malloc_atomic", "GC_MALLOC", "GC_MALLOC_ATOMIC", "mi_malloc_free"]
BDWGC_COUNTERPART = {"pgc_malloc": "GC_MALLOC", "pgc_malloc_atomic": "GC_MALLOC_ATOMIC", "mi_malloc_free": "GC_MALLOC"}


def alloc(args):
    ns = {}  # (pattern, size, api) -> median ns per allocation
    for path in args.json:
        with open(path) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            if b.get("run_type") != "aggregate" or b.get("aggregate_name") != "median":
                continue
            # run_name is "<pattern>/<api>/<size>/real_time"
            parts = b["run_name"].split("/")
            if len(parts) < 3:
                fail(f"unexpected benchmark name {b['run_name']!r} in {path}")
            pattern, api, size = parts[0], parts[1], int(parts[2])
            ns[(pattern, size, api)] = b["real_time"] * UNIT_TO_NS[b.get("time_unit", "ns")]
    if not ns:
        fail("no median aggregates found (run alloc_bench_* with --benchmark_repetitions >= 2)")
    apis = [a for a in API_ORDER if any(k[2] == a for k in ns)]
    apis += sorted({k[2] for k in ns} - set(apis))
    rows = sorted({(k[0], k[1]) for k in ns}, key=lambda r: (r[0] != "garbage", r[0], r[1]))

    print("| pattern | size B | " + " | ".join(apis) + " |")
    print("|---|---:|" + "---:|" * len(apis))
    for pattern, size in rows:
        cells = []
        for api in apis:
            v = ns.get((pattern, size, api))
            if v is None:
                cells.append("—")
                continue
            ref = ns.get((pattern, size, BDWGC_COUNTERPART.get(api, "")))
            cells.append(f"{v:.1f}" + (f" ({v / ref:.2f}×)" if ref else ""))
        print(f"| {pattern} | {size} | " + " | ".join(cells) + " |")
    print()
    print("Cells: median wall ns per allocation; in parentheses the ratio to bdwgc's corresponding call "
          "(GC_MALLOC_ATOMIC for pgc_malloc_atomic, GC_MALLOC otherwise); lower is better.")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gcbench")
    g.add_argument("results")
    g.add_argument("--order", default="")
    g.add_argument("--baseline", default="bdwgc")
    a = sub.add_parser("alloc")
    a.add_argument("json", nargs="+")
    args = p.parse_args()
    gcbench(args) if args.cmd == "gcbench" else alloc(args)


if __name__ == "__main__":
    main()
