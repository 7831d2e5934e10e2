// Unit tests for pacer/pacer: the Pacer object's entry points with injected time, CPU and memory (the composition
// is tested by simulation in pacer_sim_test.cc).
#include <catch2/catch.hpp>

#include "pacer/pacer.h"

using namespace pacegc::pacer;

namespace {

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kS = 1'000'000'000;

MemoryState Heap(uint64_t alloc_bytes, uint64_t free_bytes = 0, uint64_t metadata_bytes = 0) {
  MemoryState m;
  m.heap_alloc_bytes = alloc_bytes;
  m.heap_free_bytes = free_bytes;
  m.heap_retained_bytes = alloc_bytes + free_bytes;
  m.total_bytes = m.heap_retained_bytes + metadata_bytes;
  return m;
}

CycleReport Report(uint64_t n, uint64_t marked_bytes, uint64_t pause_ns, uint64_t in_use_bytes) {
  CycleReport r{};
  r.pause_ns = pause_ns;
  r.collector_cpu_ns = pause_ns;
  r.heap_marked_bytes = marked_bytes;
  r.heap_in_use_at_mark = in_use_bytes;
  r.num_gc = n;
  return r;
}

}  // namespace

TEST_CASE("MakePacer: the settings round-trip, and a limit derives from the cgroup unless one was set", "[pacer]") {
  Settings s;
  s.gc_percent = -7;  // any negative percent is off
  s.cpus = 2.5;
  s.cgroup_memory_bytes = 1000 * MiB;
  Pacer p = MakePacer(s, 5 * kS, 1 * kS);
  CHECK(p.gc_percent() == -1);
  CHECK(p.limit_source() == LimitSource::kCgroup);
  CHECK(p.memory_limit_bytes() == AutoMemoryLimit(1000 * MiB, kDefaultAutoMemoryLimitRatio));
  CHECK(p.gc_percent_goal_bytes() == kNoGoal);
  CHECK(p.limiter().capacity_ns() == LimiterCapacityNs(2.5, 0));
  CHECK(MakePacer(p.settings(), 5 * kS, 1 * kS).settings() == p.settings());
  // An environment limit wins over the cgroup, "off" included, and a resize no longer moves it.
  s.memory_limit_bytes = kNoLimit;
  s.limit_source = LimitSource::kEnv;
  Pacer q = MakePacer(s, 0, 0);
  CHECK(q.memory_limit_bytes() == kNoLimit);
  CHECK(q.limit_source() == LimitSource::kEnv);
  CHECK_FALSE(q.OnCgroupMemoryLimit(500 * MiB));
  CHECK(q.memory_limit_bytes() == kNoLimit);
  // A derived limit follows the cgroup, and goes when the cgroup limit goes.
  CHECK(p.OnCgroupMemoryLimit(500 * MiB));
  CHECK(p.memory_limit_bytes() == AutoMemoryLimit(500 * MiB, kDefaultAutoMemoryLimitRatio));
  CHECK_FALSE(p.OnCgroupMemoryLimit(500 * MiB));  // unchanged
  CHECK(p.OnCgroupMemoryLimit(0));
  CHECK(p.limit_source() == LimitSource::kNone);
  CHECK(p.memory_limit_bytes() == kNoLimit);
}

TEST_CASE("Pacer settings: Go's SetGCPercent and SetMemoryLimit semantics", "[pacer]") {
  Pacer p = MakePacer(Settings{}, 0, 0);
  CHECK(p.SetGcPercent(50) == 100);
  CHECK(p.gc_percent_goal_bytes() == HeapMinimum(50));
  CHECK(p.SetGcPercent(-3) == 50);
  CHECK(p.gc_percent() == -1);
  CHECK(p.SetGcPercent(100) == -1);
  CHECK(p.SetMemoryLimit(-1) == kNoLimit);  // a query
  CHECK(p.limit_source() == LimitSource::kNone);
  CHECK(p.SetMemoryLimit(int64_t{64} * MiB) == kNoLimit);
  CHECK(p.limit_source() == LimitSource::kApi);
  CHECK_FALSE(p.OnCgroupMemoryLimit(1000 * MiB));  // the API's limit always wins
  CHECK(p.memory_limit_bytes() == int64_t{64} * MiB);
}

