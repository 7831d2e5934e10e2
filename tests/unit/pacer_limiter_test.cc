// Unit tests for pacer/limiter: Go's GC CPU limiter (leaky bucket, on/off, last-enabled cycle), with injected time.
#include <catch2/catch.hpp>

#include <algorithm>

#include "pacer/limiter.h"

using namespace pacegc::pacer;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kS = 1'000'000'000;
constexpr uint64_t kWindow = CpuLimiter::kUpdatePeriodNs;

// Accounts `n` windows of kWindow each starting at *now: each window has `gc` GC CPU and `mutator` mutator CPU.
void Windows(CpuLimiter &l, uint64_t *now, int n, uint64_t gc, uint64_t mutator, uint64_t num_gc) {
  for (int i = 0; i < n; ++i) {
    *now += kWindow;
    l.Account(*now, gc, mutator, num_gc);
  }
}

}  // namespace

TEST_CASE("capacity is cpus x 1 s; a quota is fractional; unknown (<= 0) counts as one", "[pacer][limiter]") {
  CHECK(CpuLimiter(1).capacity_ns() == 1 * kS);
  CHECK(CpuLimiter(8).capacity_ns() == 8 * kS);
  CHECK(CpuLimiter(0.3).capacity_ns() == 300 * kMs);
  CHECK(CpuLimiter(0.001).capacity_ns() == 10 * kMs);  // at least CpuLimiter::kMinCpus
  CHECK(CpuLimiter(0).capacity_ns() == 1 * kS);
  CHECK(CpuLimiter(-3).capacity_ns() == 1 * kS);
  CpuLimiter l(4);
  CHECK_FALSE(l.enabled());
  CHECK(l.fill_ns() == 0);
  CHECK(l.last_enabled_cycle() == 0);
  CHECK(l.enabled_total_ns(123 * kS) == 0);
  CHECK(l.overflow_ns() == 0);
}

TEST_CASE("the limiter turns on when the bucket fills and records num_gc + 1", "[pacer][limiter]") {
  // 2 cpus, every window a full stop-the-world pause: +20 ms of GC per 10 ms window. 2 s fill in 100 windows.
  CpuLimiter l(2);
  uint64_t now = 0;
  Windows(l, &now, 99, 2 * kWindow, 0, 7);
  CHECK_FALSE(l.enabled());
  CHECK(l.fill_ns() == 99 * 2 * kWindow);
  CHECK(l.last_enabled_cycle() == 0);
  Windows(l, &now, 1, 2 * kWindow, 0, 7);  // exactly fills: Go's "headroom <= change" turns it on
  CHECK(l.enabled());
  CHECK(l.fill_ns() == l.capacity_ns());
  CHECK(l.overflow_ns() == 0);
  CHECK(l.last_enabled_cycle() == 8);
  // Staying on through more cycles does not move last_enabled_cycle: only an off->on edge records it.
  Windows(l, &now, 5, 2 * kWindow, 0, 9);
  CHECK(l.enabled());
  CHECK(l.last_enabled_cycle() == 8);
}

TEST_CASE("half GC, half mutator never fills the bucket", "[pacer][limiter]") {
  CpuLimiter l(4);
  uint64_t now = 0;
  Windows(l, &now, 100000, 20 * kMs, 20 * kMs, 0);  // 1000 s at exactly 50%
  CHECK_FALSE(l.enabled());
  CHECK(l.fill_ns() == 0);
  Windows(l, &now, 1000, 21 * kMs, 19 * kMs, 0);  // 52.5%: +2 ms a window, 4 s capacity needs 2000 windows
  CHECK_FALSE(l.enabled());
  CHECK(l.fill_ns() == 2 * kS);
  Windows(l, &now, 1000, 21 * kMs, 19 * kMs, 0);
  CHECK(l.enabled());
}

