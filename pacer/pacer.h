// pacer/pacer.h — the Pacer: all pacing state in one object, and the few questions the collector asks it (Go's
// gcControllerState in spirit). Pure policy: no clocks, no globals, no locks, no memory of its own to manage; every
// measurement is an argument. gc/pacing.cc holds the one instance that ships and measures, asks and acts; the
// simulator (tests/unit/pacer_sim.h) drives the very same class with simulated time and a simulated heap. Both build
// it with MakePacer(Settings), so a simulation tests what ships (tests/unit/pacer_sim_test.cc checks the shipped
// instance's Settings() against the simulator's).
//
// What it holds, and who changes it:
//   settings      GOGC, the soft memory limit and who set it (LimitSource), PACEGC_AUTOMEMLIMIT's ratio and the
//                 cgroup memory limit it applies to, the CPU limiter on/off, the CPU capacity, the periodic period.
//                 Changed by SetGcPercent / SetMemoryLimit (Go's semantics: each returns the old value),
//                 OnCgroupMemoryLimit, OnCpuCapacity.
//   goal inputs   the last cycle (marked, stack and globals bytes scanned) and the GOGC goal computed from it
//                 (pacer/goal.h, once per cycle and on a GOGC change). The memory-limit goal (pacer/limit.h) is
//                 recomputed from the MemoryState passed to every question: it moves with memory use, so a lowered
//                 limit takes effect at the next trigger check.
//   the limiter   the CPU limiter (pacer/limiter.h: bucket, on/off) and its accounting window: process CPU time when
//                 it opened, pause wall time, GC CPU charged and the collector's and scavenger's own CPU in it. A
//                 window closes at the first trigger check kUpdatePeriodNs after the last, and at every cycle's end;
//                 a cycle gc/ begins with OnCycleBegin is one window, however long it runs.
//                 Mutator CPU = process CPU − own CPU, where own CPU includes other threads' CPU in the pauses
//                 (CycleReport::pause_others_cpu_ns: the mark thread and helpers). The mutator's parallelism
//                 (ParallelismEstimate) prices the next pause (PauseChargeNs); the last charge is the next
//                 collection's expected cost, which sizes the bucket (LimiterCapacityNs) and gates admission
//                 (AdmitCollection).
//   postponements collections due that the limiter held back (DecideTrigger), counted.
//   scavenger     the GOGC retain goal, recomputed at every cycle's end: Go's (the in-use bytes at this mark scaled by
//                 how the goal moved, + 10%) but never below the highest in-use-at-mark of the last kRetainCycles
//                 cycles + 10% (see OnCycleEnd); the limit's retain goal (95% of the limit) follows the setting.
//                 The background need is max(total − limit retain goal, retained − GOGC retain goal), whole pages,
//                 at most the free resident bytes. Scavenging CPU is charged to the limiter as GC time.
//   periodic GC   the time of the last cycle's end; a collection is due when periodic_gc_ns passed without one and
//                 GOGC is on (Go's forcegcperiod).
//   hard cap      the optional hard memory limit (PACEGC_HARD_MEMLIMIT / pgc_set_hard_memory_limit; kNoLimit =
//                 none). gc/ enforces it (base/hardcap.h); the Pacer paces against min(soft limit, hard cap), so a
//                 soft limit above the cap (or none) is clamped for pacing, and counts the allocations that hit
//                 it (OnHardLimitHit). The soft limit itself is kept and reported as set.
//   limit events  which edges the program has been told of (PollEvents, below): the policy of pgc_event.
//   CPU capacity  integrated over wall time (the denominator of Go's GCCPUFraction when the capacity changed).
//
// The questions (each with the inputs gc/ measured):
//   OnTriggerCheck(now, process CPU reader, memory, heap bytes) → kNotDue / kStart / kPostponed
//   OnCycleEnd(now, process CPU, report, memory)                → the cycle's Go-style GC CPU, the scavenging need
//   OnSpanAlloc(memory, bytes)                                  → bytes to release before carving a new span
//   BackgroundScavengeNeed(memory), PeriodicGcDue(now), NextPeriodicGcNs()
//   ManualReleaseDue(memory, now) / OnManualRelease(now, ...)   → ask the drop-in's allocator for its free pages
//   OnScavenged(work_ns)                                        → the scavenger's CPU, charged as GC time
//   Stats(now, memory)                                          → the pacer's part of pgc_stats and gcpacertrace
//   PollEvents(now, memory), OnHardLimitHit(failed)             → the limit events to deliver now (see below)
//
// Not thread-safe: the caller serialises (gc/ holds the heap lock around every call).
#ifndef PACEGC_PACER_PACER_H_
#define PACEGC_PACER_PACER_H_

