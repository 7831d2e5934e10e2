// gc/alloc.cc — see alloc.h.
#include "gc/alloc.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <unordered_set>

#include "base/hardcap.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/collector.h"
#include "gc/concurrent.h"
#include "gc/finalize.h"
#include "gc/mark.h"
#include "gc/pacing.h"
#include "gc/spinlock.h"
#include "gc/sweep.h"
#include "gc/testing.h"
#include "gc/weak.h"
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

// Heap lock held. An allocation failed; refusals_before is hardcap::ThreadRefusals() from before it. If the hard
// cap refused it (rather than the OS), the rescue is a forced collection AND every free page back to the OS (a
// collection alone frees slots and spans, but the pages stay counted until released). Returns whether it was the
// cap's; the caller collects (it does so for an OS refusal too), then calls this, then retries once.
bool AtHardCap(uint64_t refusals_before) {
  if (hardcap::ThreadRefusals() == refusals_before) return false;
  pacing::ReleaseAll();
  return true;
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
std::atomic<bool> g_quarantine_on{kVerifyBuild};  // testing::SetFreeQuarantine turns it off
AddressSet *g_quarantine = nullptr;  // object starts freed since the last collection, slots still allocated
uint64_t g_quarantine_bytes = 0;

std::atomic<uint64_t> g_misuse_reports{0};  // testing::MisuseReports

bool MisuseAborts() {
#if defined(PACEGC_VERIFY_HEAP)
  return true;
#else
  return settings::Get().abort_on_misuse;
#endif
}

// ---- Credit (alloc.h, "Accounting") ----------------------------------------------------------------------------
constexpr uint64_t kCreditBytes = uint64_t{64} << 10;  // the most a thread takes at once
constexpr uint64_t kRecheckBytes = uint64_t{1} << 20;  // grants between two checks of the trigger under the lock
constexpr uint64_t kSpanBatchBytes = uint64_t{64} << 10;  // spans a locked refill takes from the page heap at once
// Credit granted since the last cycle, claimed or not, less what frees made (a free turns the freed bytes into the
// freeing thread's credit). Signed: a thread that only frees gives back credit it was never granted.
std::atomic<int64_t> g_granted{0};
std::atomic<int64_t> g_grant_limit{0};  // g_granted may grow to this without the heap lock
std::atomic<bool> g_finalizers_used{false};  // pgc_free takes the heap lock (NoteFinalizerRegistered)

// Credit for at least `need` bytes, without the heap lock: false if that would pass the published limit (then the
// trigger is checked under the lock). Takes up to kCreditBytes, and a sixteenth of the room left at most, so idle
// threads cannot hold much of the room before the goal.
bool TakeCredit(ThreadRecord *t, uint64_t need) {
  const auto want = static_cast<int64_t>(need);
  int64_t limit = g_grant_limit.load(std::memory_order_relaxed);
  int64_t granted = g_granted.load(std::memory_order_relaxed);
  if (granted + want > limit) return false;
  int64_t room = limit - granted;
  int64_t grant = room / 16 < static_cast<int64_t>(kCreditBytes) ? room / 16 : static_cast<int64_t>(kCreditBytes);
  if (grant < want) grant = want;
  if (g_granted.fetch_add(grant, std::memory_order_relaxed) + grant > limit) {
    g_granted.fetch_sub(grant, std::memory_order_relaxed);
    return false;
  }
  t->credit += grant;
  return true;
}

// A thread freed `bytes` without the lock: they become its credit, so the trigger's figure does not move until it
// allocates more than that. Credit beyond two grants goes back to the pool (a thread that only frees).
void CreditFree(ThreadRecord *t, uint64_t bytes) {
  t->credit += static_cast<int64_t>(bytes);
  if (t->credit > static_cast<int64_t>(2 * kCreditBytes)) {
    int64_t back = t->credit - static_cast<int64_t>(kCreditBytes);
    g_granted.fetch_sub(back, std::memory_order_relaxed);
    t->credit -= back;
  }
}

// Scanned objects of a span that may hold old data are zeroed when claimed, a run of free slots at a time (one
// memset of up to 64 objects instead of one call per allocation: a third of the fast path's time for 64-byte
// objects), for classes up to this size; larger objects are zeroed one by one as they are handed out, so a claim
// never zeroes more than 16 KiB that may not be used for a while.
constexpr uint32_t kZeroAtClaimMaxSize = 256;

void ZeroRuns(uintptr_t base, uint64_t free, uint32_t size) {
  while (free != 0) {
    uint32_t first = static_cast<uint32_t>(__builtin_ctzll(free));
    uint64_t rest = ~(free >> first);  // the run ends at the first zero bit above `first`
    uint32_t run = rest == 0 ? 64 - first : static_cast<uint32_t>(__builtin_ctzll(rest));
    memset(reinterpret_cast<void *>(base + static_cast<uintptr_t>(first) * size), 0,
           static_cast<size_t>(run) * size);
    free = run + first >= 64 ? 0 : free & ~((uint64_t{1} << (first + run)) - 1);
  }
}

// A refill's change of a cache slot's span, or of its word and bits, by the thread that owns the cache: odd
// ThreadRecord::cache_seq while it lasts, so that ClaimedBy, reading another thread's slot without stopping it,
// sees the fields of one claim or retries. Only relaxed stores go inside (nothing there waits for anything), and
// the owner is inside an allocation critical section or holds the heap lock, so no stop finds it there.
class SlotChange {
 public:
  explicit SlotChange(ThreadRecord *t) : t_(t) {
    t_->cache_seq.store(t_->cache_seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);  // odd before any of the slot's stores
  }
  ~SlotChange() {
    t_->cache_seq.store(t_->cache_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  SlotChange(const SlotChange &) = delete;
  SlotChange &operator=(const SlotChange &) = delete;

 private:
  ThreadRecord *t_;
};

// Claims the free slots of the next bitmap word of `s` that has any. The caller owns s (slot.span) and holds at
// least 64 objects' worth of credit; it is inside a critical section, or holds the heap lock. Nothing but the owner
// sets bits of an owned span; pgc_free may clear some concurrently (hence the atomic OR: a bit it clears after the
// load stays free, for a later claim).
bool ClaimWord(ThreadRecord *t, CacheSlot &slot, Span *s) {
  concurrent::BeforeFilling(s);  // while the collector tracks writes: no fault per page for zeroing and filling
  while (s->next_word < s->nwords) {
    uint32_t w = s->next_word++;
    // Acquire: a slot pgc_free released (its release AND) was last written by the freeing thread (0xDF, zeroing).
    uint64_t free = ~__atomic_load_n(&s->alloc_bits[w], __ATOMIC_ACQUIRE) & s->ValidMask(w);
    if (free == 0) continue;
    __atomic_fetch_or(&s->alloc_bits[w], free, __ATOMIC_ACQ_REL);
    uint32_t n = static_cast<uint32_t>(__builtin_popcountll(free));
    __atomic_fetch_add(&s->allocated, n, __ATOMIC_SEQ_CST);
    uint64_t bytes = static_cast<uint64_t>(n) * s->elem_size;
    PACEGC_DCHECK(t->credit >= static_cast<int64_t>(bytes));
    t->credit -= static_cast<int64_t>(bytes);
    // Relaxed stores: ReadStats reads these of other threads.
    __atomic_store_n(&t->claimed_bytes, t->claimed_bytes + bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&t->claimed_objects, t->claimed_objects + n, __ATOMIC_RELAXED);
    const uintptr_t base = s->start + static_cast<uintptr_t>(w) * 64 * s->elem_size;
    bool needzero = s->NeedsZero() && !s->noscan;
    if (needzero && s->elem_size <= kZeroAtClaimMaxSize) {
      ZeroRuns(base, free, s->elem_size);
      needzero = false;
    }
    SlotChange change(t);
    __atomic_store_n(&slot.base, base, __ATOMIC_RELAXED);
    __atomic_store_n(&slot.word, w, __ATOMIC_RELAXED);
    slot.needzero = needzero;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    __atomic_store_n(&slot.bits, free, __ATOMIC_RELAXED);
    return true;
  }
  return false;
}

// The stash: a refill that finds its span used up takes the next from the class list, and with it up to
// kStashBytes of spans more, which the cache owns (cached) and keeps for its next refills. Threads allocating
// one class took every span from the same list, one class-lock round trip per span (128 objects of 64 bytes):
// the list's line moved between cores at every span (TakePartial was a fifth of two threads' time). Stashed spans
// are the cache's like the slot's span (the sweep does not list, keep or free them), so at the start of every
// sweep the collector gives them back (UnstashSpans): a stash never holds memory for more than a cycle, and the
// sweep decides about each span as for any other.
constexpr uint64_t kStashBytes = uint64_t{32} << 10;

// The slot's span is used up (or there is none): gives it up and takes the next span of the class: stashed,
// else listed (stashing more), or nullptr. Inside a critical section, or with the heap lock.
Span *NextListedSpan(ThreadRecord *t, CacheSlot &slot, uint32_t span_class) {
  if (Span *old = slot.span; old != nullptr) {
    // The slot forgets the span before the span is given up: a fork() between the two leaves, in the child, a span
    // no record names and still marked owned (AdoptOrphanSpans gives it back) or unowned and unlisted (the sweep
    // lists it), never a record naming a span it gave up (which another thread may own by then).
    {
      SlotChange change(t);
      __atomic_store_n(&slot.span, static_cast<Span *>(nullptr), __ATOMIC_RELAXED);
    }
    g_heap.ReleaseCached(old);
  }
  if (Span *s = t->stash[span_class]; s != nullptr) {
    t->stash[span_class] = s->next;
    s->next = nullptr;
    return s;
  }
  const uint64_t span_bytes = uint64_t{kSizeClasses[span_class / 2].span_pages} * kPageSize;
  const uint32_t extra = span_bytes >= kStashBytes ? 0 : static_cast<uint32_t>(kStashBytes / span_bytes - 1);
  return g_heap.TakePartial(span_class, extra, &t->stash[span_class]);
}

// A span the cache gives up for good (heap lock; the owner is leaving or gone): listed if it has room, empty
// ones too. Never freed here, even empty: with the world running a lock-free pgc_free may still be on its way
// into the span (it freed the last object, and has yet to read `cached` and call ListIfUnowned), or a thread
// giving it up may still read it (ReleaseCached's load after its store). Small spans are freed only by the sweep
// (in the pause, or after it while no lock-free pgc_free runs: gc/sweep.h) and as kept spans (which no thread can
// be touching: empty, unowned, reachable only through the list); an empty span given up here is kept or freed by
// the next sweep.
void GiveUpSpan(Span *s) { g_heap.ReleaseCached(s); }

// Empties the thread's stash of one class, handing each span (off the chain) to give_up. The thread is not
// allocating: it is leaving or gone (heap lock), or the world is stopped.
template <typename GiveUp>
void EmptyStash(ThreadRecord *t, uint32_t span_class, GiveUp give_up) {
  Span *s = t->stash[span_class];
  t->stash[span_class] = nullptr;
  while (s != nullptr) {
    Span *next = s->next;
    s->next = nullptr;
    give_up(s);
    s = next;
  }
}

void Install(ThreadRecord *t, CacheSlot &slot, Span *s, uint32_t size) {
  SlotChange change(t);
  __atomic_store_n(&slot.size, size, __ATOMIC_RELAXED);  // pgc_read_stats reads it of other threads
  __atomic_store_n(&slot.span, s, __ATOMIC_RELAXED);
}

// The common refill, without the heap lock: the next word of the owned span, or of a listed span. False when the
// credit is used up (the trigger is checked under the lock) or no span of the class is listed (the page heap).
bool RefillUnlocked(ThreadRecord *t, CacheSlot &slot, uint32_t size_class, bool noscan) {
  const uint32_t size = kSizeClasses[size_class].size;
  const uint64_t need = uint64_t{64} * size;
  // The credit is taken inside the section: a collection between taking it and claiming (the thread stopped just
  // before entering) would end it (FoldThread zeroes every thread's credit), and the claim would be made on none.
  threads::EnterCritical(t);
  if (t->credit < static_cast<int64_t>(need) && !TakeCredit(t, need)) {
    threads::LeaveCritical(t);
    return false;
  }
  bool ok = slot.span != nullptr && ClaimWord(t, slot, slot.span);
  if (!ok) {
    if (Span *s = NextListedSpan(t, slot, SpanClass(size_class, noscan)); s != nullptr) {
      Install(t, slot, s, size);
      ok = ClaimWord(t, slot, s);
      PACEGC_CHECK(ok);  // a listed span has a free slot
    }
  }
  threads::LeaveCritical(t);
  return ok;
}

// The refill with the heap lock: checks the trigger (may collect, once per slow path: *collected), grants the
// credit, and takes a span from the page heap if none is listed. False when the OS refused memory.
bool RefillLocked(ThreadRecord *t, CacheSlot &slot, uint32_t size_class, bool noscan, bool *collected) {
  PACEGC_DCHECK(slot.bits == 0);
  const uint32_t size = kSizeClasses[size_class].size;
  const uint64_t need = uint64_t{64} * size;
  if (!*collected && ShouldCollect(need)) {
    CollectLocked(GcReason::kAuto);
    *collected = true;
  } else if (!*collected) {
    RunwayCheckLocked(need);  // below the goal: a runway cycle may be due (collector.h)
    AssistLocked();           // a runway cycle is marking: help it
  }
  PublishGrantLimit();
  if (t->credit < static_cast<int64_t>(need) && !TakeCredit(t, need)) {
    // At or past the goal, and no collection now (it just ran, or the CPU limiter postponed it): this claim is
    // counted all the same, and the next one comes back here.
    int64_t missing = static_cast<int64_t>(need) - t->credit;
    g_granted.fetch_add(missing, std::memory_order_relaxed);
    t->credit += missing;
  }
  if (slot.span != nullptr && ClaimWord(t, slot, slot.span)) return true;
  Span *s = NextListedSpan(t, slot, SpanClass(size_class, noscan));
  if (s == nullptr) {
    pacing::BeforeSpanAlloc(uint64_t{kSizeClasses[size_class].span_pages} * kPageSize);
    s = g_heap.AllocSmallSpan(size_class, noscan);
    if (s == nullptr) return false;
    __atomic_store_n(&s->cached, true, __ATOMIC_SEQ_CST);
    s->next_word = 0;
    // A few more for the class's list while the lock is held, so that this thread and others refill from the
    // list without the heap lock for a while (a class growing past what the sweep kept for it would otherwise pay
    // a heap-lock round per span). Spans still empty and unowned at the next sweep go back to the page heap (never
    // allocated from, so not kept: heap.h, "Kept spans").
    const uint64_t span_bytes = uint64_t{kSizeClasses[size_class].span_pages} * kPageSize;
    for (uint64_t extra = kSpanBatchBytes / span_bytes; extra > 1; --extra) {
      pacing::BeforeSpanAlloc(span_bytes);
      Span *x = g_heap.AllocSmallSpan(size_class, noscan);
      if (x == nullptr) break;
      g_heap.PushPartial(x);
    }
    PublishGrantLimit();  // the heap grew: a goal under the memory limit moved
  }
  Install(t, slot, s, size);
  bool ok = ClaimWord(t, slot, s);
  PACEGC_CHECK(ok);  // a listed or new span has a free slot
  return true;
}

// Heap lock held, and the thread is not allocating (the world is stopped, or it is leaving): its claims and frees
// go into g_alloc. Returns what that took off g_granted's share of this thread (claims less frees, plus credit).
int64_t FoldThread(ThreadRecord *t) {
  uint64_t bytes = t->claimed_bytes - t->folded_bytes;
  uint64_t freed = t->freed_bytes - t->folded_freed_bytes;
  g_alloc.Alloc(t->claimed_objects - t->folded_objects, bytes);
  g_alloc.Free(t->freed_objects - t->folded_freed_objects, freed);
  t->folded_bytes = t->claimed_bytes;
  t->folded_objects = t->claimed_objects;
  t->folded_freed_bytes = t->freed_bytes;
  t->folded_freed_objects = t->freed_objects;
  int64_t share = static_cast<int64_t>(bytes) - static_cast<int64_t>(freed) + t->credit;
  t->credit = 0;
  return share;
}

// Gives up the slot's span (heap lock; the owner is leaving, or is gone): unclaims what the slot still holds, and
// puts the span where it belongs.
void DropSpan(CacheSlot &slot) {
  Span *s = slot.span;
  if (s == nullptr) return;
  // Relaxed atomic, like the owner's fast-path store: the slot may belong to a thread that exited while registered
  // and is dropped by whoever collects next (threads::RemoveDead).
  const uint64_t bits = __atomic_load_n(&slot.bits, __ATOMIC_RELAXED);
  if (bits != 0) {
    __atomic_fetch_and(&s->alloc_bits[slot.word], ~bits, __ATOMIC_RELEASE);
    uint32_t n = static_cast<uint32_t>(__builtin_popcountll(bits));
    __atomic_fetch_sub(&s->allocated, n, __ATOMIC_SEQ_CST);
    // Never handed out: take them off the allocation totals rather than counting them as freed.
    g_alloc.Unclaim(n, static_cast<uint64_t>(n) * s->elem_size);
    __atomic_store_n(&slot.bits, uint64_t{0}, __ATOMIC_RELAXED);
  }
  __atomic_store_n(&slot.span, static_cast<Span *>(nullptr), __ATOMIC_RELAXED);
  GiveUpSpan(s);
}

void *AllocateLarge(size_t size, bool noscan) {
  LockHeap();
  bool collected = false;  // the trigger was checked in this call (once: a collection may have run)
  bool retried = false;    // the out-of-memory collection and retry happened
  bool at_cap = false;     // the first attempt was refused by the hard cap
  const uint64_t refusals = hardcap::ThreadRefusals();
  for (;;) {
    if (!collected && ShouldCollect(size)) {
      CollectLocked(GcReason::kAuto);
      collected = true;
    } else if (!collected) {
      RunwayCheckLocked(size);
      AssistLocked();
      collected = true;  // (the OS-refusal retry comes back here)
    }
    pacing::BeforeSpanAlloc(size);
    Span *s = g_heap.AllocLargeSpan(size, noscan);
    if (s != nullptr) {
      s->alloc_bits[0] = 1;
      s->allocated = 1;
      concurrent::BeforeFilling(s);
      g_alloc.Alloc(1, s->elem_size);
      bool needzero = s->needzero && !noscan;
      void *p = reinterpret_cast<void *>(s->start);
      if (at_cap) pacing::OnHardLimitHit(/*failed=*/false);
      UnlockHeap();
      // Zero outside the lock: p is on this thread's stack, so a collection in between keeps the object.
      if (needzero) memset(p, 0, size);
      return p;
    }
    // The OS refused: collect (even if the trigger just did: the rule is collect, then retry once) and retry.
    if (retried) break;
    CollectLocked(GcReason::kOutOfMemory);
    at_cap = AtHardCap(refusals);
    collected = retried = true;
  }
  if (at_cap || hardcap::ThreadRefusals() != refusals) pacing::OnHardLimitHit(/*failed=*/true);
  UnlockHeap();
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
  g_misuse_reports.fetch_add(1, std::memory_order_relaxed);
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
  if (slot.bits == 0 && !RefillUnlocked(t, slot, size_class, noscan)) {
    LockHeap();
    bool collected = false;  // a collection ran during this call (the trigger is checked once)
    const uint64_t refusals = hardcap::ThreadRefusals();
    bool ok = RefillLocked(t, slot, size_class, noscan, &collected);
    if (!ok) {
      // The OS (or the hard cap) refused: collect (and at the cap release free pages), then retry once.
      CollectLocked(GcReason::kOutOfMemory);
      const bool at_cap = AtHardCap(refusals);
      collected = true;
      ok = RefillLocked(t, slot, size_class, noscan, &collected);
      if (at_cap || (!ok && hardcap::ThreadRefusals() != refusals)) pacing::OnHardLimitHit(/*failed=*/!ok);
    }
    UnlockHeap();
    if (!ok) return CallOomHandler(size);
  }
  // The slot has claimed slots now. (Finalizers never run here: they run on their own thread, finalize.h.)
  return Allocate(size, noscan);
}

void ReleaseCache(ThreadRecord *t) {
  g_granted.fetch_sub(FoldThread(t), std::memory_order_relaxed);
  for (CacheSlot &slot : t->cache.slots) DropSpan(slot);
  for (uint32_t sc = 0; sc < kNumSpanClasses; ++sc) EmptyStash(t, sc, GiveUpSpan);
}

void AdoptOrphanSpans(const ThreadRecord *self) {
  // fork() from a signal handler that interrupted this thread's own refill: the span it was taking may be in a
  // register only, and would be both listed here and installed when the handler returns. Adopt nothing (a span a
  // vanished thread left stays owned in this child: a leak, never a span with two owners).
  if (self != nullptr && self->in_critical != 0) return;
  auto named_by_self = [self](const Span *s) {
    if (self == nullptr) return false;
    const uint32_t sc = SpanClass(s->size_class, s->noscan);
    if (self->cache.slots[sc].span == s) return true;
    for (const Span *x = self->stash[sc]; x != nullptr; x = x->next) {
      if (x == s) return true;
    }
    return false;
  };
  for (Span *s = g_heap.FirstInUse(); s != nullptr; s = s->all_next) {
    if (s->state != SpanState::kSmall || !s->IsCached() || named_by_self(s)) continue;
    __atomic_store_n(&s->cached, false, __ATOMIC_SEQ_CST);
    g_heap.ListIfUnowned(s);  // if it has room (a full one is the sweep's, like any unowned full span)
  }
}

void UnstashSpans() {
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    for (uint32_t sc = 0; sc < kNumSpanClasses; ++sc) {
      // Unowned and unlisted, as a full span given up: the sweep lists, keeps or frees it.
      EmptyStash(t, sc, [](Span *s) { __atomic_store_n(&s->cached, false, __ATOMIC_SEQ_CST); });
    }
  }
}

void FoldAllocationCounters() {
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) FoldThread(t);
  g_granted.store(0, std::memory_order_relaxed);
  g_grant_limit.store(0, std::memory_order_relaxed);  // until the cycle's goal is published
}

PendingCounts Pending() {
  PendingCounts p;
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    p.claimed_bytes += __atomic_load_n(&t->claimed_bytes, __ATOMIC_RELAXED) - t->folded_bytes;
    p.claimed_objects += __atomic_load_n(&t->claimed_objects, __ATOMIC_RELAXED) - t->folded_objects;
    p.freed_bytes += __atomic_load_n(&t->freed_bytes, __ATOMIC_RELAXED) - t->folded_freed_bytes;
    p.freed_objects += __atomic_load_n(&t->freed_objects, __ATOMIC_RELAXED) - t->folded_freed_objects;
  }
  return p;
}

