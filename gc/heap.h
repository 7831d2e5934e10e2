// gc/heap.h — the object heap's layout: arenas, pages, spans, the page map and the page heap.
//
// Layout
//   The heap is a set of arenas: 64 MiB (or, for a huge object, a larger multiple) of address space reserved from
//   the OS at 64 MiB alignment, committed on demand in 1 MiB steps as pages are first used. An arena is cut into
//   8 KiB pages; runs of pages are spans. A span is
//     - free      (in the page heap, waiting to be reused or coalesced with its neighbours),
//     - small     (objects of one size class, with one allocation bit and one mark bit per object), or
//     - large     (one object of kMaxSmallSize+ bytes, rounded to pages).
//   Small spans are further split by "noscan": pointer-free (atomic) objects live in their own spans so marking
//   never reads them, and a span's kind is known without per-object headers.
//
// Page map
//   An address is mapped to its span in O(1) with two loads: a sparse top-level table indexed by address >> 26
//   (one entry per 64 MiB, mmap'd NORESERVE so only touched entries use memory) gives the arena, and the arena's
//   per-page table gives the span. Every page of an in-use span maps to it (so interior pointers into large objects
//   resolve); a free span maps only its first and last page (enough to coalesce), interior entries are null.
//
// Allocation bits (the source of truth for "is there an object here")
//   A slot is allocated iff its bit in alloc_bits is set. A thread cache claims all free slots of one 64-slot word at
//   a time (setting their bits), then hands them out without touching the span; the slots it still holds are
//   visible to the collector in the cache (see alloc.h) and are kept (marked, not scanned) across a collection.
//   After marking, sweeping replaces alloc_bits by mark_bits: what was not marked is free.
//
// Locking: the page heap, the arenas, the page map and the list of in-use spans are guarded by the heap lock
//   (collector.h), or run with the world stopped while the collector holds it. The page map is read without the lock
//   during marking, and by the lock-free pgc_free (for an object the program holds, whose entries do not change;
//   never while a sweep that may free spans runs: gc/sweep.h).
//   The partial lists have one lock per span class (PartialLock), so threads refill their caches without the heap
//   lock (alloc.h). A span's `in_partial` and `kept` change only under its class's lock (or by the sweep, for a span
//   it detached from every list: DetachPartialLists, no thread can reach it then); `cached` is set under it
//   (a cache taking the span) and cleared by the owner without it (ReleaseCached: seq_cst, against pgc_free's
//   decrement of `allocated`), or with the world stopped or in a fork child. A class lock is taken
//   either inside an allocation critical section (threads.h: the collector waits for the thread to leave it) or
//   with the heap lock held, so the collector, which holds the heap lock and has every registered thread parked
//   outside its critical section, never finds one held.
//   Fields a cache owner changes without the heap lock while others read or change them: alloc_bits (claims set
//   bits with an atomic OR; pgc_free clears them with an atomic AND), allocated (atomic add/sub), cached,
//   needzero (relaxed atomic loads and stores). next_word belongs to the owning cache (and to the sweep).
//
// Accounting (bytes, for statistics and the memory limit):
//   mapped_bytes   pages ever handed out of an arena's fresh region (in-use + free spans): committed, can be resident
//   in_use_bytes   pages in small and large spans, less kept spans
//   free_bytes     pages in free spans and kept spans (mapped_bytes = in_use_bytes + free_bytes), released ones
//                  included
//   kept_bytes     pages of kept spans (below): in-use spans as far as the page heap is concerned, free memory as far
//                  as the statistics and the pacer are (what the program can reuse, and what Release can return)
//   released_bytes free pages returned to the OS (madvise DONTNEED): mapped but not resident
//   reserved_bytes address space reserved for arenas
//
// Kept spans (the sweep's empty spans of a class in use)
//   The sweep does not return every empty small span to the page heap. One whose objects died in this cycle (it
//   had objects, and none is left) stays on its class's partial list, marked `kept`: the program allocated from
//   that class and will most likely do so again, and taking the span back from the list needs only
//   the class lock, where a span from the page heap costs the heap lock, a page-heap search, span metadata and a
//   hard-cap charge (with two threads allocating short-lived objects, that round trip through the heap lock, some
//   5,000 spans per 40 MiB cycle each way, made two threads slower than one: docs/BENCHMARKS.md). A kept span not
//   taken again by the next sweep goes back to the page heap then, so a class the program stopped using (or a
//   dropped structure's spans) gives its memory back one sweep later.
//   Kept memory is reusable by its class only, so it must never cost memory the heap would not have used anyway:
//     - it counts as free (free_resident_bytes, the pacer's heap_free_bytes, pgc_stats.heap_free_bytes), not in use;
//     - the page heap frees kept spans before it grows or takes back released pages (AllocPages), so another
//       class's new span reuses them;
//     - Release frees kept spans to the page heap when free runs do not cover what it was asked to return, so the
//       scavenger and a forced release under the memory limit reach kept memory too.
//   A span stops being kept when it leaves the list (Unlink: taken by a cache, or freed), under the class lock;
//   each list counts its kept pages (an atomic beside its lock, so no line is shared that was not already).
//
// Releasing (the scavenger's mechanism; how much to release is pacer/scavenge.h's policy)
//   Each arena has one bit per page: released. Only pages of free spans are ever released, so coalescing free
//   spans needs no bookkeeping: the bits stay with the pages. When a run of free pages becomes an in-use span its
//   released bits are cleared and counted again (the memory is still read-write; touching it faults fresh zero
//   pages back in). Release() picks the largest free spans first, releasing from their high end, and FindFree
//   prefers runs with no released page (then the fewest), carving from their low end: pages the scavenger gave
//   back stay unused while resident free pages can serve the heap. Without that preference a heap that shrank
//   after a spike reused its released pages at every cycle (sweeping coalesces them with resident neighbours),
//   and retained memory never fell.
#ifndef PACEGC_GC_HEAP_H_
#define PACEGC_GC_HEAP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gc/size_classes.h"
#include "gc/spinlock.h"

