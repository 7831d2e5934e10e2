// gc/mark.cc — see mark.h.
#include "gc/mark.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "base/check.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/collector.h"
#include "gc/spinlock.h"
#include "gc/thread_start.h"
#include "gc/threads.h"

namespace pacegc::internal {

namespace {

// ---- The work pool of a helpers round's shared drain (mark.h, "Shared draining") ----
constexpr size_t kPoolEntries = 16 * 1024;  // 256 KiB of metadata, allocated once (helpers::Prepare)
constexpr size_t kShareEntries = 4 * 1024;  // given or taken at once, at most
constexpr uint32_t kShareCheckEvery = 32;   // entries a sharing marker scans between two looks at the pool
// A marker gives only while what it holds covers at least this much to scan. Below it, its stack holds the small
// objects it has just pushed (and prefetched into its own cache); a taker would pay a miss from the other core for
// each, more than scanning it is worth: giving without this bound made the pauses of the OOM simulator's step worker
// (a list of 1 KiB chunks of 64-byte nodes) twice as long. (docs/BENCHMARKS.md, "Parallel marking in the pause")
constexpr uint64_t kShareMinBytes = 256 << 10;

struct WorkPool {
  SpinLock lock;
  uintptr_t *entries = nullptr;  // kPoolEntries entries of two words (lo, hi); [0, count) are held
  std::atomic<size_t> count{0};  // written under the lock, polled without it
  int busy = 0;                  // markers holding work (lock)
  std::atomic<bool> done{true};  // no marker holds work and the pool is empty: the round's drain is over
  std::atomic<int> waiting{0};   // idle markers polling the pool
};
WorkPool g_pool;

// ---- Concurrent marking shared with the mark thread (mark.h, "Background sharing") ----
// The collector holds the heap lock for a slice; the mark thread marks only inside an open slice, and the collector
// closes it, and waits for the thread to leave, before it releases the lock. Between slices the collector moves
// entries between the two markers' stacks (the thread is outside then, so both are the collector's to change).
struct BackgroundShare {
  std::atomic<uint32_t> slice{0};    // nonzero: the open slice's number (heap lock held by the collector)
  std::atomic<bool> inside{false};   // the mark thread is in the open slice and may be marking
  std::atomic<uint32_t> dry{0};      // the slice in which the mark thread emptied its stack and left
  std::atomic<bool> on{false};       // a background drain is under way: the mark thread spins before it sleeps
  std::atomic<bool> sleeping{false}; // the mark thread sleeps on g_mark_wake (a slice's opening must wake it)
};
BackgroundShare g_bg;

}  // namespace

bool Marker::Init(size_t stack_entries) {
  if (stack_ != nullptr && capacity_ == stack_entries) return true;
  if (stack_ != nullptr) meta::Free(stack_);
  stack_ = static_cast<Entry *>(meta::Malloc(stack_entries * sizeof(Entry)));
  capacity_ = stack_ != nullptr ? stack_entries : 0;
  return stack_ != nullptr;
}

void Marker::Reset() {
  bottom_ = top_ = 0;
  held_bytes_ = 0;
  overflowed_ = false;
  marked_bytes_ = marked_objects_ = cached_bytes_ = 0;
  stack_scan_bytes_ = globals_scan_bytes_ = heap_scan_bytes_ = 0;
  overflows_ = 0;
  stacks_scanned_ = 0;
  taken_ = 0;
}

uintptr_t Marker::ObjectContaining(uintptr_t addr, Span **span_out, uint32_t *index_out) {
  Span *s = g_heap.SpanOf(addr);
  if (s == nullptr || s->state == SpanState::kFree) return 0;
  uint32_t index = s->ObjectIndexOf(addr);
  if (index >= s->nelems || !s->IsAllocated(index)) return 0;
  *span_out = s;
  *index_out = index;
  return s->ObjectStart(index);
}

inline void Marker::Push(uintptr_t lo, uintptr_t hi, Span *span) {
  if (PACEGC_LIKELY(top_ < capacity_)) {
    stack_[top_++] = Entry{lo, hi};
    held_bytes_ += hi - lo;
    return;
  }
  if (bottom_ > 0) {  // entries were given away from the bottom: move what is held down (shared draining)
    memmove(stack_, stack_ + bottom_, Held() * sizeof(Entry));
    top_ -= bottom_;
    bottom_ = 0;
    stack_[top_++] = Entry{lo, hi};
    held_bytes_ += hi - lo;
    return;
  }
  __atomic_store_n(&span->rescan, true, __ATOMIC_RELAXED);  // helpers may flag the same span
  overflowed_ = true;
  ++overflows_;
}

inline void Marker::MarkWord(uintptr_t word) {
  if (!g_heap.MaybeInHeap(word)) return;
  Span *s = nullptr;
  uint32_t index = 0;
  uintptr_t obj = ObjectContaining(word, &s, &index);
  if (obj == 0 || !s->TryMark(index)) return;
  marked_bytes_ += s->elem_size;
  ++marked_objects_;
  if (s->noscan || s->untouched) return;  // untouched: all zeros (untouched.h); reading would fault its pages in
  __builtin_prefetch(reinterpret_cast<const void *>(obj));  // scanned soon: start the miss now
  Push(obj, obj + s->elem_size, s);
}

void Marker::MarkAddress(uintptr_t addr) { MarkWord(addr); }

void Marker::Rescan(uintptr_t lo, uintptr_t hi) {
  // Scanned now rather than pushed (overflow recovery, and a final pause that may re-scan millions of objects,
  // which would overflow any stack); what they newly mark is pushed and drained at once.
  heap_scan_bytes_ += hi - lo;
  ScanRange(lo, hi);
  DrainStack();
}

PACEGC_NO_SANITIZE_ADDRESS PACEGC_NO_SANITIZE_THREAD void Marker::ScanRange(uintptr_t lo, uintptr_t hi) {
  lo = (lo + sizeof(uintptr_t) - 1) & ~(sizeof(uintptr_t) - 1);
  for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
    MarkWord(*reinterpret_cast<const uintptr_t *>(p));
  }
}

