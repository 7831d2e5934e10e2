// tests/api/free_test.cc — explicit pgc_free: freed memory is reused; misuse (foreign pointer, interior pointer,
// double free) is reported and ignored without corrupting the heap. Public API only.
//
// Misuse aborts by design in PACEGC_VERIFY_HEAP builds and with PACEGC_ABORT_ON_MISUSE on, so those cases are
// compiled out / skipped there.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/test_util.h"

using namespace pgc_test;

TEST_CASE("pgc_free(NULL) does nothing and freed memory is handed out again without a collection (verify builds: "
          "after one)", "[api][free]") {
  pgc_free(nullptr);
  // No collection may run here, so any address handed out twice was recycled by pgc_free.
  const int old_percent = pgc_set_gc_percent(-1);
  const int64_t old_limit = pgc_set_memory_limit(INT64_MAX);
  const uint64_t gcs_before = Stats().num_gc;
  const size_t n = 20000;
  std::vector<uintptr_t> freed;
  freed.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    void *p = pgc_malloc(128);
    REQUIRE(p != nullptr);
    std::memset(p, 0xAB, 128);
    freed.push_back(reinterpret_cast<uintptr_t>(p));
    pgc_free(p);
  }
  void *q = pgc_malloc(128);
  REQUIRE(q != nullptr);
  const auto *b = static_cast<const unsigned char *>(q);
  CHECK(std::all_of(b, b + 128, [](unsigned char c) { return c == 0; }));
  const uint64_t gcs = Stats().num_gc - gcs_before;
  pgc_set_gc_percent(old_percent);
  pgc_set_memory_limit(old_limit);
  std::sort(freed.begin(), freed.end());
  size_t distinct = static_cast<size_t>(std::unique(freed.begin(), freed.end()) - freed.begin());
  INFO(distinct << " distinct addresses for " << n << " allocate/free pairs, " << gcs << " collections");
  CHECK(gcs == 0);
#if defined(PACEGC_VERIFY_HEAP)
  // Verify builds quarantine freed objects until the next collection (a second free is caught there): nothing is
  // handed out twice before it. After a collection the slots are free again.
  CHECK(distinct == n);
  pgc_collect();
  size_t again = 0;
  for (size_t i = 0; i < 1000; ++i) {
    void *p = pgc_malloc(128);
    REQUIRE(p != nullptr);
    again += std::binary_search(freed.begin(), freed.begin() + static_cast<std::ptrdiff_t>(distinct),
                                reinterpret_cast<uintptr_t>(p));
  }
  CHECK(again > 0);
#else
  CHECK(distinct < n / 2);
#endif
}

#ifndef PACEGC_VERIFY_HEAP

namespace {

char g_static_buffer[64];

}  // namespace

TEST_CASE("pgc_free misuse is reported and ignored without corrupting the heap", "[api][free][misuse]") {
  if (pgc_test::AbortOnMisuseFromEnv()) {
    WARN("PACEGC_ABORT_ON_MISUSE is on: misuse would abort by design; skipped");
    return;
  }
  // Foreign pointers: stack, static data, system malloc.
  int local = 0;
  pgc_free(&local);
  pgc_free(g_static_buffer);
  void *m = std::malloc(64);
  REQUIRE(m != nullptr);
  pgc_free(m);
  std::free(m);  // still ours to free: pgc_free must not have touched it

  // Interior pointers: the objects stay allocated and intact.
  auto *small = static_cast<unsigned char *>(pgc_malloc(256));
  auto *large = static_cast<unsigned char *>(pgc_malloc(1 * kMiB));
  REQUIRE(small != nullptr);
  REQUIRE(large != nullptr);
  FillPattern(small, 256, 11);
  FillPattern(large, 1 * kMiB, 12);
  pgc_free(small + 16);
  pgc_free(small + 255);
  pgc_free(large + 4096);
  pgc_free(large + 1 * kMiB - 1);

  // Double frees.
  void *twice_small = pgc_malloc(256);
  void *twice_large = pgc_malloc(1 * kMiB);
  REQUIRE(twice_small != nullptr);
  REQUIRE(twice_large != nullptr);
  pgc_free(twice_small);
  pgc_free(twice_large);
  pgc_free(twice_small);
  pgc_free(twice_large);

  // The heap still works: many objects of the same sizes are distinct, zeroed, outside the live objects above.
  const size_t n = 4096;
  auto **table = static_cast<void **>(pgc_malloc((n + 4) * sizeof(void *)));
  REQUIRE(table != nullptr);
  bool zero = true;
  for (size_t i = 0; i < n + 4; ++i) {
    size_t size = i < n ? 256 : 1 * kMiB;
    table[i] = pgc_malloc(size);
    REQUIRE(table[i] != nullptr);
    const auto *b = static_cast<const unsigned char *>(table[i]);
    zero = zero && std::all_of(b, b + size, [](unsigned char c) { return c == 0; });
    FillPattern(table[i], size, 100 + i);
  }
  CHECK(zero);
  std::vector<uintptr_t> addrs;
  for (size_t i = 0; i < n + 4; ++i) addrs.push_back(reinterpret_cast<uintptr_t>(table[i]));
  std::sort(addrs.begin(), addrs.end());
  CHECK(std::adjacent_find(addrs.begin(), addrs.end()) == addrs.end());
  bool disjoint = true;
  for (uintptr_t a : addrs) {
    disjoint = disjoint && (a + 256 <= reinterpret_cast<uintptr_t>(small) ||
                            a >= reinterpret_cast<uintptr_t>(small) + 256);
    disjoint = disjoint && (a + 256 <= reinterpret_cast<uintptr_t>(large) ||
                            a >= reinterpret_cast<uintptr_t>(large) + 1 * kMiB);
  }
  CHECK(disjoint);
  pgc_collect();
  CHECK(CheckPattern(small, 256, 11));
  CHECK(CheckPattern(large, 1 * kMiB, 12));
  bool intact = true;
  for (size_t i = 0; i < n + 4; ++i) intact = intact && CheckPattern(table[i], i < n ? 256 : 1 * kMiB, 100 + i);
  CHECK(intact);
}

#endif  // PACEGC_VERIFY_HEAP
