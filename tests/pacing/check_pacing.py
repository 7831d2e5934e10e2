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
    check(float(limit["peak_mib"]) < 256, "step: with the limit, peak cgroup memory stays under the 256 MiB cap")
    check(off["survived"] == "yes", "step: GOGC=off + GOMEMLIMIT=230MiB survives")
    check(float(off["gc_cycles"]) < float(limit["gc_cycles"]),
          "step: GOGC=off + limit needs fewer collections than GOGC=100 + limit")

    # The same step under a CFS quota of 10% of one core (a cpu cgroup as well as the memory cgroup). GC takes about
    # a fifth of the CPU the program gets, throttled or not, so the limiter must not turn on; before the limiter
    # counted both sides in CPU time it charged throttled pause time as GC, turned on, and the run was OOM-killed
    # in phase 4 (3 of 3 runs, issue 10).
    cpu_reason = cpu_cgroup_unavailable()
    if cpu_reason:
        print(f"SKIP step under a CPU quota: {cpu_reason}", flush=True)
    else:
        quota = run(a.oomsim, workdir, "step-cpu10", [
            "--scenario", "step", "--cap", "256MiB", "--runtime", "pacegc", "--cpu", "10%",
            "--set", "phases=32MiB:256MiB,64MiB:256MiB,96MiB:256MiB,128MiB:256MiB", "--policy", "limit=230MiB"])
        q = quota["limit"]
        check(q["survived"] == "yes", "step under a 10% CPU quota: GOGC=100 + GOMEMLIMIT=230MiB survives")
        check(float(q["peak_mib"]) < 256, "step under a 10% CPU quota: peak cgroup memory stays under the cap")
        check(float(q["limiter_on_s"]) == 0,
              "step under a 10% CPU quota: throttled time is not GC time (the limiter never turned on)")

    spiral = run(a.oomsim, workdir, "spiral", [
        "--scenario", "spiral", "--cap", "1GiB", "--runtime", "pacegc", "--set", "limit=200MiB",
        "--set", "phases=128MiB:256MiB,256MiB:1536MiB", "--policy", "gogc,limit"])
    sg, sl = spiral["gogc"], spiral["limit"]
    check(sl["survived"] == "yes", "spiral: live heap above the soft limit, the process survives")
    check(float(sl["limiter_on_s"]) > 0, "spiral: the GC CPU limiter turned on")
    check(float(sl["peak_mib"]) > 200, "spiral: the heap grew past the soft limit instead of thrashing")
    check(float(sl["peak_mib"]) <= float(sg["peak_mib"]) * 1.10,
          "spiral: ...but no further than GOGC=100 alone would (peak within 10%)")
    check(float(sg["limiter_on_s"]) == 0, "spiral: without a limit the limiter never turned on")
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