#include <cstdint>

#include "pacer/config.h"
#include "pacer/goal.h"
#include "pacer/limit.h"
#include "pacer/limiter.h"
#include "pacer/scavenge.h"
#include "pacer/trigger.h"

namespace pacegc::pacer {

constexpr uint64_t kPeriodicGcNs = uint64_t{120} * 1'000'000'000;  // Go's forcegcperiod: 2 minutes

// How many cycles' peaks the GOGC retain goal never goes below (see OnCycleEnd).
constexpr int kRetainCycles = 4;

// Who set the soft limit (pgc_stats.memory_limit_source: the same numbers as PGC_MEMORY_LIMIT_*).
enum class LimitSource : uint32_t {
  kNone = 0,    // no limit: GOMEMLIMIT unset and no cgroup memory limit, or PACEGC_AUTOMEMLIMIT=off
  kEnv = 1,     // GOMEMLIMIT (set and not empty; "off" included)
  kApi = 2,     // pgc_set_memory_limit
  kCgroup = 3,  // PACEGC_AUTOMEMLIMIT × the cgroup memory limit
};
const char *LimitSourceName(LimitSource s);  // "none", "env", "api", "cgroup"

// What gates a due collection. kExpectedCost ships: the limiter admits a collection only if the bucket has room for
// its expected cost (CpuLimiter::AdmitCollection). kGoOnOff is Go's rule alone (start unless the limiter is on),
// which a stop-the-world collector's long pauses defeat; it exists so the simulation can show why (pacer_sim_test).
enum class Admission { kExpectedCost, kGoOnOff };

// Everything a Pacer is made from. The shipped instance gets it from the environment and the cgroup at start-up
// (gc/pacing.cc); the simulator from its scenario.
struct Settings {
  int gc_percent = 100;                    // GOGC; < 0 = off (stored as -1)
  int64_t memory_limit_bytes = kNoLimit;   // GOMEMLIMIT (or the API), used when limit_source is kEnv or kApi
  LimitSource limit_source = LimitSource::kNone;
  double auto_ratio = kDefaultAutoMemoryLimitRatio;  // PACEGC_AUTOMEMLIMIT; 0 = off
  uint64_t cgroup_memory_bytes = 0;        // the cgroup memory limit; 0 = none
  bool cpu_limiter = true;                 // PACEGC_CPU_LIMITER
  double cpus = 1.0;                       // the CPU capacity (gc/cgroup.h)
  uint64_t periodic_gc_ns = kPeriodicGcNs;
  Admission admission = Admission::kExpectedCost;
  int64_t hard_limit_bytes = kNoLimit;     // PACEGC_HARD_MEMLIMIT; kNoLimit = none

