#!/usr/bin/python3
"""Runs issue 5's experiments with pacegc-oomsim and writes their tables, CSV and plots into docs/experiments/.

Each experiment is one or more *sweeps*; a sweep is one pacegc-oomsim invocation (one scenario, a list of policies,
every runtime asked for, each run under the real cap). For every sweep NAME this writes, into --out:
  NAME.md    the table pacegc-oomsim printed (markdown), headed by the exact command
  NAME.csv   pacegc-oomsim's CSV (one row per runtime x policy; median and range with --runs > 1)
  NAME.svg   pacegc-oomsim's plot: memory over time per run, with heap goal, soft limit, cap and kills
  NAME.json  the full time series (only with --json: the files are large)
and for experiment 2 (a parameter sweep) also
  ballast-vs-limit-SCENARIO.csv   every row of that scenario's sweeps with the swept value as a number (x) and
                                  x_unit ("ballast MiB" or "limit % of cap")
  ballast-vs-limit-SCENARIO.svg   GC cycles, GC CPU, p99 pause and peak memory against the swept value, one line
                                  per runtime and sweep, killed runs marked with x (needs python3-matplotlib)

Experiments (docs/EXPERIMENTS.md writes them up):
  step              1. the step scenario, policies gogc, limit, off-limit, ballast (SCENARIOS.md's figure)
  ballast-vs-limit  2. ballast sizes 0, 64MiB, 128MiB, 256MiB, 1GiB and limits 70-95% of the cap (GOGC=100 +
                       limit and GOGC=off + limit), on the steady and step scenarios
  spiral            3. the spiral and leak scenarios with the CPU limiter on and off (:limiter=off, i.e.
                       PACEGC_CPU_LIMITER=off; n/a for Go and bdwgc, which have no such switch / no limiter)
  tuner             4. the tuner (60, 70, 80% of the cap) against GOMEMLIMIT on the step and leak scenarios
  cpu-quota         6. the step scenario in a CPU-limited container: --cpu 30% and --cpu 10% (a cgroup v1 cpu
                       cgroup per run, cfs_quota_us 30000 / 10000 per 100000), policies gogc and limit (GOMEMLIMIT =
                       90% of the cap, 460MiB at 512MiB). Not part of `all`: it needs a writable cgroup v1 cpu
                       controller (pacegc-oomsim refuses to run a quota without one) and a 10% quota makes every run
                       about ten times longer
  all               experiments 1-4 (`all cpu-quota` adds 6)

--tiny shrinks every scenario to about 1/8 (caps of 64-256 MiB, 32 MiB churn per phase, ballasts scaled with the
cap) so the whole of `all` runs in a minute or two: a check that the pipeline works, not a result. Its files are
marked "tiny" in their names, and it writes to a scratch directory unless --out is given.

Usage:
  /usr/bin/python3 bench/oomsim/experiments.py [options] EXPERIMENT...
    --out DIR        where to write (default docs/experiments; with --tiny: build/oomsim-experiments-tiny)
    --oomsim PATH    the pacegc-oomsim binary (default build/release/bench/oomsim/pacegc-oomsim)
    --runs N         runs per runtime x policy, median [min-max] (default 3; --tiny: 1)
    --runtime LIST   runtimes (default pacegc,go,bdwgc; a missing peer worker is skipped by pacegc-oomsim)
    --timeout SEC    per-run timeout passed to pacegc-oomsim (default 600, experiment 3: 120; --tiny: 60 and 15)
    --json           also write NAME.json
    --dry-run        print the commands and write nothing
Exit status: 0 when every sweep ran and wrote its files (a run that timed out or crashed is a warning: its row says
so); 1 when a pacegc-oomsim invocation failed outright (its message is shown); 2 for bad arguments.
"""
import argparse
import csv
import os
import re
import shlex
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_size(text):
    m = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB|TiB)?", text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(m.group(1)) * UNITS[m.group(2) or "B"]


def fmt_size(n):
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n and n % UNITS[unit] == 0:
            return f"{n // UNITS[unit]}{unit}"
    return f"{n}B"


