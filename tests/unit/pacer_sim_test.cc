// Simulation tests for the pacer: the shipped pacer::Pacer (goal, limit, limiter, scavenger, as gc/pacing.cc holds
// it) driven cycle by cycle by a simulated program and stop-the-world collector (tests/unit/pacer_sim.h). Every scenario asserts goals and
// triggers per cycle (exact where the formula gives them), and CPU and memory bounds over phases.
#include <catch2/catch.hpp>

#include <pacegc/pacegc.h>

#include <algorithm>

#include "gc/collector.h"
#include "gc/pacing.h"
#include "tests/unit/pacer_sim.h"

using namespace pacegc::pacer;
using namespace pacegc::pacer::sim;
namespace pacing = pacegc::internal::pacing;

namespace {

// GC share of CPU between two points of a run.
struct Cpu {
  uint64_t gc_ns, mutator_ns;
};
Cpu Snap(const Simulator &s) { return Cpu{s.gc_cpu_ns(), s.mutator_cpu_ns()}; }
double GcFraction(Cpu from, Cpu to) {
  double gc = static_cast<double>(to.gc_ns - from.gc_ns);
  double mutator = static_cast<double>(to.mutator_ns - from.mutator_ns);
  return gc / (gc + mutator);
}

// The GOGC goal for cycle n restated from Go's formula (independently of pacer/goal.cc); before the first cycle
// nothing has been scanned, so the roots count from cycle 2 on.
uint64_t WantGcPercentGoal(uint64_t n, uint64_t marked, const Scenario &s) {
  const uint64_t p = static_cast<uint64_t>(s.gc_percent);
  const uint64_t roots = n == 1 ? 0 : s.stack_bytes + s.globals_bytes;
  return std::max(marked + (marked + roots) * p / 100, 4 * MiB * p / 100);
}

uint64_t AllocPerStep(const Scenario &s) { return s.alloc_bytes_per_ms * s.step_ns / kMs; }

// Checks every simulated cycle collected on time: never before the goal, and at the first trigger check that found
// the heap at its goal (unless the CPU limiter held it back). Under GOGC alone the goal is fixed for the whole cycle,
// so the heap overshoots it by less than one step's allocation.
void CheckTriggers(const Simulator &sim, const Scenario &s) {
  for (const Cycle &c : sim.cycles()) {
    INFO("cycle " << c.n << ": goal " << c.goal_bytes << ", heap " << c.heap_at_trigger_bytes);
    REQUIRE(c.heap_at_trigger_bytes >= c.goal_bytes);
    if (!c.waited && c.has_prev_check) REQUIRE(c.prev_check_heap_bytes < c.prev_check_goal_bytes);
    if (!c.waited && c.has_prev_check && c.regime == Regime::kGcPercent && s.limit_bytes == kNoLimit) {
      REQUIRE(c.prev_check_goal_bytes == c.goal_bytes);
      REQUIRE(c.heap_at_trigger_bytes < c.goal_bytes + AllocPerStep(s));
    }
    REQUIRE(c.marked_bytes == std::min(sim.LiveTarget(c.n), c.heap_at_trigger_bytes));
  }
}

}  // namespace