TEST_CASE("OnTriggerCheck reads the process CPU clock only when a limiter window closes", "[pacer]") {
  Pacer p = MakePacer(Settings{}, 0, 0);
  int reads = 0;
  uint64_t cpu = 0;
  auto read = [&] {
    ++reads;
    return cpu;
  };
  // The first check opens the accounting (CpuLimiter::NeedsUpdate is true before the first window).
  CHECK(p.OnTriggerCheck(1 * kMs, read, Heap(1 * MiB), 1 * MiB) == TriggerDecision::kNotDue);
  CHECK(reads == 1);
  CHECK(p.OnTriggerCheck(5 * kMs, read, Heap(2 * MiB), 2 * MiB) == TriggerDecision::kNotDue);
  CHECK(reads == 1);  // less than kUpdatePeriodNs later: no window, no read
  cpu = 12 * kMs;
  CHECK(p.OnTriggerCheck(12 * kMs, read, Heap(3 * MiB), 3 * MiB) == TriggerDecision::kNotDue);
  CHECK(reads == 2);
  // At the goal (4 MiB minimum before the first cycle) it is due, and an empty bucket admits it.
  CHECK(p.OnTriggerCheck(13 * kMs, read, Heap(4 * MiB), 4 * MiB) == TriggerDecision::kStart);
  CHECK(reads == 2);
}

TEST_CASE("OnCycleEnd: the GOGC goal, the next cycle's expected cost, the retain goal's floor", "[pacer]") {
  Settings s;
  s.cpus = 2;
  Pacer p = MakePacer(s, 0, 0);
  CycleOutcome out = p.OnCycleEnd(100 * kMs, 100 * kMs, Report(1, 10 * MiB, 10 * kMs, 40 * MiB), Heap(10 * MiB, 30 * MiB));
  CHECK(out.go_gc_cpu_ns == 20 * kMs);  // pause × capacity, for pgc_stats.gc_cpu_ns
  CHECK(p.gc_percent_goal_bytes() == 20 * MiB);
  CHECK(p.expected_cycle_gc_cpu_ns() == p.CycleChargeNs(10 * kMs));
  CHECK(p.retain_goal_bytes() == UINT64_MAX);  // Go's: none before a previous goal exists
  CHECK(out.scavenge_need_bytes == 0);
  // Cycle 2: the first retain goal. Peaks are recorded from here on (cycle 1 had no previous goal to scale by), so
  // the floor (the highest recent peak + 10%) equals Go's goal: 12 MiB × 20/20 + 10%.
  out = p.OnCycleEnd(200 * kMs, 200 * kMs, Report(2, 10 * MiB, 10 * kMs, 12 * MiB), Heap(10 * MiB, 30 * MiB));
  const uint64_t go_goal = GcPercentRetainGoal(12 * MiB, 20 * MiB, 20 * MiB);
  CHECK(p.retain_goal_bytes() == go_goal);  // only cycle 2's peak is recorded so far
  CHECK(out.scavenge_need_bytes == BackgroundScavengeBytes(Heap(10 * MiB, 30 * MiB), UINT64_MAX, go_goal));
  CHECK(out.scavenge_need_bytes > 0);
  // Cycle 3 at a higher peak, cycle 4 low again: the floor is cycle 3's peak + 10%, above Go's goal for cycle 4.
  p.OnCycleEnd(300 * kMs, 300 * kMs, Report(3, 10 * MiB, 10 * kMs, 30 * MiB), Heap(10 * MiB, 20 * MiB));
  p.OnCycleEnd(400 * kMs, 400 * kMs, Report(4, 10 * MiB, 10 * kMs, 11 * MiB), Heap(10 * MiB, 20 * MiB));
  CHECK(GcPercentRetainGoal(11 * MiB, 20 * MiB, 20 * MiB) < GcPercentRetainGoal(30 * MiB, 1, 1));
  CHECK(p.retain_goal_bytes() == GcPercentRetainGoal(30 * MiB, 1, 1));
}

