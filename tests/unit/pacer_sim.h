// tests/unit/pacer_sim.h — a simulated program and stop-the-world collector that drive the pure pacer policy
// (pacer/goal, limit, limiter, scavenge) cycle by cycle, in simulated time. Test-only: it stands in for gc/, so the
// policy's composition can be checked without a heap (STYLE.md point 9, Go's TestGcPacer).
//
// The model, one step of step_ns at a time:
//   1. The mutator runs on all cpus and allocates alloc_bytes_per_ms. Allocation reuses free resident pages first
//      (gc/heap.h hands out the pages most likely still resident); fresh_percent of it needs new pages anyway
//      (large objects no free run fits). Pages that become resident first ask SyncScavengeBytes and
//      GrowthScavengeBytes; that release costs GC CPU on the allocating thread.
//   2. Trigger check (an allocation slow path): goal = CombineGoals(GcPercentGoal, MemoryLimitGoal). If the heap
//      reached it, DecideTrigger starts it (the CPU limiter admits it, AdmitCollection with the last pause × cpus,
//      or the heap reached the GOGC goal too; with go_limiter_rule, just !enabled()) or it waits and the heap keeps
//      growing.
//   3. A collection stops the world for pause = pause_base_ns + (marked + stacks + globals) × mark_ns_per_mib / MiB
//      / cpus (marking is parallel), i.e. pause × cpus of GC CPU; marks min(live target, heap) bytes, sweeps the
//      rest into free resident pages, and recomputes the scavenger's goals (Go's gcPaceScavenger). The limiter
//      is accounted at both edges of the pause.
//   4. The limiter is accounted every kUpdatePeriodNs.
//   5. The background scavenger wakes, releases up to 1 ms of work's worth of BackgroundScavengeBytes, charges that
//      work as GC CPU (taken from the mutator's cpus), and sleeps BackgroundSleepNs.
// The heap has no fragmentation: in-use pages = object bytes (heap_alloc). total = in-use + free resident +
// metadata_bytes (the non-heap part the limit counts). No idle time: every cpu runs mutator or GC.
// SetMemoryLimit between steps changes the limit as pgc_set_memory_limit does: the scavenger's goals are recomputed
// at once, the heap goal at the next trigger check (no collection is started by the call itself).
#ifndef PACEGC_TESTS_UNIT_PACER_SIM_H_
#define PACEGC_TESTS_UNIT_PACER_SIM_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "pacer/goal.h"
#include "pacer/limit.h"
#include "pacer/limiter.h"
#include "pacer/scavenge.h"

namespace pacegc::pacer::sim {

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kS = 1'000'000'000;

struct Scenario {
  const char *name = "";
  int cpus = 4;
  int gc_percent = 100;
  int64_t limit_bytes = kNoLimit;
  // Live heap the program holds when cycle n (1-based) marks: min(live_bytes + (n−1) × live_growth, live_max);
  // never more than has been allocated.
  uint64_t live_bytes = 0;
  uint64_t live_growth_per_cycle_bytes = 0;
  uint64_t live_max_bytes = UINT64_MAX;
  uint64_t stack_bytes = 0;
  uint64_t globals_bytes = 0;
  uint64_t metadata_bytes = 0;
  uint64_t alloc_bytes_per_ms = 1 * MiB;  // all threads together
  uint64_t fresh_percent = 0;             // % of allocation that needs new pages even when free pages exist
  uint64_t pause_base_ns = 100'000;
  uint64_t mark_ns_per_mib = 1'000'000;   // per cpu: 1 GiB/s per core
  uint64_t scavenge_ns_per_mib = 250'000; // madvise: 4 GiB/s
  uint64_t step_ns = 100'000;
  bool go_limiter_rule = false;  // gate collections on !enabled() only (Go's rule), not AdmitCollection
};

struct Cycle {
  uint64_t n;                  // 1-based
  uint64_t start_ns;
  uint64_t goal_bytes;         // the goal at the trigger check that started it
  Regime regime;
  uint64_t heap_at_trigger_bytes;
  uint64_t total_at_trigger_bytes;
  uint64_t marked_bytes;
  uint64_t pause_ns;
  bool waited;                 // the limiter held it back at least once
  // The trigger check before the one that started this cycle, if there was one since the last cycle: its heap
  // was below its goal unless the limiter held the collection back.
  bool has_prev_check;
  uint64_t prev_check_heap_bytes;
  uint64_t prev_check_goal_bytes;
};

class Simulator {
 public:
  explicit Simulator(const Scenario &s) : s_(s), limit_(s.limit_bytes), limiter_(s.cpus) {}

  void RunUntil(uint64_t t_ns) {
    while (now_ns_ < t_ns) Step();
  }
  // Runs until n cycles have completed, or until max_ns (then fewer).
  void RunCycles(size_t n, uint64_t max_ns) {
    while (cycles_.size() < n && now_ns_ < max_ns) Step();
  }