void Marker::ScanRoot(const RootRange &range) {
  uint64_t bytes = range.hi - range.lo;
  if (range.kind == RootKind::kStack) {
    stack_scan_bytes_ += bytes;
  } else {
    globals_scan_bytes_ += bytes;
  }
  ScanRange(range.lo, range.hi);
}

PACEGC_NO_SANITIZE_ADDRESS PACEGC_NO_SANITIZE_THREAD void Marker::ScanContentsOf(uintptr_t obj) {
  Span *s = nullptr;
  uint32_t index = 0;
  if (ObjectContaining(obj, &s, &index) != obj || s->noscan || s->untouched) return;
  // Scanned here, word by word, rather than pushed: the object itself stays unmarked and is never on the stack, so
  // a full stack cannot lose it (overflow recovery rescans only marked objects); what it points to is marked and
  // pushed as usual.
  heap_scan_bytes_ += s->elem_size;
  for (uintptr_t p = obj; p + sizeof(uintptr_t) <= obj + s->elem_size; p += sizeof(uintptr_t)) {
    uintptr_t word = *reinterpret_cast<const uintptr_t *>(p);
    if (word - obj < s->elem_size) continue;  // into the object itself: ignored (bdwgc's ..._IGNORE_SELF)
    MarkWord(word);
  }
}

void Marker::KeepCachedSlots() {
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    for (const CacheSlot &slot : t->cache.slots) {
      // One read of each field: what is counted is what is marked (and what the verifier skips, SkipCachedSlots),
      // even if a slot changed under a read (no owner runs in a pause; this keeps the count honest regardless).
      const uint64_t bits = __atomic_load_n(&slot.bits, __ATOMIC_RELAXED);
      if (bits == 0) continue;
      Span *s = __atomic_load_n(&slot.span, __ATOMIC_RELAXED);
      const uint32_t word = __atomic_load_n(&slot.word, __ATOMIC_RELAXED);
      PACEGC_CHECK(s != nullptr && word < s->nwords);
      // Atomic like every other setting of mark bits (heap.h): nothing else marks in the pause at this point, but a
      // plain read-modify-write would silently drop a mark set beside it if that ever changed.
      uint64_t newly = bits & ~__atomic_fetch_or(&s->mark_bits[word], bits, __ATOMIC_RELAXED);
      // Kept, but not live: the program has not been given these slots yet.
      cached_bytes_ += static_cast<uint64_t>(__builtin_popcountll(newly)) * s->elem_size;
    }
  }
}

void Marker::DrainStack() {
  DrainWith<0>(UINT64_MAX, [] { return false; });
}

// Scans until the stack is empty, heap_scan_bytes_ reaches stop_at, or check() (asked every kEvery entries; never
// if 0) returns true. An entry is scanned kChunk bytes at a time (the rest goes back on the stack).
template <uint32_t kEvery, uintptr_t kChunk, typename Check>
inline void Marker::DrainWith(uint64_t stop_at, Check &&check) {
  uint32_t until_check = kEvery;
  while (top_ > bottom_ && heap_scan_bytes_ < stop_at) {
    if constexpr (kEvery != 0) {
      if (--until_check == 0) {
        until_check = kEvery;
        if (check()) break;
      }
    }
    Entry e = stack_[--top_];
    uintptr_t hi = e.hi;
    if (hi - e.lo > kChunk) {
      // Scan the first chunk; the rest goes back (it fits: we just popped an entry).
      stack_[top_++] = Entry{e.lo + kChunk, hi};
      hi = e.lo + kChunk;
    }
    heap_scan_bytes_ += hi - e.lo;
    held_bytes_ -= hi - e.lo;
    ScanRange(e.lo, hi);
  }
  if (top_ == bottom_) {
    bottom_ = top_ = 0;
    held_bytes_ = 0;
  }
}

// Scans until the stack is empty or heap_scan_bytes_ reaches stop_at. kShare: every kShareCheckEvery entries, gives
// half of the stack to the pool if an idle marker waits on an empty one and the stack is worth sharing.
template <bool kShare>
void Marker::DrainStackUntil(uint64_t stop_at) {
  if constexpr (kShare) {
    DrainWith<kShareCheckEvery>(stop_at, [this] {
      if (held_bytes_ >= kShareMinBytes && g_pool.waiting.load(std::memory_order_relaxed) != 0 &&
          g_pool.count.load(std::memory_order_relaxed) == 0) {
        Give();
      }
      return false;
    });
  } else {
    DrainWith<0>(stop_at, [] { return false; });
  }
}

void Marker::Give() {
  g_pool.lock.Lock();
  const size_t count = g_pool.count.load(std::memory_order_relaxed);
  size_t n = Held() / 2;
  if (n > kShareEntries) n = kShareEntries;
  if (n > kPoolEntries - count) n = kPoolEntries - count;
  if (n > 0) {  // the bottom half: the oldest entries, nearest the roots
    const Entry *given = stack_ + bottom_;
    memcpy(g_pool.entries + 2 * count, given, n * sizeof(Entry));
    for (size_t i = 0; i < n; ++i) held_bytes_ -= given[i].hi - given[i].lo;
    bottom_ += n;
  } else if (Held() == 1 && count < kPoolEntries) {
    // One large object (held_bytes_ >= kShareMinBytes > 2 * kScanChunk): the upper half of what is left of it.
    Entry &e = stack_[bottom_];
    const uintptr_t mid = (e.lo + (e.hi - e.lo) / 2) & ~uintptr_t{sizeof(uintptr_t) - 1};
    const Entry upper{mid, e.hi};
    memcpy(g_pool.entries + 2 * count, &upper, sizeof(Entry));
    held_bytes_ -= e.hi - mid;
    e.hi = mid;
    n = 1;
  }
  g_pool.count.store(count + n, std::memory_order_relaxed);
  g_pool.lock.Unlock();
}