TEST_CASE("the limiter turns off on the first window with net drain; a zero change keeps it on",
          "[pacer][limiter]") {
  CpuLimiter l(1);
  uint64_t now = 0;
  Windows(l, &now, 100, kWindow, 0, 3);
  REQUIRE(l.enabled());
  Windows(l, &now, 3, 5 * kMs, 5 * kMs, 3);  // change == 0: Go leaves it on
  CHECK(l.enabled());
  CHECK(l.fill_ns() == l.capacity_ns());
  Windows(l, &now, 1, 4 * kMs, 6 * kMs, 3);  // net drain of 2 ms
  CHECK_FALSE(l.enabled());
  CHECK(l.fill_ns() == l.capacity_ns() - 2 * kMs);
  CHECK(l.last_enabled_cycle() == 4);
  // Net GC time that fits in the headroom leaves it off; filling again turns it on and records the new cycle.
  Windows(l, &now, 1, 6 * kMs, 5 * kMs, 10);
  CHECK_FALSE(l.enabled());
  CHECK(l.fill_ns() == l.capacity_ns() - 1 * kMs);
  Windows(l, &now, 1, 6 * kMs, 5 * kMs, 10);
  CHECK(l.enabled());
  CHECK(l.last_enabled_cycle() == 11);
}

TEST_CASE("the bucket never banks credit below empty", "[pacer][limiter]") {
  // A long mutator-only run, then pure GC: the bucket fills from zero in the same 100 windows as a fresh one.
  for (uint64_t idle_windows : {uint64_t{0}, uint64_t{1}, uint64_t{100000}}) {
    INFO("mutator-only windows: " << idle_windows);
    CpuLimiter l(1);
    uint64_t now = 0;
    Windows(l, &now, static_cast<int>(idle_windows), 0, kWindow, 0);
    CHECK(l.fill_ns() == 0);
    Windows(l, &now, 99, kWindow, 0, 0);
    CHECK_FALSE(l.enabled());
    Windows(l, &now, 1, kWindow, 0, 0);
    CHECK(l.enabled());
  }
  // A drain bigger than the fill empties the bucket; it does not go negative.
  CpuLimiter l(1);
  uint64_t now = 0;
  Windows(l, &now, 10, kWindow, 0, 0);
  Windows(l, &now, 1, 0, 5 * kS, 0);
  CHECK(l.fill_ns() == 0);
  Windows(l, &now, 100, kWindow, 0, 0);
  CHECK(l.enabled());
}

TEST_CASE("overflow counts the GC time a full bucket could not hold", "[pacer][limiter]") {
  CpuLimiter l(1);
  l.Account(1 * kS, l.capacity_ns() - 5 * kMs, 0, 0);
  CHECK_FALSE(l.enabled());
  CHECK(l.overflow_ns() == 0);
  l.Account(1 * kS + kWindow, 20 * kMs, 0, 0);  // 15 ms past full
  CHECK(l.enabled());
  CHECK(l.overflow_ns() == 15 * kMs);
  l.Account(1 * kS + 2 * kWindow, 12 * kMs, 2 * kMs, 0);  // on and full: the whole net 10 ms overflows
  CHECK(l.overflow_ns() == 25 * kMs);
  l.Account(1 * kS + 3 * kWindow, 0, 1 * kMs, 0);  // draining does not give overflow back
  CHECK(l.overflow_ns() == 25 * kMs);
  CHECK_FALSE(l.enabled());
}

TEST_CASE("enabled_total_ns sums the on-periods, including the current one", "[pacer][limiter]") {
  CpuLimiter l(1);
  l.Account(2 * kS, 1 * kS, 0, 0);  // on at t = 2 s
  REQUIRE(l.enabled());
  CHECK(l.enabled_total_ns(2 * kS) == 0);
  CHECK(l.enabled_total_ns(2 * kS + 7 * kMs) == 7 * kMs);
  l.Account(2 * kS + 30 * kMs, 10 * kMs, 0, 1);  // still on
  l.Account(2 * kS + 40 * kMs, 0, 10 * kMs, 1);  // off at 2.04 s
  REQUIRE_FALSE(l.enabled());
  CHECK(l.enabled_total_ns(2 * kS + 40 * kMs) == 40 * kMs);
  CHECK(l.enabled_total_ns(9 * kS) == 40 * kMs);  // off: time no longer counts
  l.Account(5 * kS, 20 * kMs, 0, 2);  // on again at 5 s (the bucket had 10 ms of headroom)
  REQUIRE(l.enabled());
  CHECK(l.last_enabled_cycle() == 3);
  CHECK(l.enabled_total_ns(5 * kS + 1 * kMs) == 41 * kMs);
  l.Account(5 * kS + 10 * kMs, 0, 1, 2);
  CHECK(l.enabled_total_ns(6 * kS) == 50 * kMs);
}