  bool operator==(const Settings &o) const {
    return gc_percent == o.gc_percent && memory_limit_bytes == o.memory_limit_bytes &&
           limit_source == o.limit_source && auto_ratio == o.auto_ratio &&
           cgroup_memory_bytes == o.cgroup_memory_bytes && cpu_limiter == o.cpu_limiter && cpus == o.cpus &&
           periodic_gc_ns == o.periodic_gc_ns && admission == o.admission &&
           hard_limit_bytes == o.hard_limit_bytes;
  }
  bool operator!=(const Settings &o) const { return !(*this == o); }
};

// What one cycle measured, reported when it has ended (after the sweep that follows its last pause).
struct CycleReport {
  uint64_t pause_ns;
  uint64_t collector_cpu_ns;     // CPU time of the collecting thread during the cycle's pauses
  uint64_t heap_marked_bytes;
  uint64_t stack_scan_bytes;
  uint64_t globals_scan_bytes;
  uint64_t heap_in_use_at_mark;  // in-use heap bytes before the sweep (what the heap needed at its peak)
  uint64_t num_gc;               // completed cycles, this one included
  // The collecting thread's CPU while the world ran: the sweep after the last pause, and in a concurrent cycle the
  // marking, re-scans and protection. Charged one to one, not scaled like collector_cpu_ns (the pauses' CPU): the
  // program's threads ran meanwhile.
  uint64_t concurrent_cpu_ns = 0;
  // The mark thread's CPU while the world ran (a concurrent cycle's background marking): charged for the share of a
  // core the program would have used (BackgroundChargeNs, limiter.h "Background marking").
  uint64_t background_thread_cpu_ns = 0;
  // The CPU other threads used during the cycle's pauses: the mark thread and helpers marking in the pause, parked
  // threads spinning for the resume, and whatever a thread outside the stop ran. Neither the program's nor charged
  // (the pause's charge, PauseChargeNs, already prices what the program lost): it is kept out of the mutator CPU,
  // which drains the limiter's bucket and sets the parallelism estimate.
  uint64_t pause_others_cpu_ns = 0;
  // Bytes the program allocated since the previous cycle's end (this cycle's marking included): with the mutator CPU
  // over the same time, the allocation rate of the cons/mark estimate (trigger.h).
  uint64_t allocated_bytes = 0;
  // A runway cycle (0 otherwise): what the program would have allocated from its start to its end had no thread
  // waited at the goal (its allocation rate before the first wait × the cycle's length).
  uint64_t runway_alloc_bytes = 0;
  double runway_utilization = 0;  // and the share of the CPU its background marking was paced to
};

// OnCycleEnd's answer.
struct CycleOutcome {
  uint64_t go_gc_cpu_ns;           // the cycle's GC CPU as pgc_stats.gc_cpu_ns counts it (pause × capacity)
  uint64_t scavenge_need_bytes;    // what the background scavenger should release now (0: nothing)
};

// The pacer's part of pgc_stats, declared once: X(type, pgc_stats field, what it is). gc/stats.h generates the copy
// into pgc_stats from this list, as it does for the collector's own counters.
#define PACEGC_PACER_STATS(X)                                                                             \
  X(int, gc_percent, "GOGC; -1 = off")                                                                  \
  X(int64_t, memory_limit_bytes, "the soft memory limit; kNoLimit = none")                              \
  X(uint32_t, memory_limit_source, "who set it: a LimitSource")                                         \
  X(double, automemlimit_ratio, "PACEGC_AUTOMEMLIMIT's ratio; 0 = off")                                 \
  X(uint64_t, heap_goal_bytes, "the goal in force (the lower of the GOGC and limit goals)")             \
  X(uint64_t, heap_live_bytes, "bytes the last cycle marked")                                           \
  X(uint64_t, last_stack_scan_bytes, "stack bytes the last cycle scanned")                              \
  X(uint64_t, last_globals_scan_bytes, "data/bss and registered-range bytes the last cycle scanned")    \
  X(uint64_t, limiter_enabled, "1 while the CPU limiter is active and on, else 0")                      \
  X(uint64_t, limiter_last_enabled_cycle, "num_gc + 1 when the limiter last turned on; 0 = never")      \
  X(uint64_t, limiter_enabled_ns, "total time the limiter has been on")                                 \
  X(uint64_t, limiter_postponed, "due collections the limiter postponed")                               \
  X(uint64_t, scavenge_cpu_ns, "CPU time spent returning memory to the OS")                             \
  X(uint64_t, num_periodic_gc, "collections started because periodic_gc_ns passed without one")         \
  X(int64_t, hard_memory_limit_bytes, "the hard memory limit; kNoLimit = none")                         \
  X(uint64_t, hard_limit_gc, "allocations at the hard limit saved by a forced collection")              \
  X(uint64_t, hard_limit_failures, "allocations refused at the hard limit (NULL / ENOMEM)")

// The pacer's part of pgc_stats (the list above), and what the gcpacertrace line adds.
struct PacerStats {
#define PACEGC_PACER_STATS_MEMBER(type, name, doc) type name;
  PACEGC_PACER_STATS(PACEGC_PACER_STATS_MEMBER)
#undef PACEGC_PACER_STATS_MEMBER
  // gcpacertrace only.
  uint64_t gc_percent_goal_bytes;  // kNoGoal = none
  uint64_t limit_goal_bytes;       // UINT64_MAX = none
  Regime regime;                   // of the goal in force
  bool limiter_active;             // PACEGC_CPU_LIMITER is not "off"
  uint64_t limiter_fill_ns;
  uint64_t limiter_capacity_ns;
  double cpus;
  // The concurrent trigger (trigger.h) for the goal in force.
  uint64_t trigger_bytes;  // where the next concurrent cycle starts (the goal: no runway)
  uint64_t runway_bytes;   // Go's runway, unclamped (0: none computed)
  bool runway_fits;
  double cons_mark;        // the estimate (0: none yet)
  double last_cons_mark;   // the last cycle's measurement (0: not measured)
};

// ---- Limit events (pgc_event) -----------------------------------------------------------------------------------
// The program may be told when the pacer's state crosses a line (golang/go#59324 asks for the limiter's). Which
// crossings, and how often, is policy, so it is here; gc/pacing.cc polls (heap lock held, on the background thread,
// at least every second and after every cycle while a callback is set) and delivers the answer with no lock held.
// Edge-triggered: each kind fires once per crossing, never because a state persists. With hysteresis, so a state
// that flaps does not produce a storm:
//   LIMITER_ON   the CPU limiter is on and the program was last told it was off (or nothing).
//   LIMITER_OFF  the program was told ON, and the limiter has been seen off at every poll for kEventHoldNs since.
//                The limiter itself flips off at the first window with net mutator CPU and back on at the next
//                refused collection (limiter.h): under a spiral it changes state every few milliseconds, and an
//                edge per flip was exactly the storm to avoid. So at most one ON/OFF pair per kEventHoldNs.
//   OVER_LIMIT   what the limit counts (MemoryState::total_bytes) is above the soft limit, and the program was last
//                told UNDER (or nothing).
//   UNDER_LIMIT  the program was told OVER, and total_bytes has been at or below kUnderLimitRatio × the soft limit
//                at every poll for kEventHoldNs (a heap that hovers at the limit does not fire pairs). Removing or
//                raising the limit far enough counts as under.
//   HARD_LIMIT   an allocation hit the hard cap (refused, or saved only by a forced collection): OnHardLimitHit.
//                Hits are counted (stats) and delivered trailing-edge: the first at once, later ones at most one
//                event per kEventHoldNs, none lost (hits inside the hold make one event when it ends).
// State starts as "told nothing": limiter off, under the limit. ResetEvents (a new callback) returns to it, so the
// new callback hears of a state that already holds through its edge.
enum class EventKind : uint32_t {  // the same numbers as PGC_EVENT_*
  kLimiterOn = 1,
  kLimiterOff = 2,
  kOverLimit = 3,
  kUnderLimit = 4,
  kHardLimit = 5,
};
constexpr uint64_t kEventHoldNs = 1'000'000'000;
constexpr double kUnderLimitRatio = 0.95;

// PollEvents' answer: the events to deliver now, in order.
struct EventBatch {
  uint32_t n = 0;
  EventKind kinds[5] = {};
};

class Pacer {
 public:
  // An empty pacer (GOGC=100, no limit, one CPU) that is constant-initialised, so a global instance is ready before
  // any dynamic initialiser runs; gc/ assigns MakePacer's result at start-up.
  constexpr Pacer() : limiter_(1.0) {}

