// Unit tests for pacer/trigger: Go's runway below the goal, the cons/mark estimate and the assist ratio, alone and
// through the Pacer that ships (its cycle reports and its gcpacertrace stats).
#include <catch2/catch.hpp>

#include "pacer/pacer.h"
#include "pacer/trigger.h"

using namespace pacegc::pacer;

namespace {

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t kMs = 1'000'000;

MemoryState Heap(uint64_t alloc_bytes) {
  MemoryState m;
  m.heap_alloc_bytes = alloc_bytes;
  m.heap_retained_bytes = alloc_bytes;
  m.total_bytes = alloc_bytes;
  return m;
}

}  // namespace

TEST_CASE("ConsMarkEstimate: the largest of the last five measured cycles; unmeasured cycles are skipped",
          "[pacer][trigger]") {
  ConsMarkEstimate e;
  CHECK(e.value() == 0);
  // 100 MiB allocated in 1 s of program CPU (100 MiB/s), 200 MiB scanned in 0.5 s (400 MiB/s): 0.25.
  CHECK(e.Observe(100 * MiB, 1000 * kMs, 200 * MiB, 500 * kMs) == Approx(0.25));
  CHECK(e.value() == Approx(0.25));
  CHECK(e.Observe(0, 1000 * kMs, 200 * MiB, 500 * kMs) == 0);  // nothing allocated: not a measurement
  CHECK(e.Observe(100 * MiB, 0, 200 * MiB, 500 * kMs) == 0);     // no program CPU measured
  CHECK(e.observed() == 1);
  e.Observe(10 * MiB, 1000 * kMs, 200 * MiB, 500 * kMs);  // 0.025
  CHECK(e.value() == Approx(0.25));  // the largest
  for (int i = 0; i < 4; ++i) e.Observe(10 * MiB, 1000 * kMs, 200 * MiB, 500 * kMs);
  CHECK(e.observed() == kConsMarkCycles);
  CHECK(e.value() == Approx(0.025));  // the 0.25 is five cycles old
}

TEST_CASE("ConcurrentRunway: Go's trigger, clamped to 45/64..61/64 of the way; no runway where it does not fit",
          "[pacer][trigger]") {
  const uint64_t goal = 200 * MiB, marked = 100 * MiB, scan = 100 * MiB;
  // consMark 0.05: runway = 0.05 × 3 × 100 MiB = 15 MiB, trigger 185 MiB, within [170.3, 196] MiB.
  Runway r = ConcurrentRunway(goal, marked, scan, 0.05);
  CHECK(r.fits);
  CHECK(r.runway_bytes == 15 * MiB);
  CHECK(r.trigger_bytes == 185 * MiB);
  // consMark 0.001: runway 0.3 MiB; the trigger is clamped to goal − 4 MiB (above 61/64 of the way).
  r = ConcurrentRunway(goal, marked, scan, 0.001);
  CHECK(r.fits);
  CHECK(r.trigger_bytes == goal - 4 * MiB);
  // consMark 0.2: runway 60 MiB, trigger 140 MiB, below the lower clamp (170.3 MiB): Go would start at the clamp
  // and assist; pacegc starts at the goal.
  r = ConcurrentRunway(goal, marked, scan, 0.2);
  CHECK_FALSE(r.fits);
  CHECK(r.runway_bytes == 60 * MiB);
  CHECK(r.trigger_bytes == goal);
  // The exact lower clamp fits.
  const uint64_t min_trigger = marked + (goal - marked) / 64 * 45;
  r = ConcurrentRunway(goal, marked, scan, static_cast<double>(goal - min_trigger) / (3.0 * scan));
  CHECK(r.trigger_bytes >= min_trigger);
  // No estimate yet, or a heap already at its goal: the trigger is the goal.
  CHECK_FALSE(ConcurrentRunway(goal, marked, scan, 0).fits);
  CHECK(ConcurrentRunway(goal, marked, scan, 0).trigger_bytes == goal);
  CHECK_FALSE(ConcurrentRunway(goal, goal, scan, 0.05).fits);
  // A runway larger than the goal saturates.
  CHECK(ConcurrentRunway(goal, marked, 1000 * scan, 1e9).runway_bytes == goal);
}

