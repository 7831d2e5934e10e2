// pacer/limiter.h — the GC CPU limiter: a leaky bucket that notices when collection takes more than half of the
// CPU and tells the collector to stop paying for the heap goal. Pure policy: no memory, no clocks, no globals; the
// caller passes the time and the CPU it measured, so it is tested with injected time (tests/unit/
// pacer_limiter_test.cc, pacer_sim_test.cc).
//
// Go's behaviour (mgclimit.go, Go 1.19+):
//   capacity = GOMAXPROCS × 1 CPU-second. The bucket fills with GC CPU time and drains 1:1 with mutator CPU time
//   (idle time counts as neither: an idle machine must not hide a collector that thrashes). The caller accounts
//   windows of at most kUpdatePeriodNs of activity, and at every stop-the-world boundary.
//   accumulate(gc, mutator):
//     change = gc − mutator
//     if change > 0 and headroom ≤ change:  fill = capacity, overflow += change − headroom,
//                                           turn on (last_enabled_cycle = num_gc + 1 on the off→on edge)
//     else:                                 fill = max(fill + change, 0)      (credit is never banked below 0)
//                                           if on and change ≠ 0: turn off    (the first window with net drain)
//   So the limiter is on exactly while GC has used more than 50% of the non-idle CPU for a whole bucket's worth
//   of time, and off again as soon as the mutator gets a window to itself.
//
// Where pacegc differs:
//   - Go has no pause to account: its GC CPU is 25% background marking plus assists, spread finely over windows,
//     and limiting means skipping assists. pacegc stops the world, so a pause counts as pause × cpus of GC time and
//     arrives as one lump; limiting means the next collection waits (the heap grows past its goal and past the
//     soft limit — intended, as in Go). Scavenging for the limit counts as GC time, as in Go.
//   - With lumps, Go's on/off rule alone does not bound GC at 50%: a pause longer than one drain window refills
//     the bucket and overflows every time, and the collector runs P / (P + 10 ms) of the time (80% for a 40 ms
//     pause). AdmitCollection() adds the rule a stop-the-world collector needs: a collection due now starts only
//     if the bucket has room for its expected cost (last pause × cpus), or is empty (so a pause longer than the
//     whole bucket still makes progress). Otherwise it would overflow the bucket, which is exactly Go's condition
//     for turning on, predicted instead of observed: the limiter turns on (recording last_enabled_cycle) and the
//     collection waits. Go's rule then turns it off at the next window with net drain, and the next trigger check
//     asks again. Long-run GC CPU stays at about 50% (plus one bucket), and the telemetry still says "limiting".
//   - What a pause costs. Go charges a stop-the-world phase as elapsed × GOMAXPROCS; its STW phases last
//     microseconds, so it hardly matters that some of those procs would have been idle anyway. pacegc's pause is
//     the whole collection, and charging idle cores would make every single-threaded program on a 2-core machine
//     "limited" once its pauses pass 1/3 of wall time (2p of GC against 1 − p of mutator), although the program
//     never had the second core to lose. Idle time must count as neither GC nor mutator (Go 1.19.1, issue 52890),
//     so pacegc charges a pause × the cores the program was actually using when it was stopped: its mutator
//     parallelism, mutator CPU time per wall second outside pauses, smoothed over recent windows
//     (ParallelismEstimate), at least 1 (the collector's own core) and at most the core count (PauseChargeNs).
//     A program running on every core is charged exactly as Go would charge it. pgc_stats.gc_cpu_ns and
//     gc_cpu_fraction keep Go's definition (pause × cores), so they compare with Go's GCCPUFraction.
//   - What the limiter may postpone (DecideTrigger). Go's limiter skips assists, and its concurrent mark still
//     runs at 25%, so its heap overshoots the goal by what the program allocates during one slowed cycle. A
//     stop-the-world collector that simply waited would let the heap grow by the whole drain time's allocation
//     per postponement: on the spiral scenario the peak rose to 926 MiB against 524 MiB with GOGC alone (a limit
//     making memory use worse than no limit). So when the memory limit is what brought the collection forward (the
//     limit goal is below the GOGC goal), the limiter postpones it only until the heap reaches the GOGC goal:
//     with GOGC on, a too-tight limit never uses more memory than no limit; with GOGC off the heap grows without
//     bound while limited, as in Go. In the GOGC regime (a low GOGC, no limit in play) postponement is Go's: the
//     50% cap acts as a minimum effective GOGC.
//   - Go also tracks the limiter's enabled time only implicitly; pacegc keeps the total for metrics.
//
// Invariants: fill_ns ≤ capacity_ns; enabled() ⇒ the bucket is full or had no room for the collection that was
// due; last_enabled_cycle() only changes on an off→on edge. Not thread-safe: the caller serialises (the heap lock).
#ifndef PACEGC_PACER_LIMITER_H_
#define PACEGC_PACER_LIMITER_H_