  void Step() {
    Mutate();
    TriggerCheck();
    if (limiter_.NeedsUpdate(now_ns_)) AccountWindow();
    BackgroundScavenge();
    max_total_bytes_ = std::max(max_total_bytes_, total_bytes());
  }

  // Like pgc_set_memory_limit: no collection now; the next trigger check sees the new goal.
  void SetMemoryLimit(int64_t limit_bytes) {
    limit_ = limit_bytes;
    PaceScavenger();
  }

  // The goal the next trigger check would use.
  Goal CurrentGoal() const {
    MemoryState m{total_bytes(), heap_free_bytes_, heap_alloc_bytes_, last_.heap_marked_bytes};
    return CombineGoals(GcPercentGoal(last_, s_.gc_percent), MemoryLimitGoal(m, limit_));
  }

  uint64_t now_ns() const { return now_ns_; }
  const std::vector<Cycle> &cycles() const { return cycles_; }
  const CpuLimiter &limiter() const { return limiter_; }
  uint64_t gc_cpu_ns() const { return gc_cpu_ns_; }
  uint64_t mutator_cpu_ns() const { return mutator_cpu_ns_; }
  uint64_t heap_alloc_bytes() const { return heap_alloc_bytes_; }
  uint64_t heap_free_bytes() const { return heap_free_bytes_; }
  uint64_t heap_retained_bytes() const { return heap_alloc_bytes_ + heap_free_bytes_; }
  uint64_t total_bytes() const { return heap_retained_bytes() + s_.metadata_bytes; }
  uint64_t max_total_bytes() const { return max_total_bytes_; }
  void reset_max_total_bytes() { max_total_bytes_ = total_bytes(); }
  uint64_t sync_released_bytes() const { return sync_released_bytes_; }
  uint64_t background_released_bytes() const { return background_released_bytes_; }
  uint64_t limit_retain_goal() const { return limit_retain_goal_; }
  uint64_t gc_percent_retain_goal() const { return gc_percent_retain_goal_; }
  uint64_t waits() const { return waits_; }
  uint64_t LiveTarget(uint64_t n) const {
    uint64_t live = s_.live_bytes + (n - 1) * s_.live_growth_per_cycle_bytes;
    return std::min(live, s_.live_max_bytes);
  }

 private:
  ScavengeState State() const { return ScavengeState{total_bytes(), heap_retained_bytes(), heap_free_bytes_}; }

  void ChargeGc(uint64_t gc_ns, uint64_t taken_from_mutator_ns) {
    window_gc_ns_ += gc_ns;
    gc_cpu_ns_ += gc_ns;
    uint64_t taken = std::min(taken_from_mutator_ns, window_mutator_ns_);
    window_mutator_ns_ -= taken;
    mutator_cpu_ns_ -= std::min(taken, mutator_cpu_ns_);
  }

  void Release(uint64_t bytes, uint64_t *counter) {
    bytes = std::min(bytes, heap_free_bytes_);
    heap_free_bytes_ -= bytes;
    *counter += bytes;
  }

  void Mutate() {
    const uint64_t run_ns = s_.step_ns * static_cast<uint64_t>(s_.cpus);
    now_ns_ += s_.step_ns;
    window_mutator_ns_ += run_ns;
    mutator_cpu_ns_ += run_ns;
    const uint64_t bytes = s_.alloc_bytes_per_ms * s_.step_ns / kMs;
    const uint64_t reuse = std::min(bytes - bytes * s_.fresh_percent / 100, heap_free_bytes_);
    heap_free_bytes_ -= reuse;
    heap_alloc_bytes_ += reuse;
    const uint64_t fresh = bytes - reuse;
    if (fresh > 0) {
      ScavengeState st = State();
      uint64_t release = std::max(SyncScavengeBytes(st, fresh, limit_, limiter_.enabled()),
                                  GrowthScavengeBytes(st, fresh, gc_percent_retain_goal_));
      if (release > 0) {
        Release(release, &sync_released_bytes_);
        uint64_t cost = release * s_.scavenge_ns_per_mib / MiB;
        ChargeGc(cost, cost);
      }
      heap_alloc_bytes_ += fresh;
    }
  }

  void TriggerCheck() {
    Goal g = CurrentGoal();
    if (heap_alloc_bytes_ < g.bytes) {
      has_check_ = true;
      check_heap_bytes_ = heap_alloc_bytes_;
      check_goal_bytes_ = g.bytes;
      return;
    }
    const uint64_t expected = last_pause_ns_ * static_cast<uint64_t>(s_.cpus);
    const uint64_t num_gc = cycles_.size();
    bool admit = s_.go_limiter_rule
                     ? !limiter_.enabled()
                     : DecideTrigger(heap_alloc_bytes_, g.bytes, GcPercentGoal(last_, s_.gc_percent), &limiter_,
                                     now_ns_, expected, num_gc) == TriggerDecision::kStart;
    if (!admit) {
      waited_ = true;
      ++waits_;
      has_check_ = true;
      check_heap_bytes_ = heap_alloc_bytes_;
      check_goal_bytes_ = g.bytes;
      return;
    }
    Collect(g);
  }

