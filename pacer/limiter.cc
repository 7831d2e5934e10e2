// pacer/limiter.cc — see limiter.h.
#include "pacer/limiter.h"

namespace pacegc::pacer {
namespace {

uint64_t SatAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

}  // namespace

uint64_t PauseChargeNs(uint64_t collector_cpu_ns, double parallelism, double cpus) {
  double cores = parallelism > 1.0 ? parallelism : 1.0;
  if (cpus > 0 && cores > cpus) cores = cpus;
  if (cores < 1.0) return collector_cpu_ns;  // a quota below one CPU: the collector's own CPU is all it cost
  double charge = static_cast<double>(collector_cpu_ns) * cores;
  return charge >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(charge);
}

uint64_t BackgroundChargeNs(uint64_t thread_cpu_ns, double parallelism, double cpus) {
  if (!(cpus > 0)) return thread_cpu_ns;
  double share = parallelism + 1.0 - cpus;
  if (!(share > 0)) return 0;  // (NaN too)
  if (share >= 1.0) return thread_cpu_ns;
  return static_cast<uint64_t>(static_cast<double>(thread_cpu_ns) * share);
}

uint64_t LimiterCapacityNs(double cpus, uint64_t expected_gc_cpu_ns) {
  if (!(cpus > 0)) cpus = 1.0;
  if (cpus < kMinCpus) cpus = kMinCpus;
  double base = cpus * static_cast<double>(CpuLimiter::kCapacityPerCpuNs);
  uint64_t capacity = base >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(base);
  uint64_t lumps = expected_gc_cpu_ns > UINT64_MAX / kPausesPerBucket ? UINT64_MAX : expected_gc_cpu_ns * kPausesPerBucket;
  return lumps > capacity ? lumps : capacity;
}

void ParallelismEstimate::Observe(uint64_t mutator_cpu_ns, uint64_t mutator_wall_ns) {
  if (mutator_wall_ns < kMinWallNs) return;
  double sample = static_cast<double>(mutator_cpu_ns) / static_cast<double>(mutator_wall_ns);
  value_ += kWeight * (sample - value_);
}

void CpuLimiter::Account(uint64_t now_ns, uint64_t gc_cpu_ns, uint64_t mutator_cpu_ns, uint64_t num_gc) {
  last_update_ns_ = now_ns;
  updated_ = true;
  const bool was_enabled = enabled_;
  const uint64_t headroom = capacity_ns_ - fill_ns_;

  // Filling: GC outran the mutator by at least the headroom. Go's test is headroom ≤ change, so exactly filling
  // the bucket turns the limiter on.
  if (gc_cpu_ns > mutator_cpu_ns && headroom <= gc_cpu_ns - mutator_cpu_ns) {
    overflow_ns_ = SatAdd(overflow_ns_, gc_cpu_ns - mutator_cpu_ns - headroom);
    fill_ns_ = capacity_ns_;
    if (!was_enabled) TurnOn(now_ns, num_gc);
    return;
  }

  // Not filling: add the net GC time (less than the headroom here) or drain, never below empty.
  if (gc_cpu_ns >= mutator_cpu_ns) {
    fill_ns_ += gc_cpu_ns - mutator_cpu_ns;
  } else {
    const uint64_t drain = mutator_cpu_ns - gc_cpu_ns;
    fill_ns_ = fill_ns_ > drain ? fill_ns_ - drain : 0;
  }
  // Any non-zero change that did not refill the bucket ends an on-period: in practice a net drain (while on, the
  // bucket is full, or had no room for a pending collection, and only the mutator runs).
  if (was_enabled && gc_cpu_ns != mutator_cpu_ns) {
    enabled_ = false;
    enabled_total_ns_ = SatAdd(enabled_total_ns_, now_ns > enabled_since_ns_ ? now_ns - enabled_since_ns_ : 0);
  }
}

void CpuLimiter::SetCapacityNs(uint64_t capacity_ns, uint64_t now_ns, uint64_t num_gc) {
  const uint64_t min = CapacityNs(kMinCpus);
  capacity_ns_ = capacity_ns < min ? min : capacity_ns;
  if (fill_ns_ > capacity_ns_) {
    fill_ns_ = capacity_ns_;
    if (!enabled_) TurnOn(now_ns, num_gc);
  }
}

bool CpuLimiter::AdmitCollection(uint64_t now_ns, uint64_t expected_gc_cpu_ns, uint64_t num_gc) {
  if (enabled_) return false;
  if (fill_ns_ == 0 || expected_gc_cpu_ns <= capacity_ns_ - fill_ns_) return true;
  // The collection would overflow the bucket: limit now rather than after the pause.
  TurnOn(now_ns, num_gc);
  return false;
}

void CpuLimiter::TurnOn(uint64_t now_ns, uint64_t num_gc) {
  enabled_ = true;
  enabled_since_ns_ = now_ns;
  last_enabled_cycle_ = SatAdd(num_gc, 1);
}

bool CpuLimiter::NeedsUpdate(uint64_t now_ns) const {
  return !updated_ || (now_ns >= last_update_ns_ && now_ns - last_update_ns_ >= kUpdatePeriodNs);
}

uint64_t CpuLimiter::enabled_total_ns(uint64_t now_ns) const {
  if (!enabled_) return enabled_total_ns_;
  return SatAdd(enabled_total_ns_, now_ns > enabled_since_ns_ ? now_ns - enabled_since_ns_ : 0);
}

TriggerDecision DecideTrigger(uint64_t heap_bytes, uint64_t goal_bytes, uint64_t gc_percent_goal_bytes,
                              bool limiter_admits) {
  if (heap_bytes < goal_bytes) return TriggerDecision::kNotDue;
  if (limiter_admits) return TriggerDecision::kStart;
  // Limit regime (the limit brought the collection forward): postponed only until GOGC alone would collect.
  // GOGC regime: postponed as in Go, so a low GOGC is held to the 50% cap (a minimum effective GOGC).
  const bool limit_regime = goal_bytes < gc_percent_goal_bytes;
  return limit_regime && heap_bytes >= gc_percent_goal_bytes ? TriggerDecision::kStart : TriggerDecision::kPostponed;
}

}  // namespace pacegc::pacer
