// metrics/expose.cc — pgc_write_metrics: named runtime metrics from one pgc_stats snapshot, plus the registry,
// as Prometheus text (0.0.4) or JSON. See expose.h for the naming rule and the exactness rule.
//
// Design.
//   1. The runtime metrics are declared once, in kRuntimeMetrics below: Go-style name, type (counter, gauge or
//      the pause histogram), how the value is rendered (unsigned, signed, nanoseconds as seconds), the pgc_stats
//      field(s) it reads and a help text. Both formats walk this table; docs/OBSERVABILITY.md lists it.
//   2. pgc_write_metrics takes the registry first (creating it on first use, which allocates metadata), then ONE
//      pgc_read_stats snapshot, then a copy of every registry metric's values, and formats everything into one
//      MetaString. Only then does it write, so a slow reader never holds a lock, and a failure to format (ENOMEM)
//      writes nothing.
//   3. Writing (WriteFully) loops over partial writes and EINTR.
//
// Types. Cumulative values (cycles, allocations, CPU time) are counters; everything that can go down is a gauge.
// A registry counter can go down (pgc_counter_dec), so it is exposed as a Prometheus gauge.
//
// The pause histogram. pgc_stats.pause_hist[i] counts pauses of at most 2^i us (and more than 2^(i-1) us); the
// last bucket also counts every longer pause, so its upper bound is really +Inf. Exposed as buckets
// le = 2^i us for i = 0 .. PGC_PAUSE_HIST_BUCKETS-2 (cumulative) and le = +Inf (every pause); _sum is
// pause_total_ns and _count the sum of all buckets.
//
// Not handled: a registry histogram's Prometheus _sum (not known exactly, see expose.h); labels other than the
// registry name; OpenMetrics (# EOF, _created).
#include "metrics/expose.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

#include "metrics/metric.h"