TEST_CASE("AssistRatio: the expected scan work over the runway from the cycle's start to the goal",
          "[pacer][trigger]") {
  CHECK(AssistRatio(100 * MiB, 150 * MiB, 200 * MiB) == Approx(2.0));
  CHECK(AssistRatio(100 * MiB, 0, 400 * MiB) == Approx(0.25));
  // No runway: no ratio (a thread at the goal waits instead).
  CHECK(AssistRatio(100 * MiB, 200 * MiB, 200 * MiB) == 0);
  CHECK(AssistRatio(100 * MiB, 250 * MiB, 200 * MiB) == 0);
}

TEST_CASE("AssistScanBytes: the marking's debt against the heap's way to the goal, at most kAssistMaxBytes",
          "[pacer][trigger]") {
  // Start 100 MiB, goal 200 MiB, 100 MiB of scan work expected: at 150 MiB, 50 MiB is due.
  const uint64_t scan = 100 * MiB, start = 100 * MiB, goal = 200 * MiB;
  CHECK(AssistScanBytes(scan, 50 * MiB, start, 150 * MiB, goal) == 0);                 // exactly on the line
  CHECK(AssistScanBytes(scan, 60 * MiB, start, 150 * MiB, goal) == 0);                 // ahead of it
  CHECK(AssistScanBytes(scan, 50 * MiB - 4096, start, 150 * MiB, goal) == 4096);       // a little behind
  CHECK(AssistScanBytes(scan, 10 * MiB, start, 150 * MiB, goal) == kAssistMaxBytes);   // far behind: one slice
  // Before any allocation since the start nothing is due; at or past the goal all of it is.
  CHECK(AssistScanBytes(scan, 0, start, start, goal) == 0);
  CHECK(AssistScanBytes(scan, 0, start, start - MiB, goal) == 0);
  CHECK(AssistScanBytes(scan, scan - 512, start, goal + MiB, goal) == 512);
  CHECK(AssistScanBytes(scan, scan, start, 10 * goal, goal) == 0);
  // The goal fell to or below the cycle's start (a limit lowered mid-cycle): no assists.
  CHECK(AssistScanBytes(scan, 0, start, 150 * MiB, start) == 0);
  // The debt follows the ratio: due = ratio × (heap − start).
  const double ratio = AssistRatio(scan, start, goal);
  const uint64_t heap = start + 30 * MiB;
  CHECK(AssistScanBytes(scan, static_cast<uint64_t>(ratio * 30 * MiB) - 1000, start, heap, goal) == 1000);
  // Large heaps: no overflow in the product.
  const uint64_t big = uint64_t{1} << 50;
  CHECK(AssistScanBytes(big, big / 2 - 100, big, big + big / 2, 2 * big) == 100);
}

TEST_CASE("BackgroundUtilization: Go's 25%, or the cores the program leaves idle, the program keeping one",
          "[pacer][trigger]") {
  CHECK(BackgroundUtilization(1, 1) == Approx(0.25));    // one core: Go's share
  CHECK(BackgroundUtilization(2, 1) == Approx(0.5));     // one of two idle
  CHECK(BackgroundUtilization(2, 2) == Approx(0.25));    // none idle
  CHECK(BackgroundUtilization(8, 2) == Approx(0.75));    // six idle, but 1 - 1/8 = 0.875 is not reached
  CHECK(BackgroundUtilization(4, 0.2) == Approx(0.75));  // the program keeps a core: 1 - 1/4
  // The runway follows: at u = 0.5 it is consMark × scan, at 0.25 three times that.
  CHECK(ConcurrentRunway(200 * MiB, 100 * MiB, 100 * MiB, 0.05, 0.5).runway_bytes == 5 * MiB);
  CHECK(ConcurrentRunway(200 * MiB, 100 * MiB, 100 * MiB, 0.05, 0.25).runway_bytes == 15 * MiB);
}

