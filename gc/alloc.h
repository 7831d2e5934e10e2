// gc/alloc.h — allocation: the per-thread fast path, the locked slow path, large objects, explicit free.
//
// Fast path (no lock, no atomic read-modify-write): the thread's cache slot for the span class holds a 64-bit
// mask of slots it has claimed in one bitmap word of one span; an allocation takes the lowest bit. The collector
// may suspend the thread at any instruction, so the order matters:
//   1. p = base + ctz(bits) * size is computed into a register (an empty asm forces it to exist there),
//   2. then the slot's mask drops the bit (a signal fence keeps the compiler from moving the store).
// Suspended before 2: the collector still sees the bit in the cache and keeps the slot (marked, not scanned).
// Suspended after 2: p is live in a register or on the stack until it is returned, and conservative stack and
// register scanning finds it. Either way the slot survives. Zeroing happens after, on memory the thread now owns.
//
// Refill without the heap lock (the common slow path): a thread owns one span per span class (Span::cached). When
// its mask is empty it claims the next word with free slots of that span; when the span is used up it gives it
// back to its class's partial list and takes another listed span (a per-class spin lock, heap.h), with a few more
// for its next refills (the stash, alloc.cc: one lock round trip per 32 KiB of spans, not per span). Both run inside
// an allocation critical section (threads.h), so the collector never sees a claim half made. Nothing here is
// process-wide except one relaxed atomic add per credit grant (below): threads allocating in different classes
// share nothing, and threads in one class share only its list lock, taken once per 32 KiB of spans.
//
// Refill with the heap lock (the rare slow path): when the thread's credit is used up and the published limit
// leaves no room, or no span of the class is listed. It checks the trigger and may run a collection, grants
// credit, and takes a new span from the page heap if it needs one. If the OS refuses memory it collects once and
// retries, then calls the OOM handler.
//
// Accounting ("Credit")
//   The trigger compares allocated bytes with the goal. Claims made without the lock are counted in the claiming
//   thread's record (claimed_bytes/objects) and folded into g_alloc at every cycle, with the world stopped. So that
//   the trigger still sees them, a thread claims only against credit: bytes already added to one global counter
//   (g_granted) that the trigger counts as allocated (TriggerHeapBytes = g_alloc.heap_alloc_bytes + g_granted). A
//   thread takes credit with one atomic add, up to 64 KiB at a time and at most a sixteenth of the room left, as
//   long as g_granted stays under a limit the heap lock's holder publishes (PublishGrantLimit: the room between the
//   heap and the goal, and at most 1 MiB, so the trigger is checked under the lock at least every 1 MiB
//   allocated, and sees memory-limit inputs that moved without the lock, e.g. metadata). Past it, the thread
//   takes the lock and the trigger is checked as before. Unused credit counts as allocated until the next cycle:
//   the trigger fires at most one grant per thread early, never late.
#ifndef PACEGC_GC_ALLOC_H_
#define PACEGC_GC_ALLOC_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/check.h"
#include "gc/heap.h"
#include "gc/threads.h"

