// tests/api/helpers_test.cc — the small helpers bdwgc users expect (issue 15, item 5): pgc_realloc, pgc_strdup,
// pgc_strndup, pgc_base, pgc_size, pgc_keep_alive and pgc_malloc_uncollectable. Public API only. Misuse of them
// (foreign pointers and such) is in misuse_test.cc, which runs each case in a child process.
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/test_util.h"

using namespace pgc_test;

namespace {

FinalizerLog g_uncollectable_log, g_keep_alive_log;
template <FinalizerLog *Log>
void LogFinalizer(void * /*obj*/, void *data) {
  Log->Hit(FinalizerLog::Id(data));
}

char g_static_bytes[64];

}  // namespace

TEST_CASE("pgc_realloc: NULL allocates, data is preserved growing and shrinking, 0 frees", "[api][helpers]") {
  auto *p = static_cast<unsigned char *>(pgc_realloc(nullptr, 100));
  REQUIRE(p != nullptr);
  CHECK(pgc_size(p) >= 100);
  FillPattern(p, 100, 7);
  // Grow through the size classes into a large object, collecting in between: the data follows.
  size_t size = 100;
  for (size_t next : {size_t{200}, size_t{3000}, size_t{64 * 1024}, size_t{1024 * 1024}}) {
    auto *q = static_cast<unsigned char *>(pgc_realloc(p, next));
    REQUIRE(q != nullptr);
    CHECK(pgc_size(q) >= next);
    CHECK(CheckPattern(q, 100, 7));
    // Scanned objects: the bytes past the copied ones are zero.
    bool zero = true;
    for (size_t i = size > 100 ? size : 100; i < next && zero; ++i) zero = q[i] == 0;
    CHECK(zero);
    p = q;
    size = next;
    CollectN(2);
    CHECK(CheckPattern(p, 100, 7));
  }
  FillPattern(p, size, 8);
  // Shrinking keeps the prefix.
  auto *s = static_cast<unsigned char *>(pgc_realloc(p, 50));
  REQUIRE(s != nullptr);
  CHECK(pgc_size(s) >= 50);
  CHECK(pgc_size(s) < size);  // a 1 MiB object shrunk to 50 bytes does not keep the megabyte
  CHECK(CheckPattern(s, 50, 8));
  // In place when it fits and uses at least half.
  const size_t usable = pgc_size(s);
  CHECK(pgc_realloc(s, usable) == s);
  // Size 0 frees, as realloc.
  const uint64_t frees = Stats().total_free_objects;
  CHECK(pgc_realloc(s, 0) == nullptr);
  CHECK(Stats().total_free_objects == frees + 1);
}

TEST_CASE("pgc_realloc keeps an atomic object atomic and its data", "[api][helpers]") {
  auto *a = static_cast<unsigned char *>(pgc_malloc_atomic(40));
  REQUIRE(a != nullptr);
  FillPattern(a, 40, 9);
  auto *b = static_cast<unsigned char *>(pgc_realloc(a, 4000));
  REQUIRE(b != nullptr);
  CHECK(CheckPattern(b, 40, 9));
  CollectN(2);
  CHECK(CheckPattern(b, 40, 9));
  pgc_free(b);
}

TEST_CASE("pgc_strdup and pgc_strndup copy into atomic collected memory", "[api][helpers]") {
  char *s = pgc_strdup("hello, pacegc");
  REQUIRE(s != nullptr);
  CHECK(std::string(s) == "hello, pacegc");
  CHECK(pgc_base(s) == s);
  CHECK(pgc_size(s) >= 14);
  char *t = pgc_strndup("hello, pacegc", 5);
  REQUIRE(t != nullptr);
  CHECK(std::string(t) == "hello");
  char *u = pgc_strndup("ab", 100);  // n past the end: the whole string
  REQUIRE(u != nullptr);
  CHECK(std::string(u) == "ab");
  char *e = pgc_strdup("");
  REQUIRE(e != nullptr);
  CHECK(e[0] == '\0');
  CollectN(2);
  CHECK(std::string(s) == "hello, pacegc");
  CHECK(std::string(t) == "hello");
  pgc_free(s);
  pgc_free(t);
  pgc_free(u);
  pgc_free(e);
}

