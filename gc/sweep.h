// gc/sweep.h — sweeping: after marking, every in-use span's allocation bits become its mark bits.
//
// Runs with the world stopped (the cycle is fully stop-the-world in this version; a lazy, concurrent sweep is a
// later step — the bitmap layout already allows it, since sweeping a span touches only its own metadata).
// Per small span: freed = alloc & ~mark; alloc = mark; mark = 0; the span's allocation count is recomputed. A span
// with no object left goes back to the page heap (unless a thread cache owns it: its owner may still allocate from
// it); a span with free slots goes on its class's partial list. Memory of freed objects is not touched (it is
// zeroed when handed out again), except in verify builds, which fill it with 0xDF to expose use after free.
// Large spans whose object is unmarked are freed whole.
#ifndef PACEGC_GC_SWEEP_H_
#define PACEGC_GC_SWEEP_H_

#include <cstdint>

namespace pacegc::internal {

struct SweepResult {
  uint64_t freed_objects = 0;
  uint64_t freed_bytes = 0;
  uint64_t spans_freed = 0;
};

// World stopped, heap lock held.
SweepResult SweepHeap(bool fill_freed);

}  // namespace pacegc::internal

#endif  // PACEGC_GC_SWEEP_H_