TEST_CASE("simulated GOGC scenarios: the goal is live + (live + roots) x GOGC/100, cycle by cycle",
          "[pacer][sim]") {
  struct Row {
    Scenario s;
    uint64_t steady_goal_bytes;  // once marking finds the whole (constant) live heap
    size_t cycles;
  };
  const Row rows[] = {
      // The GC guide's worked example: 8 MiB live, 1 MiB stacks, 1 MiB globals.
      {{.name = "guide GOGC=100", .live_bytes = 8 * MiB, .stack_bytes = 1 * MiB, .globals_bytes = 1 * MiB},
       18 * MiB, 30},
      {{.name = "guide GOGC=50", .gc_percent = 50, .live_bytes = 8 * MiB, .stack_bytes = 1 * MiB,
        .globals_bytes = 1 * MiB},
       13 * MiB, 30},
      {{.name = "guide GOGC=200", .gc_percent = 200, .live_bytes = 8 * MiB, .stack_bytes = 1 * MiB,
        .globals_bytes = 1 * MiB},
       28 * MiB, 30},
      {{.name = "steady", .live_bytes = 100 * MiB, .stack_bytes = 2 * MiB, .globals_bytes = 1 * MiB}, 203 * MiB, 30},
      // Roots count: a live-heap-only goal would be 20 MiB here.
      {{.name = "big stacks", .live_bytes = 10 * MiB, .stack_bytes = 50 * MiB, .globals_bytes = 1 * MiB},
       71 * MiB, 30},
      {{.name = "big globals", .live_bytes = 10 * MiB, .globals_bytes = 100 * MiB}, 120 * MiB, 30},
      // 16 MiB more live heap every cycle up to 512 MiB: the goal follows, 2 × live + 1 MiB.
      {{.name = "ramping", .live_bytes = 16 * MiB, .live_growth_per_cycle_bytes = 16 * MiB,
        .live_max_bytes = 512 * MiB, .stack_bytes = 1 * MiB},
       1025 * MiB, 48},
  };
  for (const Row &row : rows) {
    const Scenario &s = row.s;
    INFO("scenario " << s.name);
    Simulator sim(s);
    sim.RunCycles(row.cycles, 600 * kS);
    REQUIRE(sim.cycles().size() == row.cycles);
    CheckTriggers(sim, s);
    const uint64_t plateau = s.live_growth_per_cycle_bytes != 0 ? s.live_max_bytes : s.live_bytes;
    uint64_t prev_marked = 0;
    size_t steady = 0;
    for (const Cycle &c : sim.cycles()) {
      INFO("cycle " << c.n);
      REQUIRE(c.regime == Regime::kGcPercent);
      REQUIRE(c.goal_bytes == WantGcPercentGoal(c.n, prev_marked, s));
      REQUIRE_FALSE(c.waited);
      if (c.n > 1 && prev_marked == plateau) {
        ++steady;
        REQUIRE(c.goal_bytes == row.steady_goal_bytes);
      }
      prev_marked = c.marked_bytes;
    }
    CHECK(steady >= row.cycles / 4);  // the steady-state checks did run
    // Far from 50% GC: the limiter never turns on, and the heap never shrinks, so nothing is scavenged (the GOGC
    // retain goal is the last peak + 10%, not the live heap).
    CHECK(sim.limiter().last_enabled_cycle() == 0);
    CHECK(sim.waits() == 0);
    CHECK(sim.background_released_bytes() == 0);
    CHECK(sim.sync_released_bytes() == 0);
    CHECK(GcFraction(Cpu{0, 0}, Snap(sim)) < 0.35);
  }
}

TEST_CASE("simulated ramp under a limit: GOGC regime, then the limit regime, memory under the limit",
          "[pacer][sim]") {
  // Live heap ramps 16 -> 360 MiB under a 512 MiB limit with 8 MiB of metadata. 10% of allocation needs fresh
  // pages, so allocation-time scavenging has work to do near the limit. GC stays under 50% of the CPU throughout.
  // Releasing costs 1 ms per MiB here (a slow madvise), so the background scavenger (1% of the 4 cpus) cannot keep
  // retained memory down alone and the synchronous path runs too.
  const int64_t limit = int64_t{512} * MiB;
  Scenario s{.name = "ramp under limit", .limit_bytes = limit, .live_bytes = 16 * MiB,
             .live_growth_per_cycle_bytes = 8 * MiB, .live_max_bytes = 360 * MiB, .stack_bytes = 1 * MiB,
             .globals_bytes = 1 * MiB, .metadata_bytes = 8 * MiB, .fresh_percent = 10,
             .scavenge_ns_per_mib = 1'000'000};
  Simulator sim(s);
  sim.RunCycles(90, 600 * kS);
  REQUIRE(sim.cycles().size() == 90);
  CheckTriggers(sim, s);
  // The limit goal with nothing over the limit: limit − metadata − 3%; the heap never reaches it before the switch.
  const uint64_t limit_goal_ceiling = 504 * MiB - 504 * MiB / 100 * 3;
  uint64_t prev_marked = 0;
  size_t gogc = 0, limited = 0;
  for (const Cycle &c : sim.cycles()) {
    INFO("cycle " << c.n << " goal " << c.goal_bytes);
    const uint64_t want_gogc = WantGcPercentGoal(c.n, prev_marked, s);
    if (want_gogc < limit_goal_ceiling - 16 * MiB) {
      ++gogc;
      REQUIRE(c.regime == Regime::kGcPercent);
      REQUIRE(c.goal_bytes == want_gogc);
    } else if (want_gogc > limit_goal_ceiling) {
      ++limited;
      REQUIRE(c.regime == Regime::kMemoryLimit);
      REQUIRE(c.goal_bytes <= limit_goal_ceiling);
      REQUIRE(c.goal_bytes >= prev_marked);
      REQUIRE(c.total_at_trigger_bytes <= static_cast<uint64_t>(limit));
    }
    prev_marked = c.marked_bytes;
  }
  CHECK(gogc >= 20);
  CHECK(limited >= 20);
  CHECK(sim.max_total_bytes() <= static_cast<uint64_t>(limit));
  CHECK(sim.sync_released_bytes() > 0);  // fresh pages near the limit released free ones
  CHECK(sim.limiter().last_enabled_cycle() == 0);
}

