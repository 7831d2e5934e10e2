// tests/api/settings_stats_test.cc — setters return previous values and are reflected in statistics; the stats
// struct's size/version protocol; collection counters and pause times; GOGC off and the memory limit drive
// automatic collections. Public API only.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstring>
#include <vector>

#include "common/test_util.h"

using namespace pgc_test;

TEST_CASE("pgc_set_gc_percent returns the previous value; negative reads back as -1", "[api][settings]") {
  int64_t expected_default = 0;
  const int initial = pgc_set_gc_percent(100);
  if (ExpectedGcPercentFromEnv(&expected_default)) {
    CHECK(initial == expected_default);
  }
  CHECK(Stats().gc_percent == 100);
  CHECK(pgc_set_gc_percent(250) == 100);
  CHECK(Stats().gc_percent == 250);
  CHECK(pgc_set_gc_percent(-5) == 250);
  CHECK(Stats().gc_percent == -1);
  CHECK(pgc_set_gc_percent(0) == -1);
  CHECK(Stats().gc_percent == 0);
  CHECK(pgc_set_gc_percent(initial) == 0);
  CHECK(Stats().gc_percent == initial);
}

TEST_CASE("pgc_set_memory_limit returns the previous value; negative only queries", "[api][settings]") {
  const int64_t initial = pgc_set_memory_limit(-1);
  const uint32_t initial_source = Stats().memory_limit_source;
  // GOMEMLIMIT; or 90% of the limit of the memory cgroup the test runs in; or an earlier test case's setting.
  CHECK(initial_source == (EnvIsSet("GOMEMLIMIT") ? PGC_MEMORY_LIMIT_ENV : initial_source));
  CHECK(initial_source <= PGC_MEMORY_LIMIT_CGROUP);
  if (initial_source == PGC_MEMORY_LIMIT_NONE) CHECK(initial == INT64_MAX);
  CHECK(pgc_set_memory_limit(-1) == initial);  // a query changes nothing, not even the source
  CHECK(pgc_set_memory_limit(-12345) == initial);
  CHECK(Stats().memory_limit_bytes == initial);
  CHECK(Stats().memory_limit_source == initial_source);
  const int64_t eight_gib = int64_t{8} << 30;
  CHECK(pgc_set_memory_limit(eight_gib) == initial);
  CHECK(Stats().memory_limit_source == PGC_MEMORY_LIMIT_API);
  CHECK(pgc_set_memory_limit(-1) == eight_gib);
  CHECK(Stats().memory_limit_bytes == eight_gib);
  CHECK(pgc_set_memory_limit(INT64_MAX) == eight_gib);
  CHECK(Stats().memory_limit_bytes == INT64_MAX);
  CHECK(pgc_set_memory_limit(initial) == INT64_MAX);
  CHECK(pgc_set_memory_limit(-1) == initial);
}

TEST_CASE("pgc_read_stats writes only the fields inside the caller's size", "[api][stats]") {
  const pgc_stats full = Stats();
  CHECK(full.size == sizeof(pgc_stats));
  CHECK(full.version == PGC_STATS_VERSION);

  constexpr unsigned char kCanary = 0xA5;
  const size_t cuts[] = {offsetof(pgc_stats, reserved0), offsetof(pgc_stats, num_forced_gc),
                         offsetof(pgc_stats, heap_live_bytes), offsetof(pgc_stats, gc_cpu_fraction),
                         offsetof(pgc_stats, memory_limit_bytes),
                         offsetof(pgc_stats, memory_limit_source)};  // a version-2 caller
  for (size_t cut : cuts) {
    INFO("caller size " << cut);
    alignas(pgc_stats) unsigned char buf[sizeof(pgc_stats) + 64];
    std::memset(buf, kCanary, sizeof(buf));
    auto *s = reinterpret_cast<pgc_stats *>(buf);
    s->size = cut;
    pgc_read_stats(s);
    CHECK(s->size == cut);
    CHECK(s->version == PGC_STATS_VERSION);
    if (cut > offsetof(pgc_stats, num_gc)) CHECK(s->num_gc == full.num_gc);
    bool untouched = true;
    for (size_t i = cut; i < sizeof(buf); ++i) untouched = untouched && buf[i] == kCanary;
    CHECK(untouched);
  }

  // A newer caller with a larger struct: the library writes its own fields and nothing past them.
  alignas(pgc_stats) unsigned char big[sizeof(pgc_stats) + 64];
  std::memset(big, kCanary, sizeof(big));
  auto *s = reinterpret_cast<pgc_stats *>(big);
  s->size = sizeof(big);
  pgc_read_stats(s);
  CHECK(s->version == PGC_STATS_VERSION);
  CHECK(s->num_gc == full.num_gc);
  bool untouched = true;
  for (size_t i = sizeof(pgc_stats); i < sizeof(big); ++i) untouched = untouched && big[i] == kCanary;
  CHECK(untouched);
}