TEST_CASE("a due collection waits until the bucket has room for its expected cost", "[pacer][limiter]") {
  CpuLimiter l(2);  // 2 s
  CHECK(l.AdmitCollection(0, 0, 0));
  CHECK(l.AdmitCollection(0, 2 * kS, 0));
  CHECK(l.AdmitCollection(0, 10 * kS, 0));  // empty bucket: even a pause longer than the bucket may run
  CHECK_FALSE(l.enabled());
  l.Account(kWindow, 1900 * kMs, 0, 4);  // 100 ms of headroom
  CHECK(l.AdmitCollection(kWindow, 100 * kMs, 4));
  CHECK_FALSE(l.enabled());
  CHECK(l.last_enabled_cycle() == 0);
  // A collection that would overflow the bucket is refused, and that turns the limiter on, as Go's overflow would.
  CHECK_FALSE(l.AdmitCollection(kWindow + 1 * kMs, 100 * kMs + 1, 4));
  CHECK(l.enabled());
  CHECK(l.last_enabled_cycle() == 5);
  CHECK(l.fill_ns() == 1900 * kMs);  // nothing was accounted
  CHECK(l.overflow_ns() == 0);
  CHECK_FALSE(l.AdmitCollection(kWindow + 2 * kMs, 0, 4));  // on: nothing starts, whatever the cost
  CHECK(l.enabled_total_ns(kWindow + 3 * kMs) == 2 * kMs);
  // Go's rule turns it off at the next window with net drain; with room now, the collection runs.
  l.Account(2 * kWindow, 0, 40 * kMs, 4);
  CHECK_FALSE(l.enabled());
  CHECK(l.enabled_total_ns(3 * kWindow) == kWindow - 1 * kMs);
  CHECK(l.headroom_ns() == 140 * kMs);
  CHECK(l.AdmitCollection(2 * kWindow, 140 * kMs, 4));
  CHECK_FALSE(l.AdmitCollection(2 * kWindow, 140 * kMs + 1, 6));
  CHECK(l.last_enabled_cycle() == 7);
  // A full bucket that Go's rule turned on refuses too.
  CpuLimiter full(1);
  full.Account(kWindow, 1 * kS, 0, 0);
  REQUIRE(full.enabled());
  CHECK_FALSE(full.AdmitCollection(kWindow, 0, 0));
}

TEST_CASE("an update is due every 10 ms, and before the first", "[pacer][limiter]") {
  CpuLimiter l(1);
  CHECK(l.NeedsUpdate(0));
  l.Account(100 * kMs, 0, 0, 0);
  CHECK_FALSE(l.NeedsUpdate(100 * kMs));
  CHECK_FALSE(l.NeedsUpdate(110 * kMs - 1));
  CHECK(l.NeedsUpdate(110 * kMs));
  CHECK_FALSE(l.NeedsUpdate(50 * kMs));  // a clock that went backwards does not force updates
}

TEST_CASE("the mark thread's background CPU is charged for the share of its core the program would have used",
          "[pacer][limiter]") {
  // 2 cores: one for the collecting thread (a program thread whose allocation waits), one for the mark thread.
  CHECK(BackgroundChargeNs(40 * kMs, 1.0, 2) == 0);         // a single-threaded program: an idle core (Go: idle time)
  CHECK(BackgroundChargeNs(40 * kMs, 0.3, 2) == 0);         // a mostly idle one
  CHECK(BackgroundChargeNs(40 * kMs, 1.5, 2) == 20 * kMs);  // a second thread busy half the time
  CHECK(BackgroundChargeNs(40 * kMs, 2.0, 2) == 40 * kMs);  // every core busy: all of it
  CHECK(BackgroundChargeNs(40 * kMs, 3.0, 2) == 40 * kMs);  // never more than the thread's own CPU
  // 8 cores: 6 left besides the collector and the mark thread; the program's 7 other threads want one more.
  CHECK(BackgroundChargeNs(40 * kMs, 4.0, 8) == 0);
  CHECK(BackgroundChargeNs(40 * kMs, 8.0, 8) == 40 * kMs);
  CHECK(BackgroundChargeNs(40 * kMs, 1.0, 0) == 40 * kMs);  // capacity unknown: charged whole
  CHECK(BackgroundChargeNs(UINT64_MAX, 2.0, 2) == UINT64_MAX);
}

