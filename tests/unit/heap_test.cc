// Unit tests for gc/heap: the page map (address → span, interior pointers), span bitmaps, the page heap's
// splitting and coalescing, and its accounting. Each test uses its own Heap instance, not the global heap.
#include <catch2/catch.hpp>

#include <vector>

#include "base/meta.h"
#include "gc/heap.h"

using namespace pacegc::internal;

namespace {
Heap *NewHeap() {
  meta::Init();
  auto *h = new Heap();
  REQUIRE(h->Init());
  return h;
}
}  // namespace

TEST_CASE("page map resolves every address of a small span, including interior pointers", "[heap][pagemap]") {
  Heap *h = NewHeap();
  uint32_t cls = SizeToClass(48);
  Span *s = h->AllocSmallSpan(cls, false);
  REQUIRE(s != nullptr);
  CHECK(s->state == SpanState::kSmall);
  CHECK(s->elem_size == 48);
  CHECK(s->nelems == kSizeClasses[cls].objects);
  for (uintptr_t a = s->start; a < s->end(); a += 8) {
    REQUIRE(h->SpanOf(a) == s);
    uint32_t idx = s->ObjectIndexOf(a);
    REQUIRE(idx == (a - s->start) / 48);
  }
  CHECK(h->SpanOf(s->start - 1) == nullptr);  // before the first span of the arena
  CHECK(h->SpanOf(s->end()) == nullptr);      // pages never handed out
  CHECK(h->SpanOf(0) == nullptr);
  CHECK(h->SpanOf(reinterpret_cast<uintptr_t>(&cls)) == nullptr);  // the stack is not heap
  CHECK(h->Verify());
}

TEST_CASE("page map resolves interior pointers of a large object to object 0", "[heap][pagemap]") {
  Heap *h = NewHeap();
  Span *s = h->AllocLargeSpan(1 << 20, false);
  REQUIRE(s != nullptr);
  CHECK(s->state == SpanState::kLarge);
  CHECK(s->npages == (1 << 20) / kPageSize);
  for (uintptr_t a = s->start; a < s->end(); a += 4096) {
    REQUIRE(h->SpanOf(a) == s);
    REQUIRE(s->ObjectIndexOf(a) == 0);
  }
  REQUIRE(h->SpanOf(s->end() - 1) == s);
}

TEST_CASE("span bitmaps: mark bits, valid masks", "[heap][bitmap]") {
  Heap *h = NewHeap();
  Span *s = h->AllocSmallSpan(SizeToClass(48), false);  // 170 objects: 3 words, the last partial
  REQUIRE(s->nwords == (s->nelems + 63) / 64);
  CHECK(s->ValidMask(0) == ~uint64_t{0});
  uint32_t last = s->nwords - 1;
  CHECK(s->ValidMask(last) == ((s->nelems % 64) == 0 ? ~uint64_t{0} : (uint64_t{1} << (s->nelems % 64)) - 1));
  for (uint32_t i = 0; i < s->nelems; ++i) CHECK_FALSE(s->IsMarked(i));
  CHECK(s->TryMark(5));
  CHECK_FALSE(s->TryMark(5));  // second mark reports "already marked"
  CHECK(s->IsMarked(5));
  CHECK_FALSE(s->IsMarked(4));
  CHECK(s->TryMark(s->nelems - 1));
  s->ClearMark(5);
  CHECK_FALSE(s->IsMarked(5));
  CHECK(s->IsMarked(s->nelems - 1));
  s->alloc_bits[0] = 0b1011;
  s->allocated = 3;
  CHECK(s->IsAllocated(0));
  CHECK_FALSE(s->IsAllocated(2));
  CHECK(s->IsValid());
  s->allocated = 2;
  CHECK_FALSE(s->IsValid());  // the expensive check notices a wrong count
}

