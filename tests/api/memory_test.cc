// tests/api/memory_test.cc — what the memory limit counts and how memory goes back to the OS: manual allocations
// are counted in manual_bytes and total_bytes; pgc_free_os_memory releases free pages (released_bytes, RSS) and
// released pages that are reused are counted again; a limit lowered at run time moves the goal and triggers
// collections at the next allocation even with GOGC off; the pause histogram counts every pause. Public API only.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/test_util.h"

using namespace pgc_test;

namespace {

// Resident set size of this process from /proc/self/statm, in bytes (0 if unreadable).
uint64_t RssBytes() {
  FILE *f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * 4096 : 0;
}

// Allocates `bytes` of pointer-free large objects, touches every page, and drops them (returns nothing a root
// could hold).
PGC_TEST_NOINLINE void AllocateAndDrop(uint64_t bytes) {
  for (uint64_t done = 0; done < bytes; done += 4 * kMiB) {
    auto *p = static_cast<unsigned char *>(pgc_malloc_atomic(4 * kMiB));
    REQUIRE(p != nullptr);
    std::memset(p, 0x5a, 4 * kMiB);
  }
}

// Restores GOGC and the limit when a test case ends.
struct SettingsGuard {
  int gc_percent = pgc_set_gc_percent(100);
  int64_t limit = pgc_set_memory_limit(-1);
  SettingsGuard() { pgc_set_gc_percent(gc_percent); }
  ~SettingsGuard() {
    pgc_set_gc_percent(gc_percent);
    pgc_set_memory_limit(limit);
  }
};

}  // namespace

TEST_CASE("manual allocations are counted in manual_bytes and total_bytes", "[api][manual]") {
  const pgc_stats before = Stats();
  void *a = pgc_manual_malloc(1000);
  REQUIRE(a != nullptr);
  const size_t a_size = pgc_manual_usable_size(a);
  CHECK(a_size >= 1000);
  CHECK(reinterpret_cast<uintptr_t>(a) % 16 == 0);
  std::memset(a, 1, 1000);

  auto *b = static_cast<unsigned char *>(pgc_manual_calloc(256, 1024));
  REQUIRE(b != nullptr);
  bool zero = true;
  for (size_t i = 0; i < 256 * 1024; ++i) zero = zero && b[i] == 0;
  CHECK(zero);
  const size_t b_size = pgc_manual_usable_size(b);

  const pgc_stats during = Stats();
  CHECK(during.manual_bytes == before.manual_bytes + a_size + b_size);
  CHECK(during.total_bytes == during.heap_mapped_bytes + during.metadata_bytes + during.manual_bytes);

  // realloc keeps the contents and moves the count to the new size.
  auto *c = static_cast<unsigned char *>(pgc_manual_realloc(a, 100000));
  REQUIRE(c != nullptr);
  bool kept = true;
  for (size_t i = 0; i < 1000; ++i) kept = kept && c[i] == 1;
  CHECK(kept);
  CHECK(Stats().manual_bytes == before.manual_bytes + pgc_manual_usable_size(c) + b_size);

  pgc_manual_free(c);
  pgc_manual_free(b);
  pgc_manual_free(nullptr);
  CHECK(Stats().manual_bytes == before.manual_bytes);
  CHECK(pgc_manual_usable_size(nullptr) == 0);
}

TEST_CASE("pgc_manual_calloc refuses a product that overflows", "[api][manual]") {
  errno = 0;
  CHECK(pgc_manual_calloc(SIZE_MAX / 2, 3) == nullptr);
  CHECK(errno == ENOMEM);
}

TEST_CASE("manual memory is not scanned: it does not keep collected objects alive", "[api][manual]") {
  auto **slot = static_cast<void **>(pgc_manual_malloc(sizeof(void *)));
  REQUIRE(slot != nullptr);
  static int finalized = 0;
  finalized = 0;
  [slot]() PGC_TEST_NOINLINE {
    void *obj = pgc_malloc(64);
    REQUIRE(obj != nullptr);
    pgc_register_finalizer(obj, [](void *, void *) { ++finalized; }, nullptr);
    *slot = obj;  // only manual memory points to it now
  }();
  CHECK(CollectUntil([] { return finalized == 1; }));
  pgc_manual_free(slot);
}