TEST_CASE("a pause is charged the collector's CPU x the cores the program used, at least 1, at most the cpus",
          "[pacer][limiter]") {
  CHECK(PauseChargeNs(10 * kMs, 1.0, 2) == 10 * kMs);
  CHECK(PauseChargeNs(10 * kMs, 0.05, 2) == 10 * kMs);  // an idle program: the collector's own CPU
  CHECK(PauseChargeNs(10 * kMs, 1.5, 2) == 15 * kMs);
  CHECK(PauseChargeNs(10 * kMs, 2.0, 2) == 20 * kMs);  // every core busy: Go's pause x GOMAXPROCS
  CHECK(PauseChargeNs(10 * kMs, 7.0, 4) == 40 * kMs);   // never more than the cores there are
  // Throttled to 30% of a core, a 10 ms pause gave the collector 3 ms of CPU: 3 ms, not the 10 ms that charging
  // wall time x one core would say. Descheduled by other load: the same.
  CHECK(PauseChargeNs(3 * kMs, 0.3, 0.3) == 3 * kMs);
  CHECK(PauseChargeNs(3 * kMs, 0.3, 2) == 3 * kMs);
  CHECK(PauseChargeNs(3 * kMs, 1.0, 0.3) == 3 * kMs);  // capacity below one core
  CHECK(PauseChargeNs(10 * kMs, 3.0, 1.5) == 15 * kMs);  // 1.5 cores of quota, 3 threads: x 1.5
  CHECK(PauseChargeNs(UINT64_MAX, 8.0, 8) == UINT64_MAX);  // saturates
  CHECK(PauseChargeNs(0, 2.0, 2) == 0);
  CHECK(PauseChargeNs(10 * kMs, 3.0, 0) == 30 * kMs);  // cpus <= 0: no cap
}

namespace {

// A program on `cpus` of capacity that gets `share` CPU-seconds per wall second (a CFS quota, or other load),
// running `seconds` of wall time: mutator bursts of `mutator_cpu` CPU between stop-the-world collections that
// take `gc_cpu` of CPU each, both slowed to `share`. Accounts the limiter as gc/pacing.cc does (windows at every
// cycle and every 10 ms, the parallelism estimate from mutator CPU over wall time outside pauses, PauseChargeNs
// with the collector's CPU) and returns whether it ever turned on.
// pause_share: the share the collector gets during pauses (other load comes and goes), 0 = share.
bool ThrottledProgramTurnsLimiterOn(double cpus, double share, uint64_t mutator_cpu, uint64_t gc_cpu,
                                    uint64_t seconds, double pause_share = 0) {
  CpuLimiter l(cpus);
  ParallelismEstimate parallelism;
  uint64_t now = 0, num_gc = 0;
  bool ever_on = false;
  const auto wall = [&](uint64_t cpu) { return static_cast<uint64_t>(static_cast<double>(cpu) / share); };
  while (now < seconds * kS) {
    // Mutator, in windows of at most 10 ms of wall time.
    for (uint64_t left = mutator_cpu; left != 0;) {
      uint64_t cpu = std::min<uint64_t>(left, static_cast<uint64_t>(static_cast<double>(kWindow) * share));
      left -= cpu;
      now += wall(cpu);
      parallelism.Observe(cpu, wall(cpu));
      l.SetCapacityNs(LimiterCapacityNs(cpus, PauseChargeNs(gc_cpu, parallelism.value(), cpus)), now, num_gc);
      l.Account(now, 0, cpu, num_gc);
      ever_on |= l.enabled();
    }
    // A collection: due, admitted or not (with GOGC alone nothing would wait; here we only watch the bucket).
    if (!l.AdmitCollection(now, PauseChargeNs(gc_cpu, parallelism.value(), cpus), num_gc)) {
      ever_on = true;
    }
    uint64_t pause = static_cast<uint64_t>(static_cast<double>(gc_cpu) / (pause_share > 0 ? pause_share : share));
    now += pause;
    ++num_gc;
    l.Account(now, PauseChargeNs(gc_cpu, parallelism.value(), cpus), 0, num_gc);
    ever_on |= l.enabled();
  }
  return ever_on;
}

}  // namespace