namespace pacegc::internal {

constexpr size_t kArenaShift = 26;
constexpr size_t kArenaSize = size_t{1} << kArenaShift;  // 64 MiB
constexpr size_t kArenaPages = kArenaSize / kPageSize;
constexpr size_t kAddressBits = 47;                      // user-space virtual addresses on x86-64 / AArch64 (48-bit VA)
constexpr size_t kCommitStep = size_t{1} << 20;          // commit fresh pages 1 MiB at a time
constexpr size_t kNumSpanClasses = kNumClasses * 2;      // (size class, noscan)

enum class SpanState : uint8_t { kFree = 0, kSmall = 1, kLarge = 2 };

inline uint32_t SpanClass(uint32_t size_class, bool noscan) { return size_class * 2 + (noscan ? 1 : 0); }

struct Span {
  uintptr_t start;       // first byte (page aligned)
  uint32_t npages;
  SpanState state;
  uint8_t size_class;    // 0 for large and free spans
  bool noscan;           // objects are never scanned (pgc_malloc_atomic)
  bool needzero;         // memory may hold old data: zero objects of scanned spans when handing them out
  bool cached;           // owned by a thread cache, which allocates from it without the lock
  bool in_partial;       // on the heap's partial list of its span class
  bool rescan;           // mark-stack overflow: its marked objects must be scanned again
  bool kept;             // an empty span the sweep left on its partial list (Kept spans, above); class lock
  bool untouched;        // scanned in-use span none of whose pages has been seen holding data: its objects are
                         // all zeros and are marked without being read (gc/untouched.h). Set when the span
                         // becomes in use; cleared for good by untouched::Refresh (world stopped)
  bool maybe_protected;  // free runs only: some page may still carry a concurrent cycle's write protection (the
                         // run holds pages of a span freed while protected: gc/concurrent.h, "Protection between
                         // cycles"); merged by OR, copied on a split, cleared when EndTracking lifts it (or
                         // finds every page of the run released, which drops the protection)
  bool probing;          // concurrent marking: a hot span whose hot period ran out at the last cycle's end, all
                         // of it writable but its last OS page, which tells the next start whether the program
                         // still writes it (gc/concurrent.cc, LiftEnd; heap lock)
  uint32_t elem_size;    // object size; a large span's object is the whole span
  uint32_t nelems;       // objects in the span (1 for large)
  uint32_t nwords;       // 64-bit words per bitmap
  uint32_t next_word;    // next alloc_bits word the owning cache will claim
  uint32_t div_magic;    // see size_classes.h
  uint32_t allocated;    // objects with their alloc bit set (including those claimed by a cache)
  uint32_t released;     // free spans only: pages of the run returned to the OS (their arena bits are set)
  uint32_t wp_epoch;     // concurrent marking (gc/concurrent.h): the cycle in which the span's pages are not
                         // write-protected (filled by an allocator, new, sparse or owned when the cycle began); its
                         // marked objects are re-scanned whole in that cycle's final pause. WpEpoch / Heap::FlagWp
  uint32_t writable_gen; // concurrent marking: the protection generation (concurrent::g_protect_gen) in which the
                         // span's pages were last made writable; when it equals the current one, an allocator
                         // fills the span without a system call. WritableGen / SetWritableGen
  uint32_t written_gen;  // concurrent marking: the last cycle whose start (BeginTracking's scan, counting only
                         // spans protected when the last cycle ended), pre-cleaning or final pause found the program
                         // writing this span (heap lock); EndTracking leaves it writable for kHotCycles cycles
  uint32_t swept_gen;    // the heap's sweep generation when this span was last swept or became in use (gc/sweep.h:
                         // a span is swept when it equals Heap::SweepGen()); the sweep's, heap lock or world stopped
  Span *next;            // partial list, or page-heap free list
  Span *prev;
  Span *all_next;        // list of all in-use spans (small and large)
  Span *all_prev;
  uint64_t *alloc_bits;  // nwords words, after the struct
  uint64_t *mark_bits;   // nwords words, after alloc_bits; set atomically while marking