  // The settings in force, as a Settings: what MakePacer(Settings()) would rebuild (state aside).
  Settings settings() const;

  // The goal in force for this memory.
  Goal CurrentGoal(const MemoryState &m) const;

  // The allocation slow path's trigger check: heap_bytes (allocated + what the slow path is about to claim) against
  // the goal in force. Closes the limiter's window first if one is due, reading the process CPU time through
  // read_process_cpu_ns() only then (it is a system call; the check runs on every slow path).
  template <typename ReadProcessCpuNs>
  TriggerDecision OnTriggerCheck(uint64_t now_ns, ReadProcessCpuNs &&read_process_cpu_ns, const MemoryState &m,
                                 uint64_t heap_bytes) {
    if (cpu_limiter_ && !cycle_open_ && limiter_.NeedsUpdate(now_ns)) CloseWindow(now_ns, read_process_cpu_ns());
    return Decide(now_ns, m, heap_bytes);
  }

  // The start of a cycle the program runs beside (gc/ calls it for runway cycles), before its tracking begins:
  // closes the limiter's window, and the next one stays open until OnCycleEnd (or OnCycleAbandoned), however long
  // the cycle runs; that window says nothing of the program's parallelism. A cycle's CPU is known only at its end,
  // and charged then; windows closed inside it counted the collector's CPU as the program's (draining a bucket that
  // was empty, and raising the parallelism estimate to ~2, by which background marking is charged), and the end then
  // charged all of it at once: a runway cycle of 3.3 s on pacegc-bg filled the bucket by 3.5 s although the
  // program's own thread ran beside it the whole time, the limiter turned on, and the next cycles were postponed
  // past the goal (docs/BENCHMARKS.md, "The limiter's window over a runway cycle"). One window nets the two.
  // A cycle at the goal, where the program's allocating threads wait, gets no window of its own: given one in a
  // first try, the concurrent stress tests' limiter was on after 40 of 113 cycles in one run, where the base had 11
  // and 28 in two; not measured further.
  void OnCycleBegin(uint64_t now_ns, uint64_t process_cpu_ns);
  // A cycle given up before its end (gc/collector.cc: out of memory for the root table): windows close again at
  // trigger checks. What it used is charged nowhere, as before its window began.
  void OnCycleAbandoned() { cycle_open_ = false; }
  // The end of a cycle (the world runs again): records what it measured, recomputes the GOGC goal, charges the
  // limiter and closes its window, and recomputes the scavenger's GOGC retain goal.
  CycleOutcome OnCycleEnd(uint64_t now_ns, uint64_t process_cpu_ns, const CycleReport &r, const MemoryState &m);
  // What OnCycleEnd charges the limiter for a cycle whose collector used collector_cpu_ns: × the mutator's
  // parallelism (1..capacity).
  uint64_t CycleChargeNs(uint64_t collector_cpu_ns) const;

