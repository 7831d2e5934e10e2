// tests/unit/pacer_sim.h — a simulated program and stop-the-world collector that drive the pacer that ships: the
// very pacer::Pacer gc/pacing.cc holds, made by the same pacer::MakePacer, asked the same questions with the same
// kinds of inputs, only with simulated time, a simulated process CPU clock and a simulated heap. Test-only: it stands
// in for gc/ (the mechanism), so the policy can be checked without a heap (STYLE.md point 9, Go's TestGcPacer).
//
// The model, one step of step_ns at a time, mirroring what gc/ measures and does:
//   1. The mutator runs on all cpus (the process CPU clock advances by step × cpus) and allocates
//      alloc_bytes_per_ms. Allocation takes new spans: before each, as gc/alloc.cc does, the Pacer is asked
//      (OnSpanAlloc) how much to release first, for the whole span; then free resident pages are reused (gc/heap.h
//      hands out the pages most likely still resident), and fresh_percent of the allocation needs new pages anyway
//      (large objects no free run fits). A release costs scavenging CPU, taken from the mutator and reported to the
//      Pacer (OnScavenged), as gc/pacing.cc's ReleaseCharged does.
//   2. Trigger check (an allocation slow path): Pacer::OnTriggerCheck with the clock, the process CPU clock (read
//      only if a limiter window closes), the memory and heap_alloc. It answers start, not due, or postponed (the CPU
//      limiter held it back, and the heap keeps growing).
//   3. A collection stops the world: one collector thread (as in gc/collector.cc) marks for pause = pause_base_ns +
//      (marked + stacks + globals) × mark_ns_per_mib / MiB, using pause of CPU (the collector's CPU time) while
//      every mutator thread waits: the program loses pause × cpus. It marks min(live target, heap) bytes, sweeps the
//      rest into free resident pages, and reports the cycle (Pacer::OnCycleEnd, after the sweep, as CollectLocked
//      does). If the Pacer says there is memory to release, the background scavenger is woken.
//   4. The background scavenger (gc/pacing.cc's thread): when awake and the Pacer's BackgroundScavengeNeed is
//      non-zero, releases 64 KiB quanta until the need is met or the batch did 1 ms of work, charges that work,
//      sleeps pacer::BackgroundSleepNs. Otherwise it sleeps until woken (a cycle or a setting with memory to
//      release) or until its once-a-second refresh, which hands the CPU capacity to the Pacer again and asks
//      whether a periodic collection is due.
// The heap has no fragmentation: in-use pages = object bytes (heap_alloc). total = in-use + free resident +
// metadata_bytes (the non-heap part the limit counts). No idle time: every cpu runs the mutator, except during a
// pause. SetMemoryLimit between steps changes the limit as pgc_set_memory_limit does (through the Pacer; the
// scavenger is woken if there is memory to release, the heap goal moves at the next trigger check).
#ifndef PACEGC_TESTS_UNIT_PACER_SIM_H_
#define PACEGC_TESTS_UNIT_PACER_SIM_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "pacer/pacer.h"

namespace pacegc::pacer::sim {

constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kS = 1'000'000'000;
constexpr uint64_t kRefreshNs = kS;  // gc/pacing.cc's background thread re-reads the cgroup every second

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
  // A spike: cycles spike_first_cycle..spike_last_cycle (1-based, 0 = none) mark spike_live_bytes instead.
  uint64_t spike_live_bytes = 0;
  uint64_t spike_first_cycle = 0;
  uint64_t spike_last_cycle = 0;
  uint64_t stack_bytes = 0;
  uint64_t globals_bytes = 0;
  uint64_t metadata_bytes = 0;
  uint64_t alloc_bytes_per_ms = 1 * MiB;  // all threads together
  uint64_t fresh_percent = 0;             // % of allocation that needs new pages even when free pages exist
  uint64_t pause_base_ns = 100'000;
  uint64_t mark_ns_per_mib = 250'000;     // the one collector thread: 4 GiB/s
  uint64_t scavenge_ns_per_mib = 250'000; // madvise: 4 GiB/s
  uint64_t step_ns = 100'000;
  bool go_limiter_rule = false;  // Admission::kGoOnOff: gate collections on !enabled() only (Go's rule)
  // Uber's GOGC tuner, as bench/oomsim's worker runs it: after every cycle, pgc_set_gc_percent((tuner_percent% ×
  // tuner_cap − live) / live × 100), clamped to [10, 500]. 0 = off.
  uint64_t tuner_percent = 0;
  uint64_t tuner_cap_bytes = 0;
};