class Sweep:
    """One pacegc-oomsim invocation."""

    def __init__(self, name, scenario, policies, cap=None, sets=(), x_kind=None, timeout=None, cpu=None):
        self.name, self.scenario, self.policies = name, scenario, list(policies)
        self.cap, self.sets, self.x_kind = cap, list(sets), x_kind  # x_kind: None, "ballast" or "limit"
        self.timeout = timeout  # per-run seconds; None: --timeout
        self.cpu = cpu  # pacegc-oomsim --cpu QUOTA ("30%"); None: no CPU quota


# Full size: the scenarios' own defaults (SCENARIOS.md). Tiny: about 1/8, same shapes.
FULL = {
    "step": dict(cap=512 * MIB, sets=[]),
    "steady": dict(cap=512 * MIB, sets=[]),
    "spiral": dict(cap=2048 * MIB, sets=[]),
    "leak": dict(cap=512 * MIB, sets=[]),
}
TINY = {
    "step": dict(cap=64 * MIB, sets=["live=8MiB,16MiB,24MiB,32MiB", "churn=32MiB"]),
    "steady": dict(cap=64 * MIB, sets=["churn=32MiB", "count=2"]),
    "spiral": dict(cap=256 * MIB, sets=["limit=58MiB", "live=32MiB,56MiB,64MiB,72MiB", "churn=32MiB"]),
    "leak": dict(cap=64 * MIB, sets=["churn=16MiB"]),
}
BALLAST_SIZES = [0, 64 * MIB, 128 * MIB, 256 * MIB, 1024 * MIB]  # at a 512MiB cap; scaled with the cap
LIMIT_PCTS = [70, 75, 80, 85, 90, 95]
SPIRAL_TIMEOUT, SPIRAL_TIMEOUT_TINY = 120, 15  # seconds per run of experiment 3 (Go 1.19 needs ~4 s per phase)
CPU_QUOTAS = ["30%", "10%"]  # experiment 5; SCENARIOS.md: Go 1.19 survives step at 30% in 28-31 s


def sweeps_for(experiment, tiny):
    shapes = TINY if tiny else FULL
    suffix = "-tiny" if tiny else ""

    def sweep(name, scenario, policies, x_kind=None, timeout=None, cpu=None):
        shape = shapes[scenario]
        return Sweep(name + suffix, scenario, policies, shape["cap"], shape["sets"], x_kind, timeout, cpu)

    if experiment == "step":
        return [sweep("1-step", "step", ["gogc", "limit", "off-limit", "ballast"])]
    if experiment == "ballast-vs-limit":
        out = []
        for scenario in ("steady", "step"):
            scale = shapes[scenario]["cap"] / (512 * MIB)
            ballasts = [f"ballast={fmt_size(int(b * scale) // MIB * MIB)}" for b in BALLAST_SIZES]
            out.append(sweep(f"2-{scenario}-ballast", scenario, ballasts, "ballast"))
            out.append(sweep(f"2-{scenario}-limit", scenario, [f"limit={p}%" for p in LIMIT_PCTS], "limit"))
            out.append(sweep(f"2-{scenario}-off-limit", scenario, [f"off-limit={p}%" for p in LIMIT_PCTS], "limit"))
        return out
    if experiment == "spiral":
        policies = ["gogc", "limit", "limit:limiter=off", "off-limit", "off-limit:limiter=off"]
        # Without the limiter's guard a run may thrash without end: it is stopped at SPIRAL_TIMEOUT and reported as
        # "killed after the N s timeout in phase P" (a result of this experiment, not a failure).
        t = SPIRAL_TIMEOUT_TINY if tiny else SPIRAL_TIMEOUT
        return [sweep("3-spiral", "spiral", policies, timeout=t), sweep("3-leak", "leak", policies, timeout=t)]
    if experiment == "tuner":
        policies = ["gogc", "limit", "off-limit", "tuner=60", "tuner=70", "tuner=80"]
        return [sweep("4-step-tuner", "step", policies), sweep("4-leak-tuner", "leak", policies)]
    if experiment == "cpu-quota":
        # "limit" is the scenario's soft limit, 90% of the cap: GOMEMLIMIT=460MiB under step's 512MiB.
        return [sweep(f"6-step-cpu{q.rstrip('%')}", "step", ["gogc", "limit"], cpu=q) for q in CPU_QUOTAS]
    raise ValueError(experiment)