  // The concurrent trigger for this memory (trigger.h): Go's runway below the goal in force, from the cons/mark
  // estimate and the last cycle's scan work.
  Runway ConcurrentTrigger(const MemoryState &m) const;
  // Should a concurrent cycle start now, below the goal, with heap_bytes allocated? Only where the runway fits, and
  // not while the CPU limiter is on (it would postpone the collection; Go skips assists then and so does pacegc).
  // At the goal the ordinary check (OnTriggerCheck) applies.
  bool RunwayDue(const MemoryState &m, uint64_t heap_bytes) const;
  // A runway cycle's mark assists (trigger.h), the cycle having begun with start_heap bytes in the heap and its
  // expected scan work the last cycle's, against the goal in force: the assist ratio, and the scan work an
  // allocating thread should do now with scan_done scanned and heap_bytes in the heap.
  double AssistRatio(const MemoryState &m, uint64_t start_heap) const;
  uint64_t AssistScanBytes(const MemoryState &m, uint64_t start_heap, uint64_t scan_done, uint64_t heap_bytes) const;

  // Before the heap carves a new span of `bytes`: bytes to release first (synchronous scavenging for the limit).
  uint64_t OnSpanAlloc(const MemoryState &m, uint64_t bytes) const;
  // Bytes the background scavenger should release now.
  uint64_t BackgroundScavengeNeed(const MemoryState &m) const;
  // work_ns of scavenging CPU (any kind): counted, and charged to the limiter as GC time.
  void OnScavenged(uint64_t work_ns);
  // The drop-in allocator's free pages (scavenge.h, ManualReleaseDue): due now, and how much is over? A request
  // made at now_ns that returned `released` bytes of `excess` sets the next interval (its CPU goes through
  // OnScavenged).
  uint64_t ManualExcess(const MemoryState &m) const {
    return ManualExcessBytes(m, MemoryLimitRetainGoal(PacingLimitBytes()));
  }
  bool ManualReleaseDue(const MemoryState &m, uint64_t now_ns) const {
    return pacer::ManualReleaseDue(m, MemoryLimitRetainGoal(PacingLimitBytes()), now_ns, last_manual_release_ns_,
                                   manual_release_interval_ns_);
  }
  void OnManualRelease(uint64_t now_ns, uint64_t released, uint64_t excess) {
    last_manual_release_ns_ = now_ns == 0 ? 1 : now_ns;
    manual_release_interval_ns_ = NextManualReleaseIntervalNs(manual_release_interval_ns_, released, excess);
  }