// The Pacer's settings for a scenario: what the environment would say (GOGC, GOMEMLIMIT) on a machine of s.cpus.
inline Settings SettingsFor(const Scenario &s) {
  Settings settings;
  settings.gc_percent = s.gc_percent;
  if (s.limit_bytes != kNoLimit) {
    settings.memory_limit_bytes = s.limit_bytes;
    settings.limit_source = LimitSource::kEnv;
  }
  settings.cpus = static_cast<double>(s.cpus);
  settings.admission = s.go_limiter_rule ? Admission::kGoOnOff : Admission::kExpectedCost;
  return settings;
}

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
  uint64_t background_released_before_bytes;  // released by the background scavenger before this cycle started
  uint64_t retained_after_bytes;              // heap retained after the sweep
  uint64_t retain_goal_after_bytes;           // the Pacer's GOGC retain goal after the cycle (UINT64_MAX: none)
};

class Simulator {
 public:
  explicit Simulator(const Scenario &s) : Simulator(s, SettingsFor(s)) {}
  // The program of s, paced by a Pacer made from settings (e.g. the shipped instance's).
  Simulator(const Scenario &s, const Settings &settings) : s_(s), pacer_(MakePacer(settings, 0, 0)) {}

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
    Background();
    max_total_bytes_ = std::max(max_total_bytes_, total_bytes());
  }

  // Like pgc_set_memory_limit: no collection now; the next trigger check sees the new goal.
  void SetMemoryLimit(int64_t limit_bytes) {
    pacer_.SetMemoryLimit(limit_bytes);
    if (pacer_.BackgroundScavengeNeed(Memory()) != 0) Kick();
  }

  // The goal the next trigger check would use.
  Goal CurrentGoal() const { return pacer_.CurrentGoal(Memory()); }

  // Limit events as the background thread polls them (Pacer::PollEvents with the simulated time and memory).
  EventBatch PollEvents() { return pacer_.PollEvents(now_ns_, Memory()); }

  const Pacer &pacer() const { return pacer_; }
  uint64_t now_ns() const { return now_ns_; }
  const std::vector<Cycle> &cycles() const { return cycles_; }
  const CpuLimiter &limiter() const { return pacer_.limiter(); }
  uint64_t gc_cpu_ns() const { return gc_cpu_ns_; }
  uint64_t mutator_cpu_ns() const { return mutator_cpu_ns_; }
  uint64_t heap_alloc_bytes() const { return heap_alloc_bytes_; }
  uint64_t heap_free_bytes() const { return heap_free_bytes_; }
  uint64_t heap_retained_bytes() const { return heap_alloc_bytes_ + heap_free_bytes_; }
  uint64_t total_bytes() const { return heap_retained_bytes() + s_.metadata_bytes; }
  uint64_t max_total_bytes() const { return max_total_bytes_; }
  void reset_max_total_bytes() { max_total_bytes_ = total_bytes(); }
  uint64_t sync_released_bytes() const { return sync_released_bytes_; }
  uint64_t sync_released_while_limiting_bytes() const { return sync_released_while_limiting_bytes_; }
  uint64_t sync_checks_while_limiting() const { return sync_checks_while_limiting_; }
  uint64_t background_released_bytes() const { return background_released_bytes_; }
  uint64_t limit_retain_goal() const { return MemoryLimitRetainGoal(pacer_.memory_limit_bytes()); }
  uint64_t gc_percent_retain_goal() const { return pacer_.retain_goal_bytes(); }
  uint64_t waits() const { return waits_; }
  uint64_t LiveTarget(uint64_t n) const {
    if (s_.spike_first_cycle != 0 && n >= s_.spike_first_cycle && n <= s_.spike_last_cycle) {
      return s_.spike_live_bytes;
    }
    uint64_t live = s_.live_bytes + (n - 1) * s_.live_growth_per_cycle_bytes;
    return std::min(live, s_.live_max_bytes);
  }

 private:
  MemoryState Memory() const {
    MemoryState m;
    m.total_bytes = total_bytes();
    m.heap_retained_bytes = heap_retained_bytes();
    m.heap_free_bytes = heap_free_bytes_;
    m.heap_alloc_bytes = heap_alloc_bytes_;
    return m;
  }

  // Scavenging work: a thread's CPU, taken from the mutator's cpus (the process CPU clock does not move for it).
  void ChargeScavenge(uint64_t work_ns) {
    pacer_.OnScavenged(work_ns);
    gc_cpu_ns_ += work_ns;
    mutator_cpu_ns_ -= std::min(work_ns, mutator_cpu_ns_);
  }

  // Releases up to `bytes` of free resident pages; returns the work it took.
  uint64_t Release(uint64_t bytes, uint64_t *counter) {
    bytes = std::min(bytes, heap_free_bytes_);
    heap_free_bytes_ -= bytes;
    *counter += bytes;
    return bytes * s_.scavenge_ns_per_mib / MiB;
  }

  void Mutate() {
    const uint64_t run_ns = s_.step_ns * static_cast<uint64_t>(s_.cpus);
    now_ns_ += s_.step_ns;
    process_cpu_ns_ += run_ns;
    mutator_cpu_ns_ += run_ns;
    const uint64_t bytes = s_.alloc_bytes_per_ms * s_.step_ns / kMs;
    // New spans for the step's allocation: ask first (gc/pacing.cc's BeforeSpanAlloc), then carve.
    const uint64_t release = pacer_.OnSpanAlloc(Memory(), bytes);
    if (pacer_.limiter_on()) {
      ++sync_checks_while_limiting_;
      sync_released_while_limiting_bytes_ += std::min(release, heap_free_bytes_);
    }
    if (release > 0) ChargeScavenge(Release(release, &sync_released_bytes_));
    const uint64_t reuse = std::min(bytes - bytes * s_.fresh_percent / 100, heap_free_bytes_);
    heap_free_bytes_ -= reuse;
    heap_alloc_bytes_ += bytes;
  }

  void TriggerCheck() {
    const MemoryState m = Memory();
    const Goal g = pacer_.CurrentGoal(m);
    const TriggerDecision d = pacer_.OnTriggerCheck(now_ns_, [this] { return process_cpu_ns_; }, m, heap_alloc_bytes_);
    if (d == TriggerDecision::kStart) {
      Collect(g);
      return;
    }
    if (d == TriggerDecision::kPostponed) {
      waited_ = true;
      ++waits_;
    }
    has_check_ = true;
    check_heap_bytes_ = heap_alloc_bytes_;
    check_goal_bytes_ = g.bytes;
  }

  void Collect(Goal g) {
    const uint64_t n = cycles_.size() + 1;
    const uint64_t marked = std::min(LiveTarget(n), heap_alloc_bytes_);
    const uint64_t scan = marked + s_.stack_bytes + s_.globals_bytes;
    const uint64_t pause = s_.pause_base_ns + scan / MiB * s_.mark_ns_per_mib + scan % MiB * s_.mark_ns_per_mib / MiB;
    cycles_.push_back(Cycle{n, now_ns_, g.bytes, g.regime, heap_alloc_bytes_, total_bytes(), marked, pause, waited_,
                            has_check_, check_heap_bytes_, check_goal_bytes_, background_released_bytes_, 0, 0});
    waited_ = false;
    has_check_ = false;
    // The world is stopped: one collector thread runs, every mutator thread waits.
    now_ns_ += pause;
    process_cpu_ns_ += pause;
    gc_cpu_ns_ += pause * static_cast<uint64_t>(s_.cpus);
    const uint64_t in_use_at_mark = heap_alloc_bytes_;
    heap_free_bytes_ += heap_alloc_bytes_ - marked;
    heap_alloc_bytes_ = marked;
    CycleReport r;
    r.pause_ns = pause;
    r.collector_cpu_ns = pause;
    r.heap_marked_bytes = marked;
    r.stack_scan_bytes = s_.stack_bytes;
    r.globals_scan_bytes = s_.globals_bytes;
    r.heap_in_use_at_mark = in_use_at_mark;
    r.num_gc = n;
    const CycleOutcome out = pacer_.OnCycleEnd(now_ns_, process_cpu_ns_, r, Memory());
    cycles_.back().retained_after_bytes = heap_retained_bytes();
    cycles_.back().retain_goal_after_bytes = pacer_.retain_goal_bytes();
    if (!bg_started_) {  // started by the first cycle; its first pass runs at once
      bg_started_ = true;
      next_refresh_ns_ = now_ns_ + kRefreshNs;
      scavenger_wake_ns_ = now_ns_;
    }
    if (out.scavenge_need_bytes != 0) Kick();
    if (s_.tuner_percent != 0 && marked != 0) {  // the program's per-cycle hook, as pgc_set_gc_percent does it
      const double target = static_cast<double>(s_.tuner_percent) / 100.0 * static_cast<double>(s_.tuner_cap_bytes);
      const double gogc = (target - static_cast<double>(marked)) / static_cast<double>(marked) * 100.0;
      pacer_.SetGcPercent(static_cast<int>(std::clamp(gogc, 10.0, 500.0)));
      Kick();
    }
  }

  // gc/pacing.cc's Kick: wakes the background thread if it sleeps until woken; one sleeping after a batch finishes
  // that sleep, and the kick makes its next "sleep until woken" return at once.
  void Kick() {
    if (!bg_started_) return;
    if (sleeping_after_batch_) {
      kicked_ = true;
    } else {
      scavenger_wake_ns_ = std::min(scavenger_wake_ns_, now_ns_);
    }
  }

  // gc/pacing.cc's background thread (BackgroundMain), one pass of its loop when it is awake.
  void Background() {
    if (!bg_started_ || now_ns_ < scavenger_wake_ns_) return;
    if (now_ns_ >= next_refresh_ns_) {  // the cgroup re-read: the capacity handed to the Pacer again
      pacer_.OnCpuCapacity(static_cast<double>(s_.cpus), now_ns_);
      next_refresh_ns_ = now_ns_ + kRefreshNs;
    }
    if (pacer_.PeriodicGcDue(now_ns_)) Collect(pacer_.CurrentGoal(Memory()));
    uint64_t work = 0;
    for (;;) {  // one batch: 64 KiB quanta until the need is met or 1 ms of work is done
      const uint64_t need = pacer_.BackgroundScavengeNeed(Memory());
      if (need != 0) {
        const uint64_t w = Release(std::min(need, kScavengeQuantumBytes), &background_released_bytes_);
        ChargeScavenge(w);
        work += w;
      }
      if (need == 0 || work >= kBackgroundMinBatchWorkNs) break;
    }
    sleeping_after_batch_ = work != 0;
    if (work != 0) {
      scavenger_wake_ns_ = now_ns_ + work + BackgroundSleepNs(work, static_cast<double>(s_.cpus));
    } else if (kicked_) {
      kicked_ = false;
      scavenger_wake_ns_ = now_ns_;  // (the next step)
    } else {
      scavenger_wake_ns_ = std::min(next_refresh_ns_, pacer_.NextPeriodicGcNs());  // or until woken
    }
  }

  const Scenario s_;
  Pacer pacer_;
  uint64_t now_ns_ = 0;
  uint64_t process_cpu_ns_ = 0;    // the simulated process CPU clock: mutator threads and the collector
  uint64_t heap_alloc_bytes_ = 0;  // object bytes = in-use pages
  uint64_t heap_free_bytes_ = 0;   // free resident pages
  bool bg_started_ = false;         // the background thread starts with the first cycle
  uint64_t scavenger_wake_ns_ = 0;  // when it next runs a pass of its loop
  bool sleeping_after_batch_ = false;
  bool kicked_ = false;
  uint64_t next_refresh_ns_ = 0;
  uint64_t gc_cpu_ns_ = 0;        // CPU the program lost to GC: pauses × cpus, and scavenging
  uint64_t mutator_cpu_ns_ = 0;
  uint64_t max_total_bytes_ = 0;
  uint64_t sync_released_bytes_ = 0;
  uint64_t sync_released_while_limiting_bytes_ = 0;  // released on span allocation while the limiter was on
  uint64_t sync_checks_while_limiting_ = 0;           // span allocations while the limiter was on
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