def command_for(a, s):
    cmd = [a.oomsim, "--scenario", s.scenario, "--cap", fmt_size(s.cap), "--runtime", a.runtime, "--runs",
           str(a.runs), "--timeout", str(s.timeout if s.timeout is not None and a.timeout_default else a.timeout)]
    for kv in s.sets:
        cmd += ["--set", kv]
    for p in s.policies:
        cmd += ["--policy", p]
    if s.cpu:
        cmd += ["--cpu", s.cpu]
    base = os.path.join(a.out, s.name)
    cmd += ["--csv", base + ".csv", "--svg", base + ".svg"]
    if a.json:
        cmd += ["--json", base + ".json"]
    return cmd


def run_sweep(a, s, index, total):
    cmd = command_for(a, s)
    shown = " ".join(shlex.quote(c) for c in cmd).replace(REPO + "/", "")
    print(f"experiments.py: [{index}/{total}] {s.name}: {shown}", file=sys.stderr, flush=True)
    if a.dry_run:
        return True
    t0 = time.monotonic()
    # The progress lines of pacegc-oomsim go straight to our stderr; its table is captured for NAME.md.
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    csv_path = os.path.join(a.out, s.name + ".csv")
    if proc.returncode not in (0, 1) or not proc.stdout or not os.path.exists(csv_path):
        print(f"experiments.py: {s.name}: pacegc-oomsim failed (exit status {proc.returncode})", file=sys.stderr)
        return False
    if proc.returncode == 1:
        # Some run ended otherwise than by surviving or dying of memory: a timeout (experiment 3's spiral without
        # the limiter), a crash or a worker error. The table says which; it is kept, with a warning.
        print(f"experiments.py: {s.name}: warning: a run timed out, crashed or failed; see {s.name}.md",
              file=sys.stderr)
    with open(os.path.join(a.out, s.name + ".md"), "w") as f:
        f.write(f"<!-- written by bench/oomsim/experiments.py in {time.monotonic() - t0:.0f} s -->\n")
        f.write(f"Command (from the repository root): `{shown}`, one sweep of "
                f"`/usr/bin/python3 {' '.join(shlex.quote(x) for x in sys.argv)}`\n\n".replace(REPO + "/", ""))
        f.write(proc.stdout)
    return True


def x_value(policy, x_kind, cap):
    """The swept value of a CSV row's policy name ("ballast=64MiB", "limit=409MiB", "off-limit=409MiB")."""
    value = policy.split(":", 1)[0].split("=", 1)[1]
    if x_kind == "ballast":
        return parse_size(value) / MIB
    return round(parse_size(value) / cap * 100, 1)