int64_t GrantedBytes() { return g_granted.load(std::memory_order_relaxed); }

namespace {

uint64_t g_published_goal = 0;  // the goal the last PublishGrantLimit used (heap lock; 0 before the first)

void PublishGrantLimitFor(uint64_t heap, uint64_t goal) {
  int64_t granted = g_granted.load(std::memory_order_relaxed);
  uint64_t room = goal > heap ? goal - heap : 0;
  if (room > kRecheckBytes) room = kRecheckBytes;
  g_grant_limit.store(granted + static_cast<int64_t>(room), std::memory_order_relaxed);
}

}  // namespace

void PublishGrantLimit() {
  g_published_goal = GrantGoalBytes();  // the goal, or a runway's trigger below it (collector.h)
  PublishGrantLimitFor(TriggerHeapBytes(), g_published_goal);
}

void PublishGrantLimitWhileSweeping(uint64_t live_bytes) {
  // In the pause, after the handshake ended all credit: nothing is granted, so the heap is the live bytes alone.
  PublishGrantLimitFor(live_bytes, g_published_goal);
}

void NoteFinalizerRegistered() { g_finalizers_used.store(true, std::memory_order_relaxed); }

namespace {

// The slot is in the claim `slot` holds: claimed by its cache and not handed out yet.
bool InClaim(const CacheSlot &slot, const Span *s, uint32_t index) {
  return __atomic_load_n(&slot.span, __ATOMIC_RELAXED) == s &&
         __atomic_load_n(&slot.word, __ATOMIC_RELAXED) == (index >> 6) &&
         ((__atomic_load_n(&slot.bits, __ATOMIC_RELAXED) >> (index & 63)) & 1) != 0;
}

// InClaim for another thread's cache slot, which its owner changes without the heap lock as it refills and hands
// slots out (relaxed stores): span, word and bits are read as one claim (ThreadRecord::cache_seq, SlotChange). Read
// apart, a refill between the loads (which begins with the bits empty) paired the old word (or span), read first,
// with the new claim's bits, read after it: a slot of the old word that the cache had handed out, held by the
// caller, read as claimed, because its bit was set in the new word's mask. A false "free slot" report on a correct
// pgc_free (an abort in verify builds, a leak elsewhere; seen once in 2026-12-03's ASan stress run). Within one
// claim bits only lose the slots handed out, so a bit read set was a slot claimed and not handed out at that
// instant. DropSpan's changes need no sequence: it holds the heap lock, as the caller does. The caller's own cache
// is read directly, and must be: a signal handler's pgc_free may have interrupted its own refill.
bool ClaimedBy(const ThreadRecord *t, const CacheSlot &slot, const Span *s, uint32_t index) {
  if (t == t_current) return InClaim(slot, s, index);
  for (uint32_t spins = 0;; ++spins) {
    const uint32_t seq = t->cache_seq.load(std::memory_order_acquire);
    if ((seq & 1) == 0) {
      const bool claimed = InClaim(slot, s, index);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (t->cache_seq.load(std::memory_order_relaxed) == seq) return claimed;
    }
    // The owner is inside a refill's few stores (preempted there, at worst): it waits for nothing the caller holds.
    if (spins < 64) {
      CpuRelax();
    } else {
      sched_yield();
    }
  }
}

}  // namespace