TEST_CASE("throttled or descheduled time counts on neither side: the limiter sees the CPU split as it is",
          "[pacer][limiter]") {
  // GC takes 40% of the CPU the program gets (60 ms of mutator, 40 ms of collection per cycle): below 50%, so
  // the limiter must stay off whatever share of the machine the program gets. Charging the pause's wall time x 1
  // core (the old rule) made it 40 / 0.3 = 133 ms against 60 ms under a 30% quota: "GC-bound", limiter on, and the
  // step scenario's heap grew into its cap (issue 10).
  for (double share : {1.0, 0.5, 0.3, 0.1}) {
    INFO("a CPU quota of " << share << " cores");
    CHECK_FALSE(ThrottledProgramTurnsLimiterOn(share, share, 60 * kMs, 40 * kMs, 60));
  }
  for (double share : {0.3, 0.1}) {
    INFO("2 cores, descheduled to " << share << " of one by other load");
    CHECK_FALSE(ThrottledProgramTurnsLimiterOn(2, share, 60 * kMs, 40 * kMs, 60));
  }
  // Other load that comes and goes: the pauses get half the share the mutator windows got. Charging the pause's
  // wall time x the mutator's parallelism would double their cost.
  for (double share : {1.0, 0.3}) {
    INFO("pauses descheduled to half of the mutator's share " << share);
    CHECK_FALSE(ThrottledProgramTurnsLimiterOn(2, share, 60 * kMs, 40 * kMs, 60, share / 2));
    CHECK_FALSE(ThrottledProgramTurnsLimiterOn(share, share, 60 * kMs, 40 * kMs, 60, share / 2));
  }
  // And when GC really takes more than half (70%), it turns on, throttled or not.
  for (double share : {1.0, 0.3, 0.1}) {
    INFO("GC-bound at a share of " << share);
    CHECK(ThrottledProgramTurnsLimiterOn(share, share, 30 * kMs, 70 * kMs, 60));
    CHECK(ThrottledProgramTurnsLimiterOn(2, share, 30 * kMs, 70 * kMs, 60));
  }
}

TEST_CASE("the bucket holds the CPU capacity x 1 s, and at least two pauses", "[pacer][limiter]") {
  CHECK(LimiterCapacityNs(2, 0) == 2 * kS);  // Go's GOMAXPROCS x 1 s
  CHECK(LimiterCapacityNs(0.3, 0) == 300 * kMs);  // a 30% quota
  CHECK(LimiterCapacityNs(0, 0) == 1 * kS);       // capacity unknown
  CHECK(LimiterCapacityNs(0.001, 0) == 10 * kMs);  // at least kMinCpus
  // A 10% quota and a pause costing 150 ms of CPU: two pauses' worth, not 0.1 CPU-second that one pause overflows.
  CHECK(LimiterCapacityNs(0.1, 150 * kMs) == 300 * kMs);
  CHECK(LimiterCapacityNs(2, 150 * kMs) == 2 * kS);
  CHECK(LimiterCapacityNs(2, UINT64_MAX) == UINT64_MAX);  // saturates
}

TEST_CASE("a 10% quota: one 256 MiB pause is not 'GC-bound', sustained GC above half still is", "[pacer][limiter]") {
  // 150 ms of CPU per pause (1.5 s of wall time at 10%), 250 ms of mutator CPU between pauses: 37.5% GC.
  CHECK_FALSE(ThrottledProgramTurnsLimiterOn(0.1, 0.1, 250 * kMs, 150 * kMs, 120));
  CHECK(ThrottledProgramTurnsLimiterOn(0.1, 0.1, 100 * kMs, 150 * kMs, 120));  // 60%
}

TEST_CASE("SetCapacityNs resizes the bucket; cutting the fill turns the limiter on, as Go's resetCapacity",
          "[pacer][limiter]") {
  CpuLimiter l(2);
  uint64_t now = 0;
  Windows(l, &now, 100, kWindow, 0, 3);  // +10 ms net per window: 1 s of 2
  CHECK(l.fill_ns() == 1 * kS);
  l.SetCapacityNs(4 * kS, now, 3);  // grown: the fill is kept
  CHECK(l.capacity_ns() == 4 * kS);
  CHECK(l.fill_ns() == 1 * kS);
  CHECK_FALSE(l.enabled());
  l.SetCapacityNs(1 * kS, now, 3);  // shrunk to exactly the fill: nothing cut
  CHECK_FALSE(l.enabled());
  l.SetCapacityNs(500 * kMs, now, 3);  // the container's quota was lowered to half a core: 0.5 s of GC time cut
  CHECK(l.capacity_ns() == 500 * kMs);
  CHECK(l.fill_ns() == 500 * kMs);
  CHECK(l.enabled());
  CHECK(l.last_enabled_cycle() == 4);
  l.SetCapacityNs(0, now, 3);
  CHECK(l.capacity_ns() == 10 * kMs);  // at least kMinCpus x 1 s
}