TEST_CASE("freed spans coalesce with free neighbours and are reused", "[heap][pageheap]") {
  Heap *h = NewHeap();
  Span *a = h->AllocLargeSpan(4 * kPageSize, false);
  Span *b = h->AllocLargeSpan(4 * kPageSize, false);
  Span *c = h->AllocLargeSpan(4 * kPageSize, false);
  Span *guard = h->AllocLargeSpan(kPageSize, false);
  REQUIRE((a && b && c && guard));
  uintptr_t a_start = a->start;
  REQUIRE(b->start == a->end());
  REQUIRE(c->start == b->end());
  uint64_t mapped = h->mapped_bytes();
  CHECK(h->in_use_bytes() == 13 * kPageSize);
  h->FreeSpan(a);
  h->FreeSpan(c);
  CHECK(h->Verify());
  CHECK(h->SpanOf(a_start)->state == SpanState::kFree);
  h->FreeSpan(b);  // joins a and c into one free run of 12 pages
  CHECK(h->Verify());
  Span *run = h->SpanOf(a_start);
  REQUIRE(run != nullptr);
  CHECK(run->state == SpanState::kFree);
  CHECK(run->npages == 12);
  CHECK(h->SpanOf(a_start + 6 * kPageSize) == nullptr);  // interior pages of a free run map to nothing
  CHECK(h->free_bytes() == 12 * kPageSize);
  // A 12-page request reuses the run instead of growing the heap.
  Span *d = h->AllocLargeSpan(12 * kPageSize, false);
  REQUIRE(d != nullptr);
  CHECK(d->start == a_start);
  CHECK(d->needzero);  // reused memory must be zeroed before it is handed out as scanned memory
  CHECK(h->mapped_bytes() == mapped);
  CHECK(h->Verify());
}

TEST_CASE("a split free run leaves the rest free and mapped", "[heap][pageheap]") {
  Heap *h = NewHeap();
  Span *big = h->AllocLargeSpan(200 * kPageSize, false);
  Span *guard = h->AllocLargeSpan(kPageSize, false);
  REQUIRE((big && guard));
  uintptr_t start = big->start;
  h->FreeSpan(big);
  Span *small = h->AllocSmallSpan(SizeToClass(16), false);
  REQUIRE(small != nullptr);
  CHECK(small->start == start);  // best fit takes the front of the only free run
  Span *rest = h->SpanOf(small->end());
  REQUIRE(rest != nullptr);
  CHECK(rest->state == SpanState::kFree);
  CHECK(rest->npages == 200 - small->npages);
  CHECK(h->Verify());
}

TEST_CASE("objects larger than an arena get an arena of their own", "[heap][pageheap]") {
  Heap *h = NewHeap();
  Span *s = h->AllocLargeSpan(kArenaSize + kPageSize, true);
  REQUIRE(s != nullptr);
  CHECK(s->noscan);
  CHECK(h->SpanOf(s->start + kArenaSize) == s);  // the second 64 MiB of the same arena resolves too
  CHECK(h->reserved_bytes() >= 2 * kArenaSize);
  h->FreeSpan(s);
  CHECK(h->Verify());
}

TEST_CASE("absurd large requests fail cleanly", "[heap][pageheap]") {
  Heap *h = NewHeap();
  CHECK(h->AllocLargeSpan(size_t{1} << 50, false) == nullptr);
  CHECK(h->AllocLargeSpan(SIZE_MAX, false) == nullptr);
  CHECK(h->Verify());
}

