// tests/pacing/periodic_test.cc — the background thread's periodic collection (Go's forcegcperiod): with GOGC on,
// a collection runs when the period passes without one, even if the program allocates nothing; with GOGC off it
// does not. The period is shortened through gc/testing.h (2 minutes would be too long for a test); the checks wait
// generously (seconds for a 50 ms period) and assert what happened, not how fast.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "common/test_util.h"
#include "gc/testing.h"

using namespace pgc_test;
namespace testing = pacegc::internal::testing;

TEST_CASE("periodic collections run while the program is idle, and only with GOGC on", "[pacing][periodic]") {
  const int gc_percent = pgc_set_gc_percent(100);
  pgc_collect();  // the background thread starts after the first cycle
  testing::SetPeriodicGcNs(50'000'000);
  const pgc_stats before = Stats();
  pgc_stats now = before;
  for (int i = 0; i < 500 && now.num_periodic_gc < before.num_periodic_gc + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    now = Stats();
  }
  CHECK(now.num_periodic_gc >= before.num_periodic_gc + 2);
  CHECK(now.num_gc >= before.num_gc + 2);             // they are real cycles...
  CHECK(now.num_forced_gc == before.num_forced_gc);   // ...and automatic ones

  pgc_set_gc_percent(-1);  // GOGC off: no periodic collection (as in Go)
  const uint64_t off = Stats().num_periodic_gc;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(Stats().num_periodic_gc == off);

  testing::SetPeriodicGcNs(0);
  pgc_set_gc_percent(gc_percent);
}
