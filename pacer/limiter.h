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
//     and limiting means skipping assists. pacegc stops the world, so a pause counts as one lump of GC time
//     (PauseChargeNs, see "Units"); limiting means the next collection waits (the heap grows past its goal and past the
//     soft limit — intended, as in Go). Scavenging for the limit counts as GC time, as in Go.
//   - With lumps, Go's on/off rule alone does not bound GC at 50%: a pause longer than one drain window refills
//     the bucket and overflows every time, and the collector runs P / (P + 10 ms) of the time (80% for a 40 ms
//     pause). AdmitCollection() adds the rule a stop-the-world collector needs: a collection due now starts only
//     if the bucket has room for its expected cost (the last pause's charge), or is empty (so a pause longer than the
//     whole bucket still makes progress). Otherwise it would overflow the bucket, which is exactly Go's condition
//     for turning on, predicted instead of observed: the limiter turns on (recording last_enabled_cycle) and the
//     collection waits. Go's rule then turns it off at the next window with net drain, and the next trigger check
//     asks again. Long-run GC CPU stays at about 50% (plus one bucket), and the telemetry still says "limiting".
//   - Units: both sides in CPU time the program got. Go measures the total as wall × GOMAXPROCS and a
//     stop-the-world phase as elapsed × GOMAXPROCS, so both sides are "processor time" and time a processor did not
//     get (throttled by a CFS quota, descheduled by other load) falls on both sides alike; its STW phases last
//     microseconds besides. pacegc's pause is the whole collection, so how it is charged decides everything. The
//     mutator side is CPU time the program's threads actually ran (process CPU time − the collector's and the
//     scavenger's own), so the GC side must be CPU time as well. What a pause cost the program is
//       collector CPU during the pause × clamp(mutator parallelism, 1, cpus)              (PauseChargeNs)
//     where mutator parallelism is the mutator's CPU time per wall second outside pauses, smoothed over recent
//     windows (ParallelismEstimate), and cpus the CPU the program may use. The collector is one thread; while it
//     ran, each stopped thread that would have run got nothing, and each would have had what the collector had.
//     A program running flat out on every core (parallelism = cores, collector CPU = pause) is charged
//     pause × cores, exactly as Go charges it. A single-threaded program on a 2-core machine is charged
//     pause × 1, not × 2: idle time counts as neither side (Go 1.19.1, issue 52890), and charging the idle core got
//     the single-threaded step scenario OOM-killed. A program throttled to 30% of a core, or descheduled by other
//     load, is charged the CPU its collector got, whatever the wall time of the pause. Two earlier rules failed
//     here: pause wall × at least one core against the mutator's CPU time made a throttled program look GC-bound
//     (under a 30% quota GC at 40% looked like 133%), turned the limiter on and let the step scenario grow into its
//     cap (issue 10); and max(collector CPU, pause wall × parallelism) still overcharged a pause that happened to
//     be more contended than the mutator windows before it (peaks of 499 MiB in 3 of 20 step runs at 30% with
//     other load on the machine).
//   - Capacity: cpus × 1 s of CPU, where cpus is the CPU the program may use — the affinity mask lowered by a
//     cgroup CPU quota (quota / period, fractional), as Go 1.25 derives GOMAXPROCS and as Go's bucket holds
//     GOMAXPROCS × 1 s. Under a 30% quota the bucket holds 0.3 CPU-seconds, which GC alone fills in one second of
//     wall time, as in Go. But never less than two collections' worth (kPausesPerBucket × the expected cost): a
//     bucket smaller than one pause cannot tell a sustained GC share from one lump. Under a 10% quota a 256 MiB
//     heap's pause costs 150 ms of CPU (1.5 s of wall time) against a 0.1 CPU-second bucket, so every such pause
//     turned the limiter on in a step scenario at 31% GC CPU (1.4-2.7 s of "limiting" in each of 20 runs, peaks
//     460-470 MiB instead of 448). The capacity must not follow anything noisy: a version that sized it by the
//     mutator's measured parallelism (so a single thread on 2 cores got a 1 s bucket) let the jitter open room for
//     back-to-back collections and threw fill away at every shrink, and GC on the spiral scenario rose from 50% to
//     62% of the CPU. A shrink that cuts the fill turns the limiter on, as Go's resetCapacity does: the GC time
//     thrown away was real. The Pacer (pacer.h), which owns the limiter, recomputes the capacity at every window
//     and calls SetCapacityNs.
//     pgc_stats.gc_cpu_ns and gc_cpu_fraction keep Go's definition (pause × capacity), so they compare with Go's
//     GCCPUFraction.
//   - Background marking. In a concurrent cycle the collecting thread's CPU while the world runs is charged one to
//     one: it is a program thread whose allocation waits for the cycle, marking, as a Go goroutine does its mark
//     assist. The mark thread (gc/mark.h) marks beside it on another core, when the program can spare one. Go counts
//     a mark worker on a processor that would otherwise be idle as idle time (Go 1.19's idle mark workers, issue
//     52890), neither GC nor mutator. Charged one to one, it made a single-threaded program on 2 cores look more
//     GC-bound than it was: `wakeup_latency` with `PACEGC_CONCURRENT=on` (1 GiB live, one churning thread) had cycles
//     of 1.1-2.7 s of CPU, half of it the mark thread's, the limiter postponed collections and the heap reached
//     2.5-2.7 GiB at the trigger against a 2.3 GiB goal (peak RSS 3.0-3.2 GiB; docs/BENCHMARKS.md, "The mark
//     thread's CPU and the limiter"). So its CPU is charged for the share of its core the program would
//     have used: the program's threads other than the collecting one, (parallelism − 1), beyond the cores left
//     over besides the collector's and the mark thread's, (cpus − 2) (BackgroundChargeNs). A single-threaded
//     program on 2 cores is charged nothing for it; one running two threads flat out, all of it. It still counts
//     as the collector's own CPU (never as mutator time) and in pgc_stats.gc_cpu_ns (Go's GCCPUFraction counts its
//     idle mark workers' time too). In a pause, the mark thread's and helpers' CPU is neither charged nor mutator
//     time (pacer.h, CycleReport::pause_others_cpu_ns): counted as the program's, it drained the bucket and raised
//     the parallelism estimate that prices both the pauses and this charge.
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
// due; last_enabled_cycle() only changes on an off→on edge. Owned by the Pacer (pacer.h); not thread-safe: the
// caller serialises (the heap lock).
#ifndef PACEGC_PACER_LIMITER_H_
#define PACEGC_PACER_LIMITER_H_