namespace pacegc::metrics {

namespace {

// ---- The table --------------------------------------------------------------------------------------------------

enum class Type { kCounter, kGauge, kPauseHistogram };
enum class Render {
  kUnsigned,      // uint64
  kSigned,        // int64 stored in the uint64 (two's complement)
  kNsAsSeconds,   // nanoseconds written as exact decimal seconds
  kMilli,         // thousandths written as an exact decimal (CPUs)
};

struct RuntimeMetric {
  const char *name;  // Go-style: /path:unit
  Type type;
  Render render;
  uint64_t (*read)(const pgc_stats &s);  // nullptr for the histogram
  const char *help;
};

uint64_t Signed(int64_t v) { return static_cast<uint64_t>(v); }
uint64_t Milli(double v) { return v <= 0 ? 0 : static_cast<uint64_t>(v * 1000.0 + 0.5); }
// Go's GOMAXPROCS for a fractional capacity: rounded up, at least 1.
uint64_t Procs(double cpus) {
  uint64_t p = cpus <= 1 ? 1 : static_cast<uint64_t>(cpus);
  return static_cast<double>(p) < cpus ? p + 1 : p;
}

// clang-format off
constexpr RuntimeMetric kRuntimeMetrics[] = {
  {"/gc/heap/goal:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.heap_goal_bytes; },
   "Heap goal: the allocated-heap size at which the next collection starts (heap_goal_bytes)."},
  {"/gc/heap/live:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.heap_live_bytes; },
   "Bytes in objects marked by the last collection (heap_live_bytes)."},
  {"/gc/gogc:percent", Type::kGauge, Render::kSigned,
   [](const pgc_stats &s) { return Signed(s.gc_percent); },
   "GOGC, set by the GOGC environment variable or pgc_set_gc_percent; -1 when off (gc_percent)."},
  {"/gc/gomemlimit:bytes", Type::kGauge, Render::kSigned,
   [](const pgc_stats &s) { return Signed(s.memory_limit_bytes); },
   "Soft memory limit, set by GOMEMLIMIT or pgc_set_memory_limit, or derived from the cgroup memory limit; "
   "9223372036854775807 when there is none (memory_limit_bytes)."},
  {"/gc/limiter/last-enabled:gc-cycle", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.limiter_last_enabled_cycle; },
   "GC cycle in which the GC CPU limiter last turned on; 0 if it never did (limiter_last_enabled_cycle)."},
  {"/gc/cycles/automatic:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.num_gc - s.num_forced_gc; },
   "Completed collections started by the collector itself, not forced (num_gc - num_forced_gc)."},
  {"/gc/cycles/forced:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.num_forced_gc; },
   "Completed collections forced by pgc_collect or pgc_free_os_memory (num_forced_gc)."},
  {"/gc/cycles/total:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.num_gc; },
   "Completed collections (num_gc)."},
  {"/gc/heap/allocs:bytes", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.total_alloc_bytes; },
   "Cumulative bytes allocated in the collected heap, size-class rounded (total_alloc_bytes)."},
  {"/gc/heap/allocs:objects", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.total_alloc_objects; },
   "Cumulative objects allocated in the collected heap (total_alloc_objects)."},
  {"/gc/heap/frees:bytes", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.total_free_bytes; },
   "Cumulative bytes freed by the sweeper and pgc_free (total_free_bytes)."},
  {"/gc/heap/frees:objects", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.total_free_objects; },
   "Cumulative objects freed by the sweeper and pgc_free (total_free_objects)."},
  {"/gc/heap/objects:objects", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.heap_objects; },
   "Objects allocated and not yet freed: live, or dead and not yet swept (heap_objects)."},
  {"/gc/scan/heap:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.last_heap_scan_bytes; },
   "Object bytes scanned by the last collection (last_heap_scan_bytes)."},
  {"/gc/scan/stack:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.last_stack_scan_bytes; },
   "Stack bytes scanned by the last collection (last_stack_scan_bytes)."},
  {"/gc/scan/globals:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.last_globals_scan_bytes; },
   "Data, bss and registered-root bytes scanned by the last collection (last_globals_scan_bytes)."},
  {"/gc/scan/total:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.last_heap_scan_bytes + s.last_stack_scan_bytes + s.last_globals_scan_bytes; },
   "Bytes scanned by the last collection: heap + stack + globals."},
  {"/cpu/classes/gc/pause:cpu-seconds", Type::kCounter, Render::kNsAsSeconds,
   [](const pgc_stats &s) { return s.gc_cpu_ns; },
   "Estimated CPU time of stop-the-world collection pauses (gc_cpu_ns)."},
  {"/cpu/classes/gc/mark/assist:cpu-seconds", Type::kCounter, Render::kNsAsSeconds,
   [](const pgc_stats &s) { return s.assist_cpu_ns; },
   "CPU time the program's threads spent marking for runway cycles: mark assists, also in gc/total "
   "(assist_cpu_ns)."},
  {"/cpu/classes/gc/total:cpu-seconds", Type::kCounter, Render::kNsAsSeconds,
   [](const pgc_stats &s) { return s.gc_cpu_ns; },
   "Estimated CPU time spent collecting; pacegc collects only while the world is stopped, so this equals "
   "/cpu/classes/gc/pause:cpu-seconds (gc_cpu_ns)."},
  {"/cpu/classes/scavenge/total:cpu-seconds", Type::kCounter, Render::kNsAsSeconds,
   [](const pgc_stats &s) { return s.scavenge_cpu_ns; },
   "CPU time spent returning memory to the OS (scavenge_cpu_ns)."},
  {"/sched/pauses/total/gc:seconds", Type::kPauseHistogram, Render::kNsAsSeconds, nullptr,
   "Distribution of stop-the-world collection pause latencies, every pause ever (pause_hist; sum: "
   "pause_total_ns)."},
  {"/memory/classes/total:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.total_bytes + s.heap_released_bytes; },
   "All memory pacegc maps read-write: what the limit counts plus released heap pages (total_bytes + "
   "heap_released_bytes)."},
  {"/memory/classes/heap/released:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.heap_released_bytes; },
   "Free heap pages returned to the OS: mapped, not resident (heap_released_bytes)."},
  {"/memory/classes/heap/free:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.heap_free_bytes; },
   "Free heap pages still resident, which the scavenger may return to the OS (heap_free_bytes)."},
  {"/memory/classes/heap/objects:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.heap_alloc_bytes; },
   "Bytes in objects allocated and not yet freed, size-class rounded (heap_alloc_bytes)."},
  {"/memory/classes/metadata/other:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.metadata_bytes; },
   "Collector metadata: spans, page map, mark stack, tables, the metrics registry (metadata_bytes)."},
  {"/pacegc/manual:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.manual_bytes; },
   "Bytes in live manual allocations, pgc_manual_malloc and friends (manual_bytes)."},
  {"/pacegc/cycles/periodic:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.num_periodic_gc; },
   "Automatic collections started because 2 minutes passed without one (num_periodic_gc)."},
  {"/pacegc/cycles/concurrent:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.num_concurrent_gc; },
   "Completed collections that marked while the program ran, two pauses each (num_concurrent_gc)."},
  {"/pacegc/cycles/runway:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.num_runway_gc; },
   "Concurrent collections started below the goal at Go's trigger, the program allocating on with mark assists "
   "(num_runway_gc)."},
  {"/pacegc/limiter/enabled-time:seconds", Type::kCounter, Render::kNsAsSeconds,
   [](const pgc_stats &s) { return s.limiter_enabled_ns; },
   "Total wall time the GC CPU limiter has been on (limiter_enabled_ns)."},
  {"/pacegc/limiter/enabled:bool", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.limiter_enabled; },
   "1 while the GC CPU limiter is on and postpones collections, else 0 (limiter_enabled)."},
  {"/pacegc/limiter/postponed:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.limiter_postponed; },
   "Times a due collection was postponed by the GC CPU limiter (limiter_postponed)."},
  {"/pacegc/memory/limit-counted:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.total_bytes; },
   "Memory the soft limit counts: heap pages mapped and not released, metadata and manual bytes (total_bytes)."},
  {"/sched/gomaxprocs:threads", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return Procs(s.cpu_capacity); },
   "The CPU capacity rounded up to whole CPUs, as Go 1.25 derives GOMAXPROCS from a CPU quota (cpu_capacity)."},
  {"/pacegc/cpu/capacity:cpus", Type::kGauge, Render::kMilli,
   [](const pgc_stats &s) { return Milli(s.cpu_capacity); },
   "CPUs the program may use: the affinity mask lowered by a cgroup CPU quota; what the GC CPU limiter counts "
   "(cpu_capacity)."},
  {"/pacegc/cpu/quota:cpus", Type::kGauge, Render::kMilli,
   [](const pgc_stats &s) { return Milli(s.cpu_quota); },
   "The lowest cgroup CPU quota over the process's cgroup and its ancestors, in CPUs; 0 = none (cpu_quota)."},
  {"/pacegc/memory/limit-source:source", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return static_cast<uint64_t>(s.memory_limit_source); },
   "Who set the soft memory limit: 0 none, 1 GOMEMLIMIT, 2 pgc_set_memory_limit, 3 PACEGC_AUTOMEMLIMIT x the "
   "cgroup memory limit (memory_limit_source)."},
  {"/pacegc/memory/cgroup-limit:bytes", Type::kGauge, Render::kUnsigned,
   [](const pgc_stats &s) { return s.cgroup_memory_limit_bytes; },
   "The lowest cgroup memory limit over the process's cgroup and its ancestors; 0 = none "
   "(cgroup_memory_limit_bytes)."},
  {"/pacegc/memory/hard-limit:bytes", Type::kGauge, Render::kSigned,
   [](const pgc_stats &s) { return Signed(s.hard_memory_limit_bytes); },
   "The hard memory limit on what the soft limit counts (PACEGC_HARD_MEMLIMIT, pgc_set_hard_memory_limit); "
   "9223372036854775807 when there is none (hard_memory_limit_bytes)."},
  {"/pacegc/memory/hard-limit-gc:gc-cycles", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.hard_limit_gc; },
   "Allocations at the hard memory limit saved by a forced collection (hard_limit_gc)."},
  {"/pacegc/memory/hard-limit-failures:allocations", Type::kCounter, Render::kUnsigned,
   [](const pgc_stats &s) { return s.hard_limit_failures; },
   "Allocations refused at the hard memory limit (hard_limit_failures)."},
};
// clang-format on