TEST_CASE("ConsMarkEstimate::ObserveRunway: Go's measurement, which gives the runway it saw back", "[pacer][trigger]") {
  ConsMarkEstimate e;
  // A runway cycle in which the program allocated 30 MiB over 100 MiB of scan work, marking at u = 0.25:
  // consMark = 30 × 0.25 / (100 × 0.75) = 0.1, and ConcurrentRunway at 0.25 gives 30 MiB again. The CPU rates say
  // less (45 MiB since the last cycle in 3 s of the program's CPU, 15 MiB/s, over 100 MiB scanned in 0.5 s of the
  // collector's, 200 MiB/s: 0.075), so Go's figure is the one kept.
  CHECK(e.ObserveRunway(30 * MiB, 100 * MiB, 0.25, 45 * MiB, 3000 * kMs, 500 * kMs) == Approx(0.1));
  CHECK(ConcurrentRunway(400 * MiB, 100 * MiB, 100 * MiB, e.value(), 0.25).runway_bytes == 30 * MiB);
  CHECK(e.ObserveRunway(0, 100 * MiB, 0.25, 0, 3000 * kMs, 500 * kMs) == 0);  // nothing allocated: skipped
  CHECK(e.ObserveRunway(30 * MiB, 100 * MiB, 1, 0, 0, 0) == 0);
  CHECK(e.observed() == 1);
}

TEST_CASE("ConsMarkEstimate::ObserveRunway: the larger of Go's measurement and the CPU rates'", "[pacer][trigger]") {
  ConsMarkEstimate e;
  // A program that does little but allocate, slowed while the cycle marks: 30 MiB allocated during a runway cycle
  // over 100 MiB of scan work at u = 0.5 (Go's figure 0.3), but 600 MiB since the last cycle in 1 s of its CPU,
  // against 100 MiB scanned in 0.5 s of the collector's: 600 MiB/s over 200 MiB/s = 3. The rates' figure counts,
  // and the runway no longer fits.
  CHECK(e.ObserveRunway(30 * MiB, 100 * MiB, 0.5, 600 * MiB, 1000 * kMs, 500 * kMs) == Approx(3.0));
  CHECK(e.value() == Approx(3.0));
  CHECK_FALSE(ConcurrentRunway(200 * MiB, 100 * MiB, 100 * MiB, e.value(), 0.5).fits);
  // Either figure alone is enough: no CPU measured, Go's counts; nothing allocated during the cycle, the rates'.
  ConsMarkEstimate f;
  CHECK(f.ObserveRunway(30 * MiB, 100 * MiB, 0.5, 600 * MiB, 0, 500 * kMs) == Approx(0.3));
  CHECK(f.ObserveRunway(0, 100 * MiB, 0.5, 600 * MiB, 1000 * kMs, 500 * kMs) == Approx(3.0));
  CHECK(f.observed() == 2);
}

