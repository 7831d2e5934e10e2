// pacer/trigger.cc — see trigger.h.
#include "pacer/trigger.h"

namespace pacegc::pacer {

namespace {

// Observe's value: the program's allocation rate over the collector's scan rate (0: not a measurement).
double FromRates(uint64_t allocated_bytes, uint64_t mutator_cpu_ns, uint64_t scan_bytes, uint64_t gc_cpu_ns) {
  if (allocated_bytes == 0 || mutator_cpu_ns == 0 || scan_bytes == 0 || gc_cpu_ns == 0) return 0;
  const double cons = static_cast<double>(allocated_bytes) / static_cast<double>(mutator_cpu_ns);
  const double mark = static_cast<double>(scan_bytes) / static_cast<double>(gc_cpu_ns);
  return cons / mark;
}

// Go's in-cycle value (0: not a measurement).
double FromRunway(uint64_t cycle_alloc_bytes, uint64_t scan_bytes, double utilization) {
  if (cycle_alloc_bytes == 0 || scan_bytes == 0 || utilization <= 0 || utilization >= 1) return 0;
  return static_cast<double>(cycle_alloc_bytes) * utilization /
         (static_cast<double>(scan_bytes) * (1 - utilization));
}

}  // namespace

double ConsMarkEstimate::Record(double v) {
  if (v <= 0) return 0;
  recent_[observed_ % kConsMarkCycles] = v;
  ++observed_;
  return v;
}

double ConsMarkEstimate::Observe(uint64_t allocated_bytes, uint64_t mutator_cpu_ns, uint64_t scan_bytes,
                                 uint64_t gc_cpu_ns) {
  return Record(FromRates(allocated_bytes, mutator_cpu_ns, scan_bytes, gc_cpu_ns));
}

double ConsMarkEstimate::ObserveRunway(uint64_t cycle_alloc_bytes, uint64_t scan_bytes, double utilization,
                                       uint64_t allocated_bytes, uint64_t mutator_cpu_ns, uint64_t gc_cpu_ns) {
  const double go = FromRunway(cycle_alloc_bytes, scan_bytes, utilization);
  const double rates = FromRates(allocated_bytes, mutator_cpu_ns, scan_bytes, gc_cpu_ns);
  return Record(go > rates ? go : rates);
}

double ConsMarkEstimate::value() const {
  double m = 0;
  for (int i = 0; i < observed(); ++i) m = recent_[i] > m ? recent_[i] : m;
  return m;
}

double BackgroundUtilization(double cpus, double parallelism) {
  if (cpus <= 1) return kBackgroundUtilization;
  double u = (cpus - parallelism) / cpus;
  if (u < kBackgroundUtilization) u = kBackgroundUtilization;
  const double most = 1 - 1 / cpus;
  return u > most ? (most > kBackgroundUtilization ? most : kBackgroundUtilization) : u;
}

Runway ConcurrentRunway(uint64_t goal, uint64_t marked, uint64_t scan_work, double cons_mark, double utilization) {
  Runway r;
  r.trigger_bytes = goal;
  if (marked >= goal || cons_mark <= 0) return r;
  const uint64_t room = goal - marked;
  const uint64_t min_trigger = marked + room / kTriggerRunwayDen * kTriggerMinRunwayNum;
  uint64_t max_trigger = marked + room / kTriggerRunwayDen * kTriggerMaxRunwayNum;
  if (goal > kTriggerGoalSlackBytes && goal - kTriggerGoalSlackBytes > max_trigger) {
    max_trigger = goal - kTriggerGoalSlackBytes;
  }
  const double runway = cons_mark * (1 - utilization) / utilization * static_cast<double>(scan_work);
  r.runway_bytes = runway >= static_cast<double>(goal) ? goal : static_cast<uint64_t>(runway);
  const uint64_t trigger = goal - r.runway_bytes;
  r.fits = trigger >= min_trigger;
  if (!r.fits) return r;  // (trigger_bytes stays the goal: the cycle starts there)
  r.trigger_bytes = trigger > max_trigger ? max_trigger : trigger;
  return r;
}

double AssistRatio(uint64_t scan_expected, uint64_t start_heap, uint64_t goal) {
  if (goal <= start_heap) return 0;
  return static_cast<double>(scan_expected) / static_cast<double>(goal - start_heap);
}

uint64_t AssistScanBytes(uint64_t scan_expected, uint64_t scan_done, uint64_t start_heap, uint64_t heap_bytes,
                         uint64_t goal) {
  if (goal <= start_heap) return 0;
  // The share of the runway allocated; the product in double, as scan_expected × way may exceed 64 bits.
  const double way = heap_bytes <= start_heap ? 0
                     : heap_bytes >= goal   ? 1
                                            : static_cast<double>(heap_bytes - start_heap) /
                                                static_cast<double>(goal - start_heap);
  const uint64_t due = static_cast<uint64_t>(way * static_cast<double>(scan_expected));
  if (scan_done >= due) return 0;
  return due - scan_done < kAssistMaxBytes ? due - scan_done : kAssistMaxBytes;
}

}  // namespace pacegc::pacer