// ---- Registry values --------------------------------------------------------------------------------------------

// One registry metric, copied out so that formatting sees one value per metric.
struct AppMetric {
  MetaString name;
  Kind kind = Kind::kCounter;
  int64_t int_value = 0;     // counter count, gauge value
  double float_value = 0;    // gauge_float value
  MeterSnapshot rates;       // meter, timer
  SampleSummary summary;     // histogram, timer (nanoseconds)
  bool have_summary = false;
};

// false on out of memory (bad_alloc propagates from the MetaString/MetaVector).
bool CopyRegistry(const Registry &registry, MetaVector<AppMetric> *out) {
  bool summaries_ok = true;
  bool listed = registry.ForEach([&](std::string_view name, Metric &metric) {
    AppMetric a;
    a.name.assign(name.data(), name.size());
    a.kind = metric.kind();
    switch (metric.kind()) {
      case Kind::kCounter: a.int_value = static_cast<Counter &>(metric).Count(); break;
      case Kind::kGauge: a.int_value = static_cast<Gauge &>(metric).Value(); break;
      case Kind::kGaugeFloat: a.float_value = static_cast<GaugeFloat &>(metric).Value(); break;
      case Kind::kMeter: a.rates = static_cast<Meter &>(metric).Snapshot(); break;
      case Kind::kHistogram:
        a.have_summary = static_cast<Histogram &>(metric).Snapshot(&a.summary);
        break;
      case Kind::kTimer: {
        auto &t = static_cast<Timer &>(metric);
        a.have_summary = t.histogram().Snapshot(&a.summary);
        a.rates = t.meter().Snapshot();
        break;
      }
    }
    if ((a.kind == Kind::kHistogram || a.kind == Kind::kTimer) && !a.have_summary) summaries_ok = false;
    out->push_back(std::move(a));
  });
  return listed && summaries_ok;
}