bool ClaimedByCache(const Span *s, uint32_t index) {
  if (!s->IsCached()) return false;
  // A slot a cache has claimed but not handed out is allocated in the bitmap but is no object of the caller's.
  threads::LockRegistry();
  bool claimed = false;
  uint32_t sc = SpanClass(s->size_class, s->noscan);
  for (ThreadRecord *t = threads::First(); t != nullptr && !claimed; t = t->next) {
    claimed = ClaimedBy(t, t->cache.slots[sc], s, index);
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

// Frees slot `index` of a small span, with or without the heap lock: clears its bit (release: the next owner claims
// it with an acquire and then writes it, after the freer's fill), counts it off, and lists the span if no cache
// owns it. False, and nothing done, if the bit was already clear (a concurrent second free of the same object).
bool ClearSmallSlot(Span *s, uint32_t index) {
  const uint64_t bit = uint64_t{1} << (index & 63);
  if ((__atomic_fetch_and(&s->alloc_bits[index >> 6], ~bit, __ATOMIC_RELEASE) & bit) == 0) return false;
  __atomic_fetch_sub(&s->allocated, 1, __ATOMIC_SEQ_CST);
  if (!s->IsCached()) g_heap.ListIfUnowned(s);
  return true;
}

// The tail of a free: the slot becomes free, and its span goes where it belongs (a large span, or an empty small
// span no cache owns, back to the page heap; a small span with room onto its partial list). Accounting is the
// caller's. Heap lock held.
//
// A small span may be owned by a cache whose thread claims words of it at this moment without the heap lock: the
// bit is cleared with an atomic AND and the count decremented atomically, and whether the span must be listed is
// decided under its class lock (Heap::ListIfUnowned). An empty small span is listed rather than returned to the
// page heap: its owner may be giving it up concurrently, and the sweep returns empty unowned spans.
void ReleaseSlot(Span *s, uint32_t index) {
  if (s->state == SpanState::kLarge) {
    s->alloc_bits[0] = 0;
    s->allocated = 0;
    g_heap.FreeSpan(s);
    return;
  }
  ClearSmallSlot(s, index);
}

// Verify builds: keeps a freed object's slot allocated (not handed out again) until the next collection, so a
// second pgc_free of it is caught. false if the quarantine has no memory for it. Heap lock held.
bool Quarantine(uintptr_t addr, uint64_t bytes) {
  if (g_quarantine_bytes + bytes > kQuarantineMaxBytes) ReleaseQuarantine();
  try {
    if (g_quarantine == nullptr) {
      // Checked before construction: a placement new into nullptr would store through it (metadata refused).
      void *mem = meta::Malloc(sizeof(AddressSet));
      if (mem == nullptr) return false;
      g_quarantine = new (mem) AddressSet();
    }
    g_quarantine->insert(addr);
  } catch (const std::bad_alloc &) {
    return false;
  }
  g_quarantine_bytes += bytes;
  return true;
}

}  // namespace

void KeepQuarantined(Marker &marker) {
  if (g_quarantine == nullptr) return;
  for (uintptr_t addr : *g_quarantine) {
    Span *s = g_heap.SpanOf(addr);
    marker.KeepSlot(s, s->ObjectIndexOf(addr));
  }
}

void ReleaseQuarantine() {
  if (g_quarantine == nullptr || g_quarantine->empty()) return;
  for (uintptr_t addr : *g_quarantine) {
    Span *s = g_heap.SpanOf(addr);
    ReleaseSlot(s, s->ObjectIndexOf(addr));
  }
  g_quarantine->clear();
  g_quarantine_bytes = 0;
}

namespace {

enum class FreeResult { kDone, kNeedLock };

// Read without the heap lock (inside an allocation critical section, no sweep in progress): the small span whose
// slot starts at addr, and the slot's index; nullptr if addr is not the start of a small span's slot.
Span *SmallSlotAt(uintptr_t addr, uint32_t *index) {
  Span *s = g_heap.SpanOf(addr);
  if (s == nullptr || __atomic_load_n(&s->state, __ATOMIC_RELAXED) != SpanState::kSmall) return nullptr;
  *index = s->ObjectIndexOf(addr);
  return *index < s->nelems && s->ObjectStart(*index) == addr ? s : nullptr;
}

// The slot is the program's: allocated, and not one the calling thread's cache claimed and has yet to hand out.
bool HandedOut(const ThreadRecord *t, const Span *s, uint32_t index) {
  return s->IsAllocated(index) && !InClaim(t->cache.slots[SpanClass(s->size_class, s->noscan)], s, index);
}

// pgc_free of a small object by a registered thread, without the heap lock (inside its allocation critical
// section, and only while no sweep is in progress: none can begin before the section ends, so the object's span
// cannot be swept or freed meanwhile: small spans are freed only by the sweep and as kept spans, which hold no
// object; GiveUpSpan, gc/sweep.h).
// Anything out of the ordinary goes to the locked path, which decides and reports: a pointer outside small spans
// (large objects, foreign pointers), an interior pointer, a slot already free, a slot this thread's cache claimed
// but has not handed out. Misuse a thread cannot see without the registry lock (a slot another thread's cache
// claimed) is not detected here. Two threads freeing one object at once: the atomic AND tells which came second,
// and that one takes the locked path and reports the double free.
FreeResult FreeUnlocked(ThreadRecord *t, uintptr_t addr) {
  uint32_t index = 0;
  Span *s = SmallSlotAt(addr, &index);
  if (s == nullptr || !HandedOut(t, s, index)) return FreeResult::kNeedLock;
  if (kVerifyBuild) {
    memset(reinterpret_cast<void *>(addr), 0xDF, s->elem_size);  // catch use after free
    __atomic_store_n(&s->needzero, true, __ATOMIC_RELAXED);
  } else if (!s->noscan && !s->NeedsZero()) {
    // The slot will be handed out again; zero it now unless the span zeroes on hand-out anyway.
    memset(reinterpret_cast<void *>(addr), 0, s->elem_size);
  }
  if (!ClearSmallSlot(s, index)) {
    return FreeResult::kNeedLock;  // another thread freed it first: the locked path reports the double free
  }
  __atomic_store_n(&t->freed_bytes, t->freed_bytes + s->elem_size, __ATOMIC_RELAXED);
  __atomic_store_n(&t->freed_objects, t->freed_objects + 1, __ATOMIC_RELAXED);
  CreditFree(t, s->elem_size);
  return FreeResult::kDone;
}

}  // namespace

void FreeObject(void *p) {
  EnsureInit();
  auto addr = reinterpret_cast<uintptr_t>(p);
  ThreadRecord *t = t_current;
  if (!g_quarantine_on.load(std::memory_order_relaxed) && t != nullptr &&
      !g_finalizers_used.load(std::memory_order_relaxed) && !weak::AnyRegistered()) {
    threads::EnterCritical(t);
    // While the sweep after a pause runs, the locked path waits for it (its holder is the sweeper).
    FreeResult r = SweepInProgress() ? FreeResult::kNeedLock : FreeUnlocked(t, addr);
    threads::LeaveCritical(t);
    if (r == FreeResult::kDone) return;
  }
  LockHeap();
  Span *s = nullptr;
  uint32_t index = 0;
  if (const char *why = NotAnObject(addr, &s, &index); why != nullptr) {
    UnlockHeap();
    Misuse("pgc_free(%p): %s", p, why);
    return;
  }
  DropFinalizer(addr);
  weak::ClearLinksTo(addr);
  weak::DropLinksInside(addr, s->elem_size);
  g_alloc.Free(1, s->elem_size);
  if (s->state == SpanState::kSmall) {
    if (kVerifyBuild) {
      memset(p, 0xDF, s->elem_size);  // catch use after free
      __atomic_store_n(&s->needzero, true, __ATOMIC_RELAXED);
    } else if (!s->noscan && !s->NeedsZero()) {
      // The slot will be handed out again; zero it now unless the span zeroes on hand-out anyway.
      memset(p, 0, s->elem_size);
    }
  }
  if (!g_quarantine_on.load(std::memory_order_relaxed) || !Quarantine(addr, s->elem_size)) ReleaseSlot(s, index);
  UnlockHeap();
}

}  // namespace pacegc::internal

