// metrics/expose.cc: the exposition of a synthetic pgc_stats whose every field is distinct and nonzero (so each
// metric is checked against the field it documents, independently of which fields the collector fills today),
// the Prometheus name rule, registry metrics in both formats, and pgc_write_metrics' error codes and write loop
// (partial writes and EINTR through a slow pipe under a signal storm).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "metrics/expose.h"
#include "metrics/registry.h"
#include "pacegc/pacegc.h"

using namespace pacegc::metrics;

namespace {

// Every field a distinct value.
pgc_stats SyntheticStats() {
  pgc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  s.version = PGC_STATS_VERSION;
  s.num_gc = 10;
  s.num_forced_gc = 3;
  s.heap_live_bytes = 1001;
  s.heap_goal_bytes = 2002;
  s.heap_alloc_bytes = 3003;
  s.heap_objects = 44;
  s.total_bytes = 50005;
  s.heap_mapped_bytes = 40000;
  s.heap_released_bytes = 7007;
  s.released_bytes = 7007;
  s.metadata_bytes = 6006;
  s.total_alloc_bytes = 80008;
  s.total_alloc_objects = 808;
  s.total_free_bytes = 70007;
  s.total_free_objects = 707;
  s.pause_total_ns = 1234567890;
  s.gc_cpu_ns = 9876543210;
  s.last_stack_scan_bytes = 11;
  s.last_globals_scan_bytes = 22;
  s.last_heap_scan_bytes = 33;
  s.limiter_last_enabled_cycle = 9;
  s.gc_percent = -1;
  s.memory_limit_bytes = INT64_MAX;
  s.limiter_enabled = 1;
  s.limiter_enabled_ns = 5000000001;
  s.manual_bytes = 999;
  s.scavenge_cpu_ns = 42;
  s.heap_in_use_bytes = 30000;
  s.heap_free_bytes = 10000;
  s.num_periodic_gc = 2;
  s.limiter_postponed = 4;
  s.pause_hist[0] = 1;  // <= 1 us
  s.pause_hist[3] = 2;  // <= 8 us
  s.pause_hist[30] = 3;
  s.pause_hist[31] = 4;  // > 2^30 us
  return s;
}

std::string Format(const pgc_stats &s, const Registry *r, int format) {
  MetaString out;
  REQUIRE(FormatMetrics(s, r, format, &out) == 0);
  return std::string(out.data(), out.size());
}

bool Has(const std::string &text, const std::string &line) { return text.find(line) != std::string::npos; }

}  // namespace

TEST_CASE("Prometheus names follow the documented rule", "[metrics][expose]") {
  auto name = [](const char *go, bool counter) {
    MetaString n = PrometheusName(go, counter);
    return std::string(n.data(), n.size());
  };
  CHECK(name("/gc/heap/goal:bytes", false) == "pacegc_gc_heap_goal_bytes");
  CHECK(name("/gc/cycles/total:gc-cycles", true) == "pacegc_gc_cycles_total_gc_cycles_total");
  CHECK(name("/cpu/classes/gc/pause:cpu-seconds", true) == "pacegc_cpu_classes_gc_pause_cpu_seconds_total");
  CHECK(name("/pacegc/limiter/enabled:bool", false) == "pacegc_limiter_enabled_bool");
  CHECK(name("/a//b--c:", false) == "pacegc_a_b_c");
}