TEST_CASE("released pages are counted, kept out of use while resident free pages fit, and counted again on reuse",
          "[heap][release]") {
  Heap *h = NewHeap();
  // Two free runs separated by an in-use span, so they cannot coalesce: a (64 pages) and b (64 pages).
  Span *a = h->AllocLargeSpan(64 * kPageSize, true);
  Span *sep = h->AllocLargeSpan(kPageSize, true);
  Span *b = h->AllocLargeSpan(64 * kPageSize, true);
  Span *sep2 = h->AllocLargeSpan(kPageSize, true);
  REQUIRE((a && sep && b && sep2));
  const uintptr_t a_start = a->start, b_start = b->start;
  h->FreeSpan(a);
  h->FreeSpan(b);
  CHECK(h->free_bytes() == 128 * kPageSize);
  CHECK(h->released_bytes() == 0);
  CHECK(h->Verify());

  // Release 80 pages: whole runs are released from their high end, so one run is fully released and the other
  // keeps its low 48 pages resident.
  CHECK(h->Release(80 * kPageSize) == 80 * kPageSize);
  CHECK(h->released_bytes() == 80 * kPageSize);
  CHECK(h->free_resident_bytes() == 48 * kPageSize);
  CHECK(h->retained_bytes() == h->mapped_bytes() - 80 * kPageSize);
  CHECK(h->Verify());
  CHECK(h->Release(1 << 30) == 48 * kPageSize);  // everything left; asking for more is capped at what is free
  CHECK(h->free_resident_bytes() == 0);
  CHECK(h->Release(kPageSize) == 0);
  CHECK(h->Verify());

  // Make one run resident again by reusing it whole; free it; now a fully resident run and a fully released one.
  Span *again = h->AllocLargeSpan(64 * kPageSize, true);
  REQUIRE(again != nullptr);
  CHECK(h->released_bytes() == 64 * kPageSize);  // its 64 pages are counted again
  const uintptr_t resident_start = again->start;
  CHECK((resident_start == a_start || resident_start == b_start));
  h->FreeSpan(again);
  CHECK(h->Verify());

  // Allocations that fit in the resident run come from it, not from the released one.
  for (int i = 0; i < 8; ++i) {
    Span *s = h->AllocLargeSpan(8 * kPageSize, true);
    REQUIRE(s != nullptr);
    CHECK(s->start >= resident_start);
    CHECK(s->start < resident_start + 64 * kPageSize);
  }
  CHECK(h->released_bytes() == 64 * kPageSize);
  // The next one has to use released pages, and they are counted again.
  Span *s = h->AllocLargeSpan(8 * kPageSize, true);
  REQUIRE(s != nullptr);
  CHECK(h->released_bytes() == 56 * kPageSize);
  CHECK(h->Verify());
}

TEST_CASE("kept spans count as free, are taken back by their class, and are freed before the heap grows and by "
          "Release",
          "[heap][kept]") {
  Heap *h = NewHeap();
  const uint32_t cls = SizeToClass(64);
  const uint32_t sc = SpanClass(cls, false);
  Span *s = h->AllocSmallSpan(cls, false);
  Span *guard = h->AllocLargeSpan(kPageSize, false);  // keeps s's pages from coalescing with the fresh region
  REQUIRE((s && guard));
  const uint64_t span_bytes = uint64_t{s->npages} * kPageSize;
  const uint64_t mapped = h->mapped_bytes();
  const uint64_t in_use = h->in_use_bytes();
  const uint64_t free_resident = h->free_resident_bytes();
  const uintptr_t start = s->start;

  // Kept (the sweep's part, world stopped): listed, counted as free memory, still a span of its class.
  h->Keep(s);
  CHECK(s->kept);
  CHECK(s->in_partial);
  CHECK(h->kept_bytes() == span_bytes);
  CHECK(h->in_use_bytes() == in_use - span_bytes);
  CHECK(h->free_resident_bytes() == free_resident + span_bytes);
  CHECK(h->mapped_bytes() == h->in_use_bytes() + h->free_bytes());
  CHECK(h->SpanOf(start) == s);
  CHECK(h->Verify());

  // Its class takes it back from the list: no longer kept, in use again.
  CHECK(h->TakePartial(sc) == s);
  CHECK(!s->kept);
  CHECK(s->cached);
  CHECK(h->kept_bytes() == 0);
  CHECK(h->in_use_bytes() == in_use);
  // Given back empty it is listed but not kept (only the sweep keeps spans); kept again by the next sweep.
  h->ReleaseCached(s);
  CHECK(s->in_partial);
  CHECK(h->kept_bytes() == 0);
  h->Keep(s);
  CHECK(h->kept_bytes() == span_bytes);
  CHECK(h->Verify());

  // Another class needs pages and the page heap has no free run: the kept span's pages are reused, the heap does
  // not grow.
  Span *other = h->AllocSmallSpan(SizeToClass(48), false);
  REQUIRE(other != nullptr);
  CHECK(other->start == start);
  CHECK(h->kept_bytes() == 0);
  CHECK(h->mapped_bytes() == mapped);
  CHECK(h->TakePartial(sc) == nullptr);  // the list no longer holds it
  CHECK(h->Verify());

  // Release reaches kept memory when the free runs do not cover the request (the scavenger, a forced release).
  h->FreeSpan(other);
  Span *again = h->AllocSmallSpan(cls, false);
  REQUIRE(again != nullptr);
  CHECK(again->start == start);
  h->Keep(again);
  CHECK(h->free_resident_bytes() == free_resident + span_bytes);
  CHECK(h->Release(UINT64_MAX) == free_resident + span_bytes);
  CHECK(h->kept_bytes() == 0);
  CHECK(h->free_resident_bytes() == 0);
  CHECK(h->SpanOf(start)->state == SpanState::kFree);
  CHECK(h->Verify());
}