  uintptr_t end() const { return start + (static_cast<uintptr_t>(npages) << kPageShift); }
  // Index of the object containing addr (addr inside the span's object area).
  uint32_t ObjectIndexOf(uintptr_t addr) const {
    return state == SpanState::kLarge ? 0 : static_cast<uint32_t>((static_cast<uint64_t>(addr - start) * div_magic) >> 32);
  }
  uintptr_t ObjectStart(uint32_t index) const { return start + static_cast<uintptr_t>(index) * elem_size; }
  bool IsAllocated(uint32_t index) const {
    return (__atomic_load_n(&alloc_bits[index >> 6], __ATOMIC_RELAXED) >> (index & 63)) & 1;
  }
  // The owning cache is taking or giving up the span, or pgc_free is deciding whether to list it (class lock).
  bool IsCached() const { return __atomic_load_n(&cached, __ATOMIC_SEQ_CST); }
  uint32_t Allocated() const { return __atomic_load_n(&allocated, __ATOMIC_SEQ_CST); }
  bool NeedsZero() const { return __atomic_load_n(&needzero, __ATOMIC_RELAXED); }
  // Relaxed atomics: the collector flags spans with the world running while their owners may flag them too.
  uint32_t WpEpoch() const { return __atomic_load_n(&wp_epoch, __ATOMIC_RELAXED); }  // (set by Heap::FlagWp)
  uint32_t WritableGen() const { return __atomic_load_n(&writable_gen, __ATOMIC_RELAXED); }
  void SetWritableGen(uint32_t gen) { __atomic_store_n(&writable_gen, gen, __ATOMIC_RELAXED); }
  bool IsMarked(uint32_t index) const {
    return (__atomic_load_n(&mark_bits[index >> 6], __ATOMIC_RELAXED) >> (index & 63)) & 1;
  }
  // Sets the mark bit; returns true if this call set it (it was clear).
  bool TryMark(uint32_t index) {
    uint64_t bit = uint64_t{1} << (index & 63);
    uint64_t *word = &mark_bits[index >> 6];
    if (__atomic_load_n(word, __ATOMIC_RELAXED) & bit) return false;
    return (__atomic_fetch_or(word, bit, __ATOMIC_RELAXED) & bit) == 0;
  }
  void ClearMark(uint32_t index) { __atomic_fetch_and(&mark_bits[index >> 6], ~(uint64_t{1} << (index & 63)), __ATOMIC_RELAXED); }
  // Mask of the slots of bitmap word w that exist (the last word may be partial).
  uint64_t ValidMask(uint32_t w) const {
    uint32_t first = w * 64;
    uint32_t n = nelems - first;
    return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
  }
  bool IsValid() const;  // expensive structural check, for PACEGC_EXPENSIVE_CHECK
};

struct Arena {
  uintptr_t base;
  size_t npages;          // pages in the arena
  size_t fresh_page;      // pages [fresh_page, npages) were never handed out
  size_t committed_pages; // pages [0, committed_pages) are read-write
  uint64_t *released;     // one bit per page: returned to the OS (only ever set on pages of free spans)
  uint64_t *rescan;       // one bit per page, set at the first page of a span before it is flagged for the final
                          // pause (Heap::FlagWp), cleared when a cycle's tracking begins: the spans to look at there
  uint64_t *untouched;    // one bit per page, set at the first page of each in-use span with Span::untouched (heap
                          // lock or world stopped): what untouched::Refresh reads, instead of every span
  bool tracked;           // registered with the write tracker (gc/concurrent.h): the only arenas it protects or scans
  Arena *next;
  Span *page_spans[1];    // npages entries (allocated past the struct)
};

// Owns arenas, the page map, the page heap and the per-class span lists. One instance: the global heap. All
// methods need the heap lock.
class Heap {
 public:
  bool Init();  // maps the page map's top level; false if the OS refuses