// ---- Text helpers -----------------------------------------------------------------------------------------------

void AppendU64(MetaString *out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendI64(MetaString *out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// v / 10^digits as an exact decimal ("1.234567890").
void AppendFixed(MetaString *out, uint64_t v, int digits) {
  uint64_t scale = 1;
  for (int i = 0; i < digits; ++i) scale *= 10;
  char buf[48];
  int n = snprintf(buf, sizeof(buf), "%" PRIu64 ".%0*" PRIu64, v / scale, digits, v % scale);
  out->append(buf, static_cast<size_t>(n));
}

// The shortest text that reads back as v. Non-finite values: Prometheus spells them NaN/+Inf/-Inf; JSON has
// none, so they become null.
void AppendDouble(MetaString *out, double v, bool json) {
  if (std::isnan(v)) {
    out->append(json ? "null" : "NaN");
  } else if (std::isinf(v)) {
    out->append(json ? "null" : (v > 0 ? "+Inf" : "-Inf"));
  } else {
    char buf[40];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out->append(buf, r.ptr);
  }
}

void AppendValue(MetaString *out, uint64_t v, Render render) {
  switch (render) {
    case Render::kUnsigned: AppendU64(out, v); break;
    case Render::kSigned: AppendI64(out, static_cast<int64_t>(v)); break;
    case Render::kNsAsSeconds: AppendFixed(out, v, 9); break;
    case Render::kMilli: AppendFixed(out, v, 3); break;
  }
}

// Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one (overlong forms, surrogates and code
// points above U+10FFFF are invalid).
size_t Utf8SequenceLength(const unsigned char *s, size_t n) {
  unsigned char b = s[0];
  if (b < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2, cp = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3, cp = b & 0x0F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4, cp = b & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

// Appends name escaped for a JSON string (json) or a Prometheus label value; invalid UTF-8 bytes become U+FFFD.
void AppendEscaped(MetaString *out, std::string_view name, bool json) {
  const auto *s = reinterpret_cast<const unsigned char *>(name.data());
  size_t n = name.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c == '\n') {
      out->append("\\n");
      ++i;
    } else if (c < 0x20) {
      if (json) {
        char buf[8];
        snprintf(buf, sizeof(buf), "\\u%04x", c);
        out->append(buf);
      } else {
        out->push_back(static_cast<char>(c));  // Prometheus label values escape only \, " and newline
      }
      ++i;
    } else {
      size_t len = Utf8SequenceLength(s + i, n - i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");
        ++i;
      } else {
        out->append(name.data() + i, len);
        i += len;
      }
    }
  }
}

// ---- Prometheus -------------------------------------------------------------------------------------------------

void AppendHeader(MetaString *out, std::string_view prom_name, const char *type, const char *help) {
  out->append("# HELP ");
  out->append(prom_name);
  out->push_back(' ');
  for (const char *p = help; *p != '\0'; ++p) {  // HELP escapes only backslash and newline
    if (*p == '\\') {
      out->append("\\\\");
    } else if (*p == '\n') {
      out->append("\\n");
    } else {
      out->push_back(*p);
    }
  }
  out->append("\n# TYPE ");
  out->append(prom_name);
  out->push_back(' ');
  out->append(type);
  out->push_back('\n');
}

void PrometheusPauseHistogram(const pgc_stats &s, std::string_view base, MetaString *out) {
  uint64_t cumulative = 0;
  for (int i = 0; i < PGC_PAUSE_HIST_BUCKETS; ++i) {
    cumulative += s.pause_hist[i];
    out->append(base);
    if (i + 1 < PGC_PAUSE_HIST_BUCKETS) {
      out->append("_bucket{le=\"");
      AppendFixed(out, uint64_t{1} << i, 6);  // 2^i microseconds, in seconds
      out->append("\"} ");
    } else {
      out->append("_bucket{le=\"+Inf\"} ");
    }
    AppendU64(out, cumulative);
    out->push_back('\n');
  }
  out->append(base);
  out->append("_sum ");
  AppendFixed(out, s.pause_total_ns, 9);
  out->push_back('\n');
  out->append(base);
  out->append("_count ");
  AppendU64(out, cumulative);
  out->push_back('\n');
}

// One sample line: <family><suffix>{name="<name>"<extra>} <value>, where value is appended by the caller.
void AppendAppSample(MetaString *out, const char *family, const char *suffix, const AppMetric &a,
                     const char *extra_label = nullptr, const char *extra_value = nullptr) {
  out->append(family);
  out->append(suffix);
  out->append("{name=\"");
  AppendEscaped(out, a.name, false);
  out->push_back('"');
  if (extra_label != nullptr) {
    out->push_back(',');
    out->append(extra_label);
    out->append("=\"");
    out->append(extra_value);
    out->push_back('"');
  }
  out->append("} ");
}

struct Quantile {
  const char *label;
  double SampleSummary::*field;
};
constexpr Quantile kQuantiles[] = {{"0.5", &SampleSummary::p50},
                                   {"0.75", &SampleSummary::p75},
                                   {"0.95", &SampleSummary::p95},
                                   {"0.99", &SampleSummary::p99},
                                   {"0.999", &SampleSummary::p999}};

struct Rate {
  const char *label;  // Prometheus window label, and the JSON key
  double MeterSnapshot::*field;
  const char *json_key;
};
constexpr Rate kRates[] = {{"1m", &MeterSnapshot::rate1_per_s, "rate1"},
                           {"5m", &MeterSnapshot::rate5_per_s, "rate5"},
                           {"15m", &MeterSnapshot::rate15_per_s, "rate15"},
                           {"mean", &MeterSnapshot::rate_mean_per_s, "rate_mean"}};

// The registry families, each written only if it has a member, members in name order.
void PrometheusApp(const MetaVector<AppMetric> &apps, MetaString *out) {
  auto has = [&](Kind k1, Kind k2) {
    for (const AppMetric &a : apps) {
      if (a.kind == k1 || a.kind == k2) return true;
    }
    return false;
  };
  if (has(Kind::kCounter, Kind::kCounter)) {
    AppendHeader(out, "pacegc_app_counter", "gauge",
                 "Counters of the metrics registry (pgc_counter_get) by registered name; a gauge because a "
                 "registry counter can go down.");
    for (const AppMetric &a : apps) {
      if (a.kind != Kind::kCounter) continue;
      AppendAppSample(out, "pacegc_app_counter", "", a);
      AppendI64(out, a.int_value);
      out->push_back('\n');
    }
  }
  if (has(Kind::kGauge, Kind::kGaugeFloat)) {
    AppendHeader(out, "pacegc_app_gauge", "gauge",
                 "Gauges of the metrics registry (pgc_gauge_get, pgc_gauge_float_get) by registered name.");
    for (const AppMetric &a : apps) {
      if (a.kind != Kind::kGauge && a.kind != Kind::kGaugeFloat) continue;
      AppendAppSample(out, "pacegc_app_gauge", "", a);
      if (a.kind == Kind::kGauge) {
        AppendI64(out, a.int_value);
      } else {
        AppendDouble(out, a.float_value, false);
      }
      out->push_back('\n');
    }
  }
  if (has(Kind::kMeter, Kind::kMeter)) {
    AppendHeader(out, "pacegc_app_meter_total", "counter",
                 "Events marked on meters of the metrics registry (pgc_meter_get) by registered name.");
    for (const AppMetric &a : apps) {
      if (a.kind != Kind::kMeter) continue;
      AppendAppSample(out, "pacegc_app_meter_total", "", a);
      AppendI64(out, a.rates.count);
      out->push_back('\n');
    }
    AppendHeader(out, "pacegc_app_meter_rate", "gauge",
                 "Meter rates in events per second: 1-, 5- and 15-minute moving averages and the mean since "
                 "registration (window).");
    for (const AppMetric &a : apps) {
      if (a.kind != Kind::kMeter) continue;
      for (const Rate &r : kRates) {
        AppendAppSample(out, "pacegc_app_meter_rate", "", a, "window", r.label);
        AppendDouble(out, a.rates.*r.field, false);
        out->push_back('\n');
      }
    }
  }
  // Summaries: quantiles of the decaying sample (NaN while it is empty) and the count of every update ever.
  auto summary = [&](Kind kind, const char *family, double scale, const char *help) {
    if (!has(kind, kind)) return;
    AppendHeader(out, family, "summary", help);
    for (const AppMetric &a : apps) {
      if (a.kind != kind) continue;
      for (const Quantile &q : kQuantiles) {
        AppendAppSample(out, family, "", a, "quantile", q.label);
        AppendDouble(out, a.summary.sample_size == 0 ? NAN : a.summary.*q.field * scale, false);
        out->push_back('\n');
      }
      AppendAppSample(out, family, "_count", a);
      AppendI64(out, a.summary.count);
      out->push_back('\n');
    }
  };
  summary(Kind::kHistogram, "pacegc_app_histogram", 1.0,
          "Histograms of the metrics registry (pgc_histogram_get): quantiles of the exponentially decaying "
          "sample, count of every update.");
  summary(Kind::kTimer, "pacegc_app_timer_seconds", 1e-9,
          "Timers of the metrics registry (pgc_timer_get): duration quantiles in seconds over the decaying "
          "sample, count of every duration recorded.");
  if (has(Kind::kTimer, Kind::kTimer)) {
    AppendHeader(out, "pacegc_app_timer_rate", "gauge",
                 "Timer rates in durations recorded per second: 1-, 5- and 15-minute moving averages and the mean "
                 "since registration (window).");
    for (const AppMetric &a : apps) {
      if (a.kind != Kind::kTimer) continue;
      for (const Rate &r : kRates) {
        AppendAppSample(out, "pacegc_app_timer_rate", "", a, "window", r.label);
        AppendDouble(out, a.rates.*r.field, false);
        out->push_back('\n');
      }
    }
  }
}

void FormatPrometheus(const pgc_stats &s, const MetaVector<AppMetric> &apps, MetaString *out) {
  for (const RuntimeMetric &m : kRuntimeMetrics) {
    MetaString name = PrometheusName(m.name, m.type == Type::kCounter);
    const char *type = m.type == Type::kCounter ? "counter" : m.type == Type::kGauge ? "gauge" : "histogram";
    AppendHeader(out, name, type, m.help);
    if (m.type == Type::kPauseHistogram) {
      PrometheusPauseHistogram(s, name, out);
    } else {
      out->append(name);
      out->push_back(' ');
      AppendValue(out, m.read(s), m.render);
      out->push_back('\n');
    }
  }
  PrometheusApp(apps, out);
}

// ---- JSON -------------------------------------------------------------------------------------------------------

void JsonPauseHistogram(const pgc_stats &s, MetaString *out) {
  out->append("{\"buckets\": [");
  uint64_t cumulative = 0;
  for (int i = 0; i < PGC_PAUSE_HIST_BUCKETS; ++i) {
    cumulative += s.pause_hist[i];
    out->append(i == 0 ? "{\"le\": " : ", {\"le\": ");
    if (i + 1 < PGC_PAUSE_HIST_BUCKETS) {
      AppendFixed(out, uint64_t{1} << i, 6);
    } else {
      out->append("\"+Inf\"");
    }
    out->append(", \"count\": ");
    AppendU64(out, cumulative);
    out->push_back('}');
  }
  out->append("], \"sum\": ");
  AppendFixed(out, s.pause_total_ns, 9);
  out->append(", \"count\": ");
  AppendU64(out, cumulative);
  out->push_back('}');
}

void JsonKey(MetaString *out, const char *key) {
  out->append(", \"");
  out->append(key);
  out->append("\": ");
}

void JsonSummary(const SampleSummary &s, const char *unit, MetaString *out) {
  auto number = [&](const char *key, double v) {
    MetaString k(key);
    k.append(unit);
    JsonKey(out, k.c_str());
    AppendDouble(out, s.sample_size == 0 ? NAN : v, true);  // null while the sample is empty
  };
  JsonKey(out, "count");
  AppendI64(out, s.count);
  JsonKey(out, "sample_size");
  AppendU64(out, s.sample_size);
  number("min", static_cast<double>(s.min));
  number("max", static_cast<double>(s.max));
  number("mean", s.mean);
  number("stddev", s.stddev);
  number("p50", s.p50);
  number("p75", s.p75);
  number("p95", s.p95);
  number("p99", s.p99);
  number("p999", s.p999);
}

void JsonRates(const MeterSnapshot &m, MetaString *out) {
  for (const Rate &r : kRates) {
    JsonKey(out, r.json_key);
    AppendDouble(out, m.*r.field, true);
  }
}

void JsonApp(const AppMetric &a, MetaString *out) {
  out->append("{\"kind\": \"");
  out->append(KindName(a.kind));
  out->push_back('"');
  switch (a.kind) {
    case Kind::kCounter:
      JsonKey(out, "count");
      AppendI64(out, a.int_value);
      break;
    case Kind::kGauge:
      JsonKey(out, "value");
      AppendI64(out, a.int_value);
      break;
    case Kind::kGaugeFloat:
      JsonKey(out, "value");
      AppendDouble(out, a.float_value, true);
      break;
    case Kind::kMeter:
      JsonKey(out, "count");
      AppendI64(out, a.rates.count);
      JsonRates(a.rates, out);
      break;
    case Kind::kHistogram:
      JsonSummary(a.summary, "", out);
      break;
    case Kind::kTimer:
      JsonSummary(a.summary, "_ns", out);
      JsonRates(a.rates, out);
      break;
  }
  out->push_back('}');
}

void FormatJson(const pgc_stats &s, const MetaVector<AppMetric> &apps, MetaString *out) {
  out->append("{\n");
  for (const RuntimeMetric &m : kRuntimeMetrics) {
    out->append("  \"");
    out->append(m.name);  // table names need no escaping
    out->append("\": ");
    if (m.type == Type::kPauseHistogram) {
      JsonPauseHistogram(s, out);
    } else {
      AppendValue(out, m.read(s), m.render);
    }
    out->append(",\n");
  }
  out->append("  \"registry\": {");
  bool first = true;
  for (const AppMetric &a : apps) {
    out->append(first ? "\n    \"" : ",\n    \"");
    first = false;
    AppendEscaped(out, a.name, true);
    out->append("\": ");
    JsonApp(a, out);
  }
  out->append(first ? "}\n}\n" : "\n  }\n}\n");
}

}  // namespace

// ---- Interface --------------------------------------------------------------------------------------------------

MetaString PrometheusName(const char *go_name, bool counter) {
  std::string_view in(go_name);
  constexpr std::string_view kOwn = "/pacegc/";
  if (in.substr(0, kOwn.size()) == kOwn) in.remove_prefix(kOwn.size());
  MetaString out("pacegc_");
  for (char c : in) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    char t = keep ? c : '_';
    if (t == '_' && out.back() == '_') continue;  // collapse runs (and the one after the prefix)
    out.push_back(t);
  }
  while (out.size() > 7 && out.back() == '_') out.pop_back();
  if (counter) out.append("_total");
  return out;
}

