// gc/sweep.cc — see sweep.h.
#include "gc/sweep.h"

#include <atomic>
#include <cstring>

#include "base/check.h"
#include "gc/collector.h"
#include "gc/heap.h"
#include "gc/threads.h"

namespace pacegc::internal {
namespace {

std::atomic<bool> g_sweeping{false};

// One small span's bitmaps: alloc = alloc & mark, mark = 0, the count and `needzero` brought up to date, the freed
// objects counted off g_alloc (heap lock). Returns the objects left; *freed_out the objects freed.
uint32_t SweepSmall(Span *s, bool fill_freed, SweepResult *r, uint32_t *freed_out) {
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
  __atomic_store_n(&s->allocated, live, __ATOMIC_RELAXED);
  s->next_word = 0;
  s->swept_gen = g_heap.SweepGen();
  if (freed != 0) {
    __atomic_store_n(&s->needzero, true, __ATOMIC_RELAXED);
    r->freed_objects += freed;
    r->freed_bytes += static_cast<uint64_t>(freed) * s->elem_size;
    g_alloc.Free(freed, static_cast<uint64_t>(freed) * s->elem_size);
  }
  *freed_out = freed;
  return live;
}

}  // namespace

SweepResult BeginSweep(bool fill_freed) {
  SweepResult r;
  g_heap.NewSweepGen();
  g_heap.DetachPartialLists();
  g_sweeping.store(true, std::memory_order_seq_cst);
  // The owned spans: the slot spans of every thread's cache (the stashes are empty). Never listed while owned.
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    for (CacheSlot &slot : t->cache.slots) {
      Span *s = slot.span;
      if (s == nullptr) continue;
      PACEGC_DCHECK(s->IsCached() && s->state == SpanState::kSmall);
      uint32_t freed = 0;
      SweepSmall(s, fill_freed, &r, &freed);
    }
  }
  return r;
}

SweepResult FinishSweep(bool fill_freed) {
  SweepResult r;
  const uint32_t gen = g_heap.SweepGen();
  Span *next = nullptr;
  for (Span *s = g_heap.FirstInUse(); s != nullptr; s = next) {
    next = s->all_next;
    if (s->swept_gen == gen) continue;  // owned, swept in the pause
    if (s->state == SpanState::kLarge) {
      if (s->mark_bits[0] & 1) {
        s->mark_bits[0] = 0;
        s->swept_gen = gen;
        continue;
      }
      r.freed_objects += 1;
      r.freed_bytes += s->elem_size;
      g_alloc.Free(1, s->elem_size);
      ++r.spans_freed;
      g_heap.FreeSpan(s);
      continue;
    }
    uint32_t freed = 0;
    if (s->IsCached()) {
      // Owned, yet in no thread's slot: only a fork() child has such a span (AdoptOrphanSpans leaves the one a
      // vanished thread was taking when a signal handler forked). Nobody allocates from it: swept, never listed.
      SweepSmall(s, fill_freed, &r, &freed);
      continue;
    }
    // Unowned (no cache can take an unswept span: sweep.h).
    g_heap.ForgetDetached(s);
    const uint32_t live = SweepSmall(s, fill_freed, &r, &freed);
    if (live == 0 && freed != 0) {  // (a kept span is never allocated from: freed is 0)
      g_heap.Keep(s);  // its objects died this cycle: kept for its class's next refills (heap.h, "Kept spans")
    } else if (live == 0) {
      ++r.spans_freed;  // nothing died in it this cycle (kept then and not taken since): to the page heap
      g_heap.FreeSpan(s);
    } else if (live < s->nelems) {
      g_heap.PushPartial(s);
    }
  }
  g_sweeping.store(false, std::memory_order_release);
  return r;
}

bool SweepInProgress() { return g_sweeping.load(std::memory_order_acquire); }

}  // namespace pacegc::internal
