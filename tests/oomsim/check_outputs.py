#!/usr/bin/env python3
"""End-to-end runs of pacegc-oomsim under small caps, with its CSV, JSON and SVG parsed by Python's own parsers.

Registered as the ctest `oomsim_outputs` (tests/oomsim/CMakeLists.txt). Each run takes well under a second on
2 cores; nothing here asserts a timing.

  1. phases 8MiB:64MiB,16MiB:64MiB under a 64MiB cap, policies gogc and limit, 2 runs each: both survive
     (live 16 MiB, a GOGC=100 heap of ~32 MiB, far below the cap). The CSV has one row per policy with the required
     columns, the JSON holds a memory series for every run, the SVG parses as XML with an <svg> root.
  2. phases 8MiB:64MiB,24MiB:128MiB under a 48MiB cap with gogc: GOGC=100 needs twice the 24 MiB live heap plus the
     collector's own memory, so the cap kills it in phase 2. Checked with the enforcement auto chooses (the cgroup
     where writable) and with the forced RSS watchdog.

Usage: check_outputs.py --oomsim PATH --workdir DIR
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import xml.dom.minidom

REQUIRED_COLUMNS = ["policy", "survived", "peak_mib", "gc_cycles", "gc_cpu", "wall_s", "runtime"]


def fail(message):
    print("check_outputs.py: FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def run(oomsim, workdir, name, args):
    paths = {ext: os.path.join(workdir, name + "." + ext) for ext in ("csv", "json", "svg")}
    cmd = [oomsim, *args, "--csv", paths["csv"], "--json", paths["json"], "--svg", paths["svg"]]
    env = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOMEMLIMIT")}
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    print(proc.stdout)
    print(proc.stderr, file=sys.stderr)
    if proc.returncode != 0:
        fail(f"{name}: exit status {proc.returncode}")
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    with open(paths["json"]) as f:
        data = json.load(f)
    dom = xml.dom.minidom.parse(paths["svg"])
    if dom.documentElement.tagName != "svg":
        fail(f"{name}: the SVG's root element is <{dom.documentElement.tagName}>")
    return proc, rows, data, dom


def check_csv_columns(name, rows):
    if not rows:
        fail(f"{name}: the CSV has no rows")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        fail(f"{name}: the CSV lacks the columns {missing}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--oomsim", required=True)
    parser.add_argument("--workdir", required=True)
    a = parser.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)

    # 1. Both policies survive a 64 MiB cap.
    proc, rows, data, dom = run(a.oomsim, a.workdir, "survive",
                                ["--cap", "64MiB", "--set", "phases=8MiB:64MiB,16MiB:64MiB", "--policy", "gogc",
                                 "--policy", "limit", "--runs", "2"])
    check_csv_columns("survive", rows)
    if [r["policy"] for r in rows] != ["gogc=100", "limit=57MiB"]:
        fail(f"survive: CSV policies {[r['policy'] for r in rows]}")
    for r in rows:
        if r["survived"] != "yes" or r["survived_runs"] != "2":
            fail(f"survive: {r['policy']} did not survive both runs: {r['end']}")
        if not float(r["peak_mib"]) > 0 or float(r["peak_mib"]) > 64:
            fail(f"survive: {r['policy']} peak {r['peak_mib']} MiB")
        if not int(float(r["gc_cycles"])) > 0:
            fail(f"survive: {r['policy']} ran no collection")
    if data["scenario"]["cap_bytes"] != 64 << 20 or len(data["scenario"]["phases"]) != 2:
        fail("survive: the JSON's scenario is wrong")
    for g in data["groups"]:
        if len(g["runs"]) != 2:
            fail(f"survive: JSON group {g['policy']} has {len(g['runs'])} runs")
        for r in g["runs"]:
            u = r["usage"]
            if len(u["t_s"]) == 0 or len(u["t_s"]) != len(u["bytes"]):
                fail(f"survive: JSON usage series of {g['policy']} is empty or ragged")
            s = r["samples"]
            if len({len(v) for v in s.values()}) != 1 or len(s["t_s"]) == 0:
                fail(f"survive: JSON sample series of {g['policy']} are empty or ragged")
            if r["end"] != "survived" or r["result"] is None:
                fail(f"survive: JSON run of {g['policy']} ended {r['end']}")
    if len(dom.getElementsByTagName("polyline")) == 0:
        fail("survive: the SVG has no data lines")
    if "| pacegc | GOGC=100 | yes (2/2) |" not in proc.stdout:
        fail("survive: the table lacks the gogc row")

    # 2. GOGC=100 is killed in phase 2 under a 48 MiB cap, by whichever enforcement auto picks, then by the watchdog.
    for name, extra in (("killed", []), ("killed-watchdog", ["--enforce", "watchdog"])):
        proc, rows, data, dom = run(a.oomsim, a.workdir, name,
                                    ["--cap", "48MiB", "--set", "phases=8MiB:64MiB,24MiB:128MiB", "--policy", "gogc",
                                     *extra])
        check_csv_columns(name, rows)
        r = rows[0]
        if r["survived"] != "no" or r["killed_phase"] != "2":
            fail(f"{name}: gogc was not killed in phase 2: survived={r['survived']} end={r['end']}")
        run0 = data["groups"][0]["runs"][0]
        if run0["end"] not in ("oom-killed", "watchdog-killed") or run0["killed_phase"] != 2:
            fail(f"{name}: JSON says {run0['end']} in phase {run0['killed_phase']}")
        if extra and (run0["end"] != "watchdog-killed" or data["enforcement"] != "watchdog"):
            fail(f"{name}: the forced watchdog was not used ({data['enforcement']}, {run0['end']})")
        if extra and "watchdog" not in proc.stdout:
            fail(f"{name}: the table does not say the watchdog enforced the cap")
        texts = "".join(t.firstChild.data for t in dom.getElementsByTagName("text") if t.firstChild)
        if "kill in phase 2" not in texts:
            fail(f"{name}: the SVG does not mark the kill")
    print("check_outputs.py: OK")


if __name__ == "__main__":
    main()
