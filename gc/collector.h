// gc/collector.h — one collection cycle end to end, the global collector state, and the heap lock.
//
// A cycle (CollectLocked), with the heap lock held from trigger to finish:
//   1. snapshot the data/bss segments of loaded objects (dl_iterate_phdr, before stopping: the loader's lock may
//      be held by a thread we would stop);
//   2. stop the world (threads.h);
//   3. mark: keep the slots thread caches have claimed but not handed out, then scan roots (registered threads'
//      stacks and saved registers, data/bss, registered ranges), drain the mark stack, handle overflow;
//   4. finalization: unreachable objects with finalizers, and what they reach, are kept; their finalizers queued;
//   5. verification (PACEGC_VERIFY_HEAP or the test hook): re-walk from the roots, every reachable object marked;
//   6. the sweep's start (gc/sweep.h): the spans thread caches own are swept, the class lists emptied;
//   7. restart the world; the collecting thread, still holding the heap lock, sweeps the rest (every span's
//      allocation bits become its mark bits; empty spans go back to the page heap) while other threads allocate from
//      their caches and the lists the sweep refills; then it reports to the pacer (live bytes, roots scanned) and
//      computes the next goal.
// Queued finalizers run after the heap lock is released, on the finalizer thread (or on demand: finalize.h).
//
// Trigger: stop-the-world means no concurrent-mark runway, so the trigger is the goal: a cycle starts when an
// allocation slow path finds heap_alloc (bytes claimed for objects) at or above the goal in force (gc/pacing.h:
// the lower of the GOGC and the memory-limit goals) and the GC CPU limiter admits it.
#ifndef PACEGC_GC_COLLECTOR_H_
#define PACEGC_GC_COLLECTOR_H_

#include <cstddef>
#include <cstdint>

#include "gc/heap.h"
#include "gc/stats.h"
#include "pacegc/pacegc.h"

namespace pacegc::internal {

extern Heap g_heap;

// The heap lock guards the heap, the span lists, allocation accounting, finalizer and root tables, and settings.
void LockHeap();
void UnlockHeap();
// Whether the calling thread holds the heap lock now.
bool HeapLockHeldHere();
// Heap lock held, world running: releases it for a moment, letting a thread that waits for it take it first (a
// concurrent cycle's collector between two pieces of its work), and takes it back.
void YieldHeapLock();

// Initialises the library once (also run from a constructor at load time). Exits the process with status 2 after
// one clear message if the environment is malformed (GOGC, PACEGC_SUSPEND_SIGNAL); aborts if the OS refuses the
// initial mappings.
void EnsureInit();
// True while EnsureInit's initialisation runs on the calling thread (what it calls must not call EnsureInit).
bool InitialisingOnThisThread();

// Allocation accounting (gc/stats.h), heap lock held. "Claimed" slots count as allocated from the moment a cache
// claims them. Claims made without the heap lock are counted per thread first and folded in here at every cycle
// (alloc.h).
extern AllocCounters g_alloc;

// kPeriodic, kRequested and kRunway run on the background thread, which is not registered (pacing::RequestCollection,
// pacing::RequestRunwayCycle).
enum class GcReason { kAuto, kForced, kOutOfMemory, kPeriodic, kRequested, kRunway };

// Heap lock held. True if heap_alloc + upcoming_bytes reaches the goal (and collection is enabled).
bool ShouldCollect(size_t upcoming_bytes);
// Heap lock held. What the trigger compares with the goal: allocated bytes, with the credit threads took to claim
// slots without the lock (alloc.h, "Accounting") counted as allocated.
uint64_t TriggerHeapBytes();
// Heap lock held. Runs one full cycle. Finalizers found are queued, not run. A concurrent cycle (gc/concurrent.h)
// releases the heap lock while it marks, between slices: other threads may take it meanwhile. A kAuto call while
// another thread's concurrent cycle runs waits for that cycle instead of starting one; other reasons wait for it,
// then run their own.
void CollectLocked(GcReason reason);
// Heap lock held (released while waiting): returns when no concurrent cycle is in progress (fork() waits here so a
// child never inherits half a cycle).
void WaitForConcurrentCycle();

// Runway cycles (collector.cc, "Runway cycles"; pacer/trigger.h), heap lock held, for the allocation slow path.
// GrantGoalBytes: what credit may be granted up to without the lock: the runway's trigger while a runway cycle could
// start (so the slow path checks it), else the goal. RunwayCheckLocked: after the trigger check, asks the background
// thread for a runway cycle when the heap (+ upcoming_bytes) reached the runway's trigger. AssistLocked: while a
// runway cycle marks (its first drain), the thread scans what the marking is behind.
uint64_t GrantGoalBytes();
void RunwayCheckLocked(uint64_t upcoming_bytes);
void AssistLocked();

// Settings (take the heap lock). Go's semantics: both return the previous value; a negative percent is off (-1);
// a negative limit only queries.
int SetGcPercent(int percent);
int64_t SetMemoryLimit(int64_t bytes);
// pgc_set_hard_memory_limit (the same semantics) and pgc_set_event_callback.
int64_t SetHardMemoryLimit(int64_t bytes);
void SetEventCallback(void (*fn)(const pgc_event *, void *), void *data);
// An allocation outside the heap (manual memory) hit the hard cap: counted and reported (takes the heap lock).
void NoteHardLimitHit(bool failed);
// Heap lock held: completed cycles and GC CPU as pgc_stats counts them (for limit events).
void CycleCountersLocked(uint64_t *num_gc, uint64_t *gc_cpu_ns);

// pgc_free_os_memory: a forced collection, then every free heap page back to the OS. Heap lock NOT held.
uint64_t FreeOsMemory();

}  // namespace pacegc::internal

struct pgc_stats;
namespace pacegc::internal {
void ReadStats(pgc_stats *out);  // a consistent snapshot (heap lock)
}  // namespace pacegc::internal

#endif  // PACEGC_GC_COLLECTOR_H_