TEST_CASE("Prometheus: every runtime metric reads its documented field", "[metrics][expose]") {
  std::string t = Format(SyntheticStats(), nullptr, PGC_METRICS_PROMETHEUS);
  INFO(t);
  CHECK(Has(t, "\npacegc_gc_heap_goal_bytes 2002\n"));
  CHECK(Has(t, "\npacegc_gc_heap_live_bytes 1001\n"));
  CHECK(Has(t, "\npacegc_gc_gogc_percent -1\n"));
  CHECK(Has(t, "\npacegc_gc_gomemlimit_bytes 9223372036854775807\n"));
  CHECK(Has(t, "\npacegc_gc_limiter_last_enabled_gc_cycle 9\n"));
  CHECK(Has(t, "# TYPE pacegc_gc_cycles_automatic_gc_cycles_total counter\n"
               "pacegc_gc_cycles_automatic_gc_cycles_total 7\n"));
  CHECK(Has(t, "\npacegc_gc_cycles_forced_gc_cycles_total 3\n"));
  CHECK(Has(t, "\npacegc_gc_cycles_total_gc_cycles_total 10\n"));
  CHECK(Has(t, "\npacegc_gc_heap_allocs_bytes_total 80008\n"));
  CHECK(Has(t, "\npacegc_gc_heap_allocs_objects_total 808\n"));
  CHECK(Has(t, "\npacegc_gc_heap_frees_bytes_total 70007\n"));
  CHECK(Has(t, "\npacegc_gc_heap_frees_objects_total 707\n"));
  CHECK(Has(t, "# TYPE pacegc_gc_heap_objects_objects gauge\npacegc_gc_heap_objects_objects 44\n"));
  CHECK(Has(t, "\npacegc_gc_scan_heap_bytes 33\n"));
  CHECK(Has(t, "\npacegc_gc_scan_stack_bytes 11\n"));
  CHECK(Has(t, "\npacegc_gc_scan_globals_bytes 22\n"));
  CHECK(Has(t, "\npacegc_gc_scan_total_bytes 66\n"));
  CHECK(Has(t, "\npacegc_cpu_classes_gc_pause_cpu_seconds_total 9.876543210\n"));
  CHECK(Has(t, "\npacegc_cpu_classes_gc_total_cpu_seconds_total 9.876543210\n"));
  CHECK(Has(t, "\npacegc_cpu_classes_scavenge_total_cpu_seconds_total 0.000000042\n"));
  CHECK(Has(t, "\npacegc_memory_classes_total_bytes 57012\n"));  // 50005 + 7007
  CHECK(Has(t, "\npacegc_memory_classes_heap_released_bytes 7007\n"));
  CHECK(Has(t, "\npacegc_memory_classes_heap_free_bytes 10000\n"));
  CHECK(Has(t, "\npacegc_memory_classes_heap_objects_bytes 3003\n"));
  CHECK(Has(t, "\npacegc_memory_classes_metadata_other_bytes 6006\n"));
  CHECK(Has(t, "\npacegc_manual_bytes 999\n"));
  CHECK(Has(t, "\npacegc_cycles_periodic_gc_cycles_total 2\n"));
  CHECK(Has(t, "\npacegc_limiter_enabled_time_seconds_total 5.000000001\n"));
  CHECK(Has(t, "\npacegc_limiter_enabled_bool 1\n"));
  CHECK(Has(t, "\npacegc_limiter_postponed_gc_cycles_total 4\n"));
  CHECK(Has(t, "\npacegc_memory_limit_counted_bytes 50005\n"));
  CHECK(t.rfind("# HELP pacegc_gc_heap_goal_bytes ", 0) == 0);
}

TEST_CASE("Prometheus: the pause histogram is cumulative, exact sum, +Inf last", "[metrics][expose]") {
  std::string t = Format(SyntheticStats(), nullptr, PGC_METRICS_PROMETHEUS);
  INFO(t);
  const std::string b = "pacegc_sched_pauses_total_gc_seconds";
  CHECK(Has(t, "# TYPE " + b + " histogram\n" + b + "_bucket{le=\"0.000001\"} 1\n" + b +
                   "_bucket{le=\"0.000002\"} 1\n" + b + "_bucket{le=\"0.000004\"} 1\n" + b +
                   "_bucket{le=\"0.000008\"} 3\n"));
  CHECK(Has(t, b + "_bucket{le=\"536.870912\"} 3\n" + b + "_bucket{le=\"1073.741824\"} 6\n" + b +
                   "_bucket{le=\"+Inf\"} 10\n" + b + "_sum 1.234567890\n" + b + "_count 10\n"));
  CHECK(!Has(t, "2147.483648"));  // the last bucket has no finite bound
}