  // Periodic collection: due at now_ns? (GOGC on, periodic_gc_ns since the last cycle's end.) Counts it if so.
  bool PeriodicGcDue(uint64_t now_ns);
  uint64_t NextPeriodicGcNs() const { return last_cycle_end_ns_ + periodic_gc_ns_; }
  void SetPeriodicGcNs(uint64_t period_ns) { periodic_gc_ns_ = period_ns == 0 ? kPeriodicGcNs : period_ns; }

  // Settings. Go's semantics: the old value is returned; a negative percent is off (-1); a negative limit only
  // queries, otherwise the source becomes kApi.
  int SetGcPercent(int percent);
  int64_t SetMemoryLimit(int64_t bytes);
  // A newly read cgroup memory limit (0 = none). Moves a limit derived from it (unless GOMEMLIMIT or the API set
  // one); returns true if the limit or its source changed.
  bool OnCgroupMemoryLimit(uint64_t cgroup_bytes);
  // A newly read CPU capacity at now_ns: resizes the limiter's bucket, and keeps integrating the capacity.
  void OnCpuCapacity(double cpus, uint64_t now_ns);

  // The hard cap (kNoLimit = none). Go's setter semantics: the old value is returned, a negative value queries.
  int64_t SetHardLimit(int64_t bytes);
  int64_t hard_limit_bytes() const { return hard_limit_bytes_; }
  // The limit pacing works towards: the lower of the soft limit and the hard cap.
  int64_t PacingLimitBytes() const { return hard_limit_bytes_ < memory_limit_bytes_ ? hard_limit_bytes_ : memory_limit_bytes_; }

  // Limit events (see above). An allocation hit the hard cap at now_ns: failed (refused) or saved by a forced
  // collection. Counted; an event is pending.
  void OnHardLimitHit(uint64_t now_ns, bool failed);
  // The events to deliver at now_ns for this memory; updates what the program has been told.
  EventBatch PollEvents(uint64_t now_ns, const MemoryState &m);
  // A cheap check for the mechanism (no state changes): is there an edge PollEvents would act on now? (The limiter
  // turned on or off since the last poll, or a hard-limit hit waits.) gc/ wakes the background thread on it.
  bool EventsMayBeDue() const { return limiter_on() != told_limiter_on_ || hard_pending_; }
  // Back to "told nothing" (a new callback).
  void ResetEvents();

  // GC CPU over the CPU time available from start-up to now_ns (Go's GCCPUFraction).
  double GcCpuFraction(uint64_t gc_cpu_ns, uint64_t now_ns) const;

  PacerStats Stats(uint64_t now_ns, const MemoryState &m) const;

  int gc_percent() const { return gc_percent_; }
  int64_t memory_limit_bytes() const { return memory_limit_bytes_; }
  LimitSource limit_source() const { return limit_source_; }
  double cpus() const { return cpus_; }
  bool limiter_on() const { return cpu_limiter_ && limiter_.enabled(); }
  const CpuLimiter &limiter() const { return limiter_; }
  const LastCycle &last_cycle() const { return last_; }
  uint64_t gc_percent_goal_bytes() const { return gc_percent_goal_; }
  uint64_t retain_goal_bytes() const { return retain_goal_; }  // UINT64_MAX: none yet
  uint64_t expected_cycle_gc_cpu_ns() const { return expected_cycle_gc_cpu_ns_; }
  double parallelism() const { return parallelism_.value(); }

 private:
  friend Pacer MakePacer(const Settings &s, uint64_t now_ns, uint64_t process_cpu_ns);

  TriggerDecision Decide(uint64_t now_ns, const MemoryState &m, uint64_t heap_bytes);
  // observe_parallelism: the window is the program's alone (not a cycle's, where its threads may have waited for
  // the collector), so its mutator CPU per wall second measures the program's parallelism.
  void CloseWindow(uint64_t now_ns, uint64_t process_cpu_ns, bool observe_parallelism = true);

