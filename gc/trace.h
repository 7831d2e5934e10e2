// gc/trace.h — the collector's traces, all off by default (STYLE.md 12), switched by the environment at start-up:
//
//   GODEBUG=gctrace=1       one line per cycle on stderr in Go's gctrace format (docs/OBSERVABILITY.md maps every
//                           field onto pacegc's stop-the-world cycle);
//   GODEBUG=gcpacertrace=1  one pacer line per cycle: both goals, the regime, the CPU limiter, postponements;
//   GODEBUG=scavtrace=1     one scavenger line per cycle (Go's format plus the retained bytes), and one marked
//                           "(forced)" after pgc_free_os_memory has released everything, as Go's debug.FreeOSMemory;
//   PACEGC_TRACE=path       the phases of every cycle, finalizer runs and background scavenging batches, per
//                           thread, as Chrome trace-event JSON (ph "X" complete events), viewable in Perfetto.
//
// How a cycle is timed. CollectLocked calls CycleBegin, then the collector calls PhaseEnd at the end of each phase,
// in order: stop the world, mark roots, mark heap, finalizer discovery, [verify heap], start the world (the pause
// ends there), sweep (after the restart, gc/sweep.h). A phase begins where the previous one ended, so the phases
// tile the cycle (in a concurrent cycle, "mark heap" spans the marking with the world running and the final pause
// up to its end). While the world is stopped a hook only reads two clocks (the
// vDSO's CLOCK_MONOTONIC and CLOCK_THREAD_CPUTIME_ID) and stores them here: no allocation, no lock, no I/O.
// CycleEnd runs after the world restarted (and after the pacer has computed the next goal): it formats the
// stderr lines into a stack buffer and writes them with write(2), never stdio (a thread that was stopped may hold
// the stdio lock), records the cycle's events into the event ring and flushes the ring to the trace file.
//
// The event ring (PACEGC_TRACE only) is preallocated from metadata at start-up: kRingEvents fixed-size records in
// a bounded multi-producer queue (Vyukov's: one sequence number per cell), so the collector, the background
// scavenger and threads running finalizers record without a lock — a thread stopped in the middle of recording
// can delay the flush of the events behind its own, never block anyone. One flusher at a time (a mutex the
// collector never takes while the world is stopped) formats events as JSON into a stack buffer and writes them.
// The file is `{"traceEvents":[` + events separated by commas + `]}`; the closing `]}` is written by an atexit
// handler, so the file is valid JSON once the process has exited normally (exit or return from main). A process
// that dies or calls _exit leaves the file without it (the events written are complete). Events that find the
// ring full are dropped and counted; the count is printed at exit. Every trace's cost when it is off is a branch
// on a global bool.
//
// Not handled: a fork()ed child inherits the trace file and would write into it too; pacegc does not trace the
// child (neither stops recording nor reopens).
#ifndef PACEGC_GC_TRACE_H_
#define PACEGC_GC_TRACE_H_

#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "gc/collector.h"
#include "gc/pacing.h"

