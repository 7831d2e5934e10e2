// gc/pacing.h — the mechanism around the pacer. Policy lives in one object, pacer::Pacer (pacer/pacer.h: settings,
// goals, the CPU limiter and its windows, retain goals, postponements, the periodic timer); this file holds the
// shipped instance (made with pacer::MakePacer from the environment and the cgroup at start-up) and does what a
// pure object cannot: it measures (clocks, process and thread CPU time, cgroup files, the heap's and metadata's
// byte counts), asks the Pacer, and acts on the answer (collect, release pages, run the background thread, survive
// fork). It owns:
//
//   settings      copies GOGC, GOMEMLIMIT, PACEGC_AUTOMEMLIMIT and PACEGC_CPU_LIMITER from the settings table
//                 (settings/settings.h, read and checked once at start-up) into pacer::Settings (ReadEnvironment);
//                 pgc_set_gc_percent / pgc_set_memory_limit pass through to the Pacer and wake the background
//                 thread when there is memory to release.
//   the cgroup    the CPU capacity and the cgroup memory limit (cgroup.h), read at start-up and every second by the
//                 background thread, handed to the Pacer (OnCpuCapacity, OnCgroupMemoryLimit: while neither
//                 GOMEMLIMIT nor the API set a limit, it is PACEGC_AUTOMEMLIMIT × the cgroup limit).
//   the trigger   CollectionDue: heap_alloc + the bytes about to be claimed, current memory and the monotonic clock
//                 go to Pacer::OnTriggerCheck, with the process CPU clock read only if a limiter window closes.
//   cycle start   OnCycleBegin (runway cycles): the clocks go to Pacer::OnCycleBegin (one limiter window spans it).
//   cycle end     OnCycle: the collector's report, the clocks and memory go to Pacer::OnCycleEnd; gcpacertrace
//                 gets the Pacer's stats; the background thread is started and woken if there is memory to release.
//   the scavenger releases what the Pacer says, timing each release on the thread CPU clock and reporting it
//                 (Pacer::OnScavenged, charged to the limiter as GC time):
//                   - synchronously before a new span is carved (Pacer::OnSpanAlloc: when it would push what the limit
//                     counts over the limit, not while the limiter is on), like Go's allocation-time scavenging
//                     (which also counts the whole span, resident or not);
//                   - in the background, on a thread of its own, at about 1% of the total CPU (cores × wall,
//                     pacer::BackgroundSleepNs), towards Pacer::BackgroundScavengeNeed, in 64 KiB quanta;
//                   - all at once in pgc_free_os_memory.
//   periodic GC   the background thread also starts a collection when Pacer::PeriodicGcDue (2 minutes without one
//                 and GOGC on: Go's forcegcperiod). It is not a registered thread: it holds no collected pointers,
//                 so the collection it runs stops every registered thread and scans nothing of its own; finalizers
//                 found then go to the finalizer thread (finalize.h).
//   limit events  the program's callback (pgc_set_event_callback): the background thread asks the Pacer which
//                 edges to report (Pacer::PollEvents) and calls it with no lock held, registered for the call so
//                 it may allocate; the mechanism wakes it after cycles, on limiter edges and on hard-cap hits.
//   hard cap      PACEGC_HARD_MEMLIMIT / pgc_set_hard_memory_limit: handed to the Pacer (pacing against
//                 min(soft, hard), hit counts) and to base/hardcap.h (enforcement).
//   fork          pthread_atfork handlers: the child restarts the background thread at its next cycle.
//
// What the limit counts (pacer::MemoryState::total_bytes, pgc_stats.total_bytes): heap pages mapped and not
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
#include "pacegc/pacegc.h"
#include "pacer/pacer.h"

