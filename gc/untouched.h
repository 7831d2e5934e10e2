// gc/untouched.h — untouched spans: heap pages the OS has never populated hold only zeros, so the marker need not
// read them.
//
// Why: the allocator hands out objects from fresh arena pages without writing them (they read as zero). A program
// that allocates objects and never writes some of them (stores only the pointers, reserves capacity it fills later)
// leaves those pages unpopulated, and the first collection that marks the objects was the first to read them:
// one page fault per 4 KiB page, with the world stopped. On this project's VMs a fresh fault costs 15-30 us and
// the kernel fills a real page even for a read (no shared zero page), so 1 GiB of such objects made the first
// cycle 8 s instead of 0.8 s (issue 12, docs/BENCHMARKS.md "Large heap") and made every such page resident.
//
// Mechanism: a scanned span is presumed untouched when it becomes in use (Span::untouched, gc/heap.cc InitInUse).
// At the start of every cycle, with the world stopped and before any marking, Refresh asks /proc/self/pagemap
// about the pages of the untouched spans only (runs of neighbouring untouched spans in one read, 512 entries per
// pread; os::ForEachPopulatedRun): a span with any page present in memory or swapped out may hold data and is
// marked touched, for good. The marker then marks the objects of a span still untouched without pushing them: their
// contents are all zeros, they point nowhere.
//
// Invariants:
//   - An untouched span's pages were neither present nor swapped when the world stopped. Such a page of a private
//     anonymous mapping (every arena is one) reads as zero, and no mutator runs until the world restarts, so no
//     word of the span can point into the heap during this cycle's marking.
//   - The flag only goes from set to clear while the span is in use (Heap::MarkTouched), so a span that may hold
//     data is never skipped later: a page once populated is scanned in every later cycle whatever pagemap says
//     then. (Pages of in-use spans are never released; released free pages come back as new spans, untouched
//     again, which is right: MADV_DONTNEED makes them read as zero.)
//   - Noscan spans are never untouched (never read anyway); Heap::Verify checks both and the count.
//   - Whenever pagemap cannot answer (not readable, an error), ForEachPopulatedRun reports the whole range as
//     populated: every span is scanned, as before this mechanism.
//   - fork(): a descriptor of /proc/self/pagemap describes the process that opened it. Refresh reads through
//     os::SelfPagemap (shared with the drop-in's root scan), which opens it again in a child, so a child never judges
//     its pages by its parent's.
//
// Cost: nothing once every span is touched (the count of untouched spans is 0: Refresh returns at once). Otherwise
// one walk of each arena's page table (8 bytes per 8 KiB page) and pagemap reads for the untouched spans' pages
// only, per cycle (measured: docs/BENCHMARKS.md).
//
// Not handled: the verifier (VerifyMarks) still reads every reachable object, which populates untouched pages in
// verify builds; a page the program only read (the kernel populates it) counts as touched and is scanned.
#ifndef PACEGC_GC_UNTOUCHED_H_
#define PACEGC_GC_UNTOUCHED_H_

#include <cstddef>

namespace pacegc::internal::untouched {

// World stopped, heap lock held, before marking. Clears Span::untouched on every untouched span with a populated
// page. Returns the number of spans still untouched. Also called with the world running (heap lock held) when a
// concurrent cycle begins (gc/concurrent.h): clearing a flag early is always safe, and the pause that marks refreshes
// again. While a concurrent cycle tracks writes, a span it finds touched is re-scanned whole in the final pause (an
// untouched span is not write-protected).
size_t Refresh();

}  // namespace pacegc::internal::untouched

#endif  // PACEGC_GC_UNTOUCHED_H_