TEST_CASE("simulated GOGC=0: collect at the live heap, continuously, and the limiter caps it near 50%",
          "[pacer][sim]") {
  Scenario s{.name = "GOGC=0", .gc_percent = 0, .live_bytes = 64 * MiB, .stack_bytes = 1 * MiB,
             .globals_bytes = 1 * MiB};
  Simulator sim(s);
  sim.RunUntil(20 * kS);
  const Cpu mid = Snap(sim);
  const size_t mid_cycles = sim.cycles().size();
  sim.RunUntil(60 * kS);
  CheckTriggers(sim, s);
  uint64_t prev_marked = 0;
  for (const Cycle &c : sim.cycles()) {
    INFO("cycle " << c.n);
    REQUIRE(c.goal_bytes == prev_marked);  // GOGC=0: no heap minimum, the goal is the live heap
    REQUIRE(c.regime == Regime::kGcPercent);
    prev_marked = c.marked_bytes;
  }
  REQUIRE(sim.cycles().back().marked_bytes == 64 * MiB);
  CHECK(sim.limiter().last_enabled_cycle() > 0);
  CHECK(sim.waits() > 0);
  CHECK(GcFraction(Cpu{0, 0}, Snap(sim)) <= 0.55);
  const double phase = GcFraction(mid, Snap(sim));
  CHECK(phase <= 0.55);
  CHECK(phase >= 0.45);  // capped, not starved: GC keeps running at its half
  CHECK(sim.cycles().size() - mid_cycles > 500);
}

TEST_CASE("simulated GOGC=off + limit: only the limit goal triggers, and memory stays under the limit",
          "[pacer][sim]") {
  const int64_t limit = int64_t{256} * MiB;
  Scenario s{.name = "GOGC=off + limit", .gc_percent = -1, .limit_bytes = limit, .live_bytes = 100 * MiB,
             .stack_bytes = 1 * MiB, .globals_bytes = 1 * MiB, .metadata_bytes = 8 * MiB};
  Simulator sim(s);
  sim.RunCycles(40, 600 * kS);
  REQUIRE(sim.cycles().size() == 40);
  CheckTriggers(sim, s);
  // Non-heap is the 8 MiB of metadata and nothing is over the limit, so every goal is exactly
  // limit − 8 MiB − 3% headroom.
  const uint64_t want = 248 * MiB - 248 * MiB / 100 * 3;
  for (const Cycle &c : sim.cycles()) {
    INFO("cycle " << c.n);
    REQUIRE(c.regime == Regime::kMemoryLimit);
    REQUIRE(c.goal_bytes == want);
    REQUIRE(c.total_at_trigger_bytes <= static_cast<uint64_t>(limit));
  }
  CHECK(sim.max_total_bytes() <= static_cast<uint64_t>(limit));
  // The heap peaks at ~97% of the limit, above the scavenger's 95% goal: the background scavenger releases.
  CHECK(sim.limit_retain_goal() == static_cast<uint64_t>(limit) * 95 / 100);
  CHECK(sim.gc_percent_retain_goal() > sim.limit_retain_goal());
  CHECK(sim.background_released_bytes() > 0);
  CHECK(sim.limiter().last_enabled_cycle() == 0);
}

