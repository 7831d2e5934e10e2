// gc/pacing.h — the collector's side of the pacer. pacer/ decides (pure functions of their inputs); this file
// measures what they need (memory, time, CPU), asks them, and carries out the answer. It owns:
//
//   settings      GOGC and GOMEMLIMIT (read at start-up, changed by pgc_set_gc_percent / pgc_set_memory_limit)
//   the limit's   when neither GOMEMLIMIT (set and not empty, "off" included) nor pgc_set_memory_limit gave a soft
//   default       limit, it is PACEGC_AUTOMEMLIMIT (default 0.9) × the lowest cgroup memory limit (cgroup.h),
//                 read at start-up and again every second by the background thread with the CPU quota, so a
//                 resized container moves it (and a removed limit removes it). Once the program or its
//                 environment set a limit, the cgroup no longer moves it (LimitSource says who set it).
//   the goal      GOGC goal (pacer/goal.h, once per cycle and on a GOGC change) combined with the memory-limit
//                 goal (pacer/limit.h, recomputed at every trigger check: it moves with memory use, so a lowered
//                 limit takes effect on the next allocation slow path)
//   the limiter   GC CPU limiter accounting (pacer/limiter.h). Windows end at every trigger check at least
//                 kUpdatePeriodNs after the last one and at every collection. Both sides are CPU time the program
//                 got (limiter.h, "Units"): GC CPU of a pause = the collector's CPU time in it × the mutator's
//                 parallelism, at least 1, at most the CPU capacity (pacer::PauseChargeNs), so time the program did not
//                 get — throttled by a CPU quota, descheduled by other load — counts on neither side; scavenging
//                 counts as GC CPU; mutator CPU = process CPU time (so idle time counts as neither, as in Go
//                 1.19.1+) − the collector's and scavenger's own CPU time. The bucket holds LimiterCapacityNs: the CPU capacity × 1 s
//                 (the CPU the program may use: cgroup.h), and at least two collections' cost, so one pause never
//                 fills it. While it is on, a collection
//                 the memory limit brought forward waits, but only until the heap reaches the GOGC goal: the soft
//                 limit can make collection earlier than GOGC alone, never later, so with GOGC on a too-tight limit
//                 never uses more memory than no limit at all (pacer::DecideTrigger; Go bounds the overshoot only by
//                 what the program allocates while its concurrent mark runs). In the GOGC regime collections wait
//                 as in Go. PACEGC_CPU_LIMITER=off turns the limiter off (for experiments only).
//   the scavenger returns free pages to the OS (pacer/scavenge.h says how much):
//                   - synchronously before a new span is carved, when it would push what the limit counts over the
//                     limit (not while the limiter is on), like Go's allocation-time scavenging (which also counts
//                     the whole span, resident or not);
//                   - in the background, on a thread of its own, at about 1% of the total CPU (cores × wall), towards 95% of the limit
//                     and the GOGC retain goal (the heap's in-use pages at the last mark, scaled by goal growth,
//                     + 10%);
//                   - all at once in pgc_free_os_memory.
//   periodic GC   the background thread also starts a collection when 2 minutes passed without one and GOGC is
//                 on (Go's forcegcperiod). It is not a registered thread: it holds no collected pointers, so the
//                 collection it runs stops every registered thread and scans nothing of its own; finalizers found
//                 then run on the next allocating thread.
//
// What the limit counts (pacer::MemoryState::mapped_bytes, pgc_stats.total_bytes): heap pages mapped and not
// released + collector metadata (mimalloc, usable sizes) + manual allocations (pgc_manual_*, usable sizes). Not
// counted: the program's code and data, thread stacks, the system malloc, mimalloc's own slack beyond usable
// sizes, the kernel's page tables.
//
// Every function here except Init expects the heap lock held.
#ifndef PACEGC_GC_PACING_H_
#define PACEGC_GC_PACING_H_

#include <cstddef>
#include <cstdint>

#include "gc/cgroup.h"
#include "pacer/goal.h"
#include "pacer/limit.h"

