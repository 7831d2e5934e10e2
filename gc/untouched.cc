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
      if (epoch != 0) s->SetWpEpoch(epoch);
    }
    p = s->end();
  }
}

}  // namespace

size_t Refresh() {
  if (g_heap.untouched_spans() == 0) return 0;
  const int pagemap_fd = os::SelfPagemap();  // -1: ForEachPopulatedRun reports everything populated
  for (const Arena *a = g_heap.FirstArena(); a != nullptr && g_heap.untouched_spans() != 0; a = a->next) {
    // Runs of neighbouring untouched spans, each asked about in one ForEachPopulatedRun.
    uintptr_t run_lo = 0, run_hi = 0;
    for (size_t page = 0; page < a->fresh_page;) {
      Span *s = a->page_spans[page];
      if (s == nullptr || s->state == SpanState::kFree) {
        ++page;
        continue;
      }
      if (s->untouched) {
        if (run_hi != s->start) {
          if (run_lo != run_hi) os::ForEachPopulatedRun(pagemap_fd, run_lo, run_hi, VisitPopulated, nullptr);
          run_lo = s->start;
        }
        run_hi = s->end();
      }
      page = (s->end() - a->base) >> kPageShift;
    }
    if (run_lo != run_hi) os::ForEachPopulatedRun(pagemap_fd, run_lo, run_hi, VisitPopulated, nullptr);
  }
  return g_heap.untouched_spans();
}

}  // namespace pacegc::internal::untouched