TEST_CASE("JSON: Go-style keys, the histogram object and the registry", "[metrics][expose]") {
  Registry r;
  r.GetCounter("requests")->Inc(5);
  r.GetGauge("q\"uote\\d")->Update(-2);
  r.GetGaugeFloat("bad\xff" "utf8")->Update(NAN);
  r.GetHistogram("empty");
  std::string t = Format(SyntheticStats(), &r, PGC_METRICS_JSON);
  INFO(t);
  CHECK(t.rfind("{\n  \"/gc/heap/goal:bytes\": 2002,\n", 0) == 0);
  CHECK(Has(t, "\n  \"/gc/gogc:percent\": -1,\n"));
  CHECK(Has(t, "\n  \"/cpu/classes/gc/pause:cpu-seconds\": 9.876543210,\n"));
  CHECK(Has(t, "\n  \"/sched/pauses/total/gc:seconds\": {\"buckets\": [{\"le\": 0.000001, \"count\": 1}, "
               "{\"le\": 0.000002, \"count\": 1}, "));
  CHECK(Has(t, "{\"le\": 1073.741824, \"count\": 6}, {\"le\": \"+Inf\", \"count\": 10}], \"sum\": 1.234567890, "
               "\"count\": 10},\n"));
  CHECK(Has(t, "\n    \"requests\": {\"kind\": \"counter\", \"count\": 5}"));
  CHECK(Has(t, "\n    \"q\\\"uote\\\\d\": {\"kind\": \"gauge\", \"value\": -2}"));
  CHECK(Has(t, "\n    \"bad\xEF\xBF\xBDutf8\": {\"kind\": \"gauge_float\", \"value\": null}"));
  CHECK(Has(t, "\n    \"empty\": {\"kind\": \"histogram\", \"count\": 0, \"sample_size\": 0, \"min\": null, "));
  REQUIRE(t.size() > 8);
  CHECK(t.substr(t.size() - 8) == "}\n  }\n}\n");
}

TEST_CASE("Prometheus: registry metrics by kind, names as escaped labels", "[metrics][expose]") {
  ManualClock clock;
  Registry r(&clock);
  r.GetCounter("requests")->Inc(5);
  r.GetGauge("q\"uote\\d")->Update(-2);
  r.GetGaugeFloat("load")->Update(0.25);
  r.GetMeter("events")->Mark(3);
  Histogram *h = r.GetHistogram("sizes");
  for (int i = 1; i <= 100; ++i) h->Update(i);
  r.GetHistogram("empty");
  Timer *timer = r.GetTimer("latency");
  timer->UpdateNs(2'000'000'000);
  std::string t = Format(SyntheticStats(), &r, PGC_METRICS_PROMETHEUS);
  INFO(t);
  CHECK(Has(t, "# TYPE pacegc_app_counter gauge\npacegc_app_counter{name=\"requests\"} 5\n"));
  CHECK(Has(t, "# TYPE pacegc_app_gauge gauge\npacegc_app_gauge{name=\"load\"} 0.25\n"
               "pacegc_app_gauge{name=\"q\\\"uote\\\\d\"} -2\n"));
  CHECK(Has(t, "# TYPE pacegc_app_meter_total counter\npacegc_app_meter_total{name=\"events\"} 3\n"));
  CHECK(Has(t, "pacegc_app_meter_rate{name=\"events\",window=\"1m\"} "));
  CHECK(Has(t, "# TYPE pacegc_app_histogram summary\npacegc_app_histogram{name=\"empty\",quantile=\"0.5\"} NaN\n"));
  CHECK(Has(t, "pacegc_app_histogram{name=\"sizes\",quantile=\"0.5\"} 50.5\n"));
  CHECK(Has(t, "pacegc_app_histogram_count{name=\"sizes\"} 100\n"));
  CHECK(Has(t, "pacegc_app_timer_seconds{name=\"latency\",quantile=\"0.99\"} 2\n"));
  CHECK(Has(t, "pacegc_app_timer_seconds_count{name=\"latency\"} 1\n"));
  CHECK(Has(t, "pacegc_app_timer_rate{name=\"latency\",window=\"mean\"} "));
  CHECK(!Has(t, "pacegc_app_histogram_sum"));
}

TEST_CASE("pgc_write_metrics rejects bad input with errno codes", "[metrics][expose]") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  CHECK(pgc_write_metrics(fds[1], 0) == EINVAL);
  CHECK(pgc_write_metrics(fds[1], 3) == EINVAL);
  CHECK(pgc_write_metrics(-1, PGC_METRICS_JSON) == EINVAL);
  close(fds[0]);
  close(fds[1]);
  CHECK(pgc_write_metrics(fds[1], PGC_METRICS_PROMETHEUS) == EBADF);  // closed
  int ro = open("/dev/null", O_RDONLY);
  REQUIRE(ro >= 0);
  CHECK(pgc_write_metrics(ro, PGC_METRICS_JSON) == EBADF);  // not open for writing
  close(ro);

}

