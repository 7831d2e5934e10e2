// tests/api/roots_test.cc — what keeps an object alive, and what does not: registered root ranges, another
// registered thread's stack, interior pointers, and (negatively) atomic objects and removed root ranges.
// Public API only.
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/structures.h"
#include "common/test_util.h"

using namespace pgc_test;

namespace {

// One log per test case: objects of an earlier test that die late must not count for a later one.
FinalizerLog g_roots_log, g_bounds_log, g_stack_log, g_interior_log, g_atomic_log;
template <FinalizerLog *Log>
void LogFinalizer(void * /*obj*/, void *data) {
  Log->Hit(FinalizerLog::Id(data));
}

// Sizes from 16 B to 2 KiB, plus large objects.
size_t RootObjectSize(size_t i) { return i % 16 == 15 ? 100 * kKiB : size_t{16} << (i % 8); }

template <FinalizerLog *Log>
PGC_TEST_NOINLINE void FillRootTable(void **table, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    size_t size = RootObjectSize(i);
    void *p = pgc_malloc(size);
    REQUIRE(p != nullptr);
    FillPattern(p, size, 1000 + i);
    pgc_register_finalizer(p, LogFinalizer<Log>, FinalizerLog::Data(i));
    table[i] = p;
  }
}

PGC_TEST_NOINLINE size_t CountIntactRootObjects(void **table, size_t n) {
  size_t ok = 0;
  for (size_t i = 0; i < n; ++i) {
    if (table[i] != nullptr && CheckPattern(table[i], RootObjectSize(i), 1000 + i)) ++ok;
  }
  return ok;
}

PGC_TEST_NOINLINE void ChurnAndCollect(uint64_t seed, int rounds, size_t bytes_per_round) {
  Rng rng(seed);
  for (int i = 0; i < rounds; ++i) {
    MakeGarbage(rng, bytes_per_round);
    ScrubStack();
    pgc_collect();
  }
  ScrubStack();
}

}  // namespace

TEST_CASE("objects reachable only from a pgc_add_roots range survive; after pgc_remove_roots they die",
          "[api][roots]") {
  g_roots_log.Reset();
  const size_t n = 64;
  // System-malloc memory is not scanned: only the registration makes this table a root.
  auto **table = static_cast<void **>(std::calloc(n, sizeof(void *)));
  REQUIRE(table != nullptr);
  pgc_add_roots(table, table + n);
  FillRootTable<&g_roots_log>(table, n);

  ChurnAndCollect(1, 4, 16 * kMiB);
  CHECK(CountIntactRootObjects(table, n) == n);
  CHECK(g_roots_log.Ran(n) == 0);

  pgc_remove_roots(table, table + n);
  // The table still holds every pointer, but it is ordinary malloc memory now.
  bool all_died = CollectUntil([&] { return g_roots_log.Ran(n) >= n; });
  int max_count = 0;
  size_t ran = g_roots_log.Ran(n, &max_count);
  INFO("finalized " << ran << " of " << n << " after pgc_remove_roots");
  CHECK((all_died || ran >= n - 2));  // tolerate a couple of conservative false retentions
  CHECK(max_count == 1);
  std::free(table);
}

// Misuse aborts in PACEGC_VERIFY_HEAP builds and with PACEGC_ABORT_ON_MISUSE on.
#ifndef PACEGC_VERIFY_HEAP
TEST_CASE("pgc_remove_roots with bounds that were never added is ignored", "[api][roots]") {
  if (pgc_test::AbortOnMisuseFromEnv()) {
    WARN("PACEGC_ABORT_ON_MISUSE is on: misuse would abort by design; skipped");
    return;
  }
  g_bounds_log.Reset();
  const size_t n = 16;
  auto **table = static_cast<void **>(std::calloc(n, sizeof(void *)));
  REQUIRE(table != nullptr);
  pgc_add_roots(table, table + n);
  FillRootTable<&g_bounds_log>(table, n);
  pgc_remove_roots(table, table + n / 2);      // not the registered range: a message, nothing removed
  pgc_remove_roots(table + 1, table + n);
  ChurnAndCollect(2, 3, 8 * kMiB);
  CHECK(CountIntactRootObjects(table, n) == n);
  CHECK(g_bounds_log.Ran(n) == 0);
  pgc_remove_roots(table, table + n);
  CollectN(2);
  std::free(table);
}
#endif  // PACEGC_VERIFY_HEAP

namespace {

struct StackHolderSync {
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0;      // 1: the thread holds its objects; 2: main is done collecting
  bool intact = false;
};

constexpr size_t kStackSizes[3] = {64, 4000, 1 * kMiB};

PGC_TEST_NOINLINE void HoldOnOwnStack(StackHolderSync *sync) {
  // The only pointers to these objects are in this frame (volatile: they stay in memory, not only registers).
  void *volatile small = pgc_malloc(kStackSizes[0]);
  void *volatile mid = pgc_malloc(kStackSizes[1]);
  void *volatile big = pgc_malloc(kStackSizes[2]);
  Node *volatile list = nullptr;
  for (uint64_t i = 1; i <= 2000; ++i) {
    Node *n = NewNode(Mix(i) | 1);
    n->a = list;
    list = n;
  }
  void *objs[3] = {small, mid, big};
  for (int i = 0; i < 3; ++i) {
    FillPattern(objs[i], kStackSizes[i], 500 + i);
    pgc_register_finalizer(objs[i], LogFinalizer<&g_stack_log>, FinalizerLog::Data(i));
    objs[i] = nullptr;
  }
  {
    std::unique_lock<std::mutex> lock(sync->mu);
    sync->phase = 1;
    sync->cv.notify_all();
    sync->cv.wait(lock, [&] { return sync->phase == 2; });
  }
  bool ok = CheckPattern(small, kStackSizes[0], 500) && CheckPattern(mid, kStackSizes[1], 501) &&
            CheckPattern(big, kStackSizes[2], 502);
  uint64_t count = 0;
  for (Node *p = list; p != nullptr; p = p->a) {
    ok = ok && NodeIntact(p) && p->key == (Mix(2000 - count) | 1);
    ++count;
  }
  sync->intact = ok && count == 2000;
}

}  // namespace