TEST_CASE("pgc_base and pgc_size: start and usable size of the object, interior pointers too; else NULL and 0",
          "[api][helpers]") {
  for (size_t size : {size_t{1}, size_t{16}, size_t{100}, size_t{2048}, size_t{100 * 1024}, size_t{3 << 20}}) {
    INFO("size " << size);
    auto *p = static_cast<char *>(pgc_malloc(size));
    REQUIRE(p != nullptr);
    const size_t usable = pgc_size(p);
    CHECK(usable >= size);
    CHECK(pgc_base(p) == p);
    CHECK(pgc_base(p + size / 2) == p);
    CHECK(pgc_base(p + usable - 1) == p);
    CHECK(pgc_size(p + usable - 1) == usable);
    auto *a = static_cast<char *>(pgc_malloc_atomic(size));
    REQUIRE(a != nullptr);
    CHECK(pgc_base(a + size - 1) == a);
    CHECK(pgc_size(a) >= size);
    pgc_free(a);
    pgc_keep_alive(p);
  }
  int local = 0;
  void *m = std::malloc(32);
  void *manual = pgc_manual_malloc(32);
  void *u = pgc_malloc_uncollectable(32);
  for (const void *foreign : {static_cast<const void *>(nullptr), static_cast<const void *>(&local),
                              static_cast<const void *>(g_static_bytes), static_cast<const void *>(m),
                              static_cast<const void *>(manual), static_cast<const void *>(u)}) {
    INFO("foreign " << foreign);
    CHECK(pgc_base(foreign) == nullptr);
    CHECK(pgc_size(foreign) == 0);
  }
  std::free(m);
  pgc_manual_free(manual);
  pgc_free(u);
  // A freed object is not an object any more (verify builds quarantine it: still not one).
  void *f = pgc_malloc(64);
  REQUIRE(f != nullptr);
  pgc_free(f);
  CHECK(pgc_base(f) == nullptr);
  CHECK(pgc_size(f) == 0);
}

namespace {

// The block's address is kept only XOR-ed with a mask: no root holds it, so it survives only because it is never
// collected, and the objects it points to only because it is scanned.
constexpr uintptr_t kHide = 0x5A5A5A5A5A5A5A5Aull;
uintptr_t g_hidden_block = 0;

PGC_TEST_NOINLINE void FillUncollectable(size_t n) {
  auto **block = static_cast<void **>(pgc_malloc_uncollectable(n * sizeof(void *)));
  REQUIRE(block != nullptr);
  for (size_t i = 0; i < n; ++i) CHECK(block[i] == nullptr);  // zeroed
  for (size_t i = 0; i < n; ++i) {
    size_t size = 32 + 16 * (i % 8);
    void *p = pgc_malloc(size);
    REQUIRE(p != nullptr);
    FillPattern(p, size, 500 + i);
    pgc_register_finalizer(p, LogFinalizer<&g_uncollectable_log>, FinalizerLog::Data(i));
    block[i] = p;
  }
  g_hidden_block = reinterpret_cast<uintptr_t>(block) ^ kHide;
  ScrubStack();
}

PGC_TEST_NOINLINE size_t CountIntact(size_t n) {
  auto **block = reinterpret_cast<void **>(g_hidden_block ^ kHide);
  size_t ok = 0;
  for (size_t i = 0; i < n; ++i) ok += CheckPattern(block[i], 32 + 16 * (i % 8), 500 + i) ? 1 : 0;
  return ok;
}

PGC_TEST_NOINLINE void FreeHiddenBlock() {
  pgc_free(reinterpret_cast<void *>(g_hidden_block ^ kHide));
  g_hidden_block = 0;
  ScrubStack();
}

PGC_TEST_NOINLINE void MakeKeptObject(void **slot) {
  void *p = pgc_malloc(48);
  REQUIRE(p != nullptr);
  pgc_register_finalizer(p, LogFinalizer<&g_keep_alive_log>, FinalizerLog::Data(0));
  *slot = p;
}

}  // namespace

TEST_CASE("an object reachable only from uncollectable memory survives collections; pgc_free releases it",
          "[api][helpers][uncollectable]") {
  g_uncollectable_log.Reset();
  const size_t n = 256;
  const uint64_t manual_before = Stats().manual_bytes;
  FillUncollectable(n);
  CHECK(Stats().manual_bytes >= manual_before + n * sizeof(void *));  // counted, under the limit
  Rng rng(15);
  for (int i = 0; i < 4; ++i) {
    MakeGarbage(rng, 8 * kMiB);
    CollectN(1);
  }
  CHECK(CountIntact(n) == n);
  CHECK(g_uncollectable_log.Ran(n) == 0);
  FreeHiddenBlock();
  CHECK(Stats().manual_bytes < manual_before + n * sizeof(void *));
  bool all_died = CollectUntil([&] { return g_uncollectable_log.Ran(n) >= n; });
  size_t ran = g_uncollectable_log.Ran(n);
  INFO("finalized " << ran << " of " << n << " after the block was freed");
  CHECK((all_died || ran >= n - 2));  // a couple of conservative false retentions are tolerated

  void *zero = pgc_malloc_uncollectable(0);  // a unique pointer, freed like any other
  void *zero2 = pgc_malloc_uncollectable(0);
  REQUIRE(zero != nullptr);
  CHECK(zero != zero2);
  pgc_free(zero);
  pgc_free(zero2);
}

TEST_CASE("pgc_keep_alive: the object lives at least until the call", "[api][helpers]") {
  g_keep_alive_log.Reset();
  void *p = nullptr;
  MakeKeptObject(&p);
  CollectN(3);
  CHECK(g_keep_alive_log.Count(0) == 0);
  pgc_keep_alive(p);
  pacegc::keep_alive(p);
}
