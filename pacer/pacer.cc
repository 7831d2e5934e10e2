// pacer/pacer.cc — see pacer.h.
#include "pacer/pacer.h"

namespace pacegc::pacer {

const char *LimitSourceName(LimitSource s) {
  switch (s) {
    case LimitSource::kEnv: return "env";
    case LimitSource::kApi: return "api";
    case LimitSource::kCgroup: return "cgroup";
    case LimitSource::kNone: break;
  }
  return "none";
}

Pacer MakePacer(const Settings &s, uint64_t now_ns, uint64_t process_cpu_ns) {
  Pacer p;
  p.gc_percent_ = s.gc_percent < 0 ? -1 : s.gc_percent;
  // Only the environment and the API set a limit of their own; otherwise it derives from the cgroup (below).
  if (s.limit_source == LimitSource::kEnv || s.limit_source == LimitSource::kApi) {
    p.memory_limit_bytes_ = s.memory_limit_bytes;
    p.limit_source_ = s.limit_source;
  }
  p.auto_ratio_ = s.auto_ratio;
  p.cpu_limiter_ = s.cpu_limiter;
  p.cpus_ = s.cpus;
  p.periodic_gc_ns_ = s.periodic_gc_ns == 0 ? kPeriodicGcNs : s.periodic_gc_ns;
  p.admission_ = s.admission;
  p.hard_limit_bytes_ = s.hard_limit_bytes < 0 ? kNoLimit : s.hard_limit_bytes;
  p.limiter_ = CpuLimiter(s.cpus);
  p.last_cycle_end_ns_ = now_ns;
  p.capacity_since_ns_ = now_ns;
  p.window_start_ns_ = now_ns;
  p.window_process_cpu_ns_ = process_cpu_ns;
  p.end_process_cpu_ns_ = process_cpu_ns;
  p.OnCgroupMemoryLimit(s.cgroup_memory_bytes);
  p.gc_percent_goal_ = GcPercentGoal(p.last_, p.gc_percent_);
  return p;
}

Settings Pacer::settings() const {
  Settings s;
  s.gc_percent = gc_percent_;
  s.memory_limit_bytes = memory_limit_bytes_;
  s.limit_source = limit_source_;
  s.auto_ratio = auto_ratio_;
  s.cgroup_memory_bytes = cgroup_memory_bytes_;
  s.cpu_limiter = cpu_limiter_;
  s.cpus = cpus_;
  s.periodic_gc_ns = periodic_gc_ns_;
  s.admission = admission_;
  s.hard_limit_bytes = hard_limit_bytes_;
  return s;
}

Goal Pacer::CurrentGoal(const MemoryState &m) const {
  return CombineGoals(gc_percent_goal_, MemoryLimitGoal(m, last_.heap_marked_bytes, PacingLimitBytes()));
}

TriggerDecision Pacer::Decide(uint64_t now_ns, const MemoryState &m, uint64_t heap_bytes) {
  const Goal goal = CurrentGoal(m);
  if (heap_bytes < goal.bytes) return TriggerDecision::kNotDue;
  TriggerDecision d;
  if (!cpu_limiter_) {
    d = TriggerDecision::kStart;
  } else if (admission_ == Admission::kGoOnOff) {
    d = limiter_.enabled() ? TriggerDecision::kPostponed : TriggerDecision::kStart;
  } else {
    // Asked only when a collection is due: a refusal turns the limiter on.
    const bool admitted = limiter_.AdmitCollection(now_ns, expected_cycle_gc_cpu_ns_, num_gc_);
    d = DecideTrigger(heap_bytes, goal.bytes, gc_percent_goal_, admitted);
  }
  if (d == TriggerDecision::kPostponed) ++postponed_;
  return d;
}

void Pacer::CloseWindow(uint64_t now_ns, uint64_t process_cpu_ns, bool observe_parallelism) {
  const uint64_t used = process_cpu_ns > window_process_cpu_ns_ ? process_cpu_ns - window_process_cpu_ns_ : 0;
  const uint64_t mutator = used > window_own_cpu_ns_ ? used - window_own_cpu_ns_ : 0;
  const uint64_t wall = now_ns > window_start_ns_ ? now_ns - window_start_ns_ : 0;
  if (observe_parallelism) parallelism_.Observe(mutator, wall > window_pause_ns_ ? wall - window_pause_ns_ : 0);
  limiter_.SetCapacityNs(LimiterCapacityNs(cpus_, expected_cycle_gc_cpu_ns_), now_ns, num_gc_);
  limiter_.Account(now_ns, window_gc_cpu_ns_, mutator, num_gc_);
  window_start_ns_ = now_ns;
  window_process_cpu_ns_ = process_cpu_ns;
  window_gc_cpu_ns_ = 0;
  window_own_cpu_ns_ = 0;
  window_pause_ns_ = 0;
}

void Pacer::OnCycleBegin(uint64_t now_ns, uint64_t process_cpu_ns) {
  if (cpu_limiter_) CloseWindow(now_ns, process_cpu_ns);
  cycle_open_ = true;
}

uint64_t Pacer::CycleChargeNs(uint64_t collector_cpu_ns) const {
  // The collector's CPU, not the pause's wall time: see limiter.h, "Units".
  return PauseChargeNs(collector_cpu_ns, parallelism_.value(), cpus_);
}

CycleOutcome Pacer::OnCycleEnd(uint64_t now_ns, uint64_t process_cpu_ns, const CycleReport &r, const MemoryState &m) {
  // The cons/mark estimate (trigger.h): the program's allocation rate since the last cycle's end over this cycle's
  // scan rate. The program's CPU is the process's less the collector's and the scavenger's.
  const uint64_t cycle_own_cpu_ns =
      r.collector_cpu_ns + r.concurrent_cpu_ns + r.background_thread_cpu_ns + r.pause_others_cpu_ns;
  const uint64_t interval_cpu_ns = process_cpu_ns > end_process_cpu_ns_ ? process_cpu_ns - end_process_cpu_ns_ : 0;
  const uint64_t interval_own_ns = cycle_own_cpu_ns + scavenge_cpu_since_end_ns_;
  const uint64_t scan_work = r.heap_marked_bytes + r.stack_scan_bytes + r.globals_scan_bytes;
  const uint64_t mutator_cpu_ns = interval_cpu_ns > interval_own_ns ? interval_cpu_ns - interval_own_ns : 0;
  if (r.runway_alloc_bytes != 0) {
    last_cons_mark_ = cons_mark_.ObserveRunway(r.runway_alloc_bytes, scan_work, r.runway_utilization,
                                               r.allocated_bytes, mutator_cpu_ns, cycle_own_cpu_ns);
  } else {
    last_cons_mark_ = cons_mark_.Observe(r.allocated_bytes, mutator_cpu_ns, scan_work, cycle_own_cpu_ns);
  }
  end_process_cpu_ns_ = process_cpu_ns;
  scavenge_cpu_since_end_ns_ = 0;

  const uint64_t charge = CycleChargeNs(r.collector_cpu_ns) + r.concurrent_cpu_ns +
                          BackgroundChargeNs(r.background_thread_cpu_ns, parallelism_.value(), cpus_);
  num_gc_ = r.num_gc;
  last_cycle_end_ns_ = now_ns;
  last_.heap_marked_bytes = r.heap_marked_bytes;
  last_.stack_scan_bytes = r.stack_scan_bytes;
  last_.globals_scan_bytes = r.globals_scan_bytes;
  gc_percent_goal_ = GcPercentGoal(last_, gc_percent_);

  window_gc_cpu_ns_ += charge;
  window_own_cpu_ns_ += r.collector_cpu_ns + r.concurrent_cpu_ns + r.background_thread_cpu_ns + r.pause_others_cpu_ns;
  window_pause_ns_ += r.pause_ns;
  expected_cycle_gc_cpu_ns_ = charge;
  // The cycle's window, when gc/ began one (OnCycleBegin): it says nothing of the program's parallelism.
  if (cpu_limiter_) CloseWindow(now_ns, process_cpu_ns, /*observe_parallelism=*/!cycle_open_);
  cycle_open_ = false;

  // The scavenger's GOGC goal: what the heap needed at this peak, scaled by how the goal moved, + 10%.
  const uint64_t goal = CurrentGoal(m).bytes;
  if (last_goal_bytes_ != 0) {
    // Go's retain goal, but never below what the heap needed at its peak (in use at the mark, + 10%) in any of the
    // last kRetainCycles cycles. Go scales the last peak by how far the goal fell, so a heap that shrinks for a
    // cycle or two and grows back (GCBench: its stretch tree dies, then its long-lived tree is built) has pages
    // released and faulted back in at once: GCBench ran 13% slower with the background scavenger than without.
    // After a lasting drop (the spike scenario) the goal follows Go's within kRetainCycles cycles.
    recent_in_use_[r.num_gc % kRetainCycles] = r.heap_in_use_at_mark;
    uint64_t recent_peak = 0;
    for (uint64_t b : recent_in_use_) recent_peak = b > recent_peak ? b : recent_peak;
    const uint64_t go_goal = GcPercentRetainGoal(r.heap_in_use_at_mark, goal, last_goal_bytes_);
    const uint64_t floor = GcPercentRetainGoal(recent_peak, 1, 1);  // recent_peak + 10%, rounded to a page
    retain_goal_ = go_goal != UINT64_MAX && floor > go_goal ? floor : go_goal;  // UINT64_MAX: disabled
  }
  last_goal_bytes_ = goal;

  CycleOutcome out;
  // Go's GCCPUFraction definition (pause × GOMAXPROCS, and the CPU of marking while the world runs), with the
  // capacity as GOMAXPROCS, for the stats.
  const double go_charge = static_cast<double>(r.pause_ns) * cpus_ + static_cast<double>(r.concurrent_cpu_ns) +
                           static_cast<double>(r.background_thread_cpu_ns);
  out.go_gc_cpu_ns = go_charge >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(go_charge);
  out.scavenge_need_bytes = BackgroundScavengeNeed(m);
  return out;
}

uint64_t Pacer::OnSpanAlloc(const MemoryState &m, uint64_t bytes) const {
  const int64_t limit = PacingLimitBytes();
  if (limit == kNoLimit) return 0;
  return SyncScavengeBytes(m, bytes, limit, limiter_on());
}

uint64_t Pacer::BackgroundScavengeNeed(const MemoryState &m) const {
  return BackgroundScavengeBytes(m, MemoryLimitRetainGoal(PacingLimitBytes()), retain_goal_);
}

Runway Pacer::ConcurrentTrigger(const MemoryState &m) const {
  return ConcurrentRunway(CurrentGoal(m).bytes, last_.heap_marked_bytes, LastScanWork(),
                          cons_mark_.value(), BackgroundUtilization(cpus_, parallelism_.value()));
}

bool Pacer::RunwayDue(const MemoryState &m, uint64_t heap_bytes) const {
  if (limiter_on()) return false;
  const Runway r = ConcurrentTrigger(m);
  return r.fits && heap_bytes >= r.trigger_bytes;
}

double Pacer::AssistRatio(const MemoryState &m, uint64_t start_heap) const {
  return pacer::AssistRatio(LastScanWork(), start_heap, CurrentGoal(m).bytes);
}

uint64_t Pacer::AssistScanBytes(const MemoryState &m, uint64_t start_heap, uint64_t scan_done,
                                uint64_t heap_bytes) const {
  return pacer::AssistScanBytes(LastScanWork(), scan_done, start_heap, heap_bytes, CurrentGoal(m).bytes);
}

void Pacer::OnScavenged(uint64_t work_ns) {
  scavenge_cpu_since_end_ns_ += work_ns;
  scavenge_cpu_ns_ += work_ns;
  window_gc_cpu_ns_ += work_ns;
  window_own_cpu_ns_ += work_ns;
}

bool Pacer::PeriodicGcDue(uint64_t now_ns) {
  const bool due = gc_percent_ >= 0 && now_ns - last_cycle_end_ns_ >= periodic_gc_ns_;
  if (due) ++num_periodic_gc_;
  return due;
}

int Pacer::SetGcPercent(int percent) {
  const int previous = gc_percent_;
  gc_percent_ = percent < 0 ? -1 : percent;
  gc_percent_goal_ = GcPercentGoal(last_, gc_percent_);
  return previous;
}

int64_t Pacer::SetMemoryLimit(int64_t bytes) {
  const int64_t previous = memory_limit_bytes_;
  if (bytes >= 0) {
    memory_limit_bytes_ = bytes;
    limit_source_ = LimitSource::kApi;
  }
  return previous;
}

bool Pacer::OnCgroupMemoryLimit(uint64_t cgroup_bytes) {
  cgroup_memory_bytes_ = cgroup_bytes;
  if (limit_source_ == LimitSource::kEnv || limit_source_ == LimitSource::kApi) return false;  // they always win
  const int64_t derived = AutoMemoryLimit(cgroup_bytes, auto_ratio_);
  const LimitSource source = derived == kNoLimit ? LimitSource::kNone : LimitSource::kCgroup;
  if (derived == memory_limit_bytes_ && source == limit_source_) return false;
  memory_limit_bytes_ = derived;
  limit_source_ = source;
  return true;
}

void Pacer::OnCpuCapacity(double cpus, uint64_t now_ns) {
  if (now_ns > capacity_since_ns_) {
    capacity_ns_ += static_cast<double>(now_ns - capacity_since_ns_) * cpus_;
    capacity_since_ns_ = now_ns;
  }
  cpus_ = cpus;
  limiter_.SetCapacityNs(LimiterCapacityNs(cpus_, expected_cycle_gc_cpu_ns_), now_ns, num_gc_);
}

double Pacer::GcCpuFraction(uint64_t gc_cpu_ns, uint64_t now_ns) const {
  double total = capacity_ns_;
  if (now_ns > capacity_since_ns_) total += static_cast<double>(now_ns - capacity_since_ns_) * cpus_;
  return total <= 0 ? 0.0 : static_cast<double>(gc_cpu_ns) / total;
}

PacerStats Pacer::Stats(uint64_t now_ns, const MemoryState &m) const {
  PacerStats s;
  s.gc_percent = gc_percent_;
  s.memory_limit_bytes = memory_limit_bytes_;
  s.memory_limit_source = static_cast<uint32_t>(limit_source_);
  s.automemlimit_ratio = auto_ratio_;
  s.gc_percent_goal_bytes = gc_percent_goal_;
  s.limit_goal_bytes = MemoryLimitGoal(m, last_.heap_marked_bytes, PacingLimitBytes());
  const Goal goal = CombineGoals(s.gc_percent_goal_bytes, s.limit_goal_bytes);
  s.heap_goal_bytes = goal.bytes;
  s.regime = goal.regime;
  s.heap_live_bytes = last_.heap_marked_bytes;
  s.last_stack_scan_bytes = last_.stack_scan_bytes;
  s.last_globals_scan_bytes = last_.globals_scan_bytes;
  s.limiter_active = cpu_limiter_;
  s.limiter_enabled = limiter_on() ? 1 : 0;
  s.limiter_fill_ns = limiter_.fill_ns();
  s.limiter_capacity_ns = limiter_.capacity_ns();
  s.limiter_last_enabled_cycle = limiter_.last_enabled_cycle();
  s.limiter_enabled_ns = limiter_.enabled_total_ns(now_ns);
  s.limiter_postponed = postponed_;
  s.scavenge_cpu_ns = scavenge_cpu_ns_;
  s.num_periodic_gc = num_periodic_gc_;
  s.cpus = cpus_;
  s.hard_memory_limit_bytes = hard_limit_bytes_;
  s.hard_limit_gc = hard_limit_gc_;
  s.hard_limit_failures = hard_limit_failures_;
  const Runway r = ConcurrentTrigger(m);
  s.trigger_bytes = r.trigger_bytes;
  s.runway_bytes = r.runway_bytes;
  s.runway_fits = r.fits;
  s.cons_mark = cons_mark_.value();
  s.last_cons_mark = last_cons_mark_;
  return s;
}

int64_t Pacer::SetHardLimit(int64_t bytes) {
  const int64_t previous = hard_limit_bytes_;
  if (bytes >= 0) hard_limit_bytes_ = bytes;
  return previous;
}

void Pacer::OnHardLimitHit(uint64_t /*now_ns*/, bool failed) {
  if (failed) {
    ++hard_limit_failures_;
  } else {
    ++hard_limit_gc_;
  }
  hard_pending_ = true;
}

void Pacer::ResetEvents() {
  told_limiter_on_ = false;
  limiter_off_since_ns_ = 0;
  told_over_ = false;
  under_since_ns_ = 0;
  hard_pending_ = false;
  hard_told_ = false;
  last_hard_event_ns_ = 0;
}

EventBatch Pacer::PollEvents(uint64_t now_ns, const MemoryState &m) {
  EventBatch out;
  // 0 means "not since": a poll at time 0 (the simulator's start) counts from 1.
  const uint64_t now = now_ns == 0 ? 1 : now_ns;

  // The CPU limiter: ON at once, OFF after kEventHoldNs of being off at every poll.
  if (limiter_on()) {
    limiter_off_since_ns_ = 0;
    if (!told_limiter_on_) {
      told_limiter_on_ = true;
      out.kinds[out.n++] = EventKind::kLimiterOn;
    }
  } else if (told_limiter_on_) {
    if (limiter_off_since_ns_ == 0) limiter_off_since_ns_ = now;
    if (now - limiter_off_since_ns_ >= kEventHoldNs) {
      told_limiter_on_ = false;
      limiter_off_since_ns_ = 0;
      out.kinds[out.n++] = EventKind::kLimiterOff;
    }
  }

  // The soft limit: OVER at once, UNDER after kEventHoldNs at or below kUnderLimitRatio of it.
  const bool over = memory_limit_bytes_ != kNoLimit && m.total_bytes > static_cast<uint64_t>(memory_limit_bytes_);
  if (over) {
    under_since_ns_ = 0;
    if (!told_over_) {
      told_over_ = true;
      out.kinds[out.n++] = EventKind::kOverLimit;
    }
  } else if (told_over_) {
    const bool under = memory_limit_bytes_ == kNoLimit ||
                       static_cast<double>(m.total_bytes) <= kUnderLimitRatio * static_cast<double>(memory_limit_bytes_);
    if (!under) {
      under_since_ns_ = 0;
    } else {
      if (under_since_ns_ == 0) under_since_ns_ = now;
      if (now - under_since_ns_ >= kEventHoldNs) {
        told_over_ = false;
        under_since_ns_ = 0;
        out.kinds[out.n++] = EventKind::kUnderLimit;
      }
    }
  }

  // The hard cap: the first hit at once, then at most one event per kEventHoldNs (trailing: none lost).
  if (hard_pending_ && (!hard_told_ || now - last_hard_event_ns_ >= kEventHoldNs)) {
    hard_pending_ = false;
    hard_told_ = true;
    last_hard_event_ns_ = now;
    out.kinds[out.n++] = EventKind::kHardLimit;
  }
  return out;
}

}  // namespace pacegc::pacer