#include <cstdint>

namespace pacegc::pacer {

// GC CPU charged for a stop-the-world pause (see "Units"): collector_cpu_ns × clamp(parallelism, 1, cpus).
// cpus ≤ 0: no upper bound on parallelism. Saturates at UINT64_MAX.
uint64_t PauseChargeNs(uint64_t collector_cpu_ns, double parallelism, double cpus);

// GC CPU charged for what a marking thread of the collector's own (pacegc-mark) did while the program ran (see
// "Background marking"): thread_cpu_ns × clamp(parallelism + 1 − cpus, 0, 1), the share of a core the program's
// other threads would have used. cpus ≤ 0 (unknown): charged whole. Saturates at UINT64_MAX.
uint64_t BackgroundChargeNs(uint64_t thread_cpu_ns, double parallelism, double cpus);

// Mutator parallelism: an exponentially weighted average of mutator CPU time per wall second outside pauses,
// one observation per accounting window. Windows with less than kMinWallNs outside pauses are ignored (too
// short to say anything). Starts at 1. Below 1 when the program is throttled, descheduled or idle part of the time.
class ParallelismEstimate {
 public:
  static constexpr double kWeight = 0.2;             // weight of the newest window
  static constexpr uint64_t kMinWallNs = 1'000'000;  // 1 ms

  void Observe(uint64_t mutator_cpu_ns, uint64_t mutator_wall_ns);
  double value() const { return value_; }

 private:
  double value_ = 1.0;
};

// The limiter's capacity (see "Capacity"): cpus × 1 s (cpus ≤ 0, unknown, counts as 1; at least kMinCpus), and at
// least kPausesPerBucket × the expected cost of one collection.
constexpr uint64_t kPausesPerBucket = 2;
uint64_t LimiterCapacityNs(double cpus, uint64_t expected_gc_cpu_ns);

// The least CPU capacity pacegc counts: a smaller quota is treated as 1% of a core.
constexpr double kMinCpus = 0.01;

enum class TriggerDecision { kNotDue, kStart, kPostponed };

// The allocation slow path's trigger decision, pure: heap_bytes below goal_bytes (the goal in force) → not due. A due
// collection starts if the limiter admitted it (limiter_admits: CpuLimiter::AdmitCollection, asked by the caller only
// once the collection is due, since a refusal turns the limiter on; true when there is no limiter), or if the goal
// in force is the limit goal (below gc_percent_goal_bytes) and heap_bytes reached the GOGC goal as well; otherwise
// it is postponed. The Pacer (pacer.h) owns the limiter and asks.
TriggerDecision DecideTrigger(uint64_t heap_bytes, uint64_t goal_bytes, uint64_t gc_percent_goal_bytes,
                              bool limiter_admits);

class CpuLimiter {
 public:
  static constexpr uint64_t kUpdatePeriodNs = 10'000'000;  // account at least every 10 ms of activity
  static constexpr uint64_t kCapacityPerCpuNs = 1'000'000'000;

  // capacity = cpus × 1 s (in ns); fractional cpus are a CPU quota; cpus ≤ 0 (unknown) is treated as 1, and
  // anything else below kMinCpus as kMinCpus. constexpr so that a global limiter is constant-initialised (a
  // dynamic initialiser could run after the library's load-time constructor has set it up).
  constexpr explicit CpuLimiter(double cpus) : capacity_ns_(CapacityNs(cpus)) {}

  // A new capacity (LimiterCapacityNs moved: the CPU quota or the pause cost changed); at least kMinCpus × 1 s.
  // The fill is kept, at most the new capacity; if it had to be cut, the limiter turns on (last_enabled_cycle =
  // num_gc + 1 on an off→on edge), as Go's resetCapacity does.
  void SetCapacityNs(uint64_t capacity_ns, uint64_t now_ns, uint64_t num_gc);

  // One accounting window ending at now_ns: gc_cpu_ns of GC CPU time (a stop-the-world pause counts as
  // PauseChargeNs; scavenging counts too) and mutator_cpu_ns of mutator CPU time (non-idle, non-GC) spent in it.
  // num_gc = completed cycles so far (last_enabled_cycle becomes num_gc + 1 when it turns on, like Go).
  void Account(uint64_t now_ns, uint64_t gc_cpu_ns, uint64_t mutator_cpu_ns, uint64_t num_gc);

  // Called when a collection is due (the heap reached its goal) at now_ns; expected_gc_cpu_ns is its expected
  // cost (the last pause's charge; 0 = unknown). Returns true if it may start: the limiter is off and the bucket has room
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
  static constexpr uint64_t CapacityNs(double cpus) {
    return static_cast<uint64_t>((cpus <= 0 ? 1.0 : cpus < kMinCpus ? kMinCpus : cpus) *
                                 static_cast<double>(kCapacityPerCpuNs));
  }

  uint64_t capacity_ns_;             // cpus × 1 s at first; then SetCapacityNs
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