TEST_CASE("Pacer: cycle reports measure cons/mark, which places the runway and the assist ratio", "[pacer][trigger]") {
  Settings s;
  s.cpus = 1;  // (Go's 25% background share: BackgroundUtilization)
  s.cpu_limiter = false;
  Pacer p = MakePacer(s, 0, 0);
  CHECK_FALSE(p.RunwayDue(Heap(1000 * MiB), 1000 * MiB));  // nothing measured yet
  // A program that allocated 100 MiB with 1 s of its CPU (the process used 1.2 s: 0.2 s was the cycle's), and a
  // cycle that scanned 100 MiB in 0.1 s of the collector's CPU: cons/mark = 100 MiB/s / 1000 MiB/s = 0.1.
  CycleReport r{};
  r.num_gc = 1;
  r.heap_marked_bytes = 100 * MiB;
  r.heap_in_use_at_mark = 200 * MiB;
  r.collector_cpu_ns = 50 * kMs;
  r.background_thread_cpu_ns = 50 * kMs;
  r.concurrent_cpu_ns = 100 * kMs;  // (the cycle's other work: its CPU is the collector's, not the program's)
  r.allocated_bytes = 100 * MiB;
  r.pause_ns = 1 * kMs;
  p.OnCycleEnd(2000 * kMs, 1200 * kMs, r, Heap(100 * MiB));
  // gc CPU = 50 + 50 + 100 = 200 ms for 100 MiB scanned (500 MiB/s): cons/mark = 100 / 500 = 0.2.
  PacerStats st = p.Stats(2000 * kMs, Heap(100 * MiB));
  CHECK(st.last_cons_mark == Approx(0.2));
  CHECK(st.cons_mark == Approx(0.2));
  // Goal 200 MiB; runway 0.2 × (0.75 / 0.25) × 100 MiB = 60 MiB: below the clamp, no runway cycle.
  CHECK(st.heap_goal_bytes == 200 * MiB);
  CHECK_FALSE(st.runway_fits);
  CHECK(st.trigger_bytes == 200 * MiB);
  CHECK_FALSE(p.RunwayDue(Heap(199 * MiB), 199 * MiB));
  // Five cycles of a program that allocates a tenth as fast: the 0.2 ages out, the runway is 6 MiB.
  for (uint64_t n = 2; n <= 6; ++n) {
    r.num_gc = n;
    r.allocated_bytes = 10 * MiB;
    p.OnCycleEnd(2000 * kMs * n, 1200 * kMs * n, r, Heap(100 * MiB));
  }
  st = p.Stats(12000 * kMs, Heap(100 * MiB));
  CHECK(st.cons_mark == Approx(0.02));
  CHECK(st.runway_fits);
  CHECK(st.runway_bytes == static_cast<uint64_t>(0.02 * 3 * static_cast<double>(100 * MiB)));
  CHECK_FALSE(p.RunwayDue(Heap(150 * MiB), 150 * MiB));
  CHECK(p.RunwayDue(Heap(st.trigger_bytes), st.trigger_bytes));
  // A cycle begun at the trigger: 100 MiB of scan work (the last cycle's) over the runway left to the goal.
  const uint64_t goal = st.heap_goal_bytes;
  CHECK(p.AssistRatio(Heap(st.trigger_bytes), st.trigger_bytes) ==
        Approx(static_cast<double>(100 * MiB) / static_cast<double>(goal - st.trigger_bytes)));
  // Half-way to the goal with nothing scanned: half the scan work is due, one assist's worth at a time.
  const uint64_t half = st.trigger_bytes + (goal - st.trigger_bytes) / 2;
  CHECK(p.AssistScanBytes(Heap(half), st.trigger_bytes, 0, half) == kAssistMaxBytes);
  CHECK(p.AssistScanBytes(Heap(half), st.trigger_bytes, 50 * MiB, half) == 0);
}

TEST_CASE("Pacer: no runway cycle while the CPU limiter is on", "[pacer][trigger]") {
  Settings s;
  s.cpus = 1;
  Pacer p = MakePacer(s, 0, 0);
  CycleReport r{};
  r.heap_marked_bytes = 100 * MiB;
  r.collector_cpu_ns = 100 * kMs;
  r.allocated_bytes = 64 << 10;  // in 1 ms of program CPU per cycle: cons/mark 0.0625, a runway of 18.75 MiB
  r.pause_ns = 100 * kMs;
  // Cycles that take nearly all the CPU (each a 100 ms pause per 101 ms) fill the bucket: the limiter turns on.
  uint64_t now = 0, cpu = 0;
  for (uint64_t n = 1; n <= 40 && !p.limiter_on(); ++n) {
    r.num_gc = n;
    now += 101 * kMs;
    cpu += 101 * kMs;
    p.OnCycleEnd(now, cpu, r, Heap(100 * MiB));
  }
  REQUIRE(p.limiter_on());
  const Runway w = p.ConcurrentTrigger(Heap(100 * MiB));
  REQUIRE(w.fits);  // (a slow allocator: the runway would fit)
  CHECK_FALSE(p.RunwayDue(Heap(w.trigger_bytes), w.trigger_bytes));
}
