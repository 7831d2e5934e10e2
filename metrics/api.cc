// metrics/api.cc — the public C API of the metrics registry (the "Metrics registry" section of
// include/pacegc/pacegc.h) over Registry::Default().
//
// Misuse rule: a get with a NULL or invalid name, or a name registered as another kind, prints one line naming
// the call and the problem (gc/check.h Message), sets errno and returns NULL; updates on a NULL handle do nothing
// (the get already reported); snapshots return an errno value. Nothing here aborts or throws.
//
// Handles are the internal objects themselves, behind opaque C types: pgc_counter * is a metrics::Counter *, and
// so on. They are never dereferenced as the C type.
#include <errno.h>

#include <cstddef>
#include <cstring>

#include "base/check.h"
#include "metrics/log.h"
#include "metrics/metric.h"
#include "metrics/registry.h"
#include "pacegc/pacegc.h"

using pacegc::internal::Message;
using namespace pacegc::metrics;

namespace {

// Registers name as T in the default registry, or reports why not.
template <typename T>
T *GetMetric(const char *call, const char *name) {
  if (name == nullptr) {
    Message("%s: name is NULL", call);
    errno = EINVAL;
    return nullptr;
  }
  Registry *registry = Registry::Default();
  int error = ENOMEM;
  T *metric = registry != nullptr ? registry->Get<T>(name, &error) : nullptr;
  if (metric != nullptr) return metric;
  switch (error) {
    case EINVAL:
      Message("%s(\"%.300s\"): invalid metric name: want 1 to %zu bytes without spaces or control characters", call,
              name, kMaxNameBytes);
      break;
    case EEXIST: {
      Kind kind = Kind::kCounter;
      const char *other = registry->KindOf(name, &kind) ? KindName(kind) : "another kind";
      Message("%s(\"%s\"): \"%s\" is already registered as a %s, not a %s", call, name, name, other,
              KindName(T::kKind));
      break;
    }
    default:
      Message("%s(\"%.300s\"): out of metadata memory", call, name);
      break;
  }
  errno = error;
  return nullptr;
}

// True if out can be written: non-NULL and large enough to hold size and version.
template <typename Values>
bool Writable(const Values *out) {
  return out != nullptr && out->size >= offsetof(Values, reserved0);
}

// Copies the first out->size bytes of full into *out (older, shorter callers are served).
template <typename Values>
void CopyOut(Values *full, Values *out) {
  size_t n = out->size < sizeof(Values) ? out->size : sizeof(Values);
  full->size = out->size;
  full->version = PGC_METRIC_VALUES_VERSION;
  memcpy(out, full, n);
}

void FillHistogram(const SampleSummary &s, pgc_histogram_values *out) {
  pgc_histogram_values v{};
  v.count = s.count;
  v.sample_size = s.sample_size;
  v.min = s.min;
  v.max = s.max;
  v.mean = s.mean;
  v.stddev = s.stddev;
  v.p50 = s.p50;
  v.p75 = s.p75;
  v.p95 = s.p95;
  v.p99 = s.p99;
  v.p999 = s.p999;
  CopyOut(&v, out);
}

void FillMeter(const MeterSnapshot &s, pgc_meter_values *out) {
  pgc_meter_values v{};
  v.count = s.count;
  v.rate1 = s.rate1_per_s;
  v.rate5 = s.rate5_per_s;
  v.rate15 = s.rate15_per_s;
  v.rate_mean = s.rate_mean_per_s;
  CopyOut(&v, out);
}

// The handle of a listed metric: a pointer to the metric as its own kind.
void *Handle(Metric &m) {
  switch (m.kind()) {
    case Kind::kCounter: return static_cast<Counter *>(&m);
    case Kind::kGauge: return static_cast<Gauge *>(&m);
    case Kind::kGaugeFloat: return static_cast<GaugeFloat *>(&m);
    case Kind::kMeter: return static_cast<Meter *>(&m);
    case Kind::kHistogram: return static_cast<Histogram *>(&m);
    case Kind::kTimer: return static_cast<Timer *>(&m);
  }
  return &m;
}

Counter *C(pgc_counter *c) { return reinterpret_cast<Counter *>(c); }
const Counter *C(const pgc_counter *c) { return reinterpret_cast<const Counter *>(c); }

}  // namespace