namespace pacegc::internal::trace {

// Switches: written once by Init (start-up is single-threaded), read without synchronisation afterwards.
extern bool g_gctrace;     // GODEBUG gctrace > 0
extern bool g_pacertrace;  // GODEBUG gcpacertrace > 0
extern bool g_scavtrace;   // GODEBUG scavtrace > 0
extern bool g_events;      // PACEGC_TRACE set (the event ring and the file exist)
extern bool g_timing;      // g_gctrace || g_events: the collector times its phases
extern bool g_any;         // any of the above

// Start-up, after meta::Init and pacing::Init: parses GODEBUG and PACEGC_TRACE, opens the trace file and
// allocates the ring. start_ns is the library's start (gctrace's @T). The CPU capacity ("P", the % of CPU) comes
// from pacing. A malformed GODEBUG or a trace file that cannot be opened prints one line and exits with status 2.
void Init(uint64_t start_ns);

// The phases of a cycle, in the order they run; also the Chrome event names (trace.cc, kEventNames).
enum Phase : int {
  kStopTheWorld,        // arg: threads stopped
  kMarkRoots,           // thread caches' claimed slots, ready finalizers, stacks, data/bss, registered ranges;
                        // args: stack bytes, globals bytes scanned
  kMarkHeap,            // draining the mark stack, overflow recovery; args: heap bytes scanned, bytes marked
  kFinalizerDiscovery,  // arg: objects whose finalizers became ready
  kVerifyHeap,          // only in verify builds / the test hook; arg: problems found
  kStartTheWorld,       // the sweep's start (gc/sweep.h) and resuming the threads (ends at the end of the pause)
  kSweep,               // the rest of the sweep, after the restart; args: bytes, objects freed
  kNumPhases
};

void RecordCycleBegin(uint64_t now_ns, uint64_t cpu_ns);
void RecordPhaseEnd(Phase phase, uint64_t arg0, uint64_t arg1);
void RecordCycleEnd(const CycleStats &stats, GcReason reason);

// Heap lock held. now_ns/cpu_ns: the cycle's start, as the collector measures its pause (monotonic, thread CPU).
inline void CycleBegin(uint64_t now_ns, uint64_t cpu_ns) {
  if (PACEGC_UNLIKELY(g_timing)) RecordCycleBegin(now_ns, cpu_ns);
}
// Heap lock held, the world stopped (or, for kStartTheWorld and kSweep, just restarted): `phase` ends now.
inline void PhaseEnd(Phase phase, uint64_t arg0 = 0, uint64_t arg1 = 0) {
  if (PACEGC_UNLIKELY(g_timing)) RecordPhaseEnd(phase, arg0, arg1);
}
// Heap lock held, world running, after pacing::OnCycle: prints the enabled lines, records and flushes events.
// stats: the collector's record (gc/stats.h) with this cycle counted: its report, and gc_cpu_ns (pgc_stats').
inline void CycleEnd(const CycleStats &stats, GcReason reason) {
  if (PACEGC_UNLIKELY(g_any)) RecordCycleEnd(stats, reason);
}

// gcpacertrace: the Pacer's stats after a cycle (the record pgc_stats reads too), from pacing::OnCycle (heap lock
// held). Printed by CycleEnd, below the gctrace line. Callers test g_pacertrace first (the stats cost a goal
// computation).
void NotePacer(const pacer::PacerStats &stats);

// gctrace and gcpacertrace: one line whenever the soft limit derived from the cgroup memory limit is set or moves
// (start-up, a resized container, a removed limit): "pacegc: memory limit L bytes from the cgroup (R × cgroup-v1
// limit C bytes)", or "pacegc: memory limit none (no cgroup memory limit)". Heap lock held, or start-up.
void MemoryLimitFromCgroup(int64_t limit_bytes, uint64_t cgroup_bytes, double ratio, const char *hierarchy);

// gctrace and gcpacertrace: one line per limit event delivered ("pacegc: event limiter-on total_bytes=T
// limit_bytes=L hard_limit_bytes=H", none for no limit), and one per allocation at the hard cap ("pacegc: hard
// limit hit: refused|saved by a forced collection total_bytes=T hard_limit_bytes=H"). Heap lock held.
void LimitEvent(uint32_t kind, uint64_t total_bytes, int64_t limit_bytes, int64_t hard_limit_bytes);
void HardLimitHit(bool failed, uint64_t total_bytes, int64_t hard_limit_bytes);

// Scavenger releases (heap lock held), by who asked for them. Counted while scavtrace or PACEGC_TRACE is on.
enum class Release { kBackground, kEager, kForced };
void RecordRelease(Release kind, uint64_t bytes);
inline void Released(Release kind, uint64_t bytes) {
  if (PACEGC_UNLIKELY(g_scavtrace || g_events)) RecordRelease(kind, bytes);
}
// After pgc_free_os_memory's release (heap lock held): the "(forced)" scavtrace line.
void RecordForcedScavenge();
inline void ForcedScavengeDone() {
  if (PACEGC_UNLIKELY(g_scavtrace)) RecordForcedScavenge();
}

// A background scavenging batch (background thread, heap lock not held: the batch takes it per quantum).
struct BatchStart {
  uint64_t ns = 0;
  uint64_t released_bytes = 0;  // background bytes released before the batch
};
BatchStart RecordBatchStart();
void RecordBatchEnd(const BatchStart &start);
inline BatchStart ScavengeBatchStart() { return PACEGC_UNLIKELY(g_events) ? RecordBatchStart() : BatchStart{}; }
inline void ScavengeBatchEnd(const BatchStart &start) {
  if (PACEGC_UNLIKELY(g_events)) RecordBatchEnd(start);
}

// RunFinalizers (heap lock not held): Now() when it starts, FinalizersRan when it is done.
uint64_t RecordNow();
void RecordFinalizersRan(uint64_t start_ns, uint64_t count);
inline uint64_t Now() { return PACEGC_UNLIKELY(g_events) ? RecordNow() : 0; }
inline void FinalizersRan(uint64_t start_ns, uint64_t count) {
  if (PACEGC_UNLIKELY(g_events) && count != 0) RecordFinalizersRan(start_ns, count);
}

}  // namespace pacegc::internal::trace

#endif  // PACEGC_GC_TRACE_H_
