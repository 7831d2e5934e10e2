// Unit tests for pacer/limit: Go's memory-limit goal and how it combines with the GOGC goal.
#include <catch2/catch.hpp>

#include "pacer/goal.h"
#include "pacer/limit.h"

using namespace pacegc::pacer;

namespace {
constexpr uint64_t MiB = uint64_t{1} << 20;
}

TEST_CASE("no limit gives no limit goal", "[pacer][limit]") {
  MemoryState m{.total_bytes = 100 * MiB, .heap_free_bytes = 0, .heap_alloc_bytes = 50 * MiB};
  const uint64_t m_marked = 40 * MiB;
  CHECK(MemoryLimitGoal(m, m_marked, kNoLimit) == UINT64_MAX);
  CHECK(MemoryLimitGoal(m, m_marked, -1) == UINT64_MAX);
}

TEST_CASE("limit goal = limit - non-heap - overage - 3% headroom", "[pacer][limit]") {
  // 460 MiB limit; 300 MiB mapped of which 200 MiB objects and 80 MiB free pages: 20 MiB non-heap.
  MemoryState m{.total_bytes = 300 * MiB, .heap_free_bytes = 80 * MiB, .heap_alloc_bytes = 200 * MiB};
  const uint64_t m_marked = 150 * MiB;
  uint64_t goal = 460 * MiB - 20 * MiB;  // 440 MiB
  goal -= goal / 100 * 3;
  CHECK(MemoryLimitGoal(m, m_marked, int64_t{460} * MiB) == goal);
}

TEST_CASE("over the limit, the overage pulls the goal down", "[pacer][limit]") {
  // 500 MiB mapped against a 460 MiB limit: 40 MiB over; 10 MiB non-heap.
  MemoryState m{.total_bytes = 500 * MiB, .heap_free_bytes = 90 * MiB, .heap_alloc_bytes = 400 * MiB};
  const uint64_t m_marked = 100 * MiB;
  uint64_t goal = 460 * MiB - (10 * MiB + 40 * MiB);
  goal -= goal / 100 * 3;
  CHECK(MemoryLimitGoal(m, m_marked, int64_t{460} * MiB) == goal);
}

TEST_CASE("the limit goal never falls below the live heap", "[pacer][limit]") {
  // Live heap above the limit: collect continuously at the live heap (the CPU limiter is what bounds the cost).
  MemoryState m{.total_bytes = 700 * MiB, .heap_free_bytes = 0, .heap_alloc_bytes = 650 * MiB};
  const uint64_t m_marked = 600 * MiB;
  CHECK(MemoryLimitGoal(m, m_marked, int64_t{460} * MiB) == 600 * MiB);
  // Non-heap alone over the limit.
  MemoryState n{.total_bytes = 600 * MiB, .heap_free_bytes = 0, .heap_alloc_bytes = 10 * MiB};
  const uint64_t n_marked = 5 * MiB;
  CHECK(MemoryLimitGoal(n, n_marked, int64_t{460} * MiB) == 5 * MiB);
}

TEST_CASE("headroom is at least 1 MiB, and a tiny goal becomes the headroom", "[pacer][limit]") {
  MemoryState m{.total_bytes = 0, .heap_free_bytes = 0, .heap_alloc_bytes = 0};
  const uint64_t m_marked = 0;
  CHECK(MemoryLimitGoal(m, m_marked, int64_t{10} * MiB) == 9 * MiB);  // 3% of 10 MiB < 1 MiB
  CHECK(MemoryLimitGoal(m, m_marked, int64_t{3} * MiB / 2) == 1 * MiB);  // 1.5 - 1 < 1: goal = headroom
  CHECK(MemoryLimitGoal(m, m_marked, 0) == 0);                            // GOMEMLIMIT=0: collect continuously
}

TEST_CASE("the lower goal wins and names its regime", "[pacer][limit]") {
  Goal a = CombineGoals(200 * MiB, 400 * MiB);
  CHECK(a.bytes == 200 * MiB);
  CHECK(a.regime == Regime::kGcPercent);
  Goal b = CombineGoals(kNoGoal, 400 * MiB);  // GOGC=off + limit
  CHECK(b.bytes == 400 * MiB);
  CHECK(b.regime == Regime::kMemoryLimit);
  Goal c = CombineGoals(kNoGoal, UINT64_MAX);  // GOGC=off, no limit: never
  CHECK(c.bytes == UINT64_MAX);
}

TEST_CASE("simulated step workload: the goal follows the live heap until the limit takes over", "[pacer][sim]") {
  // Live heap steps 64 -> 256 MiB with GOGC=100 and a 460 MiB limit; non-heap 8 MiB; free pages re-used.
  const int64_t limit = int64_t{460} * MiB;
  for (uint64_t live : {64 * MiB, 128 * MiB, 192 * MiB, 256 * MiB}) {
    LastCycle last{live, 1 * MiB, 1 * MiB};
    uint64_t gogc = GcPercentGoal(last, 100);
    MemoryState m{.total_bytes = live + 8 * MiB, .heap_free_bytes = 0, .heap_alloc_bytes = live};
  const uint64_t m_marked = live;
    Goal g = CombineGoals(gogc, MemoryLimitGoal(m, m_marked, limit));
    INFO("live " << live / MiB << " MiB");
    if (gogc < 430 * MiB) {
      CHECK(g.regime == Regime::kGcPercent);
    } else {
      CHECK(g.regime == Regime::kMemoryLimit);
    }
    CHECK(g.bytes + 8 * MiB <= static_cast<uint64_t>(limit));  // heap goal + non-heap stays under the limit
    CHECK(g.bytes >= live);
  }
}
