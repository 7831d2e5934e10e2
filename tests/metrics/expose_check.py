"""The metrics_exposition test: runs expose_probe (known work, then pgc_write_metrics in both formats between two
pgc_read_stats snapshots) and validates its output.

  - JSON: parses with the standard json module (NaN/Infinity refused); every Go-style key is present and its value
    agrees with the pgc_stats field(s) it documents, i.e. lies between the snapshot taken right before the writes
    and the one right after (equal when nothing moved).
  - Prometheus: parsed by the real parser of the Prometheus Python client (Debian's python3-prometheus-client,
    prometheus_client.parser.text_string_to_metric_families); every family typed (the parser turns stray samples
    into "untyped" ones), documented, unique, named by the documented rule, and agreeing with pgc_stats like the
    JSON; the pause histogram cumulative with the documented bounds, +Inf last, _sum = pause_total_ns.
  - The registry metrics of the probe, with names that need escaping, in both formats.
  - The known work is visible: forced collections, allocated objects and bytes.
  - Bad input: bad format and fd -1 give EINVAL, a closed fd EBADF.

Usage: /usr/bin/python3 expose_check.py <expose_probe> <scratch directory>
(Debian's python3: the prometheus_client module is installed for it, scripts/install-deps.sh.)
"""
import decimal
import json
import math
import os
import re
import subprocess
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("expose_check: prometheus_client not found for %s; install python3-prometheus-client "
             "(scripts/install-deps.sh) and run this with /usr/bin/python3" % sys.executable)

D = decimal.Decimal
NS = D(10) ** 9


def ns(s):
    return D(s) / NS


# Go-style name -> (type, value from a pgc_stats dict). Written independently of metrics/expose.cc's table.
RUNTIME = {
    "/gc/heap/goal:bytes": ("gauge", lambda s: s["heap_goal_bytes"]),
    "/gc/heap/live:bytes": ("gauge", lambda s: s["heap_live_bytes"]),
    "/gc/gogc:percent": ("gauge", lambda s: s["gc_percent"]),
    "/gc/gomemlimit:bytes": ("gauge", lambda s: s["memory_limit_bytes"]),
    "/gc/limiter/last-enabled:gc-cycle": ("gauge", lambda s: s["limiter_last_enabled_cycle"]),
    "/gc/cycles/automatic:gc-cycles": ("counter", lambda s: s["num_gc"] - s["num_forced_gc"]),
    "/gc/cycles/forced:gc-cycles": ("counter", lambda s: s["num_forced_gc"]),
    "/gc/cycles/total:gc-cycles": ("counter", lambda s: s["num_gc"]),
    "/gc/heap/allocs:bytes": ("counter", lambda s: s["total_alloc_bytes"]),
    "/gc/heap/allocs:objects": ("counter", lambda s: s["total_alloc_objects"]),
    "/gc/heap/frees:bytes": ("counter", lambda s: s["total_free_bytes"]),
    "/gc/heap/frees:objects": ("counter", lambda s: s["total_free_objects"]),
    "/gc/heap/objects:objects": ("gauge", lambda s: s["heap_objects"]),
    "/gc/scan/heap:bytes": ("gauge", lambda s: s["last_heap_scan_bytes"]),
    "/gc/scan/stack:bytes": ("gauge", lambda s: s["last_stack_scan_bytes"]),
    "/gc/scan/globals:bytes": ("gauge", lambda s: s["last_globals_scan_bytes"]),
    "/gc/scan/total:bytes": ("gauge", lambda s: s["last_heap_scan_bytes"] + s["last_stack_scan_bytes"]
                             + s["last_globals_scan_bytes"]),
    "/cpu/classes/gc/pause:cpu-seconds": ("counter", lambda s: ns(s["gc_cpu_ns"])),
    "/cpu/classes/gc/mark/assist:cpu-seconds": ("counter", lambda s: ns(s["assist_cpu_ns"])),
    "/cpu/classes/gc/total:cpu-seconds": ("counter", lambda s: ns(s["gc_cpu_ns"])),
    "/cpu/classes/scavenge/total:cpu-seconds": ("counter", lambda s: ns(s["scavenge_cpu_ns"])),
    "/sched/pauses/total/gc:seconds": ("histogram", None),
    "/memory/classes/total:bytes": ("gauge", lambda s: s["total_bytes"] + s["heap_released_bytes"]),
    "/memory/classes/heap/released:bytes": ("gauge", lambda s: s["heap_released_bytes"]),
    "/memory/classes/heap/free:bytes": ("gauge", lambda s: s["heap_free_bytes"]),
    "/memory/classes/heap/objects:bytes": ("gauge", lambda s: s["heap_alloc_bytes"]),
    "/memory/classes/metadata/other:bytes": ("gauge", lambda s: s["metadata_bytes"]),
    "/pacegc/manual:bytes": ("gauge", lambda s: s["manual_bytes"]),
    "/pacegc/cycles/periodic:gc-cycles": ("counter", lambda s: s["num_periodic_gc"]),
    "/pacegc/cycles/concurrent:gc-cycles": ("counter", lambda s: s["num_concurrent_gc"]),
    "/pacegc/cycles/runway:gc-cycles": ("counter", lambda s: s["num_runway_gc"]),
    "/pacegc/limiter/enabled-time:seconds": ("counter", lambda s: ns(s["limiter_enabled_ns"])),
    "/pacegc/limiter/enabled:bool": ("gauge", lambda s: s["limiter_enabled"]),
    "/pacegc/limiter/postponed:gc-cycles": ("counter", lambda s: s["limiter_postponed"]),
    "/pacegc/memory/limit-counted:bytes": ("gauge", lambda s: s["total_bytes"]),
    "/sched/gomaxprocs:threads": ("gauge", lambda s: max(1, math.ceil(D(s["cpu_capacity"]).quantize(D("0.001"))))),
    "/pacegc/cpu/capacity:cpus": ("gauge", lambda s: D(s["cpu_capacity"]).quantize(D("0.001"))),
    "/pacegc/cpu/quota:cpus": ("gauge", lambda s: D(s["cpu_quota"]).quantize(D("0.001"))),
    "/pacegc/memory/limit-source:source": ("gauge", lambda s: s["memory_limit_source"]),
    "/pacegc/memory/cgroup-limit:bytes": ("gauge", lambda s: s["cgroup_memory_limit_bytes"]),
    "/pacegc/memory/hard-limit:bytes": ("gauge", lambda s: s["hard_memory_limit_bytes"]),
    "/pacegc/memory/hard-limit-gc:gc-cycles": ("counter", lambda s: s["hard_limit_gc"]),
    "/pacegc/memory/hard-limit-failures:allocations": ("counter", lambda s: s["hard_limit_failures"]),
}

