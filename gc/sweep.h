// gc/sweep.h — sweeping: after marking, every in-use span's allocation bits become its mark bits.
//
// Per small span: freed = alloc & ~mark; alloc = mark; mark = 0; the span's allocation count is recomputed. A span
// with no object left goes back to the page heap (or is kept for its class: heap.h, "Kept spans"); a span with free
// slots goes on its class's partial list. Memory of freed objects is not touched (it is zeroed when handed out
// again), except in verify builds, which fill it with 0xDF to expose use after free. Large spans whose object is
// unmarked are freed whole.
//
// Out of the pause (issue 12). Sweeping is bitmap work per span, but at a 1 GiB heap it was ~4.5 ms of every
// pause (150,000 spans' metadata, mostly cache misses). It is split:
//   - BeginSweep, in the pause (world stopped, marking done): a new sweep generation; every class list detached at
//     once (Heap::DetachPartialLists), so the lists hold nothing unswept; and the spans thread caches own swept
//     now (one per class and thread at most: their owners allocate from them the moment the world restarts). The
//     stashes were emptied before it (UnstashSpans), so no other span is owned.
//   - FinishSweep, after the restart, by the collecting thread, which still holds the heap lock: every span not of
//     the new generation is swept and listed, kept or freed.
// Why that is safe with the world running: while FinishSweep runs, nothing but the sweeper touches an unswept
// span. Allocation fast paths and unlocked refills use owned spans (swept in the pause) and spans they take from
// the class lists (which hold only spans the sweep listed: swept). Everything that could reach any other span
// needs the heap lock the sweeper holds: new and freed spans, locked refills, large objects, statistics, the
// scavenger, finalizer and weak tables, and the next cycle's marking. pgc_free, which frees without the lock, takes
// the locked path while SweepInProgress() (it checks inside its allocation critical section: the flag cannot
// become true before it leaves, since BeginSweep runs with the world stopped), so it waits for the sweep rather
// than clearing a bit the sweep is rewriting, or naming a span the sweep frees.
// Accounting is exact when the heap lock is next released: the sweep counts what it frees into g_alloc under the
// lock, and the pacer sees the cycle (OnCycle) after FinishSweep. Threads allocating meanwhile take credit
// against an interim limit (PublishGrantLimitWhileSweeping, alloc.h).
#ifndef PACEGC_GC_SWEEP_H_
#define PACEGC_GC_SWEEP_H_

#include <cstdint>

namespace pacegc::internal {

struct SweepResult {
  uint64_t freed_objects = 0;
  uint64_t freed_bytes = 0;
  uint64_t spans_freed = 0;
  SweepResult &operator+=(const SweepResult &o) {
    freed_objects += o.freed_objects;
    freed_bytes += o.freed_bytes;
    spans_freed += o.spans_freed;
    return *this;
  }
};

// World stopped, heap lock and registry lock held, marking done and the stashes emptied (UnstashSpans).
SweepResult BeginSweep(bool fill_freed);
// Heap lock held (the world running or not), after BeginSweep: sweeps the rest. The sweep is over when it returns.
SweepResult FinishSweep(bool fill_freed);
// Between BeginSweep and the end of FinishSweep (any thread; see above for when a false answer holds).
bool SweepInProgress();

}  // namespace pacegc::internal

#endif  // PACEGC_GC_SWEEP_H_