TEST_CASE("TakePartial with extras takes listed spans in one round, all owned, the rest chained", "[heap][partial]") {
  Heap *h = NewHeap();
  const uint32_t cls = SizeToClass(64);
  const uint32_t sc = SpanClass(cls, false);
  std::vector<Span *> spans;
  for (int i = 0; i < 5; ++i) {
    Span *s = h->AllocSmallSpan(cls, false);
    REQUIRE(s != nullptr);
    h->PushPartial(s);
    spans.push_back(s);
  }
  Span *extra = nullptr;
  Span *first = h->TakePartial(sc, 2, &extra);
  REQUIRE(first != nullptr);
  CHECK(first->cached);
  CHECK(!first->in_partial);
  int chained = 0;
  for (Span *s = extra; s != nullptr; s = s->next) {
    CHECK(s->cached);
    CHECK(!s->in_partial);
    CHECK(s != first);
    ++chained;
  }
  CHECK(chained == 2);
  // Two are left on the list; asking for more than are listed takes what there is.
  Span *rest = nullptr;
  Span *second = h->TakePartial(sc, 8, &rest);
  REQUIRE(second != nullptr);
  REQUIRE(rest != nullptr);
  CHECK(rest->next == nullptr);
  CHECK(h->TakePartial(sc, 8, &rest) == nullptr);
  CHECK(rest == nullptr);
  CHECK(h->Verify());
}

TEST_CASE("kept pages are reused before pages the scavenger released", "[heap][kept]") {
  Heap *h = NewHeap();
  const uint32_t cls = SizeToClass(64);
  Span *kept = h->AllocSmallSpan(cls, false);
  Span *sep = h->AllocLargeSpan(kPageSize, false);
  Span *run = h->AllocLargeSpan(kPageSize * kSizeClasses[cls].span_pages, false);
  Span *sep2 = h->AllocLargeSpan(kPageSize, false);
  REQUIRE((kept && sep && run && sep2));
  const uintptr_t kept_start = kept->start;
  h->FreeSpan(run);
  CHECK(h->Release(UINT64_MAX) > 0);  // the free run is released; the kept span is not kept yet
  const uint64_t released = h->released_bytes();
  h->Keep(kept);
  // Another class needs exactly that many pages: the released run fits, but the kept span's resident pages come
  // first, and nothing is taken back from the OS.
  Span *other = h->AllocSmallSpan(SizeToClass(48), false);
  REQUIRE(other != nullptr);
  CHECK(other->start == kept_start);
  CHECK(h->released_bytes() == released);
  CHECK(h->kept_bytes() == 0);
  CHECK(h->Verify());
}