int FormatMetrics(const pgc_stats &stats, const Registry *registry, int format, MetaString *out) {
  if (format != PGC_METRICS_PROMETHEUS && format != PGC_METRICS_JSON) return EINVAL;
  try {
    MetaVector<AppMetric> apps;
    if (registry != nullptr && !CopyRegistry(*registry, &apps)) return ENOMEM;
    out->reserve(out->size() + 8192 + 512 * apps.size());
    if (format == PGC_METRICS_PROMETHEUS) {
      FormatPrometheus(stats, apps, out);
    } else {
      FormatJson(stats, apps, out);
    }
    return 0;
  } catch (const std::bad_alloc &) {
    return ENOMEM;
  }
}

namespace {

// SIGPIPE blocked in the calling thread for the duration of a write(2) to a pipe or FIFO whose reader is gone, so
// the write fails with EPIPE instead of killing the process (the default action), and the SIGPIPE the kernel then
// leaves pending for this thread is consumed before the old mask is restored — unless one was already pending
// before (then it belongs to someone else and stays). The technique git and OpenSSL use; send(MSG_NOSIGNAL) does
// the same for sockets without touching the mask.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlocked() {
    if (!was_pending_) {
      int saved_errno = errno;
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
      errno = saved_errno;
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked &) = delete;
  SigpipeBlocked &operator=(const SigpipeBlocked &) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

}  // namespace

int WriteFully(int fd, const char *p, size_t n) {
  bool try_send = true;
  while (n > 0) {
    ssize_t w;
    if (try_send) {
      w = send(fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == ENOTSOCK) {
        try_send = false;
        continue;
      }
    } else {
      SigpipeBlocked blocked;
      w = write(fd, p, n);
    }
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

}  // namespace pacegc::metrics

extern "C" int pgc_write_metrics(int fd, int format) {
  using namespace pacegc::metrics;
  if (fd < 0 || (format != PGC_METRICS_PROMETHEUS && format != PGC_METRICS_JSON)) return EINVAL;
  // The registry first: creating it allocates metadata, which the snapshot should already include.
  Registry *registry = Registry::Default();
  if (registry == nullptr) return ENOMEM;
  pgc_stats stats;
  memset(&stats, 0, sizeof(stats));
  stats.size = sizeof(stats);
  pgc_read_stats(&stats);
  MetaString text;
  int rc = FormatMetrics(stats, registry, format, &text);
  if (rc != 0) return rc;
  return WriteFully(fd, text.data(), text.size());
}
