// gc/untouched.cc — see untouched.h.
#include "gc/untouched.h"

#include "base/os.h"
#include "gc/collector.h"
#include "gc/concurrent.h"
#include "gc/heap.h"

namespace pacegc::internal::untouched {
namespace {

// A run of pages [lo, hi) holds data: every span overlapping it is touched.
void VisitPopulated(uintptr_t lo, uintptr_t hi, void *) {
  for (uintptr_t p = lo & ~(kPageSize - 1); p < hi;) {
    Span *s = g_heap.SpanOf(p);
    if (s == nullptr || s->state == SpanState::kFree) {
      p += kPageSize;
      continue;
    }
    if (s->untouched) {
      g_heap.MarkTouched(s);
      // Concurrent marking does not write-protect an untouched span (gc/concurrent.h): if it was written during
      // the cycle, the final pause re-scans its marked objects whole.
      const uint32_t epoch = concurrent::g_tracking_epoch.load(std::memory_order_relaxed);
      if (epoch != 0) g_heap.FlagWp(s, epoch);
    }
    p = s->end();
  }
}

}  // namespace

size_t Refresh() {
  if (g_heap.untouched_spans() == 0) return 0;
  const int pagemap_fd = os::SelfPagemap();  // -1: ForEachPopulatedRun reports everything populated
  // Runs of neighbouring untouched spans, each asked about in one ForEachPopulatedRun. The spans come from the
  // arenas' untouched bits (Heap::ForEachUntouched), not a walk of every span: with 280,000 spans in use, that walk
  // took 4-5 ms of a concurrent cycle's final pause (docs/BENCHMARKS.md). The visitor only clears flags of spans
  // in the run already read, which the walk has passed.
  uintptr_t run_lo = 0, run_hi = 0;
  g_heap.ForEachUntouched([&](const Span *s) {
    if (run_hi != s->start) {
      if (run_lo != run_hi) os::ForEachPopulatedRun(pagemap_fd, run_lo, run_hi, VisitPopulated, nullptr);
      run_lo = s->start;
    }
    run_hi = s->end();
  });
  if (run_lo != run_hi) os::ForEachPopulatedRun(pagemap_fd, run_lo, run_hi, VisitPopulated, nullptr);
  return g_heap.untouched_spans();
}

}  // namespace pacegc::internal::untouched
