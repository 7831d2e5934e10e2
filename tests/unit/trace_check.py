"""Validates a PACEGC_TRACE file: trace_check.py FILE NUM_GC [finalizers] [scavenge]

The file must be Chrome trace-event JSON ({"traceEvents": [...]}, parsed by json with NaN refused); every event
a complete ("X") event with pid, tid, ts >= 0, dur >= 0, or a metadata ("M") event. Events on one thread nest
(no partial overlap: the X-event equivalent of balanced B/E pairs). There is one "gc" event per cycle, cycles
1..NUM_GC, and each cycle has every phase, once, on the gc event's thread, inside it, in order. With
"finalizers" / "scavenge", at least one "run finalizers" / "background scavenge" event must be present.
Exits 0 when all holds; otherwise prints each problem and exits 1.
"""
import collections
import json
import sys

PHASES = ["stop the world", "mark roots", "mark heap", "finalizer discovery", "start the world", "sweep"]
OPTIONAL_PHASES = ["verify heap"]
EPS = 0.0015  # ts and dur are printed in microseconds with 3 decimals, each truncated


def main():
    path, num_gc = sys.argv[1], int(sys.argv[2])
    want = set(sys.argv[3:])
    problems = []

    def refuse(constant):
        raise ValueError("non-JSON constant " + constant)

    with open(path, encoding="utf-8") as f:
        doc = json.load(f, parse_constant=refuse)
    events = doc["traceEvents"]
    xs = []
    for e in events:
        if e.get("ph") == "M":
            if e.get("name") not in ("process_name", "thread_name") or not isinstance(e["args"]["name"], str):
                problems.append("bad metadata event %r" % e)
            continue
        if e.get("ph") != "X":
            problems.append("event is neither X nor M: %r" % e)
            continue
        for key, kind in (("name", str), ("pid", int), ("tid", int), ("ts", (int, float)), ("dur", (int, float))):
            if not isinstance(e.get(key), kind):
                problems.append("event without a valid %s: %r" % (key, e))
        if e["ts"] < 0 or e["dur"] < 0:
            problems.append("negative ts or dur: %r" % e)
        xs.append(e)

    # Nesting per thread.
    by_tid = collections.defaultdict(list)
    for e in xs:
        by_tid[e["tid"]].append(e)
    for tid, evs in by_tid.items():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in evs:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"] - EPS:
                stack.pop()
            if stack and e["ts"] + e["dur"] > stack[-1]["ts"] + stack[-1]["dur"] + EPS:
                problems.append("tid %d: %r overlaps %r without nesting" % (tid, e, stack[-1]))
            stack.append(e)

    cycles = [e for e in xs if e["name"] == "gc"]
    numbers = sorted(e["args"]["cycle"] for e in cycles)
    if numbers != list(range(1, num_gc + 1)):
        problems.append("gc events' cycles are %r, want 1..%d" % (numbers, num_gc))
    phases = collections.defaultdict(list)
    for e in xs:
        if e["name"] in PHASES + OPTIONAL_PHASES:
            phases[e["args"]["cycle"]].append(e)
    for gc in cycles:
        n = gc["args"]["cycle"]
        if gc["args"]["reason"] not in ("automatic", "forced", "periodic", "out of memory"):
            problems.append("cycle %d: unknown reason %r" % (n, gc["args"]["reason"]))
        got = sorted(phases[n], key=lambda e: e["ts"])
        names = [e["name"] for e in got if e["name"] not in OPTIONAL_PHASES]
        if names != PHASES:
            problems.append("cycle %d: phases %r, want %r" % (n, names, PHASES))
        end = gc["ts"] + gc["dur"]
        previous_end = gc["ts"]
        for e in got:
            if e["tid"] != gc["tid"]:
                problems.append("cycle %d: %s on thread %d, the cycle on %d" % (n, e["name"], e["tid"], gc["tid"]))
            if e["ts"] < previous_end - EPS or e["ts"] + e["dur"] > end + EPS:
                problems.append("cycle %d: %s [%r, +%r] outside the cycle or before the previous phase's end"
                                % (n, e["name"], e["ts"], e["dur"]))
            previous_end = e["ts"] + e["dur"]
    for name, flag in (("run finalizers", "finalizers"), ("background scavenge", "scavenge")):
        if flag in want and not any(e["name"] == name for e in xs):
            problems.append("no %r event" % name)
    for p in problems:
        print(p)
    if not problems:
        print("ok: %d events, %d cycles, %d threads" % (len(xs), len(cycles), len(by_tid)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