// Pool lock held, the stack empty: takes up to half of this marker's capacity.
bool Marker::Take() {
  const size_t count = g_pool.count.load(std::memory_order_relaxed);
  if (count == 0) return false;
  size_t n = capacity_ / 2 > 0 ? capacity_ / 2 : 1;
  if (n > kShareEntries) n = kShareEntries;
  if (n > count) n = count;
  memcpy(stack_, g_pool.entries + 2 * (count - n), n * sizeof(Entry));
  g_pool.count.store(count - n, std::memory_order_relaxed);
  bottom_ = 0;
  top_ = n;
  held_bytes_ = 0;
  for (size_t i = 0; i < n; ++i) held_bytes_ += stack_[i].hi - stack_[i].lo;
  taken_ += n;
  return true;
}

void Marker::DrainShared(bool busy) {
  if (g_pool.entries == nullptr) {  // no pool (metadata refused): no sharing, and no helper waits for any
    DrainStack();
    return;
  }
  for (;;) {
    if (busy) {
      DrainStackUntil<true>(UINT64_MAX);
      g_pool.lock.Lock();
      if (!Take()) {  // nothing held, nothing in the pool: no longer busy; the last one ends the drain
        busy = false;
        if (--g_pool.busy == 0) g_pool.done.store(true, std::memory_order_release);
      }
      g_pool.lock.Unlock();
      if (busy) continue;
    }
    g_pool.waiting.fetch_add(1, std::memory_order_relaxed);
    for (uint32_t spins = 1; !busy; ++spins) {
      if (g_pool.done.load(std::memory_order_acquire)) {
        g_pool.waiting.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
      if (g_pool.count.load(std::memory_order_relaxed) != 0) {
        g_pool.lock.Lock();
        if (Take()) {
          busy = true;
          ++g_pool.busy;
        }
        g_pool.lock.Unlock();
      } else if ((spins & 1023) == 0) {
        sched_yield();  // a marker that holds work may have been descheduled: let it run
      } else {
        CpuRelax();
      }
    }
    g_pool.waiting.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Marker::RecoverOverflow() {
  while (overflowed_) {
    overflowed_ = false;
    for (Span *s = g_heap.FirstInUse(); s != nullptr; s = s->all_next) {
      if (!s->rescan) continue;
      s->rescan = false;
      for (uint32_t w = 0; w < s->nwords; ++w) {
        uint64_t bits = s->mark_bits[w];
        while (bits != 0) {
          uint32_t index = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
          bits &= bits - 1;
          uintptr_t obj = s->ObjectStart(index);
          Rescan(obj, obj + s->elem_size);
        }
      }
    }
  }
}

void Marker::Drain() {
  DrainStack();
  RecoverOverflow();
}

bool Marker::DrainSome(uint64_t budget) {
  DrainStackUntil<false>(heap_scan_bytes_ + budget);
  if (top_ > bottom_) return false;
  RecoverOverflow();  // one walk of the heap's spans (rare: the stack was full)
  return true;
}

void Marker::Absorb(const Marker &helper) {
  stacks_scanned_ += helper.stacks_scanned_;
  marked_bytes_ += helper.marked_bytes_;
  marked_objects_ += helper.marked_objects_;
  stack_scan_bytes_ += helper.stack_scan_bytes_;
  globals_scan_bytes_ += helper.globals_scan_bytes_;
  heap_scan_bytes_ += helper.heap_scan_bytes_;
  overflows_ += helper.overflows_;
  overflowed_ = overflowed_ || helper.overflowed_;
  taken_ += helper.taken_;
}

bool Marker::WorthSharing() const { return held_bytes_ >= kShareMinBytes; }

void Marker::MoveWorkTo(Marker &to, bool even_small) {
  if (Held() == 0 || to.Held() != 0 || (!even_small && !WorthSharing())) return;
  to.bottom_ = to.top_ = 0;
  to.held_bytes_ = 0;
  size_t n = Held() / 2;
  if (n > to.capacity_) n = to.capacity_;
  if (n > 0) {  // the bottom half: the oldest entries, nearest the roots
    for (size_t i = 0; i < n; ++i) {
      const Entry &e = stack_[bottom_ + i];
      to.stack_[to.top_++] = e;
      to.held_bytes_ += e.hi - e.lo;
      held_bytes_ -= e.hi - e.lo;
    }
    bottom_ += n;
    return;
  }
  // One entry. A large one is split (the upper half goes); a small one goes whole (even_small: the receiver would
  // otherwise have nothing while this marker waits).
  Entry &e = stack_[bottom_];
  if (e.hi - e.lo >= 2 * kScanChunk) {
    const uintptr_t mid = (e.lo + (e.hi - e.lo) / 2) & ~uintptr_t{sizeof(uintptr_t) - 1};
    to.stack_[to.top_++] = Entry{mid, e.hi};
    to.held_bytes_ += e.hi - mid;
    held_bytes_ -= e.hi - mid;
    e.hi = mid;
  } else if (even_small) {
    to.stack_[to.top_++] = e;
    to.held_bytes_ += e.hi - e.lo;
    bottom_ = top_ = 0;
    held_bytes_ = 0;
  }
}

// The collector that closes a slice waits for the thread to leave it (BackgroundStep), so the thread looks at the
// slice after every kSliceChunk bytes it scans, not after a whole kScanChunk (8,192 words of a pointer array): with
// whole chunks, 22% of the collecting thread's marking samples were that wait (perf, docs/BENCHMARKS.md).
constexpr uintptr_t kSliceChunk = 4 << 10;

void Marker::DrainWhileSliceOpen() {
  DrainWith<1, kSliceChunk>(UINT64_MAX, [] { return g_bg.slice.load(std::memory_order_relaxed) == 0; });
}

void Marker::DrainSlice(uint64_t stop_at, uint32_t slice) {
  if (slice == 0) {  // the mark thread is not in it
    DrainWith<0>(stop_at, [] { return false; });
    return;
  }
  DrainWith<kShareCheckEvery>(stop_at, [this, slice] {
    return g_bg.dry.load(std::memory_order_relaxed) == slice && WorthSharing();
  });
}

// ---- Helpers (mark.h) ------------------------------------------------------------------------------------------
namespace helpers {
namespace {

constexpr int kMaxHelpers = 8;
constexpr size_t kHelperStackEntries = 16 * 1024;  // 256 KiB each: a helper marks from stacks only, draining after each

Marker *g_markers[kMaxHelpers] = {};   // heap lock (Prepare); read by helpers within a round
int g_ready = 0;                       // markers with a stack (heap lock; read by helpers within a round)
std::atomic<uint32_t> g_round{0};      // nonzero while stacks may be claimed: the round's token
uint32_t g_last_round = 0;             // heap lock
std::atomic<int> g_next{0};            // the next helper marker to hand out in this round
std::atomic<int> g_active{0};          // helpers that may hold a claim and are not done with it

// The mark thread (mark.h, "The mark thread"): started once, on demand; sleeps on g_mark_wake between rounds.
bool g_mark_thread_tried = false;               // heap lock: started, or failed to start (said once)
bool g_mark_thread_up = false;                  // heap lock: started
pthread_t g_mark_thread;                        // heap lock: the thread, once started (its CPU clock)
Marker *g_mark_thread_marker = nullptr;         // made with the thread (heap lock), used by it within rounds
std::atomic<uint32_t> g_mark_wake{0};           // bumped to wake it
std::atomic<uint32_t> g_mark_thread_round{0};   // the round it joined last (its counts are absorbed into that one)

// Polls of g_mark_wake before the mark thread sleeps while a background drain is under way: a slice opens every
// few hundred microseconds then, and waking it costs the collector a system call and the thread 30-50 us.
constexpr uint32_t kBackgroundSpins = 1 << 14;

// The mark thread in the open slice `slice`, if it is still open: marks from its stack until the slice closes or
// the stack is empty (mark.h, "Background sharing").
void JoinSlice(uint32_t slice) {
  // Counted inside before it looks at the slice again, as a helper joins a round: a collector that closed the slice
  // either sees it inside and waits for it, or it sees the slice closed and stays out.
  g_bg.inside.store(true, std::memory_order_seq_cst);
  if (g_bg.slice.load(std::memory_order_seq_cst) == slice) {
    Marker &m = *g_mark_thread_marker;
    m.DrainWhileSliceOpen();
    if (m.Empty()) g_bg.dry.store(slice, std::memory_order_relaxed);
  }
  g_bg.inside.store(false, std::memory_order_release);
}

void *MarkThreadMain(void *) {
  uint32_t seen = 0;
  uint32_t joined_slice = 0;
  uint32_t joined_round = 0;
  for (;;) {
    uint32_t now;
    for (uint32_t spins = 0; (now = g_mark_wake.load(std::memory_order_acquire)) == seen;) {
      if (g_bg.on.load(std::memory_order_relaxed) && ++spins < kBackgroundSpins) {
        CpuRelax();
        continue;
      }
      spins = 0;
      // Flagged before the last look (seq_cst with the collector's bump, then its look at the flag): either it
      // sees the flag and wakes us, or we see its bump.
      g_bg.sleeping.store(true, std::memory_order_seq_cst);
      if (g_mark_wake.load(std::memory_order_seq_cst) == seen) os::FutexWait(&g_mark_wake, seen, 0);
      g_bg.sleeping.store(false, std::memory_order_relaxed);
    }
    seen = now;
    // A background slice (concurrent marking): joined once.
    const uint32_t slice = g_bg.slice.load(std::memory_order_acquire);
    if (slice != 0 && slice != joined_slice) {
      joined_slice = slice;
      JoinSlice(slice);
    }
    // A pause's round. As a helper joins (Help): counted before it looks at the round, so a collector that closed
    // the round either sees it counted and waits for it, or it sees the round closed and stays out. Joined once,
    // as a helper does (helped_round): a wake left over from a background slice, seen just before the pause's own
    // wake, brings the thread here twice in one round, and a second Reset() would wipe the first drain's counts
    // and its overflow flag before the collector absorbs them (the spans to re-scan would then never be).
    g_active.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t round = g_round.load(std::memory_order_seq_cst);
    if (round != 0 && round != joined_round) {
      joined_round = round;
      g_mark_thread_marker->Reset();
      g_mark_thread_round.store(round, std::memory_order_relaxed);
      g_mark_thread_marker->DrainShared(/*busy=*/false);
    }
    g_active.fetch_sub(1, std::memory_order_release);
  }
  return nullptr;
}

// Heap lock held: the shared drain's pool, made once and kept. False if metadata is refused.
bool EnsurePool() {
  if (g_pool.entries == nullptr) {
    g_pool.entries = static_cast<uintptr_t *>(meta::Malloc(kPoolEntries * 2 * sizeof(uintptr_t)));
  }
  return g_pool.entries != nullptr;
}

// Claims t's stack for `round`; true if the caller is the one to scan it.
bool Claim(ThreadRecord *t, uint32_t round) {
  uint32_t seen = t->scan_claim.load(std::memory_order_relaxed);
  return seen != round && t->scan_claim.compare_exchange_strong(seen, round, std::memory_order_seq_cst);
}

}  // namespace

int Prepare(int count, size_t max_entries) {
  if (count > kMaxHelpers) count = kMaxHelpers;
  // A smaller mark stack for the collector (testing::SetMarkStackEntries, to force overflow) is one for helpers too.
  const size_t entries = max_entries < kHelperStackEntries ? max_entries : kHelperStackEntries;
  int ready = 0;
  for (; ready < count; ++ready) {
    if (g_markers[ready] == nullptr) {  // made once, kept
      void *mem = meta::Malloc(sizeof(Marker));
      if (mem == nullptr) break;
      g_markers[ready] = new (mem) Marker();
    }
    if (!g_markers[ready]->Init(entries)) break;  // keeps its stack if the size is the same
  }
  g_ready = ready;
  if (ready > 0) EnsurePool();  // without it helpers drain only their own work
  return ready;
}

void Open() {
  g_next.store(0, std::memory_order_relaxed);
  uint32_t round = g_last_round + 1;
  if (round == 0) round = 1;  // 0 means "no round"; a record may hold an old token, never a current one
  g_last_round = round;
  // The shared drain's pool: empty, the collector holding work (its own, from the roots it is about to scan).
  g_pool.count.store(0, std::memory_order_relaxed);
  g_pool.busy = 1;
  g_pool.waiting.store(0, std::memory_order_relaxed);
  g_pool.done.store(false, std::memory_order_relaxed);
  // The collector's own stack is its own: a helper would scan it from a stale stack pointer.
  if (ThreadRecord *self = t_current; self != nullptr) self->scan_claim.store(round, std::memory_order_relaxed);
  g_round.store(round, std::memory_order_seq_cst);
}

bool StartMarkThread(size_t max_entries) {
  if (g_mark_thread_tried) {
    // The same stack size as the collector's (testing::SetMarkStackEntries may have changed it): world running,
    // no round open, so the thread is asleep and does not use its marker.
    return g_mark_thread_up && g_mark_thread_marker->Init(max_entries);
  }
  g_mark_thread_tried = true;
  if (g_mark_thread_marker == nullptr) {  // made once, kept (also across a fork)
    void *mem = meta::Malloc(sizeof(Marker));
    if (mem == nullptr) return false;
    g_mark_thread_marker = new (mem) Marker();
  }
  if (!g_mark_thread_marker->Init(max_entries) || !EnsurePool()) return false;
  // Every signal blocked: the collector never signals it (it is not registered), and the program's signals belong
  // on the program's threads.
  pthread_t thread;
  const int rc = thread_start::CreateUnregistered(&thread, MarkThreadMain, nullptr);
  if (rc != 0) {
    Message("cannot start the mark thread (%s); pauses are marked by the collecting thread and parked threads only",
            strerror(rc));
    return false;
  }
  pthread_setname_np(thread, "pacegc-mark");
  pthread_detach(thread);
  g_mark_thread = thread;
  g_mark_thread_up = true;
  return true;
}

void WakeMarkThread() {
  g_mark_wake.fetch_add(1, std::memory_order_release);
  os::FutexWakeOne(&g_mark_wake);
}

void WaitForJoin(uint64_t budget_ns) {
  const uint32_t round = g_last_round;
  const uint64_t start = os::MonotonicNs();
  while (g_next.load(std::memory_order_relaxed) == 0 &&
         g_mark_thread_round.load(std::memory_order_relaxed) != round && os::MonotonicNs() - start < budget_ns) {
    sched_yield();
  }
}

void OnForkChild() {
  // Only the forking thread exists in the child: the mark thread is started again when a pause wants it. Its
  // marker is kept (no round is open: fork waits for the heap lock).
  g_mark_thread_tried = false;
  g_mark_thread_up = false;
}

namespace {
uint32_t g_last_slice = 0;           // heap lock: the last slice number the collector opened
uint64_t g_background_cpu_start = 0;  // heap lock: the mark thread's CPU clock at BackgroundBegin

// The mark thread's CPU time, or 0 if its clock cannot be read.
uint64_t MarkThreadCpuNs() {
  clockid_t clock;
  struct timespec ts;
  if (pthread_getcpuclockid(g_mark_thread, &clock) != 0 || clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

bool BackgroundBegin() {
  if (!g_mark_thread_up) return false;
  g_mark_thread_marker->Reset();  // outside every slice: the collector's to change
  g_background_cpu_start = MarkThreadCpuNs();
  g_bg.on.store(true, std::memory_order_relaxed);
  return true;
}

bool BackgroundStep(Marker &marker, uint64_t budget) {
  Marker &helper = *g_mark_thread_marker;
  const uint64_t stop_at = marker.heap_scan_bytes() + budget;
  for (;;) {
    // The mark thread is outside every slice here: both stacks are ours. Whichever is empty gets half of the other's
    // (the thread only if ours is worth sharing: mark.h, "Shared draining").
    if (marker.Empty()) {
      helper.MoveWorkTo(marker, /*even_small=*/true);
    } else {
      marker.MoveWorkTo(helper, /*even_small=*/false);
    }
    if (marker.Empty()) return true;  // the thread's is empty too: it gives ours to us before it keeps any
    uint32_t slice = 0;
    if (!helper.Empty()) {
      slice = ++g_last_slice;
      if (slice == 0) slice = g_last_slice = 1;  // 0 means "closed"
      g_bg.slice.store(slice, std::memory_order_seq_cst);
      g_mark_wake.fetch_add(1, std::memory_order_seq_cst);
      if (g_bg.sleeping.load(std::memory_order_seq_cst)) os::FutexWakeOne(&g_mark_wake);
    }
    marker.DrainSlice(stop_at, slice);  // until the budget, an empty stack, or the thread ran dry in this slice
    if (slice != 0) {
      g_bg.slice.store(0, std::memory_order_seq_cst);
      for (uint32_t i = 1; g_bg.inside.load(std::memory_order_seq_cst); ++i) {
        if ((i & 1023) == 0) {
          sched_yield();  // the thread descheduled mid-scan needs a core
        } else {
          CpuRelax();
        }
      }
    }
    if (marker.heap_scan_bytes() >= stop_at) return false;
  }
}

void BackgroundEnd(Marker &marker, uint64_t *thread_scan_bytes, uint64_t *thread_cpu_ns) {
  g_bg.on.store(false, std::memory_order_relaxed);
  const Marker &helper = *g_mark_thread_marker;
  *thread_scan_bytes = helper.heap_scan_bytes();
  const uint64_t cpu = MarkThreadCpuNs();
  *thread_cpu_ns = cpu > g_background_cpu_start ? cpu - g_background_cpu_start : 0;
  marker.Absorb(helper);
}

size_t OtherStackBytes() {
  size_t bytes = 0;
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    if (t != t_current && t->suspended_sp >= t->stack_lo && t->suspended_sp < t->stack_hi) {
      bytes += t->stack_hi - t->suspended_sp;
    }
  }
  return bytes;
}

int ScanOthersAndJoin(Marker &marker, uintptr_t self_sp) {
  const uint32_t round = g_last_round;
  ThreadRecord *self = t_current;
  if (self != nullptr) roots::ForThread(self, self, self_sp, [&](const RootRange &r) { marker.ScanRoot(r); });
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    if (t != self && Claim(t, round)) {
      roots::ForThread(t, self, self_sp, [&](const RootRange &r) { marker.ScanRoot(r); });
    }
  }
  // Every stack is claimed now. Drain ours, sharing it with the helpers done with theirs.
  marker.DrainShared(/*busy=*/true);
  PACEGC_CHECK(g_pool.count.load(std::memory_order_relaxed) == 0);
  g_round.store(0, std::memory_order_seq_cst);
  // seq_cst with the helper's increment before its claim: a helper that claimed a stack is counted here.
  for (uint32_t i = 1; g_active.load(std::memory_order_seq_cst) != 0; ++i) {
    if ((i & 1023) == 0) {
      sched_yield();  // a helper descheduled mid-scan needs a core
    } else {
      CpuRelax();
    }
  }
  int used = g_next.load(std::memory_order_relaxed);
  if (used > g_ready) used = g_ready;
  for (int i = 0; i < used; ++i) marker.Absorb(*g_markers[i]);
  // (acquire: the load of g_active above saw the mark thread's release decrement after it stored the round)
  if (g_mark_thread_marker != nullptr && g_mark_thread_round.load(std::memory_order_relaxed) == round) {
    marker.Absorb(*g_mark_thread_marker);
  }
  return static_cast<int>(marker.stacks_scanned());  // the collector notes none of its own: the helpers' stacks
}

void Help(ThreadRecord *self) {
  const uint32_t round = g_round.load(std::memory_order_acquire);
  if (round == 0 || self->helped_round == round) return;
  self->helped_round = round;  // once per round: its stack first, then any other nobody has claimed
  g_active.fetch_add(1, std::memory_order_seq_cst);
  // Re-read after counting ourselves: a round closed since is not joined by this helper.
  if (g_round.load(std::memory_order_seq_cst) == round) {
    const int i = g_next.fetch_add(1, std::memory_order_relaxed);
    if (i < g_ready) {
      Marker &m = *g_markers[i];
      m.Reset();
      auto scan = [&m](ThreadRecord *t) {
        roots::ForThread(t, nullptr, 0, [&m](const RootRange &r) { m.ScanRoot(r); });
        m.NoteStackScanned();
        m.DrainPushed();  // what this stack reaches, while it is in this core's cache
      };
      if (Claim(self, round)) scan(self);
      for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
        if (Claim(t, round)) scan(t);
      }
      m.DrainShared(/*busy=*/false);  // then the collector's work, while it has some to give
    }
  }
  g_active.fetch_sub(1, std::memory_order_release);
}

}  // namespace helpers

namespace {

// The verifier's visited set: open addressing over one metadata block that doubles when three quarters full, so a
// walk of n objects makes O(log n) metadata allocations. (A node-based std::unordered_set made one metadata
// allocation per reachable object and freed each again: with the metadata region's allocator, whose every call
// then took its lock with all signals blocked — two sigprocmask system calls — that was millions of system calls
// per verified collection, and under ThreadSanitizer, which intercepts both, api_tests and stress_tests ran past
// their timeouts. The lock no longer blocks signals; one lock round per object would still be too many.) Addresses are never 0, which marks an empty slot. Throws std::bad_alloc when metadata is refused.
class AddressSet {
 public:
  AddressSet() = default;
  AddressSet(const AddressSet &) = delete;
  AddressSet &operator=(const AddressSet &) = delete;
  ~AddressSet() { meta::Free(slots_); }

  // True if `a` was not in the set (it is now).
  bool Insert(uintptr_t a) {
    if ((count_ + 1) * 4 > capacity_ * 3) Grow();
    if (!InsertNew(slots_, capacity_, a)) return false;
    ++count_;
    return true;
  }

 private:
  static constexpr size_t kInitialCapacity = size_t{1} << 12;

  // Fibonacci hashing; the low bits of object addresses are mostly zero.
  static size_t Slot(uintptr_t a, size_t capacity) {
    return static_cast<size_t>((static_cast<uint64_t>(a) * 0x9E3779B97F4A7C15ull) >> 32) & (capacity - 1);
  }
  static bool InsertNew(uintptr_t *slots, size_t capacity, uintptr_t a) {
    for (size_t i = Slot(a, capacity);; i = (i + 1) & (capacity - 1)) {
      if (slots[i] == a) return false;
      if (slots[i] == 0) {
        slots[i] = a;
        return true;
      }
    }
  }
  void Grow() {
    const size_t capacity = capacity_ == 0 ? kInitialCapacity : capacity_ * 2;
    auto *slots = static_cast<uintptr_t *>(meta::Calloc(capacity, sizeof(uintptr_t)));
    if (slots == nullptr) throw std::bad_alloc();
    for (size_t i = 0; i < capacity_; ++i) {
      if (slots_[i] != 0) InsertNew(slots, capacity, slots_[i]);
    }
    meta::Free(slots_);
    slots_ = slots;
    capacity_ = capacity;
  }

  uintptr_t *slots_ = nullptr;
  size_t capacity_ = 0;  // a power of two, or 0 before the first insertion
  size_t count_ = 0;
};

// The verifier's own traversal: a visited set and a work list in metadata, independent of mark bits.
class Verifier {
 public:
  size_t problems = 0;
  uint64_t reachable = 0;

  // A root range (from_ set to 0) or the contents of a reachable object (from_ the object).
  void ScanRoot(const RootRange &r) {
    from_ = 0;
    root_ = r;
    ScanRange(r.lo, r.hi);
  }
  PACEGC_NO_SANITIZE_ADDRESS PACEGC_NO_SANITIZE_THREAD void ScanRange(uintptr_t lo, uintptr_t hi) {
    lo = (lo + sizeof(uintptr_t) - 1) & ~(sizeof(uintptr_t) - 1);
    for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
      at_ = p;
      Visit(*reinterpret_cast<const uintptr_t *>(p));
    }
  }
  void Visit(uintptr_t word) {
    if (!g_heap.MaybeInHeap(word)) return;
    Span *s = nullptr;
    uint32_t index = 0;
    uintptr_t obj = Marker::ObjectContaining(word, &s, &index);
    if (obj == 0 || !visited_.Insert(obj)) return;
    ++reachable;
    if (!s->IsMarked(index)) {
      if (problems < 20) {
        Message("verify: reachable object %p (size %u, span %p: class %u, %u objects, %u pages, %s) is not marked",
                reinterpret_cast<void *>(obj), s->elem_size, reinterpret_cast<void *>(s->start), s->size_class,
                s->nelems, s->npages, s->IsCached() ? "owned by a cache" : "not owned");
        ReportWhere(word);
      }
      ++problems;
    }
    if (!s->noscan) work_.push_back(obj);
  }
  // Slots thread caches have claimed but not handed out are kept without being scanned (their bytes are stale);
  // the verifier must not follow them either.
  void SkipCachedSlots() {
    for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
      for (const CacheSlot &slot : t->cache.slots) {
        for (uint64_t bits = slot.bits; bits != 0; bits &= bits - 1) {
          visited_.Insert(slot.base + static_cast<uintptr_t>(__builtin_ctzll(bits)) * slot.size);
        }
      }
    }
  }
  void Drain() {
    while (!work_.empty()) {
      uintptr_t obj = work_.back();
      work_.pop_back();
      Span *s = nullptr;
      uint32_t index = 0;
      Marker::ObjectContaining(obj, &s, &index);
      from_ = obj;
      ScanRange(obj, obj + s->elem_size);
    }
  }

 private:
  // Where the word that reached an unmarked object was: the object that holds it (its span's state, which decides
  // whether the marker read it), or the root range and, for a stack, the thread and where it was stopped.
  void ReportWhere(uintptr_t word) const {
    if (from_ != 0) {
      Span *ps = nullptr;
      uint32_t pi = 0;
      Marker::ObjectContaining(from_, &ps, &pi);
      Message("verify:   found at %p, word %#lx, inside object %p (size %u, %s, span %p%s%s)",
              reinterpret_cast<void *>(at_), static_cast<unsigned long>(word), reinterpret_cast<void *>(from_),
              ps->elem_size, ps->IsMarked(pi) ? "marked" : "not marked", reinterpret_cast<void *>(ps->start),
              ps->untouched ? ", untouched" : "", ps->rescan ? ", rescan" : "");
      return;
    }
    for (const ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
      const auto regs = reinterpret_cast<uintptr_t>(t->saved_registers);
      const bool in_regs = root_.lo == regs;
      if (in_regs || (root_.lo >= t->stack_lo && root_.lo < t->stack_hi)) {
        Message("verify:   found at %p, word %#lx, in the %s of thread %d (%s; stack %p..%p, stopped at sp %p, root "
                "%p..%p)",
                reinterpret_cast<void *>(at_), static_cast<unsigned long>(word), in_regs ? "saved registers" : "stack",
                static_cast<int>(t->tid), t == t_current ? "the collecting thread" : "another thread",
                reinterpret_cast<void *>(t->stack_lo), reinterpret_cast<void *>(t->stack_hi),
                reinterpret_cast<void *>(t->suspended_sp), reinterpret_cast<void *>(root_.lo),
                reinterpret_cast<void *>(root_.hi));
        return;
      }
    }
    Message("verify:   found at %p, word %#lx, in a %s root %p..%p", reinterpret_cast<void *>(at_),
            static_cast<unsigned long>(word), root_.kind == RootKind::kStack ? "stack" : "global",
            reinterpret_cast<void *>(root_.lo), reinterpret_cast<void *>(root_.hi));
  }

  uintptr_t from_ = 0;  // the object being scanned, or 0 for a root range
  RootRange root_{};    // the root range being scanned (from_ == 0)
  uintptr_t at_ = 0;    // the address of the word being visited
  AddressSet visited_;
  std::vector<uintptr_t, meta::StlAllocator<uintptr_t>> work_;
};

}  // namespace

namespace {

// FNV-1a over a parked thread's saved registers and frames up to ThreadRecord::frames_hi, each word with its
// address: every word of ParkUntilResumed's own frame (pacegc's: nothing may write it while the thread is parked),
// and above it the words that could point into the heap, the only ones whose change can make the marker and the
// verifier disagree (others may change legitimately: a counter on this stack that a thread the pause does not stop
// updates, an unregistered one or one held in a blocking region). 0: nothing to check (the collecting thread, one
// held in a blocking region, whose own frame may change, or one whose frames' top is not known).
PACEGC_NO_SANITIZE_ADDRESS PACEGC_NO_SANITIZE_THREAD uint64_t HashWords(uint64_t h, uintptr_t lo, uintptr_t hi,
                                                                        bool all) {
  for (uintptr_t p = lo & ~uintptr_t{7}; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
    const uintptr_t word = *reinterpret_cast<const uintptr_t *>(p);
    if (!all && !g_heap.MaybeInHeap(word)) continue;
    h = (h ^ p) * 0x100000001b3ull;
    h = (h ^ word) * 0x100000001b3ull;
  }
  return h;
}
// The top of a parked thread's park frame as the hash reads it (from suspended_sp), or 0 if it reads none of it.
uintptr_t HashedParkFrameTop(const ThreadRecord *t) {
  const uintptr_t sp = t->suspended_sp, hi = t->frames_hi;
  if (sp < t->stack_lo || sp >= hi) return 0;
  return t->park_frame_hi > sp && t->park_frame_hi < hi ? t->park_frame_hi : 0;
}
uint64_t ParkedStateHash(const ThreadRecord *t) {
  if (t == t_current || t->frames_hi == 0 || t->blocking.load(std::memory_order_relaxed) == threads::kHeld) return 0;
  const auto regs = reinterpret_cast<uintptr_t>(t->saved_registers);
  uint64_t h = HashWords(0xcbf29ce484222325ull, regs, regs + sizeof(t->saved_registers), true);
  const uintptr_t sp = t->suspended_sp, hi = t->frames_hi;
  if (sp < t->stack_lo || sp >= hi) return h | 1;
  const uintptr_t top = HashedParkFrameTop(t), park_hi = top != 0 ? top : sp;
  h = HashWords(h, sp, park_hi, true);
  return HashWords(h, park_hi, hi, false) | 1;
}

}  // namespace

void NoteParkedStates() {
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) t->parked_state_hash = ParkedStateHash(t);
}

