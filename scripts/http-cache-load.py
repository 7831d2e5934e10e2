#!/usr/bin/python3
"""Runs pacegc-http-cache under a real memory cap (a cgroup-v1 memory cgroup) with GOMEMLIMIT, drives it with
http_cache_load over loopback for a bounded time and request count, and reports throughput, latency percentiles
(p50/p99/max), GC cycles and pauses (from GODEBUG=gctrace=1), the GC CPU limiter and pressure shedding (from
/metrics), and peak memory (the cgroup's memory.max_usage_in_bytes).

Usage (root; run with Debian's /usr/bin/python3, which has matplotlib for --plot):
  scripts/http-cache-load.py [--cap MiB] [--gomemlimit SIZE] [--max-bytes SIZE] [--seconds S] [--requests N]
                             [--connections C] [--threads T] [--keys K] [--min-bytes B] [--max-value-bytes B]
                             [--out DIR] [--plot PNG]
  --cap MiB          hard cap of the cgroup (default 256)
  --gomemlimit SIZE  GOMEMLIMIT of the service (default 90% of the cap, in MiB: SCENARIOS.md's rule)
  --max-bytes SIZE   the service's --max-bytes (default 128MiB); --shed on|off: the service's --shed (default on)
  --seconds S        load duration bound (default 30, at most 600); --requests N: request bound (default 2000000)
  --connections C    load generator keep-alive connections (default 4); --threads T: service threads (default 4)
  --keys K           distinct keys (default 40000), 80% of requests on the first 20%
  --min-bytes / --max-value-bytes  PUT value sizes, uniform (default 1024 .. 16384); 30% of requests are PUTs
  --out DIR          where the raw files go (default a new directory under /tmp): service stderr (gctrace), the
                     load generator's per-second timeline, the 0.5 s samples of /metrics and the cgroup, summary.json
  --plot PNG         also draw throughput, latency and memory over time (python3-matplotlib)
Binaries: $BUILD_DIR/examples/{pacegc-http-cache,http_cache_load}, BUILD_DIR defaulting to build/release.
Only loopback is used (the service binds 127.0.0.1). The cgroup is removed at the end. Without a writable cgroup-v1
memory controller the script stops with a message (no fallback: the point is the real cap).
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CGROUP_ROOT = "/sys/fs/cgroup/memory"


def die(msg):
    sys.exit("http-cache-load: " + msg)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cap", type=int, default=256)
    p.add_argument("--gomemlimit")
    p.add_argument("--max-bytes", default="128MiB")
    p.add_argument("--shed", choices=("on", "off"), default="on")
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--requests", type=int, default=2_000_000)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--keys", type=int, default=40_000)
    p.add_argument("--min-bytes", type=int, default=1024)
    p.add_argument("--max-value-bytes", type=int, default=16384)
    p.add_argument("--out")
    p.add_argument("--plot")
    a = p.parse_args()
    if not 16 <= a.cap <= 16384:
        die("--cap must be 16..16384 MiB")
    if not 1 <= a.seconds <= 600:
        die("--seconds must be 1..600")
    if not 1 <= a.requests <= 100_000_000:
        die("--requests must be 1..100000000")
    if a.gomemlimit is None:
        a.gomemlimit = "%dMiB" % (a.cap * 9 // 10)
    return a


class Cgroup:
    """A scratch cgroup-v1 memory cgroup with a hard cap (SCENARIOS.md, "The hard cap")."""

    def __init__(self, cap_bytes):
        if os.geteuid() != 0:
            die("must run as root to create a memory cgroup")
        if not os.path.exists(os.path.join(CGROUP_ROOT, "memory.limit_in_bytes")):
            die(CGROUP_ROOT + " is not a writable cgroup-v1 memory hierarchy")
        self.path = os.path.join(CGROUP_ROOT, "pacegc-http-cache-%d" % os.getpid())
        os.mkdir(self.path)
        self.write("memory.limit_in_bytes", cap_bytes)
        if os.path.exists(self.file("memory.memsw.limit_in_bytes")):
            self.write("memory.memsw.limit_in_bytes", cap_bytes)

    def file(self, name):
        return os.path.join(self.path, name)

    def write(self, name, value):
        with open(self.file(name), "w") as f:
            f.write(str(value))

    def read(self, name):
        with open(self.file(name)) as f:
            return f.read()

    def number(self, name):
        return int(self.read(name).split()[0])

    def oom_kills(self):
        m = re.search(r"^oom_kill (\d+)", self.read("memory.oom_control"), re.M)
        return int(m.group(1)) if m else 0

    def remove(self):
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.05)


def scrape(port):
    """The /metrics values this script uses, by sample name (registry metrics by their name label)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.match(r'^(\w+)(?:\{name="([^"]*)"\})? (\S+)$', line)
        if m:
            out[m.group(2) or m.group(1)] = float(m.group(3))
    return out


