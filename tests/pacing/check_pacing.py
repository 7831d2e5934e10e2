#!/usr/bin/env python3
"""Integration test of the pacer, the soft memory limit and the GC CPU limiter under a REAL memory cap.

Runs pacegc-oomsim (bench/oomsim) on scaled-down "step" and "spiral" scenarios, each run a child process in its
own cgroup-v1 memory cgroup (so "killed" is a kernel OOM kill), and checks the outcomes qualitatively, as users
rely on them (no timing is asserted):

  step (cap 256MiB, live 32 -> 128 MiB, 256 MiB of churn per phase)
    GOGC=100 alone            is OOM-killed in the last phase (live = cap/2: the GOGC goal is 2 x live)
    GOGC=100 + limit 230MiB   survives, peak (cgroup max usage) under the cap
    GOGC=off + limit 230MiB   survives, with fewer collections than GOGC=100 + limit
  step under a CPU quota of 10% of one core (a cgroup-v1 cpu cgroup too; skipped with the reason without one)
    GOGC=100 + limit 230MiB   survives under the cap, and the GC CPU limiter never turns on (throttled time is
                              not GC time)
  spiral (cap 1GiB, limit 200MiB, live 128 then 256 MiB with 1.5 GiB of churn: the live heap passes the limit)
    GOGC=100 + limit          survives; the CPU limiter turned on (limiter time > 0) and the heap grew past the
                              soft limit instead of thrashing, but no further than GOGC=100 alone (peak within 10%)

Exit 77 (ctest SKIP_RETURN_CODE) with the reason printed when no writable cgroup-v1 memory controller exists.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

CGROUP_ROOT = "/sys/fs/cgroup/memory"


def cgroup_unavailable():
    if not os.path.isdir(CGROUP_ROOT):
        return f"{CGROUP_ROOT} does not exist (no cgroup-v1 memory controller here)"
    if not os.access(CGROUP_ROOT, os.W_OK):
        return f"{CGROUP_ROOT} is not writable (not root, or cgroups are not delegated)"
    return None


def cpu_cgroup_unavailable():
    root = "/sys/fs/cgroup/cpu"
    if not os.path.exists(os.path.join(root, "cpu.cfs_quota_us")):
        return f"{root} has no cpu.cfs_quota_us (no cgroup-v1 cpu controller with CFS bandwidth control)"
    if not os.access(root, os.W_OK):
        return f"{root} is not writable (not root, or cgroups are not delegated)"
    return None


def run(oomsim, workdir, name, args):
    out = os.path.join(workdir, name + ".csv")
    cmd = [oomsim, "--enforce", "cgroup", "--quiet", "--csv", out, "--json", os.path.join(workdir, name + ".json"),
           "--timeout", "120"] + args
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout, flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: pacegc-oomsim exited with {proc.returncode}")
    with open(out, newline="") as f:
        rows = {row["policy"].split("=")[0]: row for row in csv.DictReader(f)}
    return rows


failures = []


def number(text):
    """A CSV cell as a number; NaN (which fails every comparison, so its check fails) when it is empty or not a
    number, as a killed run's limiter time is."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oomsim", required=True)
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    reason = cgroup_unavailable()
    if reason:
        print(f"SKIP: {reason}; the integration test needs a real memory cap")
        return 77
    workdir = a.workdir or tempfile.mkdtemp(prefix="pacegc-pacing-")
    os.makedirs(workdir, exist_ok=True)

    step = run(a.oomsim, workdir, "step", [
        "--scenario", "step", "--cap", "256MiB", "--runtime", "pacegc",
        "--set", "phases=32MiB:256MiB,64MiB:256MiB,96MiB:256MiB,128MiB:256MiB",
        "--policy", "gogc,limit=230MiB,off-limit=230MiB"])
    gogc, limit, off = step["gogc"], step["limit"], step["off-limit"]
    check(gogc["survived"] == "no" and gogc["killed_phase"] == "4",
          "step: GOGC=100 alone is OOM-killed in phase 4 (live = cap/2)")
    check(limit["survived"] == "yes", "step: GOGC=100 + GOMEMLIMIT=230MiB survives")
    check(number(limit["peak_mib"]) < 256, "step: with the limit, peak cgroup memory stays under the 256 MiB cap")
    check(off["survived"] == "yes", "step: GOGC=off + GOMEMLIMIT=230MiB survives")
    check(number(off["gc_cycles"]) < number(limit["gc_cycles"]),
          "step: GOGC=off + limit needs fewer collections than GOGC=100 + limit")

    # A step under a CFS quota of 10% of one core (a cpu cgroup as well as the memory cgroup), with GOGC=off so that
    # the limit alone paces it, and a live heap small beside the limit (16 then 32 MiB under 230 MiB): GC takes a
    # sixth to a fifth of the CPU the program gets (0.16-0.21 in 3 runs here), throttled or not, so the limiter must
    # not turn on. Charging throttled pause time as GC (issue 10: a pause's wall time is ~10x its CPU time under this
    # quota) makes GC look like all of the CPU: the limiter then postpones every collection, and with GOGC=off
    # nothing else bounds the heap. (The scaled step above is no test of this under a quota: from 64 MiB live its GC
    # takes 40-65% of the CPU, where Go's limiter rightly lets the heap grow, and at 128 MiB it was OOM-killed in 3
    # of 3 runs on the 2026-12-04 machine, commit 3d90aa1 as well.)
    cpu_reason = cpu_cgroup_unavailable()
    if cpu_reason:
        print(f"SKIP step under a CPU quota: {cpu_reason}", flush=True)
    else:
        quota = run(a.oomsim, workdir, "step-cpu10", [
            "--scenario", "step", "--cap", "256MiB", "--runtime", "pacegc", "--cpu", "10%",
            "--set", "phases=16MiB:256MiB,32MiB:512MiB", "--policy", "off-limit=230MiB"])
        q = quota["off-limit"]
        check(q["survived"] == "yes", "step under a 10% CPU quota: GOGC=off + GOMEMLIMIT=230MiB survives")
        check(number(q["peak_mib"]) < 256, "step under a 10% CPU quota: peak cgroup memory stays under the cap")
        check(number(q["limiter_on_s"]) == 0,
              "step under a 10% CPU quota: throttled time is not GC time (the limiter never turned on)")

    spiral = run(a.oomsim, workdir, "spiral", [
        "--scenario", "spiral", "--cap", "1GiB", "--runtime", "pacegc", "--set", "limit=200MiB",
        "--set", "phases=128MiB:256MiB,256MiB:1536MiB", "--policy", "gogc,limit"])
    sg, sl = spiral["gogc"], spiral["limit"]
    check(sl["survived"] == "yes", "spiral: live heap above the soft limit, the process survives")
    check(number(sl["limiter_on_s"]) > 0, "spiral: the GC CPU limiter turned on")
    check(number(sl["peak_mib"]) > 200, "spiral: the heap grew past the soft limit instead of thrashing")
    check(number(sl["peak_mib"]) <= number(sg["peak_mib"]) * 1.10,
          "spiral: ...but no further than GOGC=100 alone would (peak within 10%)")
    check(number(sg["limiter_on_s"]) == 0, "spiral: without a limit the limiter never turned on")
    with open(os.path.join(workdir, "spiral.json")) as f:
        groups = json.load(f)["groups"]
    limited = [g for g in groups if g["policy"].startswith("limit")][0]["runs"][0]
    fractions = [p["gc_cpu"] for p in limited["phases"]]
    check(all(isinstance(x, (int, float)) and 0 < x <= 1 for x in fractions),
          f"spiral: every phase reports its GC CPU fraction (got {fractions})")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all pacing integration checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