  // The span containing addr, or nullptr if addr is not in the heap. May return a free span (check state).
  // Lock-free read: valid while the world is stopped or under the heap lock.
  Span *SpanOf(uintptr_t addr) const {
    if (!MaybeInHeap(addr)) return nullptr;
    Arena *a = __atomic_load_n(&top_[addr >> kArenaShift], __ATOMIC_RELAXED);
    if (a == nullptr) return nullptr;
    return a->page_spans[(addr - a->base) >> kPageShift];
  }
  // addr lies in an arena (whatever the page's state). Safe without the lock: arenas are never unmapped.
  // The page map's top-level table: [*lo, *hi).
  void PageMapRange(uintptr_t *lo, uintptr_t *hi) const {
    *lo = reinterpret_cast<uintptr_t>(top_);
    *hi = *lo + (size_t{1} << (kAddressBits - kArenaShift)) * sizeof(Arena *);
  }
  bool InArena(uintptr_t addr) const {
    return MaybeInHeap(addr) && __atomic_load_n(&top_[addr >> kArenaShift], __ATOMIC_ACQUIRE) != nullptr;
  }
  // Relaxed loads (plain moves): the bounds only grow, under the heap lock, and lock-free readers (pgc_free,
  // pgc_weak_get) ask only about addresses of objects published to them after the arena was.
  bool MaybeInHeap(uintptr_t addr) const {
    const uintptr_t lo = __atomic_load_n(&lo_page_, __ATOMIC_RELAXED);
    return (addr >> kPageShift) - lo < __atomic_load_n(&hi_page_, __ATOMIC_RELAXED) - lo;
  }

  // A new small span for a size class, or nullptr when the OS refuses memory. Not on any list; not cached.
  Span *AllocSmallSpan(uint32_t size_class, bool noscan);
  // A new large span of at least `bytes`, or nullptr when the OS refuses (or bytes is absurd).
  Span *AllocLargeSpan(size_t bytes, bool noscan);
  // Returns an in-use span to the page heap (coalescing with free neighbours). Removes it from all lists.
  void FreeSpan(Span *s);