TEST_CASE("num_gc, num_forced_gc and pause times count collections", "[api][stats]") {
  const pgc_stats before = Stats();
  pgc_collect();
  pgc_collect();
  pgc_collect();
  const pgc_stats after = Stats();
  CHECK(after.num_forced_gc - before.num_forced_gc == 3);
  CHECK(after.num_gc - before.num_gc >= 3);
  CHECK(after.num_gc >= after.num_forced_gc);
  CHECK(after.pause_total_ns > before.pause_total_ns);
  CHECK(after.pause_last_ns > 0);
  CHECK(after.pause_max_ns >= after.pause_last_ns);
  CHECK(after.pause_total_ns >= after.pause_max_ns);
  CHECK(after.num_threads >= 1);
  CHECK(after.last_stack_scan_bytes > 0);    // at least the main thread's stack
  CHECK(after.last_globals_scan_bytes > 0);  // at least this executable's data and bss
  CHECK(after.gc_cpu_fraction >= 0.0);
  CHECK(after.gc_cpu_fraction <= 1.0);
  CHECK(after.heap_goal_bytes > 0);
  CHECK(after.released_bytes == after.heap_released_bytes);
}

TEST_CASE("allocation counters grow with allocation", "[api][stats]") {
  const pgc_stats before = Stats();
  const size_t n = 10000;
  auto **keep = static_cast<void **>(pgc_malloc(n * sizeof(void *)));
  REQUIRE(keep != nullptr);
  for (size_t i = 0; i < n; ++i) keep[i] = pgc_malloc(100);
  pgc_collect();
  const pgc_stats after = Stats();
  CHECK(after.total_alloc_objects - before.total_alloc_objects >= n);
  CHECK(after.total_alloc_bytes - before.total_alloc_bytes >= n * 100);
  CHECK(after.heap_objects >= n);
  CHECK(after.heap_live_bytes >= n * 100);
  CHECK(after.heap_alloc_bytes >= after.heap_live_bytes);
  CHECK(keep[n - 1] != nullptr);
}

namespace {

PGC_TEST_NOINLINE void Churn(uint64_t seed, size_t bytes) {
  Rng rng(seed);
  MakeGarbage(rng, bytes, 1024, 64 * kKiB);
}

}  // namespace

TEST_CASE("allocation starts collections under GOGC; GOGC off with no limit starts none; a limit does",
          "[api][stats][settings]") {
  const int old_percent = pgc_set_gc_percent(100);
  const int64_t old_limit = pgc_set_memory_limit(INT64_MAX);
  CollectN(1);

  // These checks count collections that came due, run or postponed by the GC CPU limiter (CollectionsDue).
  pgc_stats s0 = Stats();
  Churn(1, 256 * kMiB);
  pgc_stats s1 = Stats();
  INFO("GOGC=100: " << (s1.num_gc - s0.num_gc) << " collections, "
                    << (s1.limiter_postponed - s0.limiter_postponed) << " postponed by the CPU limiter");
  CHECK(CollectionsDue(s0, s1) >= 2);
  CHECK(s1.num_forced_gc == s0.num_forced_gc);

  pgc_set_gc_percent(-1);
  s0 = Stats();
  Churn(2, 64 * kMiB);
  s1 = Stats();
  INFO("GOGC=off, no limit: " << (s1.num_gc - s0.num_gc) << " collections");
  CHECK(s1.num_gc == s0.num_gc);
  CHECK(CollectionsDue(s0, s1) == 0);  // nothing came due either

  pgc_set_memory_limit(int64_t{128} << 20);  // GOGC off, 128 MiB soft limit
  CollectN(1);
  s0 = Stats();
  Churn(3, 512 * kMiB);
  s1 = Stats();
  INFO("GOGC=off, 128 MiB limit: " << (s1.num_gc - s0.num_gc) << " collections, "
                                     << (s1.limiter_postponed - s0.limiter_postponed) << " postponed");
  CHECK(CollectionsDue(s0, s1) >= 2);

  pgc_set_memory_limit(old_limit);
  pgc_set_gc_percent(old_percent);
  CollectN(1);
}

TEST_CASE("pacegc records its own pauses in the metrics registry", "[api][stats][metrics]") {
  CollectN(2);
  pgc_timer *t = pgc_timer_get("/pacegc/gc/pause:seconds");
  REQUIRE(t != nullptr);
  pgc_histogram_values h;
  std::memset(&h, 0, sizeof h);
  h.size = sizeof h;
  REQUIRE(pgc_timer_snapshot(t, &h, nullptr) == 0);
  const pgc_stats s = Stats();
  // every pause (two per concurrent cycle), since the first cycle registered it
  CHECK(static_cast<uint64_t>(h.count) == s.num_gc + s.num_concurrent_gc);
  CHECK(h.max > 0);
  CHECK(static_cast<uint64_t>(h.max) <= s.pause_max_ns);
}