namespace {
PACEGC_NO_SANITIZE_ADDRESS PACEGC_NO_SANITIZE_THREAD void FlipWord(uintptr_t *word) { *word ^= uintptr_t{1} << 47; }
}  // namespace

uintptr_t *DisturbParkedFrame() {
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    const uintptr_t top = HashedParkFrameTop(t);  // (a word the hash reads whole)
    if (t->parked_state_hash == 0 || top == 0) continue;
    auto *word = reinterpret_cast<uintptr_t *>((t->suspended_sp + 7) & ~uintptr_t{7});
    if (reinterpret_cast<uintptr_t>(word + 1) > top) continue;
    FlipWord(word);
    return word;
  }
  return nullptr;
}

void RestoreParkedFrame(uintptr_t *word) { FlipWord(word); }

size_t VerifyMarks(const Marker &marker, uintptr_t self_sp, bool concurrent) {
  Verifier v;
  size_t changed = 0;
  for (const ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    const uint64_t now = ParkedStateHash(t);
    if (t->parked_state_hash != 0 && now != t->parked_state_hash) {
      Message("verify: thread %d's stack or saved registers (from sp %p) changed while it was parked",
              static_cast<int>(t->tid), reinterpret_cast<void *>(t->suspended_sp));
      ++changed;
    }
  }
  v.problems = changed;
  try {
    v.SkipCachedSlots();
    // Each root range drained before the next: a problem is reported with the root it came from.
    roots::ForEach(self_sp, [&](const RootRange &r) {
      v.ScanRoot(r);
      v.Drain();
    });
  } catch (const std::bad_alloc &) {
    Message("verify: out of metadata memory for the verifier's own walk; this cycle's marks are not verified");
    return changed;
  }
  // Every marked byte is accounted for by the marker.
  uint64_t marked = 0;
  for (Span *s = g_heap.FirstInUse(); s != nullptr; s = s->all_next) {
    for (uint32_t w = 0; w < s->nwords; ++w) {
      marked += static_cast<uint64_t>(__builtin_popcountll(s->mark_bits[w])) * s->elem_size;
      // (A concurrent cycle marks objects the program may free afterwards, with pgc_free: the sweep keeps
      // alloc & mark, gc/concurrent.h.)
      if (!concurrent && (s->mark_bits[w] & ~s->alloc_bits[w]) != 0) {
        Message("verify: span %p has mark bits on free slots", reinterpret_cast<void *>(s->start));
        ++v.problems;
      }
    }
  }
  // A concurrent cycle also counted objects freed since they were marked, a large one with its span (the marker's
  // count can only be higher then).
  const uint64_t counted = marker.marked_bytes() + marker.cached_bytes();
  if (concurrent ? marked > counted : marked != counted) {
    Message("verify: %llu bytes are marked but the marker counted %llu", static_cast<unsigned long long>(marked),
            static_cast<unsigned long long>(marker.marked_bytes() + marker.cached_bytes()));
    ++v.problems;
  }
  if (!g_heap.Verify()) {
    Message("verify: page map, span lists or page accounting are inconsistent");
    ++v.problems;
  }
  return v.problems;
}

}  // namespace pacegc::internal