ODD_NAME = 'app/"quoted"\\back/\u00e9/\ufffd'  # registered as ...\xc3\xa9/\xff: the invalid byte becomes U+FFFD

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def prom_name(go):
    rest = go[len("/pacegc/"):] if go.startswith("/pacegc/") else go[1:]
    rest = re.sub(r"[^a-zA-Z0-9_]", "_", rest)
    rest = re.sub(r"_+", "_", rest).strip("_")
    return "pacegc_" + rest


def in_range(value, lo, hi):
    return min(lo, hi) <= value <= max(lo, hi)


def pause_bounds():
    # 2^i microseconds in seconds for every bucket but the last, which has no finite bound.
    return [D(2 ** i) / D(10 ** 6) for i in range(31)]


def check_json(doc, before, after):
    keys = list(doc.keys())
    check(keys[:len(RUNTIME)] == list(RUNTIME), "JSON: runtime keys in table order first, got %s" % keys)
    check(keys[len(RUNTIME):] == ["registry"], "JSON: 'registry' after the runtime keys, got %s" % keys)
    for name, (typ, value) in RUNTIME.items():
        v = doc.get(name)
        if typ == "histogram":
            check_json_histogram(name, v, before, after)
            continue
        if not check(isinstance(v, (int, D)) and not isinstance(v, bool), "JSON %s: a number, got %r" % (name, v)):
            continue
        check(in_range(D(v), D(value(before)), D(value(after))),
              "JSON %s = %s, pgc_read_stats gives %s .. %s" % (name, v, value(before), value(after)))
    reg = doc["registry"]
    check(reg.get("app/requests") == {"kind": "counter", "count": 7},
          "JSON registry counter: %r" % reg.get("app/requests"))
    check(reg.get(ODD_NAME) == {"kind": "counter", "count": 1}, "JSON registry: escaped name missing: %r" % list(reg))
    check(reg.get("/gc/heap/goal:bytes") == {"kind": "counter", "count": 11}, "JSON registry: runtime-named counter")
    check(reg.get("app/queue-depth") == {"kind": "gauge", "value": -3}, "JSON registry gauge")
    check(reg.get("app/load") == {"kind": "gauge_float", "value": D("0.25")}, "JSON registry gauge_float")
    ev = reg.get("app/events", {})
    check(ev.get("kind") == "meter" and ev.get("count") == 5 and "rate1" in ev and "rate_mean" in ev,
          "JSON registry meter: %r" % ev)
    sz = reg.get("app/sizes", {})
    check(sz.get("kind") == "histogram" and sz.get("count") == 100 and sz.get("sample_size") == 100
          and sz.get("min") == 1 and sz.get("max") == 100 and sz.get("p50") == D("50.5"),
          "JSON registry histogram: %r" % sz)
    em = reg.get("app/empty", {})
    check(em.get("count") == 0 and em.get("p50", 0) is None and em.get("min", 0) is None,
          "JSON registry empty histogram: null statistics, got %r" % em)
    lat = reg.get("app/latency", {})
    check(lat.get("kind") == "timer" and lat.get("count") == 5 and lat.get("p50_ns") == 3000
          and lat.get("min_ns") == 1000 and lat.get("max_ns") == 5000 and "rate15" in lat,
          "JSON registry timer: %r" % lat)