  // Settings in force.
  int gc_percent_ = 100;
  int64_t memory_limit_bytes_ = kNoLimit;
  LimitSource limit_source_ = LimitSource::kNone;  // who set memory_limit_bytes_
  double auto_ratio_ = kDefaultAutoMemoryLimitRatio;
  uint64_t cgroup_memory_bytes_ = 0;  // as last read; the default of the limit while the source is kNone/kCgroup
  bool cpu_limiter_ = true;
  double cpus_ = 1.0;
  uint64_t periodic_gc_ns_ = kPeriodicGcNs;
  Admission admission_ = Admission::kExpectedCost;

  // CPU capacity integrated over wall time up to capacity_since_ns_.
  double capacity_ns_ = 0;
  uint64_t capacity_since_ns_ = 0;

  // The last cycle, as the pacer sees it.
  LastCycle last_{};
  // The last cycle's scan work (heap + stacks + globals): what the next is expected to scan.
  uint64_t LastScanWork() const { return last_.heap_marked_bytes + last_.stack_scan_bytes + last_.globals_scan_bytes; }
  uint64_t gc_percent_goal_ = kDefaultHeapMinimumBytes;  // recomputed per cycle and on SetGcPercent
  uint64_t num_gc_ = 0;
  uint64_t last_cycle_end_ns_ = 0;  // the pacer's creation before the first cycle

  // GC CPU limiter and its current accounting window.
  CpuLimiter limiter_;
  bool cycle_open_ = false;             // a cycle began (OnCycleBegin) and has not ended: its window stays open
  uint64_t window_start_ns_ = 0;        // when the window opened
  uint64_t window_process_cpu_ns_ = 0;  // process CPU time when the window opened
  uint64_t window_pause_ns_ = 0;        // wall time of pauses in the window
  uint64_t window_gc_cpu_ns_ = 0;       // GC CPU charged in the window (pauses, scavenging)
  uint64_t window_own_cpu_ns_ = 0;      // CPU the collector and scavenger used themselves in the window (and
                                        // other threads in its pauses)
  uint64_t expected_cycle_gc_cpu_ns_ = 0;  // the last cycle's charge: what the next one is expected to cost
  ParallelismEstimate parallelism_{};    // cores the program uses outside pauses: what a pause costs it
  uint64_t postponed_ = 0;

  // The concurrent trigger's estimate, and what it measures the program's CPU with: the process CPU at the last
  // cycle's end and the scavenger's CPU since (the cycle's own is in its report).
  ConsMarkEstimate cons_mark_{};
  double last_cons_mark_ = 0;
  uint64_t end_process_cpu_ns_ = 0;
  uint64_t scavenge_cpu_since_end_ns_ = 0;

  // Scavenger.
  uint64_t scavenge_cpu_ns_ = 0;
  uint64_t last_manual_release_ns_ = 0;       // OnManualRelease; 0 = never
  uint64_t manual_release_interval_ns_ = kManualReleaseIntervalNs;
  uint64_t retain_goal_ = UINT64_MAX;         // GOGC retain goal (heap bytes), UINT64_MAX = none yet
  uint64_t recent_in_use_[kRetainCycles] = {};  // in-use heap bytes at the mark of the last kRetainCycles cycles
  uint64_t last_goal_bytes_ = 0;              // the goal in force at the end of the previous cycle
  uint64_t num_periodic_gc_ = 0;

  // Hard cap.
  int64_t hard_limit_bytes_ = kNoLimit;
  uint64_t hard_limit_gc_ = 0;        // hits saved by a forced collection
  uint64_t hard_limit_failures_ = 0;  // hits refused

  // Limit events: what the program was last told, and since when the opposite has held.
  bool told_limiter_on_ = false;
  uint64_t limiter_off_since_ns_ = 0;  // while told ON: first poll that saw the limiter off (0: not off)
  bool told_over_ = false;
  uint64_t under_since_ns_ = 0;        // while told OVER: first poll at or below the UNDER line (0: not under)
  bool hard_pending_ = false;          // hits not yet delivered
  bool hard_told_ = false;             // a HARD_LIMIT event was delivered at last_hard_event_ns_
  uint64_t last_hard_event_ns_ = 0;
};

// The one way to make a Pacer, for the shipped instance and the simulator alike. now_ns and process_cpu_ns open the
// first limiter window and start the periodic timer and the capacity integral.
Pacer MakePacer(const Settings &s, uint64_t now_ns, uint64_t process_cpu_ns);

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_PACER_H_
