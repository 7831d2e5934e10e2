// gc/sweep.cc — see sweep.h.
#include "gc/sweep.h"

#include <cstring>

#include "gc/collector.h"
#include "gc/heap.h"

namespace pacegc::internal {

SweepResult SweepHeap(bool fill_freed) {
  SweepResult r;
  Span *next = nullptr;
  for (Span *s = g_heap.FirstInUse(); s != nullptr; s = next) {
    next = s->all_next;
    if (s->state == SpanState::kLarge) {
      if (s->mark_bits[0] & 1) {
        s->mark_bits[0] = 0;
        continue;
      }
      r.freed_objects += 1;
      r.freed_bytes += s->elem_size;
      g_alloc.Free(1, s->elem_size);
      ++r.spans_freed;
      g_heap.FreeSpan(s);
      continue;
    }
    uint32_t live = 0;
    uint32_t freed = 0;
    for (uint32_t w = 0; w < s->nwords; ++w) {
      // A mark on a slot that is no longer allocated (concurrent marking: the object was marked, then pgc_free
      // released it) keeps nothing.
      uint64_t mark = s->mark_bits[w] & s->alloc_bits[w];
      uint64_t dead = s->alloc_bits[w] & ~mark;
      if (dead != 0) {
        freed += static_cast<uint32_t>(__builtin_popcountll(dead));
        if (fill_freed) {
          while (dead != 0) {
            uint32_t index = w * 64 + static_cast<uint32_t>(__builtin_ctzll(dead));
            dead &= dead - 1;
            memset(reinterpret_cast<void *>(s->ObjectStart(index)), 0xDF, s->elem_size);
          }
        }
      }
      s->alloc_bits[w] = mark;
      s->mark_bits[w] = 0;
      live += static_cast<uint32_t>(__builtin_popcountll(mark));
    }
    s->allocated = live;
    s->next_word = 0;
    if (freed != 0) {
      s->needzero = true;
      r.freed_objects += freed;
      r.freed_bytes += static_cast<uint64_t>(freed) * s->elem_size;
      g_alloc.Free(freed, static_cast<uint64_t>(freed) * s->elem_size);
    }
    if (s->cached) continue;
    if (live == 0 && freed != 0) {  // (a kept span is never allocated from: freed is 0)
      g_heap.Keep(s);  // its objects died this cycle: kept for its class's next refills (heap.h, "Kept spans")
    } else if (live == 0) {
      ++r.spans_freed;  // nothing died in it this cycle (kept then and not taken since): to the page heap
      g_heap.FreeSpan(s);
    } else if (live < s->nelems && !s->in_partial) {
      g_heap.PushPartial(s);
    }
  }
  return r;
}

}  // namespace pacegc::internal