namespace pacegc::internal::pacing {

// Start-up (heap lock not needed: single-threaded init). Parses GOGC, GOMEMLIMIT, PACEGC_AUTOMEMLIMIT and
// PACEGC_CPU_LIMITER (a malformed value prints one line and exits with status 2) and reads the CPU capacity and the
// cgroup memory limit.
void Init();

// The CPU the program may use (the affinity mask lowered by a cgroup CPU quota; cgroup.h), as last read: at
// start-up, then every second by the background thread (which starts with the first collection). Everything here that counts cores uses it: the limiter's
// capacity, the scavenger's 1% budget, Go's pause × cores charge for the stats, gctrace's P.
const cgroup::CpuCapacity &CpuCapacity();
// Installs a newly read capacity (the background thread's refresh; tests call it to simulate a resized container).
void SetCpuCapacityLocked(const cgroup::CpuCapacity &c, uint64_t now_ns);
// GC CPU over the CPU time available since start-up (wall × capacity, integrated as the capacity changed):
// Go's GCCPUFraction.
double GcCpuFraction(uint64_t gc_cpu_ns, uint64_t now_ns);

// The goal in force right now (limit goal recomputed from current memory).
pacer::Goal CurrentGoal();

// The allocation slow path's trigger check: true if a collection should start now because heap_alloc +
// upcoming_bytes reached the goal and the CPU limiter admits it. Also closes a limiter window when one is due.
bool CollectionDue(uint64_t upcoming_bytes);

// What one cycle measured, reported by CollectLocked right after the world restarted.
struct CycleReport {
  uint64_t pause_ns;
  uint64_t collector_cpu_ns;     // CPU time of the collecting thread during the cycle
  uint64_t heap_marked_bytes;
  uint64_t stack_scan_bytes;
  uint64_t globals_scan_bytes;
  uint64_t heap_in_use_at_mark;  // in-use heap bytes before the sweep (what the heap needed at its peak)
  uint64_t num_gc;               // completed cycles, this one included
};
// Returns the cycle's GC CPU as pgc_stats.gc_cpu_ns counts it (pause × cores, Go's GCCPUFraction definition).
uint64_t OnCycle(const CycleReport &r);
// What OnCycle charges the limiter for the cycle: the collector's CPU × the mutator's parallelism (1..capacity).
uint64_t CycleChargeNs(const CycleReport &r);

// Before the heap carves a new span of `bytes`: synchronous scavenging for the limit.
void BeforeSpanAlloc(uint64_t bytes);

// Releases every free resident heap page; returns the bytes released.
uint64_t ReleaseAll();

// Who set the soft limit (pgc_stats.memory_limit_source: the same numbers as PGC_MEMORY_LIMIT_*).
enum class LimitSource : uint32_t {
  kNone = 0,    // no limit: GOMEMLIMIT unset and no cgroup memory limit, or PACEGC_AUTOMEMLIMIT=off
  kEnv = 1,     // GOMEMLIMIT (set and not empty; "off" included)
  kApi = 2,     // pgc_set_memory_limit
  kCgroup = 3,  // PACEGC_AUTOMEMLIMIT × the cgroup memory limit
};
const char *LimitSourceName(LimitSource s);  // "none", "env", "api", "cgroup"

// Installs a newly read cgroup memory limit and moves a limit derived from it (tests use it to simulate a
// resized container).
void SetCgroupMemoryLocked(const cgroup::MemoryLimit &m);

// Settings (Go's semantics; see collector.h). SetMemoryLimit with bytes >= 0 makes the source kApi.
int SetGcPercent(int percent);
int64_t SetMemoryLimit(int64_t bytes);

// For pgc_read_stats.
struct Snapshot {
  int gc_percent;
  int64_t memory_limit_bytes;
  LimitSource limit_source;
  cgroup::MemoryLimit cgroup_memory;  // as last read
  double auto_ratio;                  // PACEGC_AUTOMEMLIMIT; 0 = off
  uint64_t total_bytes;
  uint64_t heap_marked_bytes;
  uint64_t stack_scan_bytes;
  uint64_t globals_scan_bytes;
  bool limiter_enabled;
  uint64_t limiter_last_enabled_cycle;
  uint64_t limiter_enabled_ns;
  uint64_t limiter_postponed;
  uint64_t scavenge_cpu_ns;
  uint64_t num_periodic_gc;
};
Snapshot Read();

// What the memory limit counts now.
uint64_t TotalBytes();

// Installs the pthread_atfork handlers (once, from library initialisation): fork() takes the heap and registry
// locks, and the child restarts the background thread at its next cycle.
void InstallForkHandlers();

// Starts the background thread once (heap lock held). Called at the end of every cycle, so programs that never
// collect never get the thread.
void StartBackground();

}  // namespace pacegc::internal::pacing

#endif  // PACEGC_GC_PACING_H_