#include <cstdint>

namespace pacegc::pacer {

// GC CPU charged for a stop-the-world pause: pause × clamp(parallelism, 1, cpus) (see "What a pause costs").
uint64_t PauseChargeNs(uint64_t pause_ns, double parallelism, int cpus);

// Mutator parallelism: an exponentially weighted average of mutator CPU time per wall second outside pauses,
// one observation per accounting window. Windows with less than kMinWallNs outside pauses are ignored (too
// short to say anything). Starts at 1.
class ParallelismEstimate {
 public:
  static constexpr double kWeight = 0.2;             // weight of the newest window
  static constexpr uint64_t kMinWallNs = 1'000'000;  // 1 ms

  void Observe(uint64_t mutator_cpu_ns, uint64_t mutator_wall_ns);
  double value() const { return value_; }

 private:
  double value_ = 1.0;
};

class CpuLimiter;

enum class TriggerDecision { kNotDue, kStart, kPostponed };

// The allocation slow path's trigger decision. heap_bytes reached goal_bytes (the goal in force) → due. A due
// collection starts if the limiter admits it (limiter->AdmitCollection, which may turn it on), or if the goal in
// force is the limit goal (below gc_percent_goal_bytes) and heap_bytes reached the GOGC goal as well; otherwise
// it is postponed. limiter == nullptr: no limiter (every due collection starts).
TriggerDecision DecideTrigger(uint64_t heap_bytes, uint64_t goal_bytes, uint64_t gc_percent_goal_bytes,
                              CpuLimiter *limiter, uint64_t now_ns, uint64_t expected_gc_cpu_ns, uint64_t num_gc);

class CpuLimiter {
 public:
  static constexpr uint64_t kUpdatePeriodNs = 10'000'000;  // account at least every 10 ms of activity
  static constexpr uint64_t kCapacityPerCpuNs = 1'000'000'000;

  // capacity = cpus × 1 s (in ns); cpus < 1 treated as 1. constexpr so that a global limiter is constant-
  // initialised (a dynamic initialiser could run after the library's load-time constructor has set it up).
  constexpr explicit CpuLimiter(int cpus)
      : capacity_ns_(static_cast<uint64_t>(cpus < 1 ? 1 : cpus) * kCapacityPerCpuNs) {}

  // One accounting window ending at now_ns: gc_cpu_ns of GC CPU time (a stop-the-world pause counts as
  // pause × cpus; scavenging counts too) and mutator_cpu_ns of mutator CPU time (non-idle, non-GC) spent in it.
  // num_gc = completed cycles so far (last_enabled_cycle becomes num_gc + 1 when it turns on, like Go).
  void Account(uint64_t now_ns, uint64_t gc_cpu_ns, uint64_t mutator_cpu_ns, uint64_t num_gc);

  // Called when a collection is due (the heap reached its goal) at now_ns; expected_gc_cpu_ns is its expected
  // cost (last pause × cpus; 0 = unknown). Returns true if it may start: the limiter is off and the bucket has room
  // for the cost, or is empty. Otherwise returns false, and if the limiter was off, turns it on as Account would
  // when the bucket overflows (last_enabled_cycle = num_gc + 1). The caller retries at its next trigger check.
  bool AdmitCollection(uint64_t now_ns, uint64_t expected_gc_cpu_ns, uint64_t num_gc);
  // Whether the caller is due to account a window (kUpdatePeriodNs since the last Account; true before the first).
  bool NeedsUpdate(uint64_t now_ns) const;

  bool enabled() const { return enabled_; }
  uint64_t last_enabled_cycle() const { return last_enabled_cycle_; }  // 0 = never
  uint64_t enabled_total_ns(uint64_t now_ns) const;                   // includes the current on-period if on
  uint64_t fill_ns() const { return fill_ns_; }
  uint64_t capacity_ns() const { return capacity_ns_; }
  uint64_t headroom_ns() const { return capacity_ns_ - fill_ns_; }
  uint64_t overflow_ns() const { return overflow_ns_; }  // GC time the full bucket could not hold, cumulative

 private:
  void TurnOn(uint64_t now_ns, uint64_t num_gc);

  uint64_t capacity_ns_;             // cpus × 1 s; fixed
  uint64_t fill_ns_ = 0;             // ≤ capacity_ns_
  uint64_t overflow_ns_ = 0;         // saturating
  uint64_t last_enabled_cycle_ = 0;  // num_gc + 1 at the last off→on edge
  uint64_t enabled_since_ns_ = 0;    // now_ns of the window that turned it on (valid while enabled_)
  uint64_t enabled_total_ns_ = 0;    // completed on-periods
  uint64_t last_update_ns_ = 0;
  bool updated_ = false;             // Account has been called
  bool enabled_ = false;
};

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_LIMITER_H_