#ifndef PACEGC_VERIFY_HEAP
TEST_CASE("pgc_manual_free of a collected object is reported and ignored", "[api][manual][misuse]") {
  if (pgc_test::AbortOnMisuseFromEnv()) {
    WARN("PACEGC_ABORT_ON_MISUSE is on: misuse would abort by design; skipped");
    return;
  }
  auto *p = static_cast<unsigned char *>(pgc_malloc(128));
  REQUIRE(p != nullptr);
  FillPattern(p, 128, 77);
  const uint64_t manual = Stats().manual_bytes;
  pgc_manual_free(p);
  CHECK(pgc_manual_realloc(p, 256) == nullptr);
  CHECK(errno == EINVAL);
  CHECK(pgc_manual_usable_size(p) == 0);
  CHECK(Stats().manual_bytes == manual);
  pgc_collect();
  CHECK(CheckPattern(p, 128, 77));  // still a live collected object, untouched
}
#endif  // PACEGC_VERIFY_HEAP

TEST_CASE("pgc_free_os_memory returns free pages to the OS; reused pages are counted again", "[api][scavenge]") {
  SettingsGuard guard;
  // GOGC off and no limit: no automatic collection reuses the pages while they are allocated, and the background
  // scavenger has no goal (it would release them concurrently).
  pgc_set_gc_percent(-1);
  pgc_set_memory_limit(INT64_MAX);
  pgc_free_os_memory();  // start from a heap with nothing free and resident
  AllocateAndDrop(64 * kMiB);
  pgc_collect();  // the 64 MiB are free pages now, still resident
  const pgc_stats freed = Stats();
  CHECK(freed.heap_free_bytes >= 32 * kMiB);
  const uint64_t rss_before = RssBytes();

  const size_t released = pgc_free_os_memory();
  const pgc_stats after = Stats();
  CHECK(released >= freed.heap_free_bytes);  // the call collects first, so at least what was free before
  CHECK(after.heap_free_bytes == 0);
  CHECK(after.released_bytes == after.heap_released_bytes);
  CHECK(after.heap_released_bytes >= released);
  CHECK(after.heap_mapped_bytes + released <= freed.heap_mapped_bytes);
  CHECK(after.total_bytes + 32 * kMiB <= freed.total_bytes);
  CHECK(after.total_bytes == after.heap_mapped_bytes + after.metadata_bytes + after.manual_bytes);
  CHECK(after.heap_mapped_bytes == after.heap_in_use_bytes + after.heap_free_bytes);
  if (rss_before != 0) CHECK(RssBytes() + 32 * kMiB <= rss_before);  // madvise(DONTNEED): RSS falls at once

  // Allocating again reuses released pages: they leave released_bytes and count towards total_bytes again.
  auto **table = static_cast<void **>(pgc_malloc(16 * sizeof(void *)));
  REQUIRE(table != nullptr);
  for (int i = 0; i < 16; ++i) {
    table[i] = pgc_malloc_atomic(2 * kMiB);
    REQUIRE(table[i] != nullptr);
    std::memset(table[i], 1, 2 * kMiB);
  }
  const pgc_stats reused = Stats();
  CHECK(reused.heap_released_bytes + 16 * kMiB <= after.heap_released_bytes);
  CHECK(reused.total_bytes >= after.total_bytes + 32 * kMiB);
  table[0] = nullptr;
}

TEST_CASE("a memory limit lowered at run time takes effect at the next allocation, even with GOGC off",
          "[api][limit]") {
  SettingsGuard guard;
  pgc_set_gc_percent(-1);
  pgc_collect();
  const pgc_stats base = Stats();
  CHECK(base.heap_goal_bytes == UINT64_MAX);  // GOGC off, no limit: no goal

  // A limit a little above what is in use now: the goal drops to it at once (no collection needed).
  const int64_t limit = static_cast<int64_t>(base.total_bytes + 16 * kMiB);
  pgc_set_memory_limit(limit);
  const pgc_stats limited = Stats();
  CHECK(limited.heap_goal_bytes < static_cast<uint64_t>(limit));
  CHECK(limited.num_gc == base.num_gc);

  // Allocating 64 MiB of garbage under it collects automatically (GOGC is off: only the limit can trigger).
  AllocateAndDrop(64 * kMiB);
  const pgc_stats after = Stats();
  CHECK(after.num_gc > base.num_gc);
  CHECK(after.num_forced_gc == base.num_forced_gc);
  CHECK(after.total_bytes <= static_cast<uint64_t>(limit) + 8 * kMiB);  // 4 MiB objects: one of slack and change
}

TEST_CASE("the pause histogram counts every pause", "[api][stats]") {
  CollectN(3);
  const pgc_stats s = Stats();
  uint64_t counted = 0;
  for (uint64_t c : s.pause_hist) counted += c;
  CHECK(counted == s.num_gc + s.num_concurrent_gc);  // a concurrent cycle pauses twice
  // The last pause is in the bucket whose bounds hold it.
  size_t bucket = 0;
  while (bucket + 1 < PGC_PAUSE_HIST_BUCKETS && (uint64_t{1000} << bucket) < s.pause_last_ns) ++bucket;
  CHECK(s.pause_hist[bucket] >= 1);
}