TEST_CASE("OnCycleEnd: a concurrent cycle's CPU while the world ran is charged one to one, its pauses as pauses",
          "[pacer]") {
  Settings s;
  s.cpus = 2;
  Pacer stw = MakePacer(s, 0, 0), concurrent = MakePacer(s, 0, 0);
  // The same collector CPU in the pauses; the concurrent cycle also marked for 30 ms while the program ran.
  CycleReport r = Report(1, 10 * MiB, 2 * kMs, 40 * MiB);
  stw.OnCycleEnd(100 * kMs, 100 * kMs, r, Heap(10 * MiB, 30 * MiB));
  r.concurrent_cpu_ns = 30 * kMs;
  const CycleOutcome out = concurrent.OnCycleEnd(100 * kMs, 100 * kMs, r, Heap(10 * MiB, 30 * MiB));
  CHECK(concurrent.expected_cycle_gc_cpu_ns() == stw.expected_cycle_gc_cpu_ns() + 30 * kMs);
  CHECK(out.go_gc_cpu_ns == 2 * kMs * 2 + 30 * kMs);  // pauses × capacity, plus the marking CPU (Go's definition)
}

TEST_CASE("OnCycleEnd: the mark thread's background CPU is charged by what the program would have run on its core",
          "[pacer]") {
  Settings s;
  s.cpus = 2;
  CycleReport r = Report(1, 10 * MiB, 2 * kMs, 40 * MiB);
  r.concurrent_cpu_ns = 30 * kMs;
  r.background_thread_cpu_ns = 40 * kMs;
  // A program that ran one thread (the parallelism estimate starts at 1): the mark thread took an idle core.
  Pacer one = MakePacer(s, 0, 0);
  CycleOutcome out = one.OnCycleEnd(100 * kMs, 100 * kMs, r, Heap(10 * MiB, 30 * MiB));
  CHECK(one.expected_cycle_gc_cpu_ns() == 2 * kMs + 30 * kMs);  // (the pauses at parallelism 1)
  CHECK(out.go_gc_cpu_ns == 2 * kMs * 2 + 30 * kMs + 40 * kMs);  // pgc_stats.gc_cpu_ns counts it (Go does)
  // A program running two threads flat out (2 s of CPU per second of wall time before the cycle): all of it.
  Pacer two = MakePacer(s, 0, 0);
  for (uint64_t t = 1; t <= 20; ++t) {  // windows of 100 ms at 2 cores: the estimate converges to 2
    two.OnTriggerCheck(t * 100 * kMs, [&] { return t * 200 * kMs; }, Heap(1 * MiB), 1 * MiB);
  }
  REQUIRE(two.parallelism() > 1.95);
  // (Both at the parallelism before the cycle's window closes.)
  const uint64_t pauses = two.CycleChargeNs(2 * kMs);
  const uint64_t background = BackgroundChargeNs(40 * kMs, two.parallelism(), 2);
  CHECK(background > 38 * kMs);  // nearly all of it (the estimate approaches 2 from below)
  out = two.OnCycleEnd(2100 * kMs, 4200 * kMs, r, Heap(10 * MiB, 30 * MiB));
  CHECK(two.expected_cycle_gc_cpu_ns() == pauses + 30 * kMs + background);
}