  // Returns up to max_bytes of free, resident pages to the OS (rounded up to whole pages). Returns the bytes
  // released. The caller holds the heap lock (the madvise calls run under it: callers keep batches small).
  uint64_t Release(uint64_t max_bytes);

  // Partial lists: spans of a span class with free slots that no cache owns. Each class has its own lock; these
  // take it. Needs no heap lock, but see "Locking" for where they may be called from.
  // The first listed span, now owned by a cache (cached = true, next_word = 0), or nullptr.
  Span *TakePartial(uint32_t span_class);
  // The same, and up to max_extra more listed spans in the same lock round, owned too, chained through `next` into
  // *extra (nullptr if none).
  Span *TakePartial(uint32_t span_class, uint32_t max_extra, Span **extra);
  // The owning cache gives the span up: it is listed if it has free slots (an empty span is listed too: the next
  // sweep keeps it or returns it to the page heap).
  void ReleaseCached(Span *s);
  // pgc_free made room in a span: it is listed unless a cache owns it or it is listed already.
  void ListIfUnowned(Span *s);
  // The sweep (or a locked refill, for a new span) lists a span with free slots; no cache owns it.
  void PushPartial(Span *s);
  // Heap lock held, small span s: runs fn(s) with its class lock held if no cache owns s and it is not listed (a
  // cache can then take it only after fn returns: from the list, once a pgc_free lists it). Returns whether fn ran.
  // Concurrent marking's pre-cleaning of the spans filled during a cycle (gc/concurrent.cc, PrecleanFilled).
  template <typename Fn>
  bool WithUnlistedUnowned(Span *s, Fn fn) {
    PartialList &list = partial_[SpanClass(s->size_class, s->noscan)];
    list.lock.Lock();
    const bool unowned = !s->IsCached() && !s->in_partial;
    if (unowned) fn(s);
    list.lock.Unlock();
    return unowned;
  }
  // The sweep and FreeSpan take a span off its list (if it is on one).
  void RemovePartial(Span *s);
  // The sweep keeps an empty small span no cache owns on its class's list (Kept spans, above).
  void Keep(Span *s);
  // The sweep's start (world stopped, gc/sweep.h): every class list is emptied at once, held spans included, and its
  // kept count zeroed. The spans keep their stale `in_partial`, `kept` and links until the sweep reaches each and
  // calls ForgetDetached, then lists, keeps or frees it: from here until the sweep ends, the lists (which caches
  // take spans from without the heap lock) hold swept spans only.
  void DetachPartialLists();
  void ForgetDetached(Span *s);
  // Sweep generations (gc/sweep.h). NewSweepGen: world stopped, at the start of each sweep.
  uint32_t SweepGen() const { return sweep_gen_; }
  void NewSweepGen() { ++sweep_gen_; }
  // Heap lock held: returns kept spans to the page heap, class by class, until at least max_pages pages are freed
  // or none is left (AllocPages before growing or reacquiring released pages, Release). Returns the pages freed.
  uint64_t FreeKept(uint64_t max_pages);
  // Concurrent marking (gc/concurrent.h), heap lock held, world running: the listed spans more than a quarter full
  // are held aside, where no cache takes them, while the heap is write-protected (filling a protected span costs an
  // unprotect or a fault per page, ~20 us here, for a few free slots); with flag_sparse, the others, which hold few
  // objects, are flagged with `epoch` (left unprotected, re-scanned whole in the final pause). Held spans stay listed
  // (`in_partial`) for everything but TakePartial. ReleaseHeld lists them again.
  void HoldDenseSpans(uint32_t epoch, bool flag_sparse);
  void ReleaseHeld();
  // fork(): every class lock, so the child inherits none held by a thread it does not have.
  void LockPartialLists();
  void UnlockPartialLists();

  // Iteration over in-use spans (the sweeper may free the current one: read all_next first).
  Span *FirstInUse() const { return all_head_; }
  // Iteration over arenas (newest first); arenas are never unmapped.
  Arena *FirstArena() const { return arenas_; }

