// gc/heap.cc — see heap.h for the layout. This file implements the page heap: carving spans out of arenas,
// returning them, coalescing free neighbours, and keeping the page map exact.
//
// Invariants (checked by Heap::Verify in verify builds):
//   - every page of an in-use span maps to that span; the first and last page of a free span map to it, its
//     interior pages map to nullptr; pages past an arena's fresh_page map to nullptr;
//   - two free spans are never adjacent (they are coalesced when the second is freed);
//   - mapped_pages_ = sum of npages over in-use and free spans; in_use_pages_ = sum over in-use spans;
//   - released bits are set only on pages of free spans, and released_pages_ is their count.
#include "gc/heap.h"

#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/check.h"
#include "base/hardcap.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/concurrent.h"

namespace pacegc::internal {

bool Span::IsValid() const {
  if (npages == 0 || (start & (kPageSize - 1)) != 0) return false;
  if (state == SpanState::kFree) return nwords == 0;
  if (static_cast<uint64_t>(nelems) * elem_size > static_cast<uint64_t>(npages) * kPageSize) return false;
  if (nwords != (nelems + 63) / 64) return false;
  uint32_t count = 0;
  for (uint32_t w = 0; w < nwords; ++w) {
    if (alloc_bits[w] & ~ValidMask(w)) return false;
    count += static_cast<uint32_t>(__builtin_popcountll(alloc_bits[w]));
  }
  return count == allocated;
}

bool Heap::Init() {
  size_t entries = size_t{1} << (kAddressBits - kArenaShift);
  top_ = static_cast<Arena **>(os::MapSparse(entries * sizeof(Arena *)));
  return top_ != nullptr;
}

Span *Heap::NewSpanStruct(size_t bitmap_words) {
  size_t bytes = sizeof(Span) + 2 * bitmap_words * sizeof(uint64_t);
  auto *s = static_cast<Span *>(meta::Calloc(1, bytes));
  if (s == nullptr) return nullptr;
  s->nwords = static_cast<uint32_t>(bitmap_words);
  s->alloc_bits = reinterpret_cast<uint64_t *>(s + 1);
  s->mark_bits = s->alloc_bits + bitmap_words;
  return s;
}

Arena *Heap::NewArena(size_t min_pages) {
  size_t bytes = kArenaSize;
  if (min_pages > kArenaPages) {
    size_t want = min_pages * kPageSize;
    bytes = (want + kArenaSize - 1) & ~(kArenaSize - 1);
    if (bytes < want) return nullptr;  // overflow
  }
  uintptr_t limit = uintptr_t{1} << kAddressBits;
  void *mem = os::Reserve(bytes, kArenaSize);
  if (mem == nullptr) return nullptr;
  uintptr_t base = reinterpret_cast<uintptr_t>(mem);
  if (base + bytes > limit) {  // outside what the page map covers (should not happen with a 47-bit user space)
    os::Unreserve(mem, bytes);
    return nullptr;
  }
  size_t npages = bytes / kPageSize;
  size_t table_bytes = sizeof(Arena) + (npages - 1) * sizeof(Span *);
  table_bytes = (table_bytes + 7) & ~size_t{7};
  const size_t bitmap_bytes = (npages + 63) / 64 * sizeof(uint64_t);
  auto *a = static_cast<Arena *>(meta::Calloc(1, table_bytes + 3 * bitmap_bytes));  // released, rescan, untouched
  if (a == nullptr) {
    os::Unreserve(mem, bytes);
    return nullptr;
  }
  a->released = reinterpret_cast<uint64_t *>(reinterpret_cast<char *>(a) + table_bytes);
  a->rescan = reinterpret_cast<uint64_t *>(reinterpret_cast<char *>(a) + table_bytes + bitmap_bytes);
  a->untouched = reinterpret_cast<uint64_t *>(reinterpret_cast<char *>(a) + table_bytes + 2 * bitmap_bytes);
  a->base = base;
  a->npages = npages;
  for (uintptr_t chunk = base; chunk < base + bytes; chunk += kArenaSize) {
    __atomic_store_n(&top_[chunk >> kArenaShift], a, __ATOMIC_RELEASE);
  }
  // Publish the bounds after the table entries (SpanOf checks bounds first). Atomic: pgc_free and pgc_weak_get
  // read them without the heap lock.
  uintptr_t lo = base >> kPageShift, hi = (base + bytes) >> kPageShift;
  if (arenas_ == nullptr || lo < lo_page_) __atomic_store_n(&lo_page_, lo, __ATOMIC_RELEASE);
  if (arenas_ == nullptr || hi > hi_page_) __atomic_store_n(&hi_page_, hi, __ATOMIC_RELEASE);
  a->tracked = concurrent::OnNewArena(base, base + bytes);  // before any span of it exists
  a->next = arenas_;
  arenas_ = a;
  reserved_bytes_ += bytes;
  return a;
}

Span *Heap::TakeFresh(size_t npages) {
  // Fresh pages become retained: charged to the hard cap first (base/hardcap.h), uncharged if this fails.
  if (!hardcap::TryCharge(npages * kPageSize)) return nullptr;
  Span *s = TakeFreshCharged(npages);
  if (s == nullptr) hardcap::Uncharge(npages * kPageSize);
  return s;
}

Span *Heap::TakeFreshCharged(size_t npages) {
  Arena *a = arenas_;
  for (; a != nullptr; a = a->next) {
    if (a->npages - a->fresh_page >= npages) break;
  }
  if (a == nullptr) {
    a = NewArena(npages);
    if (a == nullptr) return nullptr;
  }
  size_t first = a->fresh_page;
  size_t end = first + npages;
  if (end > a->committed_pages) {
    size_t step_pages = kCommitStep / kPageSize;
    size_t target = (end + step_pages - 1) / step_pages * step_pages;
    if (target > a->npages) target = a->npages;
    if (!os::Commit(reinterpret_cast<void *>(a->base + a->committed_pages * kPageSize),
                    (target - a->committed_pages) * kPageSize)) {
      return nullptr;
    }
    a->committed_pages = target;
  }
  Span *s = NewSpanStruct(0);
  if (s == nullptr) return nullptr;
  a->fresh_page = end;
  s->start = a->base + first * kPageSize;
  s->npages = static_cast<uint32_t>(npages);
  s->state = SpanState::kFree;
  s->needzero = false;  // fresh anonymous memory reads as zero
  mapped_pages_ += npages;
  return s;
}

void Heap::SetPageMap(Span *s, uintptr_t from, size_t npages, Span *value) {
  (void)s;
  Arena *a = top_[from >> kArenaShift];
  size_t first = (from - a->base) >> kPageShift;
  for (size_t i = 0; i < npages; ++i) a->page_spans[first + i] = value;
}

void Heap::InsertFree(Span *s) {
  s->state = SpanState::kFree;
  s->prev = nullptr;
  Span **head = s->npages < kFreeListPages ? &free_lists_[s->npages] : &free_large_;
  s->next = *head;
  if (*head != nullptr) (*head)->prev = s;
  *head = s;
  Arena *a = top_[s->start >> kArenaShift];
  size_t first = (s->start - a->base) >> kPageShift;
  a->page_spans[first] = s;
  a->page_spans[first + s->npages - 1] = s;
}

void Heap::RemoveFree(Span *s) {
  Span **head = s->npages < kFreeListPages ? &free_lists_[s->npages] : &free_large_;
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    *head = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
}

size_t Heap::CountReleased(const Arena *a, size_t first, size_t npages) {
  size_t count = 0;
  for (size_t i = first; i < first + npages; ++i) count += (a->released[i >> 6] >> (i & 63)) & 1;
  return count;
}

Span *Heap::FindFree(size_t npages) {
  // First choice: a fully resident run, smallest fitting size first (best fit). A few entries of each exact-size
  // list are looked at (the lists are unordered); then the large runs.
  constexpr int kLookPerList = 8;
  Span *partly_released = nullptr;  // the first fitting run seen that has released pages
  for (size_t n = npages; n < kFreeListPages; ++n) {
    int looked = 0;
    for (Span *s = free_lists_[n]; s != nullptr && looked < kLookPerList; s = s->next, ++looked) {
      if (s->released == 0) return s;
      if (partly_released == nullptr || s->released < partly_released->released) partly_released = s;
    }
  }
  // Large runs: fewest released pages, then best fit, then lowest address.
  Span *best = nullptr;
  for (Span *s = free_large_; s != nullptr; s = s->next) {
    if (s->npages < npages) continue;
    if (best == nullptr || s->released < best->released ||
        (s->released == best->released &&
         (s->npages < best->npages || (s->npages == best->npages && s->start < best->start)))) {
      best = s;
    }
  }
  if (best != nullptr && (best->released == 0 || partly_released == nullptr ||
                          best->released <= partly_released->released)) {
    return best;
  }
  return partly_released;
}

Span *Heap::AllocPages(size_t npages) {
  Span *s = FindFree(npages);
  // Kept spans (other classes') before new memory: before growing the heap, and before taking back pages the
  // scavenger released (which would raise RSS, and may be refused at the hard cap, while kept pages sit resident).
  // As few as the request needs first; all of them if their pages do not make a run that fits.
  if ((s == nullptr || s->released != 0) && kept_bytes() != 0) {
    FreeKept(npages);
    s = FindFree(npages);
    if ((s == nullptr || s->released != 0) && kept_bytes() != 0) {
      FreeKept(UINT64_MAX);
      s = FindFree(npages);
    }
  }
  if (s == nullptr) return TakeFresh(npages);
  RemoveFree(s);
  Arena *a = top_[s->start >> kArenaShift];
  size_t first = (s->start - a->base) >> kPageShift;
  a->page_spans[first] = nullptr;
  a->page_spans[first + s->npages - 1] = nullptr;
  if (s->npages > npages) {
    Span *rest = NewSpanStruct(0);
    if (rest == nullptr) {  // metadata exhausted: put the run back whole
      InsertFree(s);
      return nullptr;
    }
    rest->start = s->start + npages * kPageSize;
    rest->npages = static_cast<uint32_t>(s->npages - npages);
    rest->needzero = s->needzero;
    rest->maybe_protected = s->maybe_protected;
    // Count the released pages of the part taken (npages, usually small), not of the rest: splitting one page off
    // a large, mostly released run at every span allocation (a limit below the live heap keeps the scavenger
    // releasing everything free) would otherwise scan the whole run each time.
    const uint32_t taken_released = s->released == 0 ? 0 : static_cast<uint32_t>(CountReleased(a, first, npages));
    rest->released = s->released - taken_released;
    s->released = taken_released;
    InsertFree(rest);
    s->npages = static_cast<uint32_t>(npages);
  }
  return s;
}

Span *Heap::InitInUse(Span *run, SpanState state, uint32_t size_class, bool noscan, uint32_t elem_size,
                      uint32_t nelems) {
  size_t words = (nelems + 63) / 64;
  // Released pages taken back become retained again (Reacquire): charged to the hard cap first.
  const uint64_t reacquired = uint64_t{run->released} * kPageSize;
  if (reacquired != 0 && !hardcap::TryCharge(reacquired)) {
    InsertFree(run);
    return nullptr;
  }
  Span *s = NewSpanStruct(words);
  if (s == nullptr) {
    InsertFree(run);  // give the pages back to the page heap; they stay mapped
    hardcap::Uncharge(reacquired);
    return nullptr;
  }
  s->start = run->start;
  s->npages = run->npages;
  s->needzero = run->needzero;
  // Free pages are writable unless the run says otherwise; then the first allocator to fill the span lifts it.
  s->SetWritableGen(run->maybe_protected ? 0 : concurrent::g_protect_gen.load(std::memory_order_relaxed));
  Reacquire(run);
  meta::Free(run);
  s->state = state;
  s->size_class = static_cast<uint8_t>(size_class);
  s->noscan = noscan;
  s->elem_size = elem_size;
  s->nelems = nelems;
  s->div_magic = size_class != 0 ? kSizeClasses[size_class].div_magic : 0;
  // Until the next cycle's untouched::Refresh has seen one of its pages populated, a scanned span is presumed to
  // hold only zeros (noscan spans are never read, so they need no answer).
  s->untouched = !noscan;
  if (s->untouched) {
    ++untouched_spans_;
    const StartBit b = StartPageBit(&Arena::untouched, s);
    *b.word |= b.mask;
  }
  // While a concurrent cycle tracks writes, a new span is not protected (its pages were free): flagged, so the final
  // pause re-scans it (gc/concurrent.h). Otherwise 0: a span structure may be reused.
  FlagWp(s, concurrent::g_tracking_epoch.load(std::memory_order_relaxed));
  s->swept_gen = sweep_gen_;  // nothing to sweep in a new span
  SetPageMap(s, s->start, s->npages, s);
  s->all_prev = nullptr;
  s->all_next = all_head_;
  if (all_head_ != nullptr) all_head_->all_prev = s;
  all_head_ = s;
  ++num_in_use_spans_;
  in_use_pages_ += s->npages;
  return s;
}

Span *Heap::AllocSmallSpan(uint32_t size_class, bool noscan) {
  const SizeClassInfo &c = kSizeClasses[size_class];
  Span *run = AllocPages(c.span_pages);
  if (run == nullptr) return nullptr;
  return InitInUse(run, SpanState::kSmall, size_class, noscan, c.size, c.objects);
}

Span *Heap::AllocLargeSpan(size_t bytes, bool noscan) {
  if (bytes > (size_t{1} << 40)) return nullptr;  // 1 TiB: no OS will give it; avoids overflow below
  size_t npages = (bytes + kPageSize - 1) >> kPageShift;
  if (npages * kPageSize > UINT32_MAX) {
    // elem_size is 32-bit: objects of 4 GiB and more are not supported.
    return nullptr;
  }
  Span *run = AllocPages(npages);
  if (run == nullptr) return nullptr;
  return InitInUse(run, SpanState::kLarge, 0, noscan, static_cast<uint32_t>(npages * kPageSize), 1);
}

void Heap::FreeSpan(Span *s) {
  PACEGC_DCHECK(s->state != SpanState::kFree && !s->IsCached());
  RemovePartial(s);
  if (s->all_prev != nullptr) {
    s->all_prev->all_next = s->all_next;
  } else {
    all_head_ = s->all_next;
  }
  if (s->all_next != nullptr) s->all_next->all_prev = s->all_prev;
  --num_in_use_spans_;
  in_use_pages_ -= s->npages;
  MarkTouched(s);  // leaves the count of untouched spans

  Arena *a = top_[s->start >> kArenaShift];
  size_t first = (s->start - a->base) >> kPageShift;
  size_t npages = s->npages;
  SetPageMap(s, s->start, npages, nullptr);

  // Coalesce with the free neighbours (never across arenas: page tables are per arena).
  size_t run_first = first;
  size_t run_pages = npages;
  uint32_t run_released = 0;  // an in-use span has no released page; its free neighbours may
  bool needzero = true;
  bool maybe_protected = concurrent::MayBeProtected(s);
  if (first > 0) {
    Span *prev = a->page_spans[first - 1];
    if (prev != nullptr && prev->state == SpanState::kFree) {
      RemoveFree(prev);
      a->page_spans[first - 1] = nullptr;
      a->page_spans[(prev->start - a->base) >> kPageShift] = nullptr;
      run_first = (prev->start - a->base) >> kPageShift;
      run_pages += prev->npages;
      run_released += prev->released;
      maybe_protected |= prev->maybe_protected;
      meta::Free(prev);
    }
  }
  if (first + npages < a->fresh_page) {
    Span *next = a->page_spans[first + npages];
    if (next != nullptr && next->state == SpanState::kFree) {
      RemoveFree(next);
      a->page_spans[first + npages] = nullptr;
      a->page_spans[first + npages + next->npages - 1] = nullptr;
      run_pages += next->npages;
      run_released += next->released;
      maybe_protected |= next->maybe_protected;
      meta::Free(next);
    }
  }
  // The run needs a record of its own (the freed span's is larger: it has bitmaps). Out of metadata, the freed span's
  // record is reused instead (its bitmap words are wasted until the run is next used): this runs inside sweeping,
  // where a failure could be reported to no one, and losing the record would lose the pages.
  Span *run = NewSpanStruct(0);
  if (run != nullptr) {
    meta::Free(s);
  } else {
    memset(static_cast<void *>(s), 0, sizeof(Span));
    run = s;
  }
  run->start = a->base + run_first * kPageSize;
  run->npages = static_cast<uint32_t>(run_pages);
  run->released = run_released;
  run->needzero = needzero;
  run->maybe_protected = maybe_protected;
  InsertFree(run);
}

void Heap::Reacquire(const Span *run) {
  if (released_pages_ == 0) return;
  Arena *a = top_[run->start >> kArenaShift];
  size_t first = (run->start - a->base) >> kPageShift;
  for (size_t i = first; i < first + run->npages; ++i) {
    uint64_t bit = uint64_t{1} << (i & 63);
    if (a->released[i >> 6] & bit) {
      a->released[i >> 6] &= ~bit;
      --released_pages_;
    }
  }
}

uint64_t Heap::ReleaseRun(Arena *a, size_t first, size_t npages, uint64_t max_pages) {
  // From the high end down, madvise'ing maximal runs of resident pages.
  uint64_t done = 0;
  size_t i = first + npages;
  while (i > first && done < max_pages) {
    --i;
    // A whole word of released pages is skipped at once (the scavenger calls this in 64 KiB quanta, and a run's
    // released pages are mostly contiguous at its high end).
    if ((i & 63) == 63 && i - 63 >= first && a->released[i >> 6] == ~uint64_t{0}) {
      i -= 63;
      continue;
    }
    if (a->released[i >> 6] & (uint64_t{1} << (i & 63))) continue;
    size_t hi = i + 1;  // [lo, hi) resident
    size_t lo = i;
    while (lo > first && done + (hi - lo) < max_pages && !(a->released[(lo - 1) >> 6] & (uint64_t{1} << ((lo - 1) & 63)))) --lo;
    if (!os::Release(reinterpret_cast<void *>(a->base + lo * kPageSize), (hi - lo) * kPageSize)) {
      // The pages stay resident and counted as such; the scavenger tries again later. Said once per process.
      static std::atomic<bool> said{false};
      if (!said.exchange(true)) {
        Message("madvise(MADV_DONTNEED) of %zu KiB of free heap pages failed (%s); they stay resident and counted",
                (hi - lo) * kPageSize >> 10, strerror(errno));
      }
      break;
    }
    for (size_t j = lo; j < hi; ++j) a->released[j >> 6] |= uint64_t{1} << (j & 63);
    done += hi - lo;
    i = lo;
  }
  released_pages_ += done;
  hardcap::Uncharge(done * kPageSize);
  return done;
}

uint64_t Heap::Release(uint64_t max_bytes) {
  uint64_t want = max_bytes / kPageSize + (max_bytes % kPageSize != 0 ? 1 : 0);  // no overflow at UINT64_MAX
  uint64_t done = 0;
  auto release_span = [&](Span *s) {
    if (s->released == s->npages) return;  // nothing resident: skip without looking at its bits
    Arena *a = top_[s->start >> kArenaShift];
    uint64_t n = ReleaseRun(a, (s->start - a->base) >> kPageShift, s->npages, want - done);
    s->released += static_cast<uint32_t>(n);
    done += n;
  };
  // Free runs first; kept spans (reusable by their class) only when those do not cover the request.
  for (bool freed_kept = false;; freed_kept = true) {
    for (Span *s = free_large_; s != nullptr && done < want; s = s->next) release_span(s);
    for (size_t n = kFreeListPages - 1; n > 0 && done < want; --n) {
      for (Span *s = free_lists_[n]; s != nullptr && done < want; s = s->next) release_span(s);
    }
    if (done >= want || freed_kept || FreeKept(want - done) == 0) break;
  }
  return done * kPageSize;
}

void Heap::Link(PartialList &list, Span *s) {
  PACEGC_DCHECK(s->state == SpanState::kSmall && !s->IsCached() && !s->in_partial);
  s->prev = nullptr;
  s->next = list.head;
  if (s->next != nullptr) s->next->prev = s;
  __atomic_store_n(&list.head, s, __ATOMIC_RELAXED);  // also read without the lock, as a hint
  __atomic_store_n(&s->in_partial, true, __ATOMIC_RELEASE);  // also read without the lock (ListIfUnowned)
}

void Heap::Unlink(PartialList &list, Span *s) {
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else if (list.held == s) {
    list.held = s->next;
  } else {
    __atomic_store_n(&list.head, s->next, __ATOMIC_RELAXED);
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
  __atomic_store_n(&s->in_partial, false, __ATOMIC_RELAXED);
  if (s->kept) {
    s->kept = false;
    list.kept_pages.store(list.kept_pages.load(std::memory_order_relaxed) - s->npages, std::memory_order_relaxed);
  }
}

Span *Heap::TakePartial(uint32_t span_class) {
  Span *extra = nullptr;
  return TakePartial(span_class, 0, &extra);
}

Span *Heap::TakePartial(uint32_t span_class, uint32_t max_extra, Span **extra) {
  *extra = nullptr;
  PartialList &list = partial_[span_class];
  if (__atomic_load_n(&list.head, __ATOMIC_RELAXED) == nullptr) return nullptr;  // racy hint: nothing to take
  Span *first = nullptr;
  Span **tail = extra;
  list.lock.Lock();
  for (uint32_t n = 0; n <= max_extra && list.head != nullptr; ++n) {
    Span *s = list.head;
    PACEGC_DCHECK(s->state == SpanState::kSmall && !s->IsCached() && s->Allocated() < s->nelems);
    Unlink(list, s);
    __atomic_store_n(&s->cached, true, __ATOMIC_SEQ_CST);
    s->next_word = 0;
    if (first == nullptr) {
      first = s;
    } else {
      *tail = s;
      tail = &s->next;
    }
  }
  list.lock.Unlock();
  return first;
}

void Heap::ReleaseCached(Span *s) {
  PACEGC_DCHECK(s->IsCached() && !s->in_partial);
  // The store and pgc_free's decrement of `allocated` are sequentially consistent: either pgc_free sees the span
  // unowned and lists it itself (ListIfUnowned), or the load below sees its decrement. A full span, the usual case
  // (its owner claimed every word), needs no list and so no lock: with threads allocating one class, this lock
  // round trip per span was the second most contended line after the list's own (TakePartial).
  __atomic_store_n(&s->cached, false, __ATOMIC_SEQ_CST);
  if (s->Allocated() == s->nelems) return;
  ListIfUnowned(s);  // under the class lock, with the same test as pgc_free's: listed once, whoever gets there first
}

void Heap::ListIfUnowned(Span *s) {
  // Listed already: nothing to do, and no lock. Without this check every pgc_free into an unowned span took the
  // class lock, and two threads freeing each other's objects spent 40% of their time on it. Sound: `in_partial`
  // goes from true to false only when a cache takes the span (TakePartial; FreeKept and FreeSpan only unlink spans
  // that hold no object, or with the world stopped; the sweep's ForgetDetached only while no lock-free pgc_free
  // runs, gc/sweep.h), and a cache giving the span up lists it again if the
  // caller's seq_cst decrement of `allocated` left room (ReleaseCached); if the caller saw it unowned, that seq_cst
  // load of `cached` also makes the unlink visible here, so a stale "listed" cannot be read.
  if (__atomic_load_n(&s->in_partial, __ATOMIC_ACQUIRE)) return;
  PartialList &list = partial_[SpanClass(s->size_class, s->noscan)];
  list.lock.Lock();
  // Between the free and this lock, a cache may have taken the span (it was listed for an earlier free), claimed
  // the freed slot and given the span up full again: list it only if it still has room.
  if (!s->IsCached() && !s->in_partial && s->Allocated() < s->nelems) Link(list, s);
  list.lock.Unlock();
}

void Heap::PushPartial(Span *s) {
  PACEGC_DCHECK(!s->IsCached() && s->state == SpanState::kSmall);
  PartialList &list = partial_[SpanClass(s->size_class, s->noscan)];
  list.lock.Lock();
  if (!s->in_partial) Link(list, s);
  list.lock.Unlock();
}

void Heap::RemovePartial(Span *s) {
  if (s->state != SpanState::kSmall) return;
  PartialList &list = partial_[SpanClass(s->size_class, s->noscan)];
  list.lock.Lock();
  if (s->in_partial) Unlink(list, s);
  list.lock.Unlock();
}

void Heap::Keep(Span *s) {
  PACEGC_DCHECK(s->state == SpanState::kSmall && !s->IsCached() && s->Allocated() == 0);
  PartialList &list = partial_[SpanClass(s->size_class, s->noscan)];
  list.lock.Lock();
  if (!s->in_partial) Link(list, s);
  if (!s->kept) {
    s->kept = true;
    list.kept_pages.store(list.kept_pages.load(std::memory_order_relaxed) + s->npages, std::memory_order_relaxed);
  }
  list.lock.Unlock();
}

void Heap::DetachPartialLists() {
  for (PartialList &list : partial_) {
    __atomic_store_n(&list.head, static_cast<Span *>(nullptr), __ATOMIC_RELAXED);
    list.held = nullptr;
    list.kept_pages.store(0, std::memory_order_relaxed);
  }
}

void Heap::ForgetDetached(Span *s) {
  // Not on any list since DetachPartialLists (its old neighbours' links are stale too, and forgotten in turn).
  s->next = s->prev = nullptr;
  __atomic_store_n(&s->in_partial, false, __ATOMIC_RELAXED);
  s->kept = false;
}

uint64_t Heap::FreeKept(uint64_t max_pages) {
  uint64_t pages = 0;
  for (PartialList &list : partial_) {
    if (pages >= max_pages) break;
    if (list.kept_pages.load(std::memory_order_relaxed) == 0) continue;
    // Off the list under its lock, into a chain of our own; freed after (FreeSpan takes the class lock itself). A
    // kept span is empty and unowned: no cache can take it once it is off the list, and no pgc_free can name it.
    Span *chain = nullptr;
    list.lock.Lock();
    uint64_t taken = pages;
    for (Span *s = list.head; s != nullptr && taken < max_pages;) {
      Span *next = s->next;
      if (s->kept) {
        taken += s->npages;
        Unlink(list, s);
        s->next = chain;
        chain = s;
      }
      s = next;
    }
    list.lock.Unlock();
    while (chain != nullptr) {
      Span *s = chain;
      chain = s->next;
      s->next = nullptr;
      PACEGC_DCHECK(s->Allocated() == 0 && !s->IsCached());
      pages += s->npages;
      FreeSpan(s);
    }
  }
  return pages;
}

void Heap::ClearRescanBits() {
  for (Arena *a = arenas_; a != nullptr; a = a->next) {
    const size_t words = (a->fresh_page + 63) / 64;  // (no span starts past fresh_page)
    for (size_t w = 0; w < words; ++w) __atomic_store_n(&a->rescan[w], 0, __ATOMIC_RELAXED);
  }
}

uint64_t Heap::kept_bytes() const {
  uint64_t pages = 0;
  for (const PartialList &list : partial_) pages += list.kept_pages.load(std::memory_order_relaxed);
  return pages * kPageSize;
}

void Heap::HoldDenseSpans(uint32_t epoch, bool flag_sparse) {
  for (PartialList &list : partial_) {
    if (__atomic_load_n(&list.head, __ATOMIC_RELAXED) == nullptr) continue;
    list.lock.Lock();
    Span *next = nullptr;
    for (Span *s = list.head; s != nullptr; s = next) {
      next = s->next;
      if (s->Allocated() * 4 <= s->nelems) {
        if (flag_sparse) FlagWp(s, epoch);
        continue;
      }
      // Off the list proper onto `held`, still listed.
      if (s->prev != nullptr) {
        s->prev->next = next;
      } else {
        __atomic_store_n(&list.head, next, __ATOMIC_RELAXED);
      }
      if (next != nullptr) next->prev = s->prev;
      s->prev = nullptr;
      s->next = list.held;
      if (list.held != nullptr) list.held->prev = s;
      list.held = s;
    }
    list.lock.Unlock();
  }
}

void Heap::ReleaseHeld() {
  for (PartialList &list : partial_) {
    if (list.held == nullptr) continue;  // (written only by the heap lock's holder, under the class lock)
    list.lock.Lock();
    Span *tail = list.held;
    while (tail->next != nullptr) tail = tail->next;
    tail->next = list.head;
    if (list.head != nullptr) list.head->prev = tail;
    __atomic_store_n(&list.head, list.held, __ATOMIC_RELAXED);
    list.held = nullptr;
    list.lock.Unlock();
  }
}

void Heap::LockPartialLists() {
  for (PartialList &list : partial_) list.lock.Lock();
}

void Heap::UnlockPartialLists() {
  for (PartialList &list : partial_) list.lock.Unlock();
}

bool Heap::Verify() const {
  uint64_t in_use = 0;
  size_t count = 0, untouched = 0;
  uint64_t kept[kNumSpanClasses] = {};
  for (Span *s = all_head_; s != nullptr; s = s->all_next) {
    if (s->state == SpanState::kFree || !s->IsValid()) return false;
    if (s->untouched && s->noscan) return false;  // only scanned spans are ever presumed zero
    if (s->kept) {  // empty, listed, unowned, small
      if (s->state != SpanState::kSmall || !s->in_partial || s->cached || s->allocated != 0) return false;
      kept[SpanClass(s->size_class, s->noscan)] += s->npages;
    }
    untouched += s->untouched ? 1 : 0;
    const StartBit b = StartPageBit(&Arena::untouched, s);
    if (((*b.word & b.mask) != 0) != s->untouched) return false;
    const Arena *a = top_[s->start >> kArenaShift];
    for (size_t i = (s->start - a->base) >> kPageShift, e = i + s->npages; i < e; ++i) {
      if (a->released[i >> 6] & (uint64_t{1} << (i & 63))) return false;  // in-use pages are never released
    }
    for (uintptr_t p = s->start; p < s->end(); p += kPageSize) {
      if (SpanOf(p) != s) return false;
    }
    in_use += s->npages;
    ++count;
  }
  if (in_use != in_use_pages_ || count != num_in_use_spans_ || untouched != untouched_spans_) return false;
  size_t untouched_bits = 0;  // exactly one per untouched span (the check above: at its start)
  for (const Arena *a = arenas_; a != nullptr; a = a->next) {
    for (size_t w = 0; w < (a->npages + 63) / 64; ++w) untouched_bits += static_cast<size_t>(__builtin_popcountll(a->untouched[w]));
  }
  if (untouched_bits != untouched_spans_) return false;
  for (uint32_t c = 0; c < kNumSpanClasses; ++c) {
    if (kept[c] != partial_[c].kept_pages.load(std::memory_order_relaxed)) return false;
  }
  uint64_t free_pages = 0;
  auto check_free = [&](const Span *s) {
    if (s->state != SpanState::kFree || SpanOf(s->start) != s || SpanOf(s->end() - kPageSize) != s) return false;
    const Arena *a = top_[s->start >> kArenaShift];
    if (s->released != CountReleased(a, (s->start - a->base) >> kPageShift, s->npages)) return false;
    free_pages += s->npages;
    return true;
  };
  for (size_t n = 0; n < kFreeListPages; ++n) {
    for (Span *s = free_lists_[n]; s != nullptr; s = s->next) {
      if (s->npages != n || !check_free(s)) return false;
    }
  }
  for (Span *s = free_large_; s != nullptr; s = s->next) {
    if (s->npages < kFreeListPages || !check_free(s)) return false;
  }
  uint64_t released = 0;
  for (const Arena *a = arenas_; a != nullptr; a = a->next) {
    for (size_t w = 0; w < (a->npages + 63) / 64; ++w) released += static_cast<uint64_t>(__builtin_popcountll(a->released[w]));
  }
  return in_use + free_pages == mapped_pages_ && released == released_pages_;
}

}  // namespace pacegc::internal