TEST_CASE("simulated limit below the live heap: the limiter caps GC near 50% and the heap passes the limit",
          "[pacer][sim]") {
  // 320 MiB live against a 256 MiB limit: the limit goal sits at the live heap, so without the limiter the
  // collector would run back to back. Each pause is ~80 ms (322 MiB at 1 GiB/s on 4 cpus).
  const int64_t limit = int64_t{256} * MiB;
  Scenario s{.name = "limit below live", .limit_bytes = limit, .live_bytes = 320 * MiB, .stack_bytes = 1 * MiB,
             .globals_bytes = 1 * MiB, .metadata_bytes = 8 * MiB};
  Simulator sim(s);
  sim.RunUntil(20 * kS);
  const Cpu mid = Snap(sim);
  sim.RunUntil(60 * kS);
  CheckTriggers(sim, s);
  size_t at_live = 0;
  for (const Cycle &c : sim.cycles()) {
    if (c.n == 1 || sim.cycles()[c.n - 2].marked_bytes != 320 * MiB) continue;
    INFO("cycle " << c.n);
    ++at_live;
    REQUIRE(c.regime == Regime::kMemoryLimit);
    REQUIRE(c.goal_bytes == 320 * MiB);  // max(limit goal, heap_marked): collect at the live heap
  }
  CHECK(at_live > 100);
  CHECK(sim.limiter().last_enabled_cycle() > 0);
  CHECK(sim.limiter().enabled_total_ns(sim.now_ns()) > 10 * kS);
  CHECK(sim.waits() > 0);
  CHECK(GcFraction(Cpu{0, 0}, Snap(sim)) <= 0.55);
  const double phase = GcFraction(mid, Snap(sim));
  CHECK(phase <= 0.55);
  CHECK(phase >= 0.45);
  CHECK(sim.max_total_bytes() > static_cast<uint64_t>(limit));  // soft limit: allocation is never refused
  // Over the limit, every new span first releases the free pages (the garbage the last sweep freed), as gc/alloc.cc
  // asks before carving one and as Go's allocation-time scavenging does when mappedReady is over the limit — but
  // never while the limiter is on: then the collector is over budget and the heap may pass the limit.
  CHECK(sim.sync_released_bytes() > 0);
  CHECK(sim.sync_released_while_limiting_bytes() == 0);
  CHECK(sim.sync_checks_while_limiting() > 0);  // ...and there were span allocations while it was on
}

TEST_CASE("simulated limit below the live heap, fast allocation: postponed collections stop at the GOGC goal",
          "[pacer][sim]") {
  // 320 MiB live against a 256 MiB limit, allocating 16 MiB per ms: while the limiter holds a collection back the
  // heap grows by 16 MiB per ms, and would pass the GOGC goal (320 + (320 + 2) = 642 MiB) within a postponement.
  const int64_t limit = int64_t{256} * MiB;
  Scenario s{.name = "limit below live, fast", .limit_bytes = limit, .live_bytes = 320 * MiB, .stack_bytes = 1 * MiB,
             .globals_bytes = 1 * MiB, .metadata_bytes = 8 * MiB, .alloc_bytes_per_ms = 16 * MiB};
  Simulator sim(s);
  sim.RunUntil(30 * kS);
  const uint64_t gogc_goal = GcPercentGoal(LastCycle{320 * MiB, 1 * MiB, 1 * MiB}, 100);
  const uint64_t step_bytes = s.alloc_bytes_per_ms * s.step_ns / kMs;
  size_t at_gogc_goal = 0;
  for (const Cycle &c : sim.cycles()) {
    if (c.n == 1 || sim.cycles()[c.n - 2].marked_bytes != 320 * MiB) continue;
    INFO("cycle " << c.n);
    REQUIRE(c.heap_at_trigger_bytes <= gogc_goal + step_bytes);
    if (c.heap_at_trigger_bytes >= gogc_goal) ++at_gogc_goal;
  }
  CHECK(sim.limiter().last_enabled_cycle() > 0);
  CHECK(sim.waits() > 0);
  CHECK(at_gogc_goal > 0);  // the rule was exercised: collections the limiter held back started at the GOGC goal
}