namespace pacegc::internal::testing {

void SetFreeQuarantine(bool on) { g_quarantine_on.store(on && kVerifyBuild, std::memory_order_relaxed); }

uint64_t MisuseReports() { return g_misuse_reports.load(std::memory_order_relaxed); }

const char *WhyNotHeld(const void *p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  // The common answer without the heap lock (which would serialise the stress tests' threads): a small object's
  // slot is allocated, and not a slot this thread's cache claimed and has yet to hand out. Read as FreeUnlocked
  // reads it: inside a critical section, and not while a sweep runs (it writes the bits of spans no cache owns
  // without atomics). For an object the caller holds, nothing may clear the bit: that is what is checked.
  bool seen_free = false;
  if (ThreadRecord *t = t_current; t != nullptr) {
    threads::EnterCritical(t);
    bool allocated = false;
    uint32_t index = 0;
    if (Span *s = SweepInProgress() ? nullptr : SmallSlotAt(addr, &index); s != nullptr) {
      allocated = HandedOut(t, s, index);
      seen_free = !allocated;
    }
    threads::LeaveCritical(t);
    if (allocated) return nullptr;
  }
  ObjectInfo o;
  const char *why = FindObject(addr, &o);  // the heap lock: the reason pgc_free's misuse line would give
  if (why == nullptr && o.start != addr) why = "an interior pointer";
  // Free a moment ago and allocated again now: handed out twice while held (what this check is for).
  if (why == nullptr && seen_free) {
    why = "found free (or claimed by this thread's cache) without the lock, allocated under it";
  }
  return why;
}

}  // namespace pacegc::internal::testing