  void Collect(Goal g) {
    AccountWindow();  // the window up to the stop
    const uint64_t n = cycles_.size() + 1;
    const uint64_t marked = std::min(LiveTarget(n), heap_alloc_bytes_);
    const uint64_t scan = marked + s_.stack_bytes + s_.globals_bytes;
    const uint64_t pause = s_.pause_base_ns + scan / MiB * s_.mark_ns_per_mib / static_cast<uint64_t>(s_.cpus) +
                           scan % MiB * s_.mark_ns_per_mib / MiB / static_cast<uint64_t>(s_.cpus);
    cycles_.push_back(Cycle{n, now_ns_, g.bytes, g.regime, heap_alloc_bytes_, total_bytes(), marked, pause, waited_,
                            has_check_, check_heap_bytes_, check_goal_bytes_});
    waited_ = false;
    has_check_ = false;
    now_ns_ += pause;
    last_pause_ns_ = pause;
    const uint64_t gc_ns = pause * static_cast<uint64_t>(s_.cpus);
    window_gc_ns_ += gc_ns;
    gc_cpu_ns_ += gc_ns;
    // Mark termination: remember the peak, then sweep.
    last_heap_in_use_bytes_ = heap_alloc_bytes_;
    last_heap_goal_bytes_ = g.bytes;
    heap_free_bytes_ += heap_alloc_bytes_ - marked;
    heap_alloc_bytes_ = marked;
    last_ = LastCycle{marked, s_.stack_bytes, s_.globals_bytes};
    AccountWindow();  // the pause
    PaceScavenger();
  }

  // Go's gcPaceScavenger: after a cycle and when a setting changes.
  void PaceScavenger() {
    limit_retain_goal_ = MemoryLimitRetainGoal(limit_);
    gc_percent_retain_goal_ = GcPercentRetainGoal(last_heap_in_use_bytes_, CurrentGoal().bytes, last_heap_goal_bytes_);
    scavenger_wake_ns_ = now_ns_;
  }

  void AccountWindow() {
    limiter_.Account(now_ns_, window_gc_ns_, window_mutator_ns_, cycles_.size());
    window_gc_ns_ = 0;
    window_mutator_ns_ = 0;
  }

  void BackgroundScavenge() {
    if (now_ns_ < scavenger_wake_ns_) return;
    uint64_t want = BackgroundScavengeBytes(State(), limit_retain_goal_, gc_percent_retain_goal_);
    if (want == 0) {
      scavenger_wake_ns_ = now_ns_ + CpuLimiter::kUpdatePeriodNs;  // parked; poll cheaply
      return;
    }
    const uint64_t batch_max = kBackgroundMinBatchWorkNs * MiB / s_.scavenge_ns_per_mib;
    const uint64_t batch = std::min(want, batch_max);
    Release(batch, &background_released_bytes_);
    const uint64_t work = batch * s_.scavenge_ns_per_mib / MiB;
    ChargeGc(work, work);
    scavenger_wake_ns_ = now_ns_ + work + BackgroundSleepNs(work, s_.cpus);
  }

  const Scenario s_;
  int64_t limit_;
  CpuLimiter limiter_;
  uint64_t now_ns_ = 0;
  uint64_t heap_alloc_bytes_ = 0;  // object bytes = in-use pages
  uint64_t heap_free_bytes_ = 0;   // free resident pages
  LastCycle last_{};
  uint64_t last_pause_ns_ = 0;
  uint64_t last_heap_in_use_bytes_ = 0;
  uint64_t last_heap_goal_bytes_ = 0;
  uint64_t limit_retain_goal_ = UINT64_MAX;
  uint64_t gc_percent_retain_goal_ = UINT64_MAX;
  uint64_t scavenger_wake_ns_ = 0;
  uint64_t window_gc_ns_ = 0;
  uint64_t window_mutator_ns_ = 0;
  uint64_t gc_cpu_ns_ = 0;
  uint64_t mutator_cpu_ns_ = 0;
  uint64_t max_total_bytes_ = 0;
  uint64_t sync_released_bytes_ = 0;
  uint64_t background_released_bytes_ = 0;
  uint64_t waits_ = 0;
  bool waited_ = false;
  bool has_check_ = false;  // a trigger check since the last cycle, with:
  uint64_t check_heap_bytes_ = 0;
  uint64_t check_goal_bytes_ = 0;
  std::vector<Cycle> cycles_;
};

}  // namespace pacegc::pacer::sim

#endif  // PACEGC_TESTS_UNIT_PACER_SIM_H_