TEST_CASE("simulated limit below the live heap with Go's on/off rule alone: long pauses defeat the 50% cap",
          "[pacer][sim]") {
  // The same program gated only on !enabled(): each 80 ms pause overflows the bucket, the first 10 ms window of
  // mutator time turns the limiter off, and the collector takes ~80 / (80 + 10) of the CPU. This is why
  // CpuLimiter::AdmitCollection exists.
  Scenario s{.name = "limit below live, Go rule", .limit_bytes = int64_t{256} * MiB, .live_bytes = 320 * MiB,
             .stack_bytes = 1 * MiB, .globals_bytes = 1 * MiB, .metadata_bytes = 8 * MiB,
             .go_limiter_rule = true};
  Simulator sim(s);
  sim.RunUntil(20 * kS);
  const Cpu mid = Snap(sim);
  sim.RunUntil(60 * kS);
  CHECK(sim.limiter().last_enabled_cycle() > 0);
  CHECK(sim.limiter().overflow_ns() > 10 * kS);
  CHECK(GcFraction(mid, Snap(sim)) > 0.75);
}

TEST_CASE("simulated limit lowered mid-cycle: the goal drops at the next trigger check, not the next cycle",
          "[pacer][sim]") {
  Scenario s{.name = "limit lowered", .limit_bytes = int64_t{1} << 30, .live_bytes = 100 * MiB,
             .stack_bytes = 2 * MiB, .globals_bytes = 1 * MiB, .metadata_bytes = 8 * MiB, .fresh_percent = 5};
  Simulator sim(s);
  sim.RunUntil(5 * kS);
  // Mid-cycle: past the live heap, short of the GOGC goal.
  while (sim.heap_alloc_bytes() < 150 * MiB) sim.Step();
  REQUIRE(sim.CurrentGoal().regime == Regime::kGcPercent);
  REQUIRE(sim.CurrentGoal().bytes == 203 * MiB);
  REQUIRE(sim.total_bytes() > 160 * MiB);
  const size_t before = sim.cycles().size();
  const uint64_t changed_at = sim.now_ns();
  const uint64_t free_before = sim.heap_free_bytes();
  const uint64_t sync_before = sim.sync_released_bytes();
  const int64_t limit = int64_t{160} * MiB;
  sim.SetMemoryLimit(limit);
  REQUIRE(sim.cycles().size() == before);  // setting the limit does not collect by itself
  CHECK(sim.limit_retain_goal() == 152 * MiB);  // the scavenger is re-paced at once
  sim.Step();
  REQUIRE(sim.cycles().size() == before + 1);
  const Cycle &c = sim.cycles().back();
  CHECK(c.start_ns == changed_at + s.step_ns);
  CHECK(c.regime == Regime::kMemoryLimit);
  CHECK(c.heap_at_trigger_bytes < 203 * MiB);
  // That step's new spans were asked for over the limit (the limiter is off), so it released every free page first,
  // the ones it could have reused too: the collector asks before carving a span, for the whole span (gc/alloc.cc,
  // Pacer::OnSpanAlloc). What remains over the limit is heap objects. Non-heap is then the metadata alone, and the
  // goal is limit − 8 MiB − (total − limit), less 3%: collect now.
  CHECK(sim.sync_released_bytes() - sync_before == free_before);
  CHECK(c.total_at_trigger_bytes == c.heap_at_trigger_bytes + 8 * MiB);
  REQUIRE(c.total_at_trigger_bytes > 160 * MiB);
  uint64_t want = 312 * MiB - c.total_at_trigger_bytes;
  want -= want / 100 * 3;
  CHECK(c.goal_bytes == std::max(want, 100 * MiB));
  // The collector and the scavengers then bring memory under the new limit and keep it there.
  sim.RunUntil(changed_at + 10 * kS);
  sim.reset_max_total_bytes();
  const size_t settled = sim.cycles().size();
  sim.RunUntil(changed_at + 20 * kS);
  CHECK(sim.max_total_bytes() <= static_cast<uint64_t>(limit));
  CHECK(sim.background_released_bytes() > 0);
  REQUIRE(sim.cycles().size() > settled + 10);
  for (size_t i = settled; i < sim.cycles().size(); ++i) {
    const Cycle &d = sim.cycles()[i];
    INFO("cycle " << d.n);
    REQUIRE(d.regime == Regime::kMemoryLimit);
    REQUIRE(d.goal_bytes >= 100 * MiB);
    REQUIRE(d.goal_bytes <= 152 * MiB - 152 * MiB / 100 * 3);  // limit − metadata − 3%, at most
  }
  CheckTriggers(sim, s);
}