namespace pacegc::internal::pacing {

// Start-up (heap lock not needed: single-threaded init). Takes GOGC, GOMEMLIMIT, PACEGC_AUTOMEMLIMIT and
// PACEGC_CPU_LIMITER from the settings table (where a malformed value printed one line and exited with status 2),
// reads the CPU capacity and the cgroup memory limit, and makes the Pacer.
void Init();

// The CPU the program may use (the affinity mask lowered by a cgroup CPU quota; cgroup.h), as last read: at
// start-up, then every second by the background thread (which starts with the first collection; installed only when the reading changed). Everything here that counts cores uses it: the limiter's
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

// A runway cycle begins (CollectLocked, before its tracking); or was given up before its end.
void OnCycleBegin();
void OnCycleAbandoned();

// What one cycle measured, reported by CollectLocked right after the world restarted.
using CycleReport = pacer::CycleReport;
// Returns the cycle's GC CPU as pgc_stats.gc_cpu_ns counts it (pause × cores, Go's GCCPUFraction definition).
uint64_t OnCycle(const CycleReport &r);
// What OnCycle charges the limiter for the cycle: the collector's CPU × the mutator's parallelism (1..capacity).
uint64_t CycleChargeNs(const CycleReport &r);

// Before the heap carves a new span of `bytes`: synchronous scavenging for the limit.
void BeforeSpanAlloc(uint64_t bytes);

// Releases every free resident heap page; returns the bytes released.
uint64_t ReleaseAll();
// Heap lock NOT held. The drop-in allocator's free pages back to the OS (nothing without it), charged as
// scavenging; the bytes the limit stopped counting. The background thread calls it when the Pacer says it is due.
uint64_t ReleaseManual(bool forced);

// Who set the soft limit (pgc_stats.memory_limit_source).
using LimitSource = pacer::LimitSource;
using pacer::LimitSourceName;

// Installs a newly read cgroup memory limit and moves a limit derived from it (tests use it to simulate a
// resized container).
void SetCgroupMemoryLocked(const cgroup::MemoryLimit &m);

// Settings (Go's semantics; see collector.h). SetMemoryLimit with bytes >= 0 makes the source kApi.
int SetGcPercent(int percent);
int64_t SetMemoryLimit(int64_t bytes);
// The hard cap (base/hardcap.h enforces it; the Pacer paces against min(soft, hard) and counts its hits).
int64_t SetHardMemoryLimit(int64_t bytes);

// Limit events (pgc_set_event_callback; the policy is the Pacer's, pacer.h "Limit events"). The callback and its
// data are kept here (heap lock); setting one resets what the program was told, starts the background thread and
// wakes it. The background thread polls the Pacer at every wake-up (after each cycle, on a limiter edge, on a
// hard-cap hit, and at least every second) and calls the callback with no lock held, registered for the call.
void SetEventCallback(void (*fn)(const pgc_event *, void *), void *data);
// Heap lock NOT held: returns once no call of a callback is in flight (at once when called from the callback).
// In a blocking region: the callback may collect meanwhile.
void WaitForDelivery();
// An allocation hit the hard cap (refused, or saved by the forced collection): counted by the Pacer, delivered.
void OnHardLimitHit(bool failed);

// For pgc_read_stats: the Pacer's part, and what only the mechanism knows.
struct Snapshot {
  pacer::PacerStats pacer;
  pacer::MemoryState memory;          // as the Pacer was told (total_bytes: what the limit counts now)
  cgroup::MemoryLimit cgroup_memory;  // as last read
};
Snapshot Read();

// The Pacer's settings in force, and those it was made from at start-up (the simulator's check that it builds its
// Pacer as the shipped one is built: tests/unit/pacer_sim_test.cc).
pacer::Settings PacerSettings();
pacer::Settings StartupSettings();

// What the memory limit counts now, and the rest of the memory the Pacer is told about.
pacer::MemoryState CurrentMemory();
// What the memory limit counts now.
uint64_t TotalBytes();

// Installs the pthread_atfork handlers (once, from library initialisation): fork() takes the heap and registry
// locks, and the child restarts the background thread at its next cycle.
void InstallForkHandlers();

// Starts the background thread once (heap lock held). Called at the end of every cycle, so programs that never
// collect never get the thread.
void StartBackground();

// Heap lock NOT held, calling thread registered. Asks the background thread (started if need be) for one collection
// soon, without waiting for it (GcReason::kRequested): the drop-in's find-leak mode paces its leak checks so, from
// inside malloc, where a collection on the calling thread could wait for a lock that thread holds.
void RequestCollection();

// Runway cycles (pacer/trigger.h; collector.cc, "Runway cycles"), heap lock held. The program's parallelism
// estimate (cores it uses outside pauses); whether the CPU limiter is on (no runway, no assists then); where the
// next concurrent cycle would start (the goal: no runway); whether
// one is due at heap_bytes; a runway cycle's assist ratio and the scan work an assist owes now (pacer.h: the cycle
// began at start_heap, scan_done scanned, heap_bytes in the heap); and the request that the background thread run
// one (as soon as it wakes: kRunway).
double Parallelism();
bool LimiterOn();
uint64_t RunwayTriggerBytes();
bool RunwayDue(uint64_t heap_bytes);
double AssistRatio(uint64_t start_heap);
uint64_t AssistScanBytes(uint64_t start_heap, uint64_t scan_done, uint64_t heap_bytes);
void RequestRunwayCycle();

}  // namespace pacegc::internal::pacing

#endif  // PACEGC_GC_PACING_H_
