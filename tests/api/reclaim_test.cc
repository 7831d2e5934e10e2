// tests/api/reclaim_test.cc — unreachable memory is reclaimed: many small objects and single large objects, once
// their only reference is dropped; repeated large allocations reuse memory instead of growing the heap.
// Public API only.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include "common/test_util.h"

using namespace pgc_test;

namespace {

void **volatile g_table = nullptr;
void *volatile g_big = nullptr;

// 1024 blocks of 64 KiB (alternately scanned and atomic) reachable only from g_table.
PGC_TEST_NOINLINE void MakeTable() {
  const size_t n = 1024;
  auto **table = static_cast<void **>(pgc_malloc(n * sizeof(void *)));
  REQUIRE(table != nullptr);
  g_table = table;
  for (size_t i = 0; i < n; ++i) {
    void *p = (i % 2) ? pgc_malloc_atomic(64 * kKiB) : pgc_malloc(64 * kKiB);
    REQUIRE(p != nullptr);
    static_cast<unsigned char *>(p)[0] = 1;
    table[i] = p;
  }
}

PGC_TEST_NOINLINE void MakeBig(bool atomic) {
  void *p = atomic ? pgc_malloc_atomic(64 * kMiB) : pgc_malloc(64 * kMiB);
  REQUIRE(p != nullptr);
  static_cast<unsigned char *>(p)[64 * kMiB - 1] = 1;
  g_big = p;
}

PGC_TEST_NOINLINE uint64_t LiveAfterCollections(int n) {
  CollectN(n);
  return Stats().heap_live_bytes;
}

}  // namespace

TEST_CASE("64 MiB of small objects reachable only from a global is reclaimed once dropped", "[api][reclaim]") {
  const uint64_t base = LiveAfterCollections(2);
  MakeTable();
  const uint64_t with = LiveAfterCollections(1);
  INFO("live: base " << base << ", with the table " << with);
  REQUIRE(with >= base + 60 * kMiB);
  g_table = nullptr;
  const uint64_t after = LiveAfterCollections(2);
  INFO("live after dropping the table " << after);
  CHECK(after + 48 * kMiB < with);  // at least 3/4 reclaimed (conservative retention of a few blocks tolerated)
  pgc_stats s = Stats();
  CHECK(s.heap_alloc_bytes >= s.heap_live_bytes);
}

TEST_CASE("a single 64 MiB object (scanned or atomic) is reclaimed once dropped", "[api][reclaim][large]") {
  for (bool atomic : {false, true}) {
    INFO((atomic ? "atomic" : "scanned"));
    const uint64_t base = LiveAfterCollections(2);
    MakeBig(atomic);
    const uint64_t with = LiveAfterCollections(1);
    REQUIRE(with >= base + 64 * kMiB);
    g_big = nullptr;
    const uint64_t after = LiveAfterCollections(2);
    CHECK(after + 60 * kMiB < with);
  }
}

namespace {

PGC_TEST_NOINLINE void AllocateAndDropBig(size_t i) {
  void *p = (i % 2) ? pgc_malloc_atomic(64 * kMiB) : pgc_malloc(64 * kMiB);
  REQUIRE(p != nullptr);
  static_cast<unsigned char *>(p)[0] = 1;
  static_cast<unsigned char *>(p)[64 * kMiB - 1] = 1;
}

}  // namespace

TEST_CASE("allocating 1 GiB of 64 MiB objects one at a time does not grow the heap to 1 GiB",
          "[api][reclaim][large]") {
  const int old_percent = pgc_set_gc_percent(100);
  const int64_t old_limit = pgc_set_memory_limit(INT64_MAX);
  CollectN(1);
  const pgc_stats before = Stats();
  const uint64_t mapped_before = before.heap_mapped_bytes;
  uint64_t peak_mapped = mapped_before;
  for (size_t i = 0; i < 16; ++i) {
    AllocateAndDropBig(i);
    ScrubStack();
    uint64_t mapped = Stats().heap_mapped_bytes;
    if (mapped > peak_mapped) peak_mapped = mapped;
  }
  const pgc_stats after = Stats();
  const uint64_t postponed = after.limiter_postponed - before.limiter_postponed;
  pgc_set_gc_percent(old_percent);
  pgc_set_memory_limit(old_limit);
  INFO("heap_mapped_bytes before " << mapped_before << ", peak " << peak_mapped << "; collections "
                                   << after.num_gc - before.num_gc << ", postponed by the CPU limiter " << postponed);
  CHECK(CollectionsDue(before, after) >= 1);  // the allocations themselves made collections due (run or held back)
  // Without reuse the heap would grow by 1 GiB; with it, by a few objects' worth. Unless the GC CPU limiter held
  // collections back (Go's 50% cap: the heap may then grow past the goal): the suite's concurrent run under ASan,
  // where each cycle over this heap costs several times a stop-the-world one, met it after the earlier tests.
  if (postponed == 0) {
    CHECK(peak_mapped - mapped_before < 448 * kMiB);
  } else {
    WARN("the GC CPU limiter postponed " << postponed << " collections: the reuse bound is not checked this run");
  }
}