TEST_CASE("simulated spike: the scavenger keeps the last kRetainCycles peaks, then returns the spike's pages",
          "[pacer][sim]") {
  // 32 MiB live, 256 MiB live for cycles 10-12, then 32 MiB again. The GOGC retain goal is Go's (the in-use bytes at
  // this mark scaled by how the goal moved, + 10%) but never below the highest in-use-at-mark of the last
  // kRetainCycles cycles + 10% (pacer/pacer.h): so the pages of the spike stay resident until the last cycle that
  // needed them is kRetainCycles cycles old, and then the background scavenger returns them.
  Scenario s{.name = "spike", .live_bytes = 32 * MiB, .spike_live_bytes = 256 * MiB, .spike_first_cycle = 10,
             .spike_last_cycle = 12, .stack_bytes = 1 * MiB, .globals_bytes = 1 * MiB};
  Simulator sim(s);
  sim.RunCycles(40, 600 * kS);
  REQUIRE(sim.cycles().size() == 40);
  CheckTriggers(sim, s);
  const std::vector<Cycle> &c = sim.cycles();  // c[i] is cycle i + 1
  // The floor, restated: the highest heap at the trigger (= in use at the mark here: no fragmentation) of the last
  // kRetainCycles cycles, + 10%, rounded up to a page.
  auto floor = [&](size_t n) {
    uint64_t peak = 0;
    for (size_t k = n + 1 > static_cast<size_t>(kRetainCycles) ? n + 1 - kRetainCycles : 2; k <= n; ++k) {
      peak = std::max(peak, c[k - 1].heap_at_trigger_bytes);
    }
    return GcPercentRetainGoal(peak, 1, 1);
  };
  for (size_t n = 2; n <= c.size(); ++n) {
    INFO("cycle " << n);
    REQUIRE(c[n - 1].retain_goal_after_bytes >= floor(n));
  }
  // Cycle 13 (the first at 32 MiB) still found the spike's heap at its trigger; until that is kRetainCycles cycles
  // old, the goal stays above the spike's pages and the background scavenger releases nothing.
  const uint64_t spike_peak = c[12].heap_at_trigger_bytes;
  REQUIRE(spike_peak > 400 * MiB);
  const size_t last_held = 13 + kRetainCycles - 1;  // cycle 16
  for (size_t n = 13; n <= last_held; ++n) {
    INFO("cycle " << n);
    CHECK(c[n - 1].retain_goal_after_bytes >= spike_peak);
    CHECK(c[n - 1].retained_after_bytes <= c[n - 1].retain_goal_after_bytes);
  }
  CHECK(c[last_held].background_released_before_bytes == c[12].background_released_before_bytes);
  // Then the goal is Go's again, far below the spike, and the spike's pages go back to the OS at the background
  // scavenger's 1% of the CPU (4 MiB per 25 ms here: 1 ms of work per batch on 4 cpus), within a few seconds.
  CHECK(c[last_held].retain_goal_after_bytes < spike_peak / 4);
  const uint64_t released_at_hold_end = c[last_held].background_released_before_bytes;
  sim.RunUntil(c[last_held].start_ns + 5 * kS);
  CHECK(sim.background_released_bytes() - released_at_hold_end > 300 * MiB);
  CHECK(sim.heap_retained_bytes() <= sim.cycles().back().retain_goal_after_bytes + kScavengeQuantumBytes);
  CHECK(sim.limiter().last_enabled_cycle() == 0);
}