extern "C" {

// ---- Counter ----------------------------------------------------------------------------------------------------

pgc_counter *pgc_counter_get(const char *name) {
  return reinterpret_cast<pgc_counter *>(GetMetric<Counter>("pgc_counter_get", name));
}
void pgc_counter_inc(pgc_counter *c, int64_t n) {
  if (c != nullptr) C(c)->Inc(n);
}
void pgc_counter_dec(pgc_counter *c, int64_t n) {
  if (c != nullptr) C(c)->Dec(n);
}
int64_t pgc_counter_count(const pgc_counter *c) { return c != nullptr ? C(c)->Count() : 0; }
void pgc_counter_clear(pgc_counter *c) {
  if (c != nullptr) C(c)->Clear();
}

// ---- Gauges -----------------------------------------------------------------------------------------------------

pgc_gauge *pgc_gauge_get(const char *name) {
  return reinterpret_cast<pgc_gauge *>(GetMetric<Gauge>("pgc_gauge_get", name));
}
void pgc_gauge_update(pgc_gauge *g, int64_t value) {
  if (g != nullptr) reinterpret_cast<Gauge *>(g)->Update(value);
}
int64_t pgc_gauge_value(const pgc_gauge *g) {
  return g != nullptr ? reinterpret_cast<const Gauge *>(g)->Value() : 0;
}

pgc_gauge_float *pgc_gauge_float_get(const char *name) {
  return reinterpret_cast<pgc_gauge_float *>(GetMetric<GaugeFloat>("pgc_gauge_float_get", name));
}
void pgc_gauge_float_update(pgc_gauge_float *g, double value) {
  if (g != nullptr) reinterpret_cast<GaugeFloat *>(g)->Update(value);
}
double pgc_gauge_float_value(const pgc_gauge_float *g) {
  return g != nullptr ? reinterpret_cast<const GaugeFloat *>(g)->Value() : 0.0;
}

// ---- Meter ------------------------------------------------------------------------------------------------------

pgc_meter *pgc_meter_get(const char *name) {
  return reinterpret_cast<pgc_meter *>(GetMetric<Meter>("pgc_meter_get", name));
}
void pgc_meter_mark(pgc_meter *m, int64_t n) {
  if (m != nullptr) reinterpret_cast<Meter *>(m)->Mark(n);
}
int pgc_meter_snapshot(pgc_meter *m, pgc_meter_values *out) {
  if (m == nullptr || !Writable(out)) return EINVAL;
  FillMeter(reinterpret_cast<Meter *>(m)->Snapshot(), out);
  return 0;
}

// ---- Histogram --------------------------------------------------------------------------------------------------

pgc_histogram *pgc_histogram_get(const char *name) {
  return reinterpret_cast<pgc_histogram *>(GetMetric<Histogram>("pgc_histogram_get", name));
}
void pgc_histogram_update(pgc_histogram *h, int64_t value) {
  if (h != nullptr) reinterpret_cast<Histogram *>(h)->Update(value);
}
void pgc_histogram_clear(pgc_histogram *h) {
  if (h != nullptr) reinterpret_cast<Histogram *>(h)->Clear();
}
int pgc_histogram_snapshot(pgc_histogram *h, pgc_histogram_values *out) {
  if (h == nullptr || !Writable(out)) return EINVAL;
  SampleSummary s;
  if (!reinterpret_cast<Histogram *>(h)->Snapshot(&s)) return ENOMEM;
  FillHistogram(s, out);
  return 0;
}

// ---- Timer ------------------------------------------------------------------------------------------------------

pgc_timer *pgc_timer_get(const char *name) {
  return reinterpret_cast<pgc_timer *>(GetMetric<Timer>("pgc_timer_get", name));
}
void pgc_timer_update_ns(pgc_timer *t, int64_t duration_ns) {
  if (t != nullptr) reinterpret_cast<Timer *>(t)->UpdateNs(duration_ns);
}
int pgc_timer_snapshot(pgc_timer *t, pgc_histogram_values *durations_ns, pgc_meter_values *rates) {
  if (t == nullptr || (durations_ns == nullptr && rates == nullptr)) return EINVAL;
  if ((durations_ns != nullptr && !Writable(durations_ns)) || (rates != nullptr && !Writable(rates))) return EINVAL;
  auto *timer = reinterpret_cast<Timer *>(t);
  if (durations_ns != nullptr) {
    SampleSummary s;
    if (!timer->histogram().Snapshot(&s)) return ENOMEM;
    FillHistogram(s, durations_ns);
  }
  if (rates != nullptr) FillMeter(timer->meter().Snapshot(), rates);
  return 0;
}

// ---- Registry-wide ----------------------------------------------------------------------------------------------

int pgc_metrics_unregister(const char *name) {
  if (name == nullptr) return EINVAL;
  Registry *registry = Registry::Default();
  return registry != nullptr && registry->Unregister(name) ? 0 : ENOENT;
}

int pgc_metrics_each(void (*fn)(const char *name, pgc_metric_kind kind, void *metric, void *data), void *data) {
  if (fn == nullptr) return EINVAL;
  Registry *registry = Registry::Default();
  if (registry == nullptr) return ENOMEM;
  bool ok = registry->ForEach([&](std::string_view name, Metric &metric) {
    // Names are stored NUL-terminated (MetaString), so data() is a C string.
    fn(name.data(), static_cast<pgc_metric_kind>(metric.kind()), Handle(metric), data);
  });
  return ok ? 0 : ENOMEM;
}

int pgc_metrics_log(int fd) {
  if (fd < 0) return EBADF;
  Registry *registry = Registry::Default();
  if (registry == nullptr) return ENOMEM;
  return WriteLog(*registry, fd);
}

int pgc_metrics_log_start(int64_t interval_ns, int fd) {
  Registry *registry = Registry::Default();
  if (registry == nullptr) return ENOMEM;
  return StartLogger(registry, interval_ns, fd);
}

void pgc_metrics_log_stop(void) { StopLogger(); }

}  // extern "C"
