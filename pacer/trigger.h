// pacer/trigger.h — Go's trigger below the goal for a concurrent cycle (the runway), the cons/mark estimate it comes
// from, and the mark assists' ratio. Pure policy: no memory, no clocks, no globals; every input is an argument, so it
// is tested by simulation (tests/unit/pacer_trigger_test.cc).
//
// Go 1.18+ (mgcpacer.go; ../shared/reference/go-pacer.md §5):
//   runway   = consMark × (1 − u) / u × (last heap scan + stack scan + globals scan),  u = 0.25, Go's background
//              mark utilization: the bytes the program allocates while marking at that share of the CPU finishes
//              the expected scan work. Go's idle workers also mark on processors the program leaves idle; pacegc
//              counts them in u (BackgroundUtilization), as its background marking paces itself to that share.
//   trigger  = goal − runway, clamped to [marked + (goal − marked) × 45/64, marked + (goal − marked) × 61/64]
//              (the upper end is goal − 4 MiB when that is higher and the goal is above 4 MiB); the goal itself when
//              marked ≥ goal.
//   consMark = allocation per unit of scan work, measured per cycle; the estimate is the largest of the last
//              kConsMarkCycles (Go keeps the last 4 and the current one). Go measures it in each cycle as the bytes
//              allocated during the mark × u / (scan work × (1 − u)). A cycle that starts at the goal has the
//              program's other threads wait while it marks, so it is measured from CPU rates instead: (bytes
//              allocated / the program's CPU since the last cycle) over (bytes scanned / the collector's CPU in this
//              one). A runway cycle takes the larger of the two (ObserveRunway says why).
//   assists  = while the cycle marks, the expected scan work is due in proportion to the heap's way from the
//              cycle's start to the goal: AssistRatio scan bytes per byte allocated, scan work over runway, Go's
//              assist ratio as it stands when the cycle begins. An allocating thread that finds the marking behind
//              that line scans the difference (AssistScanBytes, at most kAssistMaxBytes at once), so that marking
//              ends near the goal. Go's assists pay a debt per goroutine against the background workers' credit;
//              pacegc's debt is the cycle's, paid by whichever thread comes to the heap lock while it is owed.
//
// pacegc's difference, and why. Go has a write barrier: what the program writes during the mark costs it a few
// instructions per pointer store, and a runway that is too short costs assists. pacegc has no barrier: what the
// program writes during the mark is found by write protection and re-scanned (gc/concurrent.h), and the heap lock
// serialises the markers and the assists. Measured on 2 cores (docs/BENCHMARKS.md, "Filled spans pre-cleaned, and
// runway cycles tried again"): a program that does little but allocate (consMark ≥ ~0.5) gained nothing from a
// runway and lost 1.6× in throughput and stalls, because it re-wrote the heap faster than the re-scans converged.
// So a runway cycle runs only where Go's own formula says it fits: the unclamped trigger is at or above the lower
// clamp (the program allocates slowly enough that one background marker at u finishes before the goal). Where it
// does not fit, the cycle starts at the goal on the allocating thread, and the program's other allocating threads
// wait for it (Go would start at the lower clamp and make every allocation assist heavily: on 2 cores, the same
// wait by other means).
#ifndef PACEGC_PACER_TRIGGER_H_
#define PACEGC_PACER_TRIGGER_H_

#include <cstdint>