TEST_CASE("a pipe or socket whose reader is gone gives EPIPE, never SIGPIPE", "[metrics][expose][sigpipe]") {
  // In a child with SIGPIPE's default action (terminate): issue 16 found the process killed by a pipe. The child
  // also checks that no SIGPIPE is left pending and that its signal mask is as before.
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    sigset_t before, after, pending;
    pthread_sigmask(SIG_SETMASK, nullptr, &before);
    int code = 0;
    int fds[2];
    if (pipe(fds) != 0) _exit(10);
    close(fds[0]);
    if (pgc_write_metrics(fds[1], PGC_METRICS_JSON) != EPIPE) code = 11;
    if (code == 0 && pgc_metrics_log(fds[1]) != EPIPE) code = 12;
    close(fds[1]);
    int sv[2];
    if (code == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) code = 13;
    if (code == 0) {
      close(sv[0]);
      if (pgc_write_metrics(sv[1], PGC_METRICS_PROMETHEUS) != EPIPE) code = 14;
      if (code == 0 && pgc_metrics_log(sv[1]) != EPIPE) code = 15;
      close(sv[1]);
    }
    pthread_sigmask(SIG_SETMASK, nullptr, &after);
    sigpending(&pending);
    if (code == 0 && sigismember(&pending, SIGPIPE)) code = 16;
    if (code == 0 && sigismember(&after, SIGPIPE) != sigismember(&before, SIGPIPE)) code = 17;
    _exit(code);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  INFO("child: " << (WIFSIGNALED(status) ? "killed by signal " : "exit status ")
                 << (WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

namespace {
std::atomic<int> g_alarms{0};
void OnAlarm(int) { g_alarms.fetch_add(1, std::memory_order_relaxed); }

struct SlowReader {
  int fd;
  std::string text;
};
void *ReadSlowly(void *arg) {
  auto *r = static_cast<SlowReader *>(arg);
  sigset_t alarm;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alarm, nullptr);  // the alarms interrupt the writer, not the reader
  char buf[4096];
  ssize_t n;
  while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
    r->text.append(buf, static_cast<size_t>(n));
    usleep(2000);  // slower than the writer: it blocks on a full pipe, where the alarms interrupt it
  }
  return nullptr;
}
}  // namespace

TEST_CASE("pgc_write_metrics completes through partial writes and EINTR", "[metrics][expose]") {
  // More text than a pipe holds (64 KiB): the writer blocks, and every alarm interrupts it.
  for (int i = 0; i < 1500; ++i) {
    std::string name = "expose/write-loop/counter-" + std::to_string(i);
    pgc_counter_inc(pgc_counter_get(name.c_str()), i);
  }
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  SlowReader reader{fds[0], {}};
  pthread_t thread;
  REQUIRE(pthread_create(&thread, nullptr, ReadSlowly, &reader) == 0);

  struct sigaction sa {}, old {};
  sa.sa_handler = OnAlarm;
  sa.sa_flags = 0;  // no SA_RESTART: a blocked write returns short or fails with EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, &old);
  itimerval every_ms{{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &every_ms, nullptr);
  g_alarms.store(0);
  int rc = pgc_write_metrics(fds[1], PGC_METRICS_PROMETHEUS);
  int alarms = g_alarms.load();
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  sigaction(SIGALRM, &old, nullptr);
  close(fds[1]);
  pthread_join(thread, nullptr);
  close(fds[0]);

  CHECK(rc == 0);
  CHECK(alarms > 0);
  CHECK(reader.text.size() > 65536);
  CHECK(reader.text.rfind("# HELP pacegc_gc_heap_goal_bytes ", 0) == 0);
  // Every counter arrived, the last one complete with its newline.
  CHECK(reader.text.find("pacegc_app_counter{name=\"expose/write-loop/counter-0\"} 0\n") != std::string::npos);
  CHECK(reader.text.find("pacegc_app_counter{name=\"expose/write-loop/counter-999\"} 999\n") != std::string::npos);
  CHECK(reader.text.find("pacegc_app_counter{name=\"expose/write-loop/counter-1499\"} 1499\n") != std::string::npos);
  for (int i = 0; i < 1500; ++i) {
    std::string name = "expose/write-loop/counter-" + std::to_string(i);
    pgc_metrics_unregister(name.c_str());
  }
}