def pauses_from_gctrace(path):
    """Pause of each cycle in ms: the three wall-clock phases of a gctrace line (stop + mark/sweep + restart)."""
    pauses = []
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"gc \d+ @\S+ \S+: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock", line)
            if m:
                pauses.append(sum(float(x) for x in m.groups()))
    return pauses


def quantile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[int(q * (len(sorted_values) - 1))]


def main():
    a = parse_args()
    build = os.environ.get("BUILD_DIR", os.path.join(REPO, "build/release"))
    service_bin = os.path.join(build, "examples/pacegc-http-cache")
    load_bin = os.path.join(build, "examples/http_cache_load")
    for b in (service_bin, load_bin):
        if not os.access(b, os.X_OK):
            die("%s not built (cmake --build %s --target pacegc-http-cache http_cache_load)" % (b, build))
    out = a.out or tempfile.mkdtemp(prefix="http-cache-load-")
    os.makedirs(out, exist_ok=True)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip() != ""
    command = "scripts/http-cache-load.py " + " ".join(sys.argv[1:])

    cap = a.cap << 20
    cg = Cgroup(cap)
    env = dict(os.environ, GOMEMLIMIT=a.gomemlimit, GODEBUG="gctrace=1")
    for k in ("GOGC", "PACEGC_AUTOMEMLIMIT"):
        env.pop(k, None)
    stderr_path = os.path.join(out, "service.stderr")
    service = None
    try:
        with open(stderr_path, "w") as err:
            procs = cg.file("cgroup.procs")

            def enter_cgroup():  # in the child, before exec: the service and nothing else is capped
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

            service = subprocess.Popen([service_bin, "--port", "0", "--bind", "127.0.0.1", "--threads",
                                        str(a.threads), "--max-bytes", a.max_bytes, "--shed", a.shed],
                                       stdout=subprocess.PIPE, stderr=err, env=env, preexec_fn=enter_cgroup)
        line = service.stdout.readline().decode()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            die("the service did not start: %r (see %s)" % (line, stderr_path))
        port = int(m.group(1))

        samples = []
        stop = threading.Event()
        t0 = time.monotonic()

        def sample():
            while not stop.is_set():
                s = {"t": time.monotonic() - t0, "cgroup_bytes": cg.number("memory.usage_in_bytes")}
                try:
                    s.update(scrape(port))
                except OSError:
                    pass
                samples.append(s)
                stop.wait(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        timeline = os.path.join(out, "timeline.csv")
        load = subprocess.run([load_bin, "--port", str(port), "--connections", str(a.connections),
                               "--seconds", str(a.seconds), "--requests", str(a.requests), "--keys", str(a.keys),
                               "--min-bytes", str(a.min_bytes), "--max-bytes", str(a.max_value_bytes),
                               "--timeline", timeline], capture_output=True, text=True)
        stop.set()
        sampler.join()
        final = {}
        if service.poll() is None:
            try:
                final = scrape(port)
            except OSError:
                pass
            service.send_signal(signal.SIGTERM)
        try:
            exit_status = service.wait(timeout=60)
        except subprocess.TimeoutExpired:
            service.kill()
            exit_status = "hung (killed)"
        peak = cg.number("memory.max_usage_in_bytes")
        oom_kills = cg.oom_kills()
    finally:
        if service is not None and service.poll() is None:
            service.kill()
            service.wait()
        cg.remove()

    figures = dict(kv.split("=", 1) for kv in load.stdout.split())
    pauses = sorted(pauses_from_gctrace(stderr_path))
    limiter_on = sum(1 for s in samples if s.get("pacegc_limiter_enabled_bool"))
    summary = {
        "command": command, "commit": commit + ("-dirty" if dirty else ""), "date": str(datetime.date.today()),
        "host": platform.node(), "cpus": os.cpu_count(), "cap_mib": a.cap, "gomemlimit": a.gomemlimit,
        "max_bytes": a.max_bytes, "shed": a.shed, "threads": a.threads, "connections": a.connections, "keys": a.keys,
        "value_bytes": [a.min_bytes, a.max_value_bytes],
        "service_exit": exit_status, "oom_kills": oom_kills, "load_exit": load.returncode,
        "requests": int(figures.get("requests", 0)), "errors": int(figures.get("errors", 0)),
        "seconds": float(figures.get("seconds", 0)), "rps": float(figures.get("rps", 0)),
        "latency_us": {k: float(figures.get(k + "_us", 0)) for k in ("p50", "p99", "p999", "max")},
        "hits": int(figures.get("hits", 0)), "misses": int(figures.get("misses", 0)),
        "gc_cycles": len(pauses),
        "pause_ms": {"total": round(sum(pauses), 3), "p50": quantile(pauses, 0.5), "p99": quantile(pauses, 0.99),
                     "max": pauses[-1] if pauses else 0.0},
        "peak_cgroup_mib": round(peak / 2**20, 1),
        "limiter_on_samples": limiter_on, "samples": len(samples),
        "pressure_events": final.get("http_cache/pressure/events"),
        "evictions_lru": final.get("http_cache/evictions/lru"),
        "evictions_pressure": final.get("http_cache/evictions/pressure"),
        "cache_bytes_end_mib": round(final.get("http_cache/cache_bytes", 0) / 2**20, 1),
        "heap_live_end_mib": round(final.get("pacegc_gc_heap_live_bytes", 0) / 2**20, 1),
        "out": out,
    }
    with open(os.path.join(out, "samples.json"), "w") as f:
        json.dump(samples, f)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)

    survived = exit_status == 0 and oom_kills == 0
    print("pacegc-http-cache under a %d MiB cgroup cap, GOMEMLIMIT=%s, --max-bytes %s, --shed %s; commit %s; %s, "
          "%d CPUs, %s" % (a.cap, a.gomemlimit, a.max_bytes, a.shed, summary["commit"], summary["host"],
                           summary["cpus"], summary["date"]))
    print("command: " + command)
    print("survived: %s (service exit %s, oom kills %d)" % ("yes" if survived else "NO", exit_status, oom_kills))
    print("requests %d in %.1f s: %.0f requests/s, %d errors; latency p50 %.2f ms, p99 %.2f ms, max %.1f ms"
          % (summary["requests"], summary["seconds"], summary["rps"], summary["errors"],
             summary["latency_us"]["p50"] / 1e3, summary["latency_us"]["p99"] / 1e3,
             summary["latency_us"]["max"] / 1e3))
    print("GC: %d cycles, pauses total %.1f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms"
          % (summary["gc_cycles"], summary["pause_ms"]["total"], summary["pause_ms"]["p50"],
             summary["pause_ms"]["p99"], summary["pause_ms"]["max"]))
    print("memory: peak %.1f MiB (cgroup max_usage); cache %.1f MiB and live heap %.1f MiB at the end"
          % (summary["peak_cgroup_mib"], summary["cache_bytes_end_mib"], summary["heap_live_end_mib"]))
    print("limiter on in %d of %d samples; pressure events %s, evictions: LRU %s, pressure %s"
          % (limiter_on, len(samples), summary["pressure_events"], summary["evictions_lru"],
             summary["evictions_pressure"]))
    print("raw files: " + out)
    if a.plot:
        plot(a, summary, samples, timeline, a.plot)
        print("plot: " + a.plot)
    return 0 if survived and summary["errors"] == 0 else 1