def check_json_histogram(name, h, before, after):
    if not check(isinstance(h, dict) and set(h) == {"buckets", "sum", "count"}, "JSON %s: %r" % (name, h)):
        return
    buckets = h["buckets"]
    check([b["le"] for b in buckets] == pause_bounds() + ["+Inf"], "JSON %s: bucket bounds" % name)
    counts = [b["count"] for b in buckets]
    check(counts == sorted(counts), "JSON %s: cumulative counts" % name)
    check(counts[-1] == h["count"], "JSON %s: +Inf bucket = count" % name)
    check(in_range(h["count"], sum(before["pause_hist"]), sum(after["pause_hist"])), "JSON %s: count" % name)
    check(in_range(h["sum"], ns(before["pause_total_ns"]), ns(after["pause_total_ns"])), "JSON %s: sum" % name)
    for i, b in enumerate(buckets):
        lo = sum(before["pause_hist"][:i + 1])
        hi = sum(after["pause_hist"][:i + 1])
        check(in_range(b["count"], lo, hi), "JSON %s: bucket %d = %s, stats %s .. %s" % (name, i, b["count"], lo, hi))


def check_prometheus(text, before, after):
    families = list(text_string_to_metric_families(text))
    by_name = {}
    for f in families:
        check(f.type not in ("untyped", "unknown"), "Prometheus: untyped family %s (a stray sample?)" % f.name)
        check(f.name not in by_name, "Prometheus: family %s twice" % f.name)
        check(bool(f.documentation), "Prometheus: family %s without HELP" % f.name)
        by_name[f.name] = f
    for name, (typ, value) in RUNTIME.items():
        pname = prom_name(name)
        f = by_name.get(pname)
        if not check(f is not None, "Prometheus: no family %s for %s" % (pname, name)):
            continue
        check(f.type == typ, "Prometheus %s: type %s, want %s" % (pname, f.type, typ))
        if typ == "histogram":
            check_prometheus_histogram(pname, f, before, after)
            continue
        sample_name = pname + "_total" if typ == "counter" else pname
        if not check(len(f.samples) == 1 and f.samples[0].name == sample_name and not f.samples[0].labels,
                     "Prometheus %s: one unlabelled sample %s, got %r" % (pname, sample_name, f.samples)):
            continue
        v = f.samples[0].value
        lo, hi = float(value(before)), float(value(after))
        check(in_range(v, lo, hi), "Prometheus %s = %r, pgc_read_stats gives %r .. %r" % (pname, v, lo, hi))

    def samples(family, sample_name=None, **labels):
        f = by_name.get(family)
        if f is None:
            return []
        return [s.value for s in f.samples if (sample_name is None or s.name == sample_name)
                and all(s.labels.get(k) == v for k, v in labels.items())]

    check(samples("pacegc_app_counter", name="app/requests") == [7.0], "Prometheus registry counter")
    check(samples("pacegc_app_counter", name=ODD_NAME) == [1.0], "Prometheus registry: escaped label %r"
          % [s.labels for s in by_name.get("pacegc_app_counter").samples])
    check(samples("pacegc_app_counter", name="/gc/heap/goal:bytes") == [11.0], "Prometheus: runtime-named counter")
    check(by_name["pacegc_app_counter"].type == "gauge", "Prometheus: a registry counter is a gauge")
    check(samples("pacegc_app_gauge", name="app/queue-depth") == [-3.0], "Prometheus registry gauge")
    check(samples("pacegc_app_gauge", name="app/load") == [0.25], "Prometheus registry gauge_float")
    check(samples("pacegc_app_meter", "pacegc_app_meter_total", name="app/events") == [5.0],
          "Prometheus registry meter count")
    check(len(samples("pacegc_app_meter_rate", name="app/events")) == 4, "Prometheus registry meter rates")
    check(samples("pacegc_app_histogram", "pacegc_app_histogram", name="app/sizes", quantile="0.5") == [50.5],
          "Prometheus registry histogram p50")
    check(samples("pacegc_app_histogram", "pacegc_app_histogram_count", name="app/sizes") == [100.0],
          "Prometheus registry histogram count")
    empty = samples("pacegc_app_histogram", "pacegc_app_histogram", name="app/empty")
    check(len(empty) == 5 and all(math.isnan(v) for v in empty), "Prometheus: empty histogram quantiles NaN")
    check(samples("pacegc_app_timer_seconds", "pacegc_app_timer_seconds", name="app/latency", quantile="0.5")
          == [3e-06], "Prometheus registry timer p50 in seconds")
    check(samples("pacegc_app_timer_seconds", "pacegc_app_timer_seconds_count", name="app/latency") == [5.0],
          "Prometheus registry timer count")
    check(len(samples("pacegc_app_timer_rate", name="app/latency")) == 4, "Prometheus registry timer rates")


