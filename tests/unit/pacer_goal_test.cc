// Unit tests for pacer/goal: Go's GOGC heap goal, by table and by a simulated steady-state run.
#include <catch2/catch.hpp>

#include "pacer/goal.h"

using namespace pacegc::pacer;

namespace {
constexpr uint64_t MiB = uint64_t{1} << 20;
}

TEST_CASE("the GC guide's worked example: 8 MiB live, 1 MiB stacks, 1 MiB globals, GOGC=100 -> 18 MiB",
          "[pacer][goal]") {
  LastCycle last{8 * MiB, 1 * MiB, 1 * MiB};
  CHECK(GcPercentGoal(last, 100) == 18 * MiB);
  CHECK(GcPercentGoal(last, 50) == 13 * MiB);   // 5 MiB of new allocation allowed
  CHECK(GcPercentGoal(last, 200) == 28 * MiB);  // 20 MiB
}

TEST_CASE("heap minimum is 4 MiB x GOGC/100 and applies to the GOGC goal", "[pacer][goal]") {
  CHECK(HeapMinimum(100) == 4 * MiB);
  CHECK(HeapMinimum(50) == 2 * MiB);
  CHECK(HeapMinimum(200) == 8 * MiB);
  CHECK(HeapMinimum(0) == 0);
  CHECK(HeapMinimum(-1) == kNoGoal);
  LastCycle empty{};
  CHECK(GcPercentGoal(empty, 100) == 4 * MiB);
  CHECK(GcPercentGoal(LastCycle{1 * MiB, 0, 0}, 100) == 4 * MiB);  // 2 MiB by the formula, raised to the minimum
}

TEST_CASE("GOGC=0 collects at the live heap; GOGC off has no goal", "[pacer][goal]") {
  LastCycle last{64 * MiB, 1 * MiB, 1 * MiB};
  CHECK(GcPercentGoal(last, 0) == 64 * MiB);
  CHECK(GcPercentGoal(last, -1) == kNoGoal);
  CHECK(GcPercentGoal(last, -100) == kNoGoal);
}

TEST_CASE("huge GOGC times a huge heap saturates instead of overflowing", "[pacer][goal]") {
  LastCycle last{uint64_t{1} << 50, uint64_t{1} << 40, uint64_t{1} << 40};
  CHECK(GcPercentGoal(last, 2147483647) == UINT64_MAX);
  LastCycle max{UINT64_MAX, UINT64_MAX, UINT64_MAX};
  CHECK(GcPercentGoal(max, 100) == UINT64_MAX);
  CHECK(GcPercentGoal(max, 0) == UINT64_MAX);  // goal = live, which is already the maximum
}

TEST_CASE("simulated steady heap: goal converges to live x (1 + GOGC/100) plus roots", "[pacer][goal][sim]") {
  // A mutator with a constant 100 MiB live heap, 2 MiB of stacks and 1 MiB of globals collects whenever the
  // heap reaches the goal. Every cycle marks the same live heap, so every goal is the same.
  struct Row {
    int gogc;
    uint64_t want;
  };
  for (Row r : {Row{100, 203 * MiB}, Row{50, 151 * MiB + MiB / 2}, Row{200, 306 * MiB}}) {
    LastCycle last{};
    uint64_t goal = GcPercentGoal(last, r.gogc);
    for (int cycle = 0; cycle < 10; ++cycle) {
      uint64_t live = 100 * MiB;  // what marking finds once the heap reached `goal`
      REQUIRE(goal >= HeapMinimum(r.gogc));
      last = LastCycle{live, 2 * MiB, 1 * MiB};
      goal = GcPercentGoal(last, r.gogc);
      REQUIRE(goal == r.want);
    }
  }
}

TEST_CASE("simulated ramping heap: the goal tracks live heap growth cycle by cycle", "[pacer][goal][sim]") {
  LastCycle last{};
  uint64_t live = 0;
  for (int cycle = 0; cycle < 20; ++cycle) {
    live += 16 * MiB;
    last = LastCycle{live, 1 * MiB, 0};
    uint64_t goal = GcPercentGoal(last, 100);
    REQUIRE(goal == 2 * live + 1 * MiB);
    REQUIRE(goal > live);
  }
}
