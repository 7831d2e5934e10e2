// metrics/log.cc — see log.h: the block format and the logger thread.
#include "metrics/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/check.h"
#include "metrics/expose.h"
#include "pacer/config.h"
#include "settings/settings.h"

namespace pacegc::metrics {

// ---- Format -----------------------------------------------------------------------------------------------------

namespace {

// Appends "key=<summary fields>" for a histogram; unit is "" or "_ns".
int FormatSummary(char *buf, size_t size, const SampleSummary &s, const char *unit) {
  return snprintf(buf, size,
                  " count=%" PRId64 " min%s=%" PRId64 " max%s=%" PRId64
                  " mean%s=%.9g stddev%s=%.9g p50%s=%.9g p75%s=%.9g p95%s=%.9g p99%s=%.9g p999%s=%.9g",
                  s.count, unit, s.min, unit, s.max, unit, s.mean, unit, s.stddev, unit, s.p50, unit, s.p75, unit,
                  s.p95, unit, s.p99, unit, s.p999);
}

int FormatRates(char *buf, size_t size, const MeterSnapshot &m) {
  return snprintf(buf, size, " rate1=%.9g rate5=%.9g rate15=%.9g rate_mean=%.9g", m.rate1_per_s, m.rate5_per_s,
                  m.rate15_per_s, m.rate_mean_per_s);
}

// Formats one metric's line (without the trailing newline) into buf. Names are at most kMaxNameBytes, so the
// line fits in 1 KiB.
void FormatMetric(char *buf, size_t size, std::string_view name, Metric &metric) {
  int n = snprintf(buf, size, "metrics: %s %.*s", KindName(metric.kind()), static_cast<int>(name.size()),
                   name.data());
  auto rest = [&]() -> char * { return buf + (n < static_cast<int>(size) ? n : static_cast<int>(size) - 1); };
  auto room = [&]() -> size_t { return n < static_cast<int>(size) ? size - static_cast<size_t>(n) : 1; };
  switch (metric.kind()) {
    case Kind::kCounter:
      n += snprintf(rest(), room(), " count=%" PRId64, static_cast<Counter &>(metric).Count());
      break;
    case Kind::kGauge:
      n += snprintf(rest(), room(), " value=%" PRId64, static_cast<Gauge &>(metric).Value());
      break;
    case Kind::kGaugeFloat:
      n += snprintf(rest(), room(), " value=%.9g", static_cast<GaugeFloat &>(metric).Value());
      break;
    case Kind::kMeter: {
      MeterSnapshot m = static_cast<Meter &>(metric).Snapshot();
      n += snprintf(rest(), room(), " count=%" PRId64, m.count);
      n += FormatRates(rest(), room(), m);
      break;
    }
    case Kind::kHistogram: {
      SampleSummary s;
      if (static_cast<Histogram &>(metric).Snapshot(&s)) {
        n += FormatSummary(rest(), room(), s, "");
      } else {
        n += snprintf(rest(), room(), " unavailable=out-of-memory");
      }
      break;
    }
    case Kind::kTimer: {
      auto &timer = static_cast<Timer &>(metric);
      SampleSummary s;
      if (timer.histogram().Snapshot(&s)) {
        n += FormatSummary(rest(), room(), s, "_ns");
        n += FormatRates(rest(), room(), timer.meter().Snapshot());
      } else {
        n += snprintf(rest(), room(), " unavailable=out-of-memory");
      }
      break;
    }
  }
}

}  // namespace

bool FormatLog(const Registry &registry, MetaString *out) {
  try {
    MetaString body;
    size_t lines = 0;
    char line[1024];
    bool listed = registry.ForEach([&](std::string_view name, Metric &metric) {
      FormatMetric(line, sizeof(line), name, metric);
      body.append(line);
      body.push_back('\n');
      ++lines;
    });
    if (!listed) return false;
    double t_s = static_cast<double>(registry.clock()->NowNs() - registry.start_ns()) / 1e9;
    snprintf(line, sizeof(line), "metrics: t=%.3fs n=%zu\n", t_s, lines);
    out->append(line);
    out->append(body);
    return true;
  } catch (const std::bad_alloc &) {
    return false;
  }
}

int WriteLog(const Registry &registry, int fd) {
  MetaString block;
  if (!FormatLog(registry, &block)) return ENOMEM;
  return WriteFully(fd, block.data(), block.size());  // EPIPE, not SIGPIPE, for a closed pipe or socket
}

// ---- The logger thread ------------------------------------------------------------------------------------------

namespace {

// Guarded by g_mu.
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cv;  // CLOCK_MONOTONIC; both the thread's sleep and StopLogger's wait use it
pthread_once_t g_sync_once = PTHREAD_ONCE_INIT;
struct LoggerState {
  bool running = false;  // a logger thread exists and has not yet acknowledged a stop
  bool stop = false;     // the thread is asked to exit
  Registry *registry = nullptr;
  int fd = -1;
  int64_t interval_ns = 0;
} g_log;

void InitCondition() {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&g_cv, &attr);
  pthread_condattr_destroy(&attr);
}

// In the child after fork() only the forking thread exists: no logger, and the lock and condition may have been
// held by a thread that is gone.
void AtForkChild() {
  pthread_mutex_init(&g_mu, nullptr);
  InitCondition();
  g_log = LoggerState{};
}

void InitSync() {
  InitCondition();
  pthread_atfork(nullptr, nullptr, AtForkChild);
}

void AddNs(timespec *t, int64_t ns) {
  int64_t total = static_cast<int64_t>(t->tv_nsec) + ns % 1'000'000'000;
  t->tv_sec += static_cast<time_t>(ns / 1'000'000'000 + total / 1'000'000'000);
  t->tv_nsec = static_cast<long>(total % 1'000'000'000);
}

bool Before(const timespec &a, const timespec &b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

void *LoggerMain(void *) {
  pthread_mutex_lock(&g_mu);
  timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    AddNs(&next, g_log.interval_ns);
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (Before(next, now)) {  // fell behind (a slow write): skip the missed blocks rather than burst
      next = now;
      AddNs(&next, g_log.interval_ns);
    }
    while (!g_log.stop) {
      if (pthread_cond_timedwait(&g_cv, &g_mu, &next) == ETIMEDOUT) break;
    }
    if (g_log.stop) break;
    Registry *registry = g_log.registry;
    int fd = g_log.fd;
    pthread_mutex_unlock(&g_mu);
    WriteLog(*registry, fd);  // errors (a closed stderr) are not reportable anywhere better; keep going
    pthread_mutex_lock(&g_mu);
  }
  g_log.running = false;
  g_log.stop = false;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  return nullptr;
}

// g_mu held. Asks a running logger to exit and waits until it has.
void StopLocked() {
  while (g_log.running) {
    g_log.stop = true;
    pthread_cond_broadcast(&g_cv);
    pthread_cond_wait(&g_cv, &g_mu);
  }
}

}  // namespace

int StartLogger(Registry *registry, int64_t interval_ns, int fd) {
  if (registry == nullptr || fd < 0 || interval_ns < pacer::kMinMetricsLogIntervalNs) return EINVAL;
  pthread_once(&g_sync_once, InitSync);
  pthread_mutex_lock(&g_mu);
  StopLocked();
  g_log.registry = registry;
  g_log.fd = fd;
  g_log.interval_ns = interval_ns;
  g_log.stop = false;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the thread inherits a mask blocking every signal
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, LoggerMain, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  g_log.running = rc == 0;
  if (rc != 0) g_log.interval_ns = 0;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

void StopLogger() {
  pthread_once(&g_sync_once, InitSync);
  pthread_mutex_lock(&g_mu);
  StopLocked();
  g_log.interval_ns = 0;
  pthread_mutex_unlock(&g_mu);
}

int64_t LoggerIntervalNs() {
  pthread_mutex_lock(&g_mu);
  int64_t ns = g_log.running ? g_log.interval_ns : 0;
  pthread_mutex_unlock(&g_mu);
  return ns;
}

namespace {
void StartLoggerFromSettingsOnce() {
  const int64_t interval_ns = settings::Get().metrics_log_interval_ns;  // PACEGC_METRICS_LOG; malformed: exited
  if (interval_ns == 0) return;
  Registry *registry = Registry::Default();
  int rc = registry == nullptr ? ENOMEM : StartLogger(registry, interval_ns, STDERR_FILENO);
  if (rc != 0) {
    internal::Message("PACEGC_METRICS_LOG=%" PRId64 "ns: cannot start the metrics logger (error %d)", interval_ns,
                      rc);
  }
}
pthread_once_t g_settings_once = PTHREAD_ONCE_INIT;
}  // namespace

void StartLoggerFromSettings() { pthread_once(&g_settings_once, StartLoggerFromSettingsOnce); }

}  // namespace pacegc::metrics