  // Flags in-use span s for the final pause of tracking epoch `epoch` (Span::wp_epoch; 0 unflags it). Any thread that
  // may flag it (its owner, or with the heap lock). Its start page's bit in the arena's `rescan` bits is set first,
  // then the flag (sequentially consistent): a thread stopped between the two leaves a bit without the flag, which
  // the final pause skips, never a flag without the bit. So that pause visits only the spans with a bit set
  // (ForEachRescanCandidate), not every in-use span: with a 2.3 GiB heap of 8 KiB spans, the walk of all 280,000
  // took ~4 ms of it (docs/BENCHMARKS.md).
  void FlagWp(Span *s, uint32_t epoch) const {
    if (epoch != 0) {
      const StartBit b = StartPageBit(&Arena::rescan, s);
      __atomic_fetch_or(b.word, b.mask, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&s->wp_epoch, epoch, __ATOMIC_SEQ_CST);
  }
  bool HasRescanBit(const Span *s) const {
    const StartBit b = StartPageBit(&Arena::rescan, s);
    return (__atomic_load_n(b.word, __ATOMIC_RELAXED) & b.mask) != 0;
  }
  // Heap lock held, before a new tracking epoch is published: every arena's rescan bits cleared (owners still
  // flagging for the old epoch may set bits meanwhile; they are skipped later, their spans not being flagged anew).
  void ClearRescanBits();
  // World stopped (or heap lock held): calls fn(s) for each in-use span whose start page has its rescan bit set,
  // in address order within each arena. A superset of the spans flagged since the last ClearRescanBits.
  template <typename Fn>
  void ForEachRescanCandidate(Fn fn) const {
    ForEachSetPageBit(&Arena::rescan, [&](const Arena *a, size_t page) {
      Span *s = a->page_spans[page];
      if (s == nullptr || s->state == SpanState::kFree || s->start != a->base + page * kPageSize) return;
      fn(s);
    });
  }

  // In-use spans with `untouched` set (gc/untouched.h), and the one way to clear the flag.
  size_t untouched_spans() const { return untouched_spans_; }
  void MarkTouched(Span *s) {
    if (!s->untouched) return;
    s->untouched = false;
    --untouched_spans_;
    const StartBit b = StartPageBit(&Arena::untouched, s);
    *b.word &= ~b.mask;
  }
  // Calls fn(s) for each untouched span (heap lock held or world stopped), in address order within each arena, the
  // arenas newest first; fn may mark s touched (not other spans).
  template <typename Fn>
  void ForEachUntouched(Fn fn) const {
    ForEachSetPageBit(&Arena::untouched, [&](const Arena *a, size_t page) { fn(a->page_spans[page]); });
  }

  uint64_t mapped_bytes() const { return mapped_pages_ * kPageSize; }
  // Kept spans' pages, summed over the class lists (each read once, relaxed: a cache may be taking one meanwhile).
  uint64_t kept_bytes() const;
  uint64_t in_use_bytes() const { return in_use_pages_ * kPageSize - kept_bytes(); }
  uint64_t free_bytes() const { return (mapped_pages_ - in_use_pages_) * kPageSize + kept_bytes(); }
  uint64_t released_bytes() const { return released_pages_ * kPageSize; }
  // Free pages still resident, kept spans included: what Release can return.
  uint64_t free_resident_bytes() const { return free_bytes() - released_bytes(); }
  // Heap memory the limit counts: mapped and not released.
  uint64_t retained_bytes() const { return mapped_bytes() - released_bytes(); }
  uint64_t reserved_bytes() const { return reserved_bytes_; }
  size_t num_spans() const { return num_in_use_spans_; }

  bool Verify() const;  // expensive: page map, lists and accounting agree

 private:
  // The word of an arena bitmap (`bits`: Arena::rescan or Arena::untouched) that holds the bit of span s's first
  // page, and that bit. Safe without the lock for an arena that exists (its page-map entry never changes).
  struct StartBit {
    uint64_t *word;
    uint64_t mask;
  };
  StartBit StartPageBit(uint64_t *Arena::*bits, const Span *s) const {
    Arena *a = __atomic_load_n(&top_[s->start >> kArenaShift], __ATOMIC_RELAXED);
    const size_t page = (s->start - a->base) >> kPageShift;
    return {&(a->*bits)[page >> 6], uint64_t{1} << (page & 63)};
  }
  // Calls fn(arena, page) for each set bit of an arena bitmap below the arena's fresh_page (no span starts past it),
  // the arenas newest first, in page order within each; each word is read once (relaxed: FlagWp's owners may set
  // rescan bits meanwhile).
  template <typename Fn>
  void ForEachSetPageBit(uint64_t *Arena::*bits, Fn fn) const {
    for (const Arena *a = arenas_; a != nullptr; a = a->next) {
      const size_t words = (a->fresh_page + 63) / 64;
      for (size_t w = 0; w < words; ++w) {
        for (uint64_t word = __atomic_load_n(&(a->*bits)[w], __ATOMIC_RELAXED); word != 0; word &= word - 1) {
          fn(a, w * 64 + static_cast<size_t>(__builtin_ctzll(word)));
        }
      }
    }
  }

  Span *AllocPages(size_t npages);           // a free span of exactly npages (split from a larger one or fresh)
  Span *TakeFresh(size_t npages);            // from an arena's never-used region, or a new arena (hard cap charged)
  Span *TakeFreshCharged(size_t npages);     // the same, the pages already charged
  Arena *NewArena(size_t min_pages);
  Span *NewSpanStruct(size_t bitmap_words);  // meta-allocated, zeroed
  void InsertFree(Span *s);                  // onto the page heap's free structure; sets page map ends
  void RemoveFree(Span *s);
  Span *FindFree(size_t npages);             // best fit, or nullptr
  void SetPageMap(Span *s, uintptr_t from, size_t npages, Span *value);
  uint64_t ReleaseRun(Arena *a, size_t first, size_t npages, uint64_t max_pages);  // pages newly released
  static size_t CountReleased(const Arena *a, size_t first, size_t npages);
  void Reacquire(const Span *run);  // clears the released bits of pages becoming in use
  Span *InitInUse(Span *run, SpanState state, uint32_t size_class, bool noscan, uint32_t elem_size,
                  uint32_t nelems);

  static constexpr size_t kFreeListPages = 128;  // exact-size free lists for runs of 1..127 pages
  Arena **top_ = nullptr;                         // 2^(kAddressBits - kArenaShift) entries, sparse
  // Pages [lo_page_, hi_page_) cover every arena. Kept as page numbers, not addresses: this object lives in the
  // library's data segment, which is scanned as a root, and must not look like it points into the heap.
  uintptr_t lo_page_ = 0;
  uintptr_t hi_page_ = 0;
  Arena *arenas_ = nullptr;
  Span *free_lists_[kFreeListPages] = {};         // runs of exactly n pages (doubly linked)
  Span *free_large_ = nullptr;                    // runs of >= kFreeListPages pages, unsorted (few)
  struct alignas(64) PartialList {
    SpinLock lock;
    Span *head = nullptr;
    Span *held = nullptr;  // HoldDenseSpans: listed, not taken while a concurrent cycle tracks writes
    std::atomic<uint64_t> kept_pages{0};  // written under `lock`, read without it (kept_bytes)
  };
  void Unlink(PartialList &list, Span *s);
  void Link(PartialList &list, Span *s);
  PartialList partial_[kNumSpanClasses];
  Span *all_head_ = nullptr;
  uint32_t sweep_gen_ = 1;  // heap lock (or world stopped)
  size_t num_in_use_spans_ = 0;
  size_t untouched_spans_ = 0;  // in-use spans with `untouched` set
  uint64_t mapped_pages_ = 0;
  uint64_t in_use_pages_ = 0;
  uint64_t released_pages_ = 0;
  uint64_t reserved_bytes_ = 0;
};

}  // namespace pacegc::internal

#endif  // PACEGC_GC_HEAP_H_