def summarize(a, sweeps):
    """Merges the parameter sweeps of one scenario into ballast-vs-limit-SCENARIO.csv and .svg."""
    by_scenario = {}
    for s in sweeps:
        if s.x_kind:
            by_scenario.setdefault(s.scenario, []).append(s)
    for scenario, group in by_scenario.items():
        suffix = "-tiny" if a.tiny else ""
        rows = []
        for s in group:
            path = os.path.join(a.out, s.name + ".csv")
            if not os.path.exists(path):
                continue
            with open(path, newline="") as f:
                for r in csv.DictReader(f):
                    if r["survived"] == "n/a":
                        continue
                    sweep_kind = "ballast" if s.x_kind == "ballast" else r["policy"].split("=", 1)[0]
                    rows.append(dict(sweep=sweep_kind, x=x_value(r["policy"], s.x_kind, s.cap),
                                     x_unit="ballast MiB" if s.x_kind == "ballast" else "limit % of cap", **r))
        if not rows:
            continue
        base = os.path.join(a.out, f"ballast-vs-limit-{scenario}{suffix}")
        fields = ["sweep", "x", "x_unit"] + [k for k in rows[0] if k not in ("sweep", "x", "x_unit")]
        with open(base + ".csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        print(f"experiments.py: wrote {base}.csv ({len(rows)} rows)", file=sys.stderr)
        plot_summary(base + ".svg", scenario, rows, group[0].cap)


def plot_summary(path, scenario, rows, cap):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("experiments.py: python3-matplotlib is not installed; skipping " + path, file=sys.stderr)
        return
    metrics = [("gc_cycles", "GC cycles"), ("gc_cpu", "GC CPU fraction"), ("pause_p99_ms", "p99 pause (ms)"),
               ("peak_mib", "peak MiB (cap's count)")]
    fig, axes = plt.subplots(2, len(metrics), figsize=(16, 7), squeeze=False)
    for row_i, (kind, unit) in enumerate((("ballast", "ballast MiB"), ("limit", "soft limit, % of the cap"))):
        for col_i, (key, title) in enumerate(metrics):
            ax = axes[row_i][col_i]
            series = {}
            for r in rows:
                if (kind == "ballast") != (r["sweep"] == "ballast"):
                    continue
                series.setdefault(f'{r["runtime"]} {r["sweep"]}', []).append(r)
            for label, rs in sorted(series.items()):
                rs.sort(key=lambda r: r["x"])
                xs = [r["x"] for r in rs]
                ys = [float(r[key]) if r[key] else float("nan") for r in rs]
                line, = ax.plot(xs, ys, marker="o", label=label)
                dead = [(x, y) for x, y, r in zip(xs, ys, rs) if r["survived"] != "yes"]
                if dead:
                    ax.scatter([d[0] for d in dead], [d[1] for d in dead], marker="x", s=80, color="red", zorder=3)
            if key == "peak_mib":
                ax.axhline(cap / MIB, color="red", linewidth=0.8)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(unit, fontsize=8)
            ax.tick_params(labelsize=7)
            if col_i == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"Ballast vs soft limit, scenario {scenario}, cap {fmt_size(cap)} (x: did not survive; "
                 f"red line: the cap)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"experiments.py: wrote {path}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                   choices=["step", "ballast-vs-limit", "spiral", "tuner", "cpu-quota", "all"])
    p.add_argument("--out")
    p.add_argument("--oomsim", default=os.path.join(REPO, "build/release/bench/oomsim/pacegc-oomsim"))
    p.add_argument("--runs", type=int)
    p.add_argument("--runtime", default="pacegc,go,bdwgc")
    p.add_argument("--timeout", type=int)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    if a.runs is None:
        a.runs = 1 if a.tiny else 3
    a.timeout_default = a.timeout is None  # experiment 3 then uses its own, shorter timeout
    if a.timeout is None:
        a.timeout = 60 if a.tiny else 600
    if a.runs < 1 or a.runs > 1000:
        p.error(f"--runs {a.runs}: want a whole number in [1, 1000]")
    if a.timeout < 0:
        p.error(f"--timeout {a.timeout}: want 0 (none) or more seconds")
    if a.out is None:
        a.out = os.path.join(REPO, "build/oomsim-experiments-tiny" if a.tiny else "docs/experiments")
    if not (os.path.isfile(a.oomsim) and os.access(a.oomsim, os.X_OK)):
        p.error(f"--oomsim {a.oomsim}: not an executable file (build it: cmake --build build/release "
                f"--target pacegc-oomsim)")
    # `all` is experiments 1-4; `all cpu-quota` adds 6.
    names = [n for e in a.experiments for n in (["step", "ballast-vs-limit", "spiral", "tuner"] if e == "all" else [e])]
    sweeps = [s for e in dict.fromkeys(names) for s in sweeps_for(e, a.tiny)]
    if not a.dry_run:
        os.makedirs(a.out, exist_ok=True)
    ok = True
    for i, s in enumerate(sweeps, 1):
        ok = run_sweep(a, s, i, len(sweeps)) and ok
    if not a.dry_run:
        summarize(a, sweeps)
    print(f"experiments.py: {'done' if ok else 'FAILED (see above)'}; files in {a.out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