TEST_CASE("driven as pacing drives it, a program that wants 67% GC is held near half",
          "[pacer][limiter]") {
  // A single-threaded program on 2 cores spending 50% of its CPU on 100 ms pauses: over a minute the limiter,
  // driven as gc/pacing.cc drives it, holds GC at half (no more collections admitted than mutator time allows).
  CpuLimiter l(2);
  uint64_t now = 0, gc = 0, mutator = 0, num_gc = 0;
  while (now < 60 * kS) {
    // The program wants a collection after every 50 ms of mutator time (a limit below the live heap would want
    // one after every allocation); the limiter decides.
    for (int i = 0; i < 5; ++i) {
      now += kWindow;
      mutator += kWindow;
      l.SetCapacityNs(LimiterCapacityNs(2, 100 * kMs), now, num_gc);
      l.Account(now, 0, kWindow, num_gc);
    }
    if (l.AdmitCollection(now, 100 * kMs, num_gc)) {
      now += 100 * kMs;
      gc += 100 * kMs;
      ++num_gc;
      l.SetCapacityNs(LimiterCapacityNs(2, 100 * kMs), now, num_gc);
      l.Account(now, 100 * kMs, 0, num_gc);
    }
  }
  double share = static_cast<double>(gc) / static_cast<double>(gc + mutator);
  CHECK(share <= 0.55);
  CHECK(share >= 0.45);
}

TEST_CASE("mutator parallelism is an EWMA of CPU per wall second outside pauses", "[pacer][limiter]") {
  ParallelismEstimate p;
  CHECK(p.value() == 1.0);
  p.Observe(20 * kMs, 10 * kMs);  // 2 cores busy: 1 + 0.2 * (2 - 1) = 1.2
  CHECK(p.value() == Approx(1.2));
  p.Observe(5 * kMs, 10 * kMs);  // 0.5: 1.2 + 0.2 * (0.5 - 1.2) = 1.06
  CHECK(p.value() == Approx(1.06));
  p.Observe(100 * kMs, ParallelismEstimate::kMinWallNs - 1);  // too short a window: ignored
  CHECK(p.value() == Approx(1.06));
  for (int i = 0; i < 200; ++i) p.Observe(10 * kMs, 10 * kMs);
  CHECK(p.value() == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("DecideTrigger: limit-driven collections wait at most until the GOGC goal", "[pacer][limiter]") {
  constexpr uint64_t MiB = uint64_t{1} << 20;
  // Not due: whatever the limiter says.
  CHECK(DecideTrigger(99 * MiB, 100 * MiB, 200 * MiB, true) == TriggerDecision::kNotDue);
  CHECK(DecideTrigger(99 * MiB, 100 * MiB, 200 * MiB, false) == TriggerDecision::kNotDue);
  // Due and admitted (no limiter, or room in the bucket).
  CHECK(DecideTrigger(100 * MiB, 100 * MiB, 200 * MiB, true) == TriggerDecision::kStart);
  // The limiter's answer, as the Pacer asks it once a collection is due: an empty bucket admits...
  CpuLimiter l(1);
  CHECK(l.AdmitCollection(kS, 10 * kMs, 3));
  uint64_t now = 0;
  Windows(l, &now, 100, kWindow, 0, 3);  // 1 s of pure GC: full, on
  REQUIRE(l.enabled());
  // ...a full one refuses, and then the limit regime waits only until the heap reaches the GOGC goal.
  const bool admitted = l.AdmitCollection(now, 10 * kMs, 3);
  CHECK_FALSE(admitted);
  CHECK(DecideTrigger(150 * MiB, 100 * MiB, 200 * MiB, admitted) == TriggerDecision::kPostponed);
  CHECK(DecideTrigger(200 * MiB, 100 * MiB, 200 * MiB, admitted) == TriggerDecision::kStart);
  // GOGC regime (the goal in force is the GOGC goal, e.g. GOGC=0 or 10 with no limit in play): postponed as in
  // Go, however far the heap has grown past it.
  CHECK(DecideTrigger(200 * MiB, 200 * MiB, 200 * MiB, admitted) == TriggerDecision::kPostponed);
  CHECK(DecideTrigger(900 * MiB, 200 * MiB, 200 * MiB, admitted) == TriggerDecision::kPostponed);
  // GOGC off (no GOGC goal): nothing overrides the limiter.
  CHECK(DecideTrigger(UINT64_MAX - 1, 100 * MiB, UINT64_MAX, admitted) == TriggerDecision::kPostponed);
}