namespace pacegc::pacer {

constexpr double kBackgroundUtilization = 0.25;  // Go's gcBackgroundUtilization
constexpr int kConsMarkCycles = 5;
constexpr uint64_t kTriggerMinRunwayNum = 45, kTriggerMaxRunwayNum = 61, kTriggerRunwayDen = 64;
constexpr uint64_t kTriggerGoalSlackBytes = uint64_t{4} << 20;  // Go's maxTrigger "goal − 4 MiB"

// The largest cons/mark of the last kConsMarkCycles measured cycles; 0 until one was measured.
class ConsMarkEstimate {
 public:
  // One cycle: allocated_bytes over the program's mutator_cpu_ns since the previous cycle's end, and scan_bytes over
  // the collector's gc_cpu_ns in this cycle. A cycle with nothing allocated or no CPU measured in either term is not
  // a measurement and is skipped (the estimate keeps what it had). Returns the cycle's value (0: skipped).
  double Observe(uint64_t allocated_bytes, uint64_t mutator_cpu_ns, uint64_t scan_bytes, uint64_t gc_cpu_ns);
  // A runway cycle: the larger of Go's own measurement and Observe's. Go's: the program allocated
  // cycle_alloc_bytes from the cycle's start to its final pause (as if it had not waited at the goal: the caller
  // scales it up by the cycle's time over the time it allocated), for scan_bytes of scan work, with background
  // marking at `utilization`: consMark = allocation × u / (scan × (1 − u)), so that ConcurrentRunway at the same u
  // gives that allocation back as the runway. Observe's, from the other three arguments: the program's allocation
  // per second of its CPU since the last cycle, over the cycle's scan rate. Why both: without a write barrier, the
  // cycle itself slows what the program allocates while it marks (first writes to protected pages, fresh pages for
  // the spans the cycle holds aside, assists, refills waiting for the heap lock between slices), so Go's figure
  // understates a program that does little but allocate, and the runway it gives fits again and again: the
  // wake-up benchmark's churn ran every cycle as a runway cycle and took 1.5x the time it took at the goal
  // (docs/BENCHMARKS.md, "Runway cycles measured by both rates"). A program that computes between allocations
  // measures low both ways.
  double ObserveRunway(uint64_t cycle_alloc_bytes, uint64_t scan_bytes, double utilization, uint64_t allocated_bytes,
                       uint64_t mutator_cpu_ns, uint64_t gc_cpu_ns);
  double value() const;
  int observed() const { return observed_ < kConsMarkCycles ? observed_ : kConsMarkCycles; }

 private:
  double Record(double v);  // a measurement (v > 0) into the window; returns v, or 0 for none

  double recent_[kConsMarkCycles] = {};
  int observed_ = 0;  // cycles observed (recent_[observed_ % kConsMarkCycles] is the next slot)
};

// Where a concurrent cycle starts.
struct Runway {
  uint64_t trigger_bytes = 0;  // heap bytes at which it starts (the goal when !fits)
  uint64_t runway_bytes = 0;   // Go's runway, unclamped (0: none computed)
  bool fits = false;           // Go's unclamped trigger ≥ the lower clamp: a runway cycle pays (above)
};

// goal and marked in heap bytes (the goal in force and the last cycle's marked bytes); scan_work the last cycle's
// heap + stack + globals scan; cons_mark the estimate (≤ 0: none yet, so nothing fits); utilization the share of
// the CPU background marking will take (BackgroundUtilization).
Runway ConcurrentRunway(uint64_t goal, uint64_t marked, uint64_t scan_work, double cons_mark,
                        double utilization = kBackgroundUtilization);

// The share of the CPU a cycle's background marking takes: Go's kBackgroundUtilization, or the share of the cores
// the program leaves idle when that is more (Go's idle mark workers take idle processors), at most 1 − 1/cpus
// (the program keeps a core). parallelism: the cores the program uses (ParallelismEstimate).
double BackgroundUtilization(double cpus, double parallelism);

// Most one assist scans: about 2-4 ms of marking here, so one thread does not carry the whole cycle while the others
// run on.
constexpr uint64_t kAssistMaxBytes = uint64_t{1} << 20;

// A cycle that began with start_heap bytes in the heap and expects scan_expected bytes of scan work (the last
// cycle's heap + stack + globals scan): scan bytes due per byte allocated until the goal. 0 when the goal is not
// above the start (no runway: a thread at the goal waits for the cycle instead of assisting).
double AssistRatio(uint64_t scan_expected, uint64_t start_heap, uint64_t goal);

// The scan work an allocating thread should do now, with heap_bytes in the heap and scan_done bytes scanned: what
// the marking is behind AssistRatio × (heap_bytes − start_heap) (all of scan_expected at or past the goal), at most
// kAssistMaxBytes; 0 when it is not behind or there is no runway.
uint64_t AssistScanBytes(uint64_t scan_expected, uint64_t scan_done, uint64_t start_heap, uint64_t heap_bytes,
                         uint64_t goal);

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_TRIGGER_H_