TEST_CASE("A runway cycle is one limiter window: the program's CPU beside it offsets its charge", "[pacer]") {
  Settings s;
  s.cpus = 2;
  // One program thread running flat out for 1 s; then a 3 s concurrent cycle on the collector's own thread (gc/: a
  // runway cycle on pacegc-bg), the program's thread running beside it (process CPU 2 s per second), checking the
  // trigger every 10 ms; a 1 ms pause.
  auto run = [&](bool begin_cycle) {
    Pacer p = MakePacer(s, 0, 0);
    for (uint64_t t = 10; t <= 1000; t += 10) p.OnTriggerCheck(t * kMs, [&] { return t * kMs; }, Heap(1 * MiB), 1 * MiB);
    if (begin_cycle) p.OnCycleBegin(1000 * kMs, 1000 * kMs);
    for (uint64_t t = 1010; t <= 4000; t += 10) {
      p.OnTriggerCheck(t * kMs, [&] { return 1000 * kMs + (t - 1000) * 2 * kMs; }, Heap(1 * MiB), 1 * MiB);
    }
    // Reported as gc/collector.cc reports a runway cycle: pacegc-bg's CPU with the world running is background
    // marking; concurrent_cpu_ns holds the assists' (none here).
    CycleReport r = Report(1, 10 * MiB, 1 * kMs, 40 * MiB);
    r.background_thread_cpu_ns = 3 * kS - 1 * kMs;
    p.OnCycleEnd(4000 * kMs, 7000 * kMs, r, Heap(10 * MiB, 30 * MiB));
    return p;
  };
  const Pacer windowed = run(true);
  // One program thread ran beside the cycle: marking on the spare core is charged nothing (limiter.h, "Background
  // marking"), and the bucket holds about nothing (the pause, charged at 1 core).
  CHECK(windowed.limiter().fill_ns() <= 2 * kMs);
  CHECK_FALSE(windowed.limiter_on());
  // Its windows are not the program's alone: the parallelism stays what the program showed before it (1 core).
  CHECK(windowed.parallelism() < 1.01);
  // Without the cycle's window (as before OnCycleBegin): the windows inside the cycle counted the collector's CPU
  // as the program's and drained an empty bucket, then the cycle's end charged all of it at once.
  const Pacer lumped = run(false);
  CHECK(lumped.limiter().fill_ns() > 2900 * kMs);
  CHECK(lumped.parallelism() > 1.9);
}

TEST_CASE("OnCycleEnd: other threads' CPU in the pauses is not the program's", "[pacer]") {
  Settings s;
  s.cpus = 2;
  // One program thread running flat out on 2 cores; every 100 ms a cycle whose 50 ms pause the mark thread spends
  // marking beside the collector: 50 ms of mutator CPU, 50 of the collector's and 50 of the mark thread's a window.
  Pacer reported = MakePacer(s, 0, 0), unreported = MakePacer(s, 0, 0);
  for (uint64_t n = 1; n <= 20; ++n) {
    CycleReport r = Report(n, 10 * MiB, 50 * kMs, 40 * MiB);
    unreported.OnCycleEnd(n * 100 * kMs, n * 150 * kMs, r, Heap(10 * MiB, 30 * MiB));
    r.pause_others_cpu_ns = 50 * kMs;
    reported.OnCycleEnd(n * 100 * kMs, n * 150 * kMs, r, Heap(10 * MiB, 30 * MiB));
  }
  // Counted as the program's, the mark thread's CPU doubled the parallelism estimate, and with it the pauses' charge
  // and the charge for background marking on a core the program does not use.
  CHECK(unreported.parallelism() > 1.9);
  CHECK(reported.parallelism() == Approx(1.0).margin(0.01));
  CHECK(reported.expected_cycle_gc_cpu_ns() == PauseChargeNs(50 * kMs, 1.0, 2));
  CHECK(unreported.expected_cycle_gc_cpu_ns() > reported.expected_cycle_gc_cpu_ns() * 19 / 10);
  CHECK(BackgroundChargeNs(40 * kMs, reported.parallelism(), 2) < 1 * kMs);
  CHECK(BackgroundChargeNs(40 * kMs, unreported.parallelism(), 2) > 35 * kMs);
}

TEST_CASE("OnSpanAlloc and the periodic timer", "[pacer]") {
  Settings s;
  s.memory_limit_bytes = int64_t{100} * MiB;
  s.limit_source = LimitSource::kEnv;
  s.periodic_gc_ns = 10 * kS;
  Pacer p = MakePacer(s, 1 * kS, 0);
  CHECK(p.OnSpanAlloc(Heap(90 * MiB, 8 * MiB), 4 * MiB) == 2 * MiB);  // 98 + 4 − 100
  CHECK(p.OnSpanAlloc(Heap(90 * MiB, 8 * MiB), 1 * MiB) == 0);
  CHECK_FALSE(p.PeriodicGcDue(10 * kS));
  CHECK(p.NextPeriodicGcNs() == 11 * kS);
  CHECK(p.PeriodicGcDue(11 * kS));
  CHECK(p.Stats(11 * kS, Heap(0)).num_periodic_gc == 1);
  p.SetGcPercent(-1);
  CHECK_FALSE(p.PeriodicGcDue(100 * kS));  // GOGC off: no periodic collection, as in Go
}