namespace pacegc::internal {

void *AllocateSlow(size_t size, bool noscan);
// Heap lock held, the thread leaving or gone: its claims are counted, its credit returned, and its cache's
// claimed-but-unused slots and its spans go back to the heap.
void ReleaseCache(ThreadRecord *t);
// World stopped (the collector, before marking): every thread's claims go into g_alloc, and all credit ends.
void FoldAllocationCounters();
// The child of fork(), heap lock held, every other thread's record dropped: spans still marked as owned by a
// cache that the child's own thread does not name are given back. A thread of the parent that was inside an
// allocation critical section when fork() ran (between taking a span and recording it in its cache, or between
// forgetting it and giving it up) leaves such a span; owned forever, it would never be swept or reused.
void AdoptOrphanSpans(const ThreadRecord *self);
// World stopped (the collector, before sweeping): every thread's stashed spans (alloc.cc) become unowned and
// unlisted, for the sweep to list, keep or free.
void UnstashSpans();
// Registry lock held: claims and frees made without the heap lock and not yet in g_alloc (for statistics; racy,
// but each figure was exact at some instant).
struct PendingCounts {
  uint64_t claimed_bytes = 0, claimed_objects = 0, freed_bytes = 0, freed_objects = 0;
};
PendingCounts Pending();
// Credit granted since the last cycle, less frees made without the lock: with g_alloc.heap_alloc_bytes, what the
// trigger compares with the goal (collector.h, TriggerHeapBytes).
int64_t GrantedBytes();
// Heap lock held: publishes how much credit threads may take before the trigger is checked again with the lock.
void PublishGrantLimit();
// The same for the sweep after a pause (gc/sweep.h), when g_alloc still counts the objects it is freeing: the heap
// is taken to be the `live_bytes` just marked, and the goal the one PublishGrantLimit last published (the goal in
// force when the cycle began; 0, so no credit, if none was), until the pacer has seen this cycle (then
// PublishGrantLimit). It asks the pacer nothing, so the collector calls it in the pause, before the threads resume.
void PublishGrantLimitWhileSweeping(uint64_t live_bytes);
// Explicit free (pgc_free); validates the pointer and reports misuse. In verify builds (PACEGC_VERIFY_HEAP) the
// freed object is filled with 0xDF and its slot quarantined (still allocated, never handed out) until the next
// collection or until 64 MiB are quarantined, so a second free of it is detected even where the slot would
// otherwise have been reused.
void FreeObject(void *p);
// Heap lock held, world running (the start of a collection): the quarantined slots become free.
void ReleaseQuarantine();
// World stopped, before the sweep: the quarantined slots are kept (marked, not scanned) until the next cycle
// releases them. Only a concurrent cycle has any then: pgc_free ran while it marked.
class Marker;
void KeepQuarantined(Marker &marker);
// Heap lock held. Why addr is not the start of an object the program holds, as the misuse line says it, or nullptr
// if it is one (then *span_out and *index_out locate it): NULL, foreign, interior, not allocated (freed, or a slot
// a thread cache claimed but has not handed out), quarantined. pgc_free and pgc_register_finalizer use it.
const char *NotAnObject(uintptr_t addr, Span **span_out, uint32_t *index_out);
// The live object containing addr (interior pointers too): its start, usable size (the size-class or large-span
// size) and kind. Takes the heap lock. nullptr, or why there is none, as NotAnObject says it.
struct ObjectInfo {
  uintptr_t start;
  size_t size;
  bool noscan;
};
const char *FindObject(uintptr_t addr, ObjectInfo *out);
// Heap lock held (takes the registry lock): the slot is claimed by a thread cache but not handed out.
bool ClaimedByCache(const Span *s, uint32_t index);
// A finalizer was registered: pgc_free always takes the heap lock from now on (it drops table entries).
void NoteFinalizerRegistered();
// The OOM handler (pgc_set_oom_handler).
void SetOomHandler(void *(*handler)(size_t));

// Misuse of the API: one message, then abort if misuse aborts (verify builds, PACEGC_ABORT_ON_MISUSE=1).
void Misuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

inline void *Allocate(size_t size, bool noscan) {
  ThreadRecord *t = t_current;
  if (PACEGC_LIKELY(t != nullptr && size <= kMaxSmallSize)) {
    CacheSlot &slot = t->cache.slots[SpanClass(SizeToClass(size), noscan)];
    uint64_t bits = slot.bits;
    if (PACEGC_LIKELY(bits != 0)) {
      uintptr_t p = slot.base + static_cast<uintptr_t>(__builtin_ctzll(bits)) * slot.size;
      __asm__ volatile("" : : "r"(p) : "memory");
      // Relaxed atomic (a plain store on x86-64 and AArch64): pgc_read_stats and pgc_free's misuse check read
      // other threads' masks without synchronising with their owners.
      __atomic_store_n(&slot.bits, bits & (bits - 1), __ATOMIC_RELAXED);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (slot.needzero) memset(reinterpret_cast<void *>(p), 0, slot.size);
      return reinterpret_cast<void *>(p);
    }
  }
  return AllocateSlow(size, noscan);
}

}  // namespace pacegc::internal

#endif  // PACEGC_GC_ALLOC_H_
