// gc/alloc.cc — see alloc.h.
#include "gc/alloc.h"

#include <stdarg.h>

#include <cstdlib>

#include "gc/collector.h"
#include "gc/finalize.h"
#include "gc/os.h"
#include "gc/pacing.h"

namespace pacegc::internal {
namespace {

std::atomic<void *(*)(size_t)> g_oom_handler{nullptr};

void *CallOomHandler(size_t size) {
  void *(*handler)(size_t) = g_oom_handler.load(std::memory_order_acquire);
  return handler != nullptr ? handler(size) : nullptr;
}

bool MisuseAborts() {
#if defined(PACEGC_VERIFY_HEAP)
  return true;
#else
  static const bool aborts = [] {
    const char *env = getenv("PACEGC_ABORT_ON_MISUSE");
    return env != nullptr && env[0] == '1' && env[1] == '\0';
  }();
  return aborts;
#endif
}

// Claims the free slots of the next bitmap word of `s` that has any. Heap lock held.
bool ClaimWord(CacheSlot &slot, Span *s) {
  while (s->next_word < s->nwords) {
    uint32_t w = s->next_word++;
    uint64_t free = ~s->alloc_bits[w] & s->ValidMask(w);
    if (free == 0) continue;
    s->alloc_bits[w] |= free;
    uint32_t n = static_cast<uint32_t>(__builtin_popcountll(free));
    s->allocated += n;
    g_alloc.Alloc(n, static_cast<uint64_t>(n) * s->elem_size);
    slot.base = s->start + static_cast<uintptr_t>(w) * 64 * s->elem_size;
    slot.word = w;
    slot.needzero = s->needzero && !s->noscan;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    slot.bits = free;
    return true;
  }
  return false;
}

// Gives up the slot's span: unclaims what the slot still holds, and puts the span where it belongs.
void DropSpan(CacheSlot &slot) {
  Span *s = slot.span;
  if (s == nullptr) return;
  if (slot.bits != 0) {
    s->alloc_bits[slot.word] &= ~slot.bits;
    uint32_t n = static_cast<uint32_t>(__builtin_popcountll(slot.bits));
    s->allocated -= n;
    // Never handed out: take them off the allocation totals rather than counting them as freed.
    g_alloc.heap_alloc_bytes -= static_cast<uint64_t>(n) * s->elem_size;
    g_alloc.heap_objects -= n;
    g_alloc.total_alloc_bytes -= static_cast<uint64_t>(n) * s->elem_size;
    g_alloc.total_alloc_objects -= n;
    slot.bits = 0;
  }
  s->cached = false;
  slot.span = nullptr;
  if (s->allocated == 0) {
    g_heap.FreeSpan(s);
  } else if (s->allocated < s->nelems && !s->in_partial) {
    g_heap.PushPartial(s);
  }
}

// Refills the slot for (size_class, noscan). Heap lock held. May collect (once per slow path: *collected).
// Returns false when no memory could be had from the OS.
bool Refill(CacheSlot &slot, uint32_t size_class, bool noscan, bool *collected) {
  PACEGC_DCHECK(slot.bits == 0);
  const uint32_t size = kSizeClasses[size_class].size;
  if (!*collected && ShouldCollect(64 * size)) {
    CollectLocked(GcReason::kAuto);
    *collected = true;
  }
  if (slot.span != nullptr) {
    if (ClaimWord(slot, slot.span)) return true;
    DropSpan(slot);  // every slot claimed: the span is full until the next sweep
  }
  Span *s = g_heap.PopPartial(SpanClass(size_class, noscan));
  if (s == nullptr) {
    pacing::BeforeSpanAlloc(uint64_t{kSizeClasses[size_class].span_pages} * kPageSize);
    s = g_heap.AllocSmallSpan(size_class, noscan);
  }
  if (s == nullptr) return false;
  s->cached = true;
  s->next_word = 0;
  slot.span = s;
  slot.size = size;
  bool ok = ClaimWord(slot, s);
  PACEGC_CHECK(ok);  // a partial or new span has a free slot
  return true;
}

void *AllocateLarge(size_t size, bool noscan) {
  LockHeap();
  bool collected = false;  // a collection ran during this call (the trigger is checked once)
  bool retried = false;    // the out-of-memory collection and retry happened
  for (;;) {
    if (!collected && ShouldCollect(size)) {
      CollectLocked(GcReason::kAuto);
      collected = true;
    }
    pacing::BeforeSpanAlloc(size);
    Span *s = g_heap.AllocLargeSpan(size, noscan);
    if (s != nullptr) {
      s->alloc_bits[0] = 1;
      s->allocated = 1;
      g_alloc.Alloc(1, s->elem_size);
      bool needzero = s->needzero && !noscan;
      void *p = reinterpret_cast<void *>(s->start);
      UnlockHeap();
      // Zero outside the lock: p is on this thread's stack, so a collection in between keeps the object.
      if (needzero) memset(p, 0, size);
      if (FinalizersPending()) RunFinalizers();
      return p;
    }
    // The OS refused: collect (even if the trigger just did: the rule is collect, then retry once) and retry.
    if (retried) break;
    CollectLocked(GcReason::kOutOfMemory);
    collected = retried = true;
  }
  UnlockHeap();
  RunFinalizers();
  return CallOomHandler(size);
}

}  // namespace

void SetOomHandler(void *(*handler)(size_t)) { g_oom_handler.store(handler, std::memory_order_release); }

void Misuse(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (MisuseAborts()) Fatal("%s (aborting: misuse aborts in this build or with PACEGC_ABORT_ON_MISUSE=1)", buf);
  Message("%s (ignored)", buf);
}

void *AllocateSlow(size_t size, bool noscan) {
  EnsureInit();
  ThreadRecord *t = t_current;
  if (t == nullptr) {
    if (threads::Register() != 0) return CallOomHandler(size);
    t = t_current;
  }
  if (size > kMaxSmallSize) return AllocateLarge(size, noscan);
  uint32_t size_class = SizeToClass(size);
  CacheSlot &slot = t->cache.slots[SpanClass(size_class, noscan)];
  if (slot.bits == 0) {
    LockHeap();
    bool collected = false;  // a collection ran during this call (the trigger is checked once)
    bool ok = Refill(slot, size_class, noscan, &collected);
    if (!ok) {
      // The OS refused: collect, then retry once.
      CollectLocked(GcReason::kOutOfMemory);
      collected = true;
      ok = Refill(slot, size_class, noscan, &collected);
    }
    UnlockHeap();
    if (FinalizersPending()) RunFinalizers();
    if (!ok) return CallOomHandler(size);
  }
  // The slot has claimed slots now (a finalizer that ran above may have used some, but not all: if it emptied the
  // slot, the fast path below takes the slow path again).
  return Allocate(size, noscan);
}

void ReleaseCache(ThreadCache *cache) {
  for (CacheSlot &slot : cache->slots) DropSpan(slot);
}

void FreeObject(void *p) {
  EnsureInit();
  auto addr = reinterpret_cast<uintptr_t>(p);
  LockHeap();
  Span *s = g_heap.SpanOf(addr);
  if (s == nullptr || s->state == SpanState::kFree) {
    UnlockHeap();
    Misuse("pgc_free(%p): not an object from pgc_malloc/pgc_malloc_atomic", p);
    return;
  }
  uint32_t index = s->ObjectIndexOf(addr);
  if (index >= s->nelems || s->ObjectStart(index) != addr) {
    UnlockHeap();
    Misuse("pgc_free(%p): an interior pointer, not the start of an object", p);
    return;
  }
  if (!s->IsAllocated(index)) {
    UnlockHeap();
    Misuse("pgc_free(%p): double free (the object is not allocated)", p);
    return;
  }
  if (s->cached) {
    // A slot a cache has claimed but not handed out is allocated in the bitmap but is no object of the caller's.
    threads::LockRegistry();
    bool claimed = false;
    uint32_t sc = SpanClass(s->size_class, s->noscan);
    for (ThreadRecord *t = threads::First(); t != nullptr && !claimed; t = t->next) {
      const CacheSlot &slot = t->cache.slots[sc];
      // span and word change only under the heap lock; bits also in the owner's fast path (a relaxed store) as it
      // hands slots out, and a slot it has not handed out yet cannot be an object the caller holds.
      claimed = slot.span == s && slot.word == (index >> 6) &&
                ((__atomic_load_n(&slot.bits, __ATOMIC_RELAXED) >> (index & 63)) & 1);
    }
    threads::UnlockRegistry();
    if (claimed) {
      UnlockHeap();
      Misuse("pgc_free(%p): the object is not allocated (free slot)", p);
      return;
    }
  }
  DropFinalizer(addr);
  s->alloc_bits[index >> 6] &= ~(uint64_t{1} << (index & 63));
  --s->allocated;
  g_alloc.Free(1, s->elem_size);
  if (s->state == SpanState::kLarge) {
    g_heap.FreeSpan(s);
  } else {
#if defined(PACEGC_VERIFY_HEAP)
    memset(p, 0xDF, s->elem_size);  // catch use after free
    s->needzero = true;
#else
    // The slot will be handed out again; zero it now unless the span zeroes on hand-out anyway.
    if (!s->noscan && !s->needzero) memset(p, 0, s->elem_size);
#endif
    if (!s->cached) {
      if (s->allocated == 0) {
        g_heap.FreeSpan(s);
      } else if (!s->in_partial) {
        g_heap.PushPartial(s);
      }
    }
  }
  UnlockHeap();
}

}  // namespace pacegc::internal
