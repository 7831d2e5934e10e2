// gc/alloc.cc — see alloc.h.
#include "gc/alloc.h"

#include <errno.h>
#include <stdarg.h>

#include <cstdlib>
#include <new>
#include <unordered_set>

#include "base/meta.h"
#include "base/os.h"
#include "gc/collector.h"
#include "gc/finalize.h"
#include "gc/pacing.h"
#include "settings/settings.h"

namespace pacegc::internal {
namespace {

std::atomic<void *(*)(size_t)> g_oom_handler{nullptr};
thread_local bool t_in_oom_handler = false;  // this thread is inside the OOM handler

// The end of every failed allocation: the handler's result, or NULL with errno ENOMEM. The handler is not called
// again for a failure inside it (its documented retry, pgc_malloc(size), fails for an impossible size: calling the
// handler again would recurse until the stack overflows), so the retry idiom retries exactly once.
void *CallOomHandler(size_t size) {
  void *(*handler)(size_t) = g_oom_handler.load(std::memory_order_acquire);
  void *p = nullptr;
  if (handler != nullptr && !t_in_oom_handler) {
    t_in_oom_handler = true;
    p = handler(size);
    t_in_oom_handler = false;
  }
  if (p == nullptr) errno = ENOMEM;
  return p;
}

#if defined(PACEGC_VERIFY_HEAP)
constexpr bool kVerifyBuild = true;
#else
constexpr bool kVerifyBuild = false;
#endif

// Quarantine of explicitly freed objects (verify builds; see FreeObject). Heap lock.
using AddressSet = std::unordered_set<uintptr_t, std::hash<uintptr_t>, std::equal_to<uintptr_t>,
                                      meta::StlAllocator<uintptr_t>>;
constexpr uint64_t kQuarantineMaxBytes = uint64_t{64} << 20;
AddressSet *g_quarantine = nullptr;  // object starts freed since the last collection, slots still allocated
uint64_t g_quarantine_bytes = 0;

bool MisuseAborts() {
#if defined(PACEGC_VERIFY_HEAP)
  return true;
#else
  return settings::Get().abort_on_misuse;
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
  // Relaxed atomic, like the owner's fast-path store: the slot may belong to a thread that exited while registered
  // and is dropped by whoever collects next (threads::RemoveDead).
  const uint64_t bits = __atomic_load_n(&slot.bits, __ATOMIC_RELAXED);
  if (bits != 0) {
    s->alloc_bits[slot.word] &= ~bits;
    uint32_t n = static_cast<uint32_t>(__builtin_popcountll(bits));
    s->allocated -= n;
    // Never handed out: take them off the allocation totals rather than counting them as freed.
    g_alloc.heap_alloc_bytes -= static_cast<uint64_t>(n) * s->elem_size;
    g_alloc.heap_objects -= n;
    g_alloc.total_alloc_bytes -= static_cast<uint64_t>(n) * s->elem_size;
    g_alloc.total_alloc_objects -= n;
    __atomic_store_n(&slot.bits, uint64_t{0}, __ATOMIC_RELAXED);
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

bool ClaimedByCache(const Span *s, uint32_t index) {
  if (!s->cached) return false;
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
  return claimed;
}

const char *NotAnObject(uintptr_t addr, Span **span_out, uint32_t *index_out) {
  if (addr == 0) return "a NULL pointer, not an object";
  Span *s = g_heap.SpanOf(addr);
  if (s == nullptr || s->state == SpanState::kFree) {
    return "not an object from pgc_malloc/pgc_malloc_atomic (a foreign pointer, or a large object already freed)";
  }
  uint32_t index = s->ObjectIndexOf(addr);
  if (index >= s->nelems || s->ObjectStart(index) != addr) return "an interior pointer, not the start of an object";
  if (!s->IsAllocated(index)) return "the object is not allocated (already freed)";
  if (g_quarantine != nullptr && g_quarantine->count(addr) != 0) {
    return "the object is not allocated (already freed; caught by the verify build's quarantine)";
  }
  if (ClaimedByCache(s, index)) return "the object is not allocated (a free slot)";
  *span_out = s;
  *index_out = index;
  return nullptr;
}

const char *FindObject(uintptr_t addr, ObjectInfo *out) {
  EnsureInit();
  LockHeap();
  Span *s = g_heap.SpanOf(addr);
  const char *why = nullptr;
  if (s != nullptr && s->state != SpanState::kFree) {
    uint32_t index = s->ObjectIndexOf(addr);
    // Past the last object (a small span's tail): keep addr, which NotAnObject then calls interior.
    uintptr_t start = index < s->nelems ? s->ObjectStart(index) : addr;
    why = NotAnObject(start, &s, &index);
    if (why == nullptr) *out = ObjectInfo{start, s->elem_size, s->noscan};
  } else {
    why = NotAnObject(addr, &s, nullptr);  // the foreign-pointer reason (does not get to the index)
  }
  UnlockHeap();
  return why;
}

namespace {

// The tail of a free: the slot becomes free, and its span goes where it belongs (a large span, or an empty small
// span no cache owns, back to the page heap; a small span with room onto its partial list). Accounting is the
// caller's. Heap lock held.
void ReleaseSlot(Span *s, uint32_t index) {
  s->alloc_bits[index >> 6] &= ~(uint64_t{1} << (index & 63));
  --s->allocated;
  if (s->state == SpanState::kLarge) {
    g_heap.FreeSpan(s);
  } else if (!s->cached) {
    if (s->allocated == 0) {
      g_heap.FreeSpan(s);
    } else if (!s->in_partial) {
      g_heap.PushPartial(s);
    }
  }
}

// Verify builds: keeps a freed object's slot allocated (not handed out again) until the next collection, so a
// second pgc_free of it is caught. false if the quarantine has no memory for it. Heap lock held.
bool Quarantine(uintptr_t addr, uint64_t bytes) {
  if (g_quarantine_bytes + bytes > kQuarantineMaxBytes) ReleaseQuarantine();
  try {
    if (g_quarantine == nullptr) g_quarantine = new (meta::Malloc(sizeof(AddressSet))) AddressSet();
    g_quarantine->insert(addr);
  } catch (const std::bad_alloc &) {
    return false;
  }
  g_quarantine_bytes += bytes;
  return true;
}

}  // namespace

void ReleaseQuarantine() {
  if (g_quarantine == nullptr || g_quarantine->empty()) return;
  for (uintptr_t addr : *g_quarantine) {
    Span *s = g_heap.SpanOf(addr);
    ReleaseSlot(s, s->ObjectIndexOf(addr));
  }
  g_quarantine->clear();
  g_quarantine_bytes = 0;
}

void FreeObject(void *p) {
  EnsureInit();
  auto addr = reinterpret_cast<uintptr_t>(p);
  LockHeap();
  Span *s = nullptr;
  uint32_t index = 0;
  if (const char *why = NotAnObject(addr, &s, &index); why != nullptr) {
    UnlockHeap();
    Misuse("pgc_free(%p): %s", p, why);
    return;
  }
  DropFinalizer(addr);
  g_alloc.Free(1, s->elem_size);
  if (s->state == SpanState::kSmall) {
    if (kVerifyBuild) {
      memset(p, 0xDF, s->elem_size);  // catch use after free
      s->needzero = true;
    } else if (!s->noscan && !s->needzero) {
      // The slot will be handed out again; zero it now unless the span zeroes on hand-out anyway.
      memset(p, 0, s->elem_size);
    }
  }
  if (!kVerifyBuild || !Quarantine(addr, s->elem_size)) ReleaseSlot(s, index);
  UnlockHeap();
}

}  // namespace pacegc::internal