def plot(a, summary, samples, timeline_path, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    with open(timeline_path) as f:
        next(f)
        for line in f:
            sec, n, errors, p50, p99, mx = (float(x) for x in line.split(","))
            rows.append((sec, n, p50, p99, mx))
    rows = rows[:-1] if len(rows) > 1 else rows  # the last, partial second
    mib = 2**20
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 8.5), sharex=True)
    ax1.plot([r[0] + 0.5 for r in rows], [r[1] for r in rows], color="#1f77b4")
    ax1.set_ylabel("requests/s")
    ax1.set_ylim(bottom=0)
    ax1.set_title("pacegc-http-cache: %d MiB cap, GOMEMLIMIT=%s, --max-bytes %s, --shed %s, %d connections "
                  "(commit %s)" % (a.cap, a.gomemlimit, a.max_bytes, a.shed, a.connections, summary["commit"]),
                  fontsize=9)
    for i, (label, color) in enumerate((("p50", "#2ca02c"), ("p99", "#ff7f0e"), ("max", "#d62728"))):
        ax2.plot([r[0] + 0.5 for r in rows], [r[2 + i] / 1e3 for r in rows], label=label, color=color)
    ax2.set_yscale("log")
    ax2.set_ylabel("latency per second, ms")
    ax2.legend(loc="upper right", fontsize=8)
    t = [s["t"] for s in samples]
    ax3.plot(t, [s["cgroup_bytes"] / mib for s in samples], label="cgroup usage", color="#7f7f7f")
    for key, label, color in (("pacegc_gc_heap_goal_bytes", "heap goal", "#9467bd"),
                              ("pacegc_gc_heap_live_bytes", "live heap (last mark)", "#2ca02c"),
                              ("http_cache/cache_bytes", "cache bytes", "#1f77b4")):
        ax3.plot(t, [s.get(key, float("nan")) / mib for s in samples], label=label, color=color)
    on = [s["t"] for s in samples if s.get("pacegc_limiter_enabled_bool")]
    if on:
        ax3.scatter(on, [a.cap * 0.02] * len(on), marker="|", color="#d62728", label="GC CPU limiter on")
    ax3.axhline(a.cap, color="black", linestyle="--", linewidth=1, label="cgroup cap")
    limit = re.match(r"(\d+)MiB$", a.gomemlimit)
    if limit:
        ax3.axhline(int(limit.group(1)), color="#d62728", linestyle=":", linewidth=1, label="GOMEMLIMIT")
    ax3.set_ylabel("MiB")
    ax3.set_xlabel("seconds since the load started")
    ax3.set_ylim(bottom=0)
    ax3.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