def check_prometheus_histogram(pname, f, before, after):
    buckets = [s for s in f.samples if s.name == pname + "_bucket"]
    les = [s.labels["le"] for s in buckets]
    check([D(le) for le in les[:-1]] == pause_bounds() and les[-1] == "+Inf",
          "Prometheus %s: bucket bounds %s" % (pname, les))
    counts = [s.value for s in buckets]
    check(counts == sorted(counts), "Prometheus %s: cumulative" % pname)
    (total,) = [s.value for s in f.samples if s.name == pname + "_sum"]
    (count,) = [s.value for s in f.samples if s.name == pname + "_count"]
    check(counts[-1] == count, "Prometheus %s: +Inf bucket = _count" % pname)
    check(in_range(count, sum(before["pause_hist"]), sum(after["pause_hist"])), "Prometheus %s: _count" % pname)
    check(in_range(total, float(ns(before["pause_total_ns"])), float(ns(after["pause_total_ns"]))),
          "Prometheus %s: _sum = %r, pause_total_ns %s .. %s" % (pname, total, before["pause_total_ns"],
                                                                 after["pause_total_ns"]))


def refuse_constant(name):
    raise ValueError("JSON has no %s" % name)


def main():
    probe, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    subprocess.run([probe, scratch], check=True)
    with open(os.path.join(scratch, "stats.json"), encoding="utf-8") as f:
        ref = json.load(f)
    with open(os.path.join(scratch, "metrics.json"), "rb") as f:
        doc = json.loads(f.read().decode("utf-8"), parse_float=D, parse_constant=refuse_constant)
    with open(os.path.join(scratch, "prometheus.txt"), "rb") as f:
        text = f.read().decode("utf-8")
    initial, before, after = ref["initial"], ref["before"], ref["after"]
    work, errors = ref["work"], ref["errors"]

    # The known work, as the snapshots saw it.
    check(before["num_forced_gc"] - initial["num_forced_gc"] == work["collections"], "forced collections counted")
    check(before["num_gc"] - initial["num_gc"] >= work["collections"], "collections counted")
    check(before["total_alloc_objects"] - initial["total_alloc_objects"] == work["objects"], "objects counted")
    check(before["total_alloc_bytes"] - initial["total_alloc_bytes"] >= work["objects"] * work["object_bytes"],
          "bytes counted")
    check(doc["/gc/cycles/forced:gc-cycles"] - initial["num_forced_gc"] == work["collections"],
          "JSON: forced collections of the work")
    check(doc["/gc/cycles/total:gc-cycles"] == doc["/gc/cycles/automatic:gc-cycles"]
          + doc["/gc/cycles/forced:gc-cycles"], "JSON: total = automatic + forced")

    check(errors["bad_format"] == errors["EINVAL"] and errors["bad_format2"] == errors["EINVAL"],
          "bad format: EINVAL, got %s" % errors)
    check(errors["bad_fd"] == errors["EINVAL"], "fd -1: EINVAL, got %s" % errors)
    check(errors["closed_fd"] == errors["EBADF"], "closed fd: EBADF, got %s" % errors)

    check_json(doc, before, after)
    check_prometheus(text, before, after)

    if failures:
        for f in failures:
            print("FAIL:", f)
        print("%d check(s) failed; outputs in %s" % (len(failures), scratch))
        return 1
    print("expose_check: JSON and Prometheus outputs agree with pgc_read_stats (%d runtime metrics)" % len(RUNTIME))
    return 0


if __name__ == "__main__":
    sys.exit(main())