TEST_CASE("simulated GOGC tuner: the goal follows pgc_set_gc_percent after every cycle", "[pacer][sim]") {
  // Uber's tuner at 70% of a 512 MiB cap with 100 MiB live: GOGC = (358.4 − 100) / 100 × 100 = 258, so every goal
  // after the first cycles is live + (live + roots) × 2.58 ≈ 70% of the cap; the live heap then ramps to 300 MiB and
  // the tuner lowers GOGC, down to its floor of 10.
  Scenario s{.name = "tuner", .live_bytes = 100 * MiB, .live_growth_per_cycle_bytes = 4 * MiB,
             .live_max_bytes = 340 * MiB, .stack_bytes = 1 * MiB, .globals_bytes = 1 * MiB, .tuner_percent = 70,
             .tuner_cap_bytes = 512 * MiB};
  Simulator sim(s);
  sim.RunCycles(80, 600 * kS);
  REQUIRE(sim.cycles().size() == 80);
  CheckTriggers(sim, s);
  size_t floor_cycles = 0;
  for (size_t i = 1; i < sim.cycles().size(); ++i) {
    const Cycle &prev = sim.cycles()[i - 1], &c = sim.cycles()[i];
    INFO("cycle " << c.n << ", live " << prev.marked_bytes);
    const double target = 0.7 * static_cast<double>(512 * MiB);
    const int gogc = static_cast<int>(std::clamp((target - static_cast<double>(prev.marked_bytes)) /
                                                     static_cast<double>(prev.marked_bytes) * 100.0, 10.0, 500.0));
    const uint64_t want = GcPercentGoal(LastCycle{prev.marked_bytes, s.stack_bytes, s.globals_bytes}, gogc);
    REQUIRE(c.goal_bytes == want);
    // At 70% of the cap, plus the roots × GOGC the tuner's formula leaves out (GOGC rounds down: never above).
    const uint64_t roots_share = (s.stack_bytes + s.globals_bytes) * static_cast<uint64_t>(gogc) / 100;
    if (gogc > 10) REQUIRE(c.goal_bytes <= static_cast<uint64_t>(target) + roots_share + 1);
    if (gogc == 10) ++floor_cycles;
  }
  CHECK(floor_cycles > 5);  // the clamp was reached: 340 MiB live is past 70% of the cap / 1.1
}

TEST_CASE("the simulator drives the Pacer the library ships, made the same way", "[pacer][sim]") {
  pgc_collect();  // the library is started (its Pacer made at start-up) and has run a cycle
  pacegc::internal::LockHeap();
  const Settings shipped = pacing::PacerSettings();
  const Settings startup = pacing::StartupSettings();
  pacegc::internal::UnlockHeap();
  INFO("GOGC " << shipped.gc_percent << ", limit " << shipped.memory_limit_bytes << " ("
               << LimitSourceName(shipped.limit_source) << "), cpus " << shipped.cpus);
  // The shipped instance is exactly what MakePacer makes of the settings gc/pacing.cc read at start-up: nothing
  // adjusts it afterwards behind the factory's back (no test in this process changes a setting).
  CHECK(MakePacer(startup, 0, 0).settings() == shipped);
  CHECK(shipped.admission == Admission::kExpectedCost);
  CHECK(shipped.cpu_limiter);  // ctest's environment leaves PACEGC_CPU_LIMITER unset
  // The simulator, given those settings, paces its program with an identical Pacer.
  const Simulator sim(Scenario{}, startup);
  CHECK(sim.pacer().settings() == shipped);
  // And a scenario's own settings go through the same factory unchanged (GOGC and GOMEMLIMIT from the environment,
  // the machine's cpus): the simulated pacer is the shipped policy, not an assembly of its parts.
  const Scenario s{.name = "settings", .cpus = 2, .gc_percent = 50, .limit_bytes = int64_t{300} * MiB};
  const Simulator sim2(s);
  const Settings made = sim2.pacer().settings();
  CHECK(made == SettingsFor(s));
  CHECK(made.admission == Admission::kExpectedCost);
  CHECK(made.cpu_limiter);
  CHECK(made.limit_source == LimitSource::kEnv);
  CHECK(made.periodic_gc_ns == kPeriodicGcNs);
  CHECK(made.auto_ratio == shipped.auto_ratio);
  // Only the counterfactual Go-rule scenario differs, and only in its admission rule.
  Scenario go = s;
  go.go_limiter_rule = true;
  Settings go_made = Simulator(go).pacer().settings();
  CHECK(go_made.admission == Admission::kGoOnOff);
  go_made.admission = Admission::kExpectedCost;
  CHECK(go_made == made);
}