TEST_CASE("objects reachable only from another registered thread's stack survive collections by this thread",
          "[api][roots][threads]") {
  g_stack_log.Reset();
  StackHolderSync sync;
  std::thread holder([&sync] {
    pacegc::ThreadScope scope;
    HoldOnOwnStack(&sync);
  });
  {
    std::unique_lock<std::mutex> lock(sync.mu);
    sync.cv.wait(lock, [&] { return sync.phase == 1; });
  }
  ChurnAndCollect(3, 6, 16 * kMiB);
  CHECK(g_stack_log.Ran(3) == 0);
  {
    std::lock_guard<std::mutex> lock(sync.mu);
    sync.phase = 2;
  }
  sync.cv.notify_all();
  holder.join();
  CHECK(sync.intact);
}

namespace {

// Each object is referenced only by an interior pointer: to its middle, or to its last requested byte.
constexpr size_t kInteriorSizes[] = {48, 3000, 20000, 1 * kMiB};
constexpr size_t kInteriorCount = sizeof(kInteriorSizes) / sizeof(kInteriorSizes[0]);
unsigned char *volatile g_interior_mid[kInteriorCount];
unsigned char *volatile g_interior_last[kInteriorCount];

PGC_TEST_NOINLINE void MakeInteriorObjects() {
  for (size_t i = 0; i < kInteriorCount; ++i) {
    size_t size = kInteriorSizes[i];
    auto *mid = static_cast<unsigned char *>(pgc_malloc(size));
    auto *last = static_cast<unsigned char *>(pgc_malloc(size));
    REQUIRE(mid != nullptr);
    REQUIRE(last != nullptr);
    FillPattern(mid, size, 2000 + i);
    FillPattern(last, size, 3000 + i);
    pgc_register_finalizer(mid, LogFinalizer<&g_interior_log>, FinalizerLog::Data(2 * i));
    pgc_register_finalizer(last, LogFinalizer<&g_interior_log>, FinalizerLog::Data(2 * i + 1));
    g_interior_mid[i] = mid + size / 2;
    g_interior_last[i] = last + size - 1;
  }
}

PGC_TEST_NOINLINE size_t CountIntactInterior() {
  size_t ok = 0;
  for (size_t i = 0; i < kInteriorCount; ++i) {
    size_t size = kInteriorSizes[i];
    if (CheckPattern(g_interior_mid[i] - size / 2, size, 2000 + i)) ++ok;
    if (CheckPattern(g_interior_last[i] - (size - 1), size, 3000 + i)) ++ok;
  }
  return ok;
}

}  // namespace

TEST_CASE("objects referenced only through interior pointers (middle, last byte) survive", "[api][roots]") {
  g_interior_log.Reset();
  MakeInteriorObjects();
  ChurnAndCollect(4, 5, 16 * kMiB);
  CHECK(CountIntactInterior() == 2 * kInteriorCount);
  std::string counts;
  for (size_t i = 0; i < 2 * kInteriorCount; ++i) counts += std::to_string(g_interior_log.Count(i)) + " ";
  INFO("finalizer counts (mid, last per size): " << counts);
  CHECK(g_interior_log.Ran(2 * kInteriorCount) == 0);
  for (size_t i = 0; i < kInteriorCount; ++i) {
    g_interior_mid[i] = nullptr;
    g_interior_last[i] = nullptr;
  }
  CollectN(2);
}

namespace {

void *volatile g_atomic_block = nullptr;
constexpr size_t kAtomicTargets = 8;

// Stores the addresses of kAtomicTargets finalizable objects in an atomic block reachable from a global, and
// records the block's expected bytes in *expected (system malloc: not scanned).
PGC_TEST_NOINLINE void MakeAtomicHolder(std::vector<uintptr_t> *expected) {
  auto *block = static_cast<uintptr_t *>(pgc_malloc_atomic(kAtomicTargets * sizeof(uintptr_t)));
  REQUIRE(block != nullptr);
  g_atomic_block = block;
  for (size_t i = 0; i < kAtomicTargets; ++i) {
    void *x = pgc_malloc(256);
    REQUIRE(x != nullptr);
    pgc_register_finalizer(x, LogFinalizer<&g_atomic_log>, FinalizerLog::Data(i));
    block[i] = reinterpret_cast<uintptr_t>(x);  // looks exactly like a pointer to x
    expected->push_back(block[i]);
  }
}

}  // namespace

TEST_CASE("pointers stored in an atomic object do not keep their targets alive", "[api][roots][atomic]") {
  g_atomic_log.Reset();
  std::vector<uintptr_t> expected;
  expected.reserve(kAtomicTargets);
  MakeAtomicHolder(&expected);
  bool all = CollectUntil([] { return g_atomic_log.Ran(kAtomicTargets) >= kAtomicTargets; });
  size_t ran = g_atomic_log.Ran(kAtomicTargets);
  INFO("finalized " << ran << " of " << kAtomicTargets << " objects referenced only from an atomic block");
  CHECK((all || ran >= kAtomicTargets - 1));
  // The atomic block itself is reachable and keeps its bytes.
  const auto *block = static_cast<const uintptr_t *>(g_atomic_block);
  bool same = true;
  for (size_t i = 0; i < kAtomicTargets; ++i) same = same && block[i] == expected[i];
  CHECK(same);
  g_atomic_block = nullptr;
}
