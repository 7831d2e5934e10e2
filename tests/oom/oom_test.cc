// tests/oom/oom_test.cc — behaviour when the OS refuses memory (injected with the internal test hook
// FailNextOsMaps), and tests of the heap verifier itself, both ways.
//
// Hook semantics relied on (gc/testing.h):
//   FailNextOsMaps(n)  the next n OS heap-memory requests (arena reservations and commits) fail; 0 cancels.
//                      A large allocation whose first attempt fails collects and retries once, then calls the OOM
//                      handler, so tests inject plenty (kManyFailures) and cancel afterwards.
//   OsMapFailures()    refusals so far (injected or real).
//   CollectAndVerify() a collection with verification forced on; returns the number of problems (0 = consistent).
//   CorruptNextMarkForTesting()  the next verification sees one reachable object's mark bit cleared.
//   SetMarkStackEntries(n) / LastCycleMarkOverflows()  a tiny mark stack (from the next collection; 0 restores the
//                      default) and the overflow count of the last collection.
//
// "Needs new OS memory": a request larger than everything the heap has mapped or released so far cannot be served
// from free pages, so FreshLargeSize() picks such a size (at least 256 MiB) from the current statistics.
//
// The verifier-corruption test is last in this file (and Catch2 runs test cases in declaration order by default).
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "common/structures.h"
#include "common/test_util.h"
#include "gc/testing.h"

using namespace pgc_test;
namespace pgt = pacegc::internal::testing;

namespace {

constexpr int kManyFailures = 1000;

// A size the heap cannot serve from memory it already has.
size_t FreshLargeSize() {
  pgc_stats s = Stats();
  uint64_t known = s.heap_mapped_bytes + s.heap_released_bytes + 64 * kMiB;
  size_t size = 256 * kMiB;
  while (size <= known) size *= 2;
  return size;
}

// Injects failures for the duration of a scope; always cancels them, even when an assertion throws.
class InjectedOsFailures {
 public:
  InjectedOsFailures() { pgt::FailNextOsMaps(kManyFailures); }
  ~InjectedOsFailures() { pgt::FailNextOsMaps(0); }
};

class ScopedOomHandler {
 public:
  explicit ScopedOomHandler(void *(*h)(size_t)) { pgc_set_oom_handler(h); }
  ~ScopedOomHandler() { pgc_set_oom_handler(nullptr); }
};

int g_handler_calls = 0;
size_t g_handler_size = 0;
alignas(16) unsigned char g_sentinel[64];

void *SentinelHandler(size_t size) {
  ++g_handler_calls;
  g_handler_size = size;
  return g_sentinel;
}
void *NullHandler(size_t size) {
  ++g_handler_calls;
  g_handler_size = size;
  return nullptr;
}
// "Frees memory" (stops the injected failures) and retries, as the header suggests.
void *RetryingHandler(size_t size) {
  ++g_handler_calls;
  g_handler_size = size;
  pgt::FailNextOsMaps(0);
  return pgc_malloc(size);
}

}  // namespace

TEST_CASE("a large allocation the OS refuses returns NULL after a collection and a retry", "[oom]") {
  Forest forest(1, 20000, 2000);
  const size_t size = FreshLargeSize();
  const uint64_t failures_before = pgt::OsMapFailures();
  const uint64_t gcs_before = Stats().num_gc;
  void *p;
  void *q;
  {
    InjectedOsFailures inject;
    p = pgc_malloc(size);
    q = pgc_malloc_atomic(size);
  }
  const uint64_t failures = pgt::OsMapFailures() - failures_before;
  INFO("size " << size << ", OS refusals " << failures);
  CHECK(p == nullptr);
  CHECK(q == nullptr);
  CHECK(failures >= 4);                       // two attempts (first try and retry) per allocation
  CHECK(Stats().num_gc - gcs_before >= 2);    // each failed attempt collected before retrying
  CHECK(forest.Verify());
}

TEST_CASE("the OOM handler is called with the size and its non-NULL result is returned as is", "[oom]") {
  const size_t size = FreshLargeSize();
  ScopedOomHandler handler(SentinelHandler);
  g_handler_calls = 0;
  g_handler_size = 0;
  void *p;
  {
    InjectedOsFailures inject;
    p = pgc_malloc(size);
  }
  CHECK(p == static_cast<void *>(g_sentinel));
  CHECK(g_handler_calls == 1);
  CHECK(g_handler_size == size);
}

TEST_CASE("an OOM handler returning NULL makes the allocation fail", "[oom]") {
  const size_t size = FreshLargeSize();
  ScopedOomHandler handler(NullHandler);
  g_handler_calls = 0;
  void *p;
  void *q;
  {
    InjectedOsFailures inject;
    p = pgc_malloc(size);
    q = pgc_malloc_atomic(size + 4096);
  }
  CHECK(p == nullptr);
  CHECK(q == nullptr);
  CHECK(g_handler_calls == 2);
  CHECK(g_handler_size == size + 4096);
}

namespace {

struct Big {
  unsigned char bytes[size_t{1} << 30];  // 1 GiB
};

}  // namespace

TEST_CASE("the C++ API throws std::bad_alloc when the OS refuses memory", "[oom][cpp]") {
  const size_t size = FreshLargeSize();
  InjectedOsFailures inject;
  CHECK_THROWS_AS(pacegc::make_array<char>(size), std::bad_alloc);
  CHECK_THROWS_AS(pacegc::make_array<Node *>(size / sizeof(Node *)), std::bad_alloc);
  CHECK_THROWS_AS(pacegc::allocator<double>().allocate(size / sizeof(double)), std::bad_alloc);
  std::vector<int, pacegc::allocator<int>> v;
  CHECK_THROWS_AS(v.reserve(size / sizeof(int)), std::bad_alloc);
  if (sizeof(Big) > size) {  // make<T> has a fixed size: only meaningful when 1 GiB needs new OS memory
    CHECK_THROWS_AS(pacegc::make<Big>(), std::bad_alloc);
  } else {
    WARN("heap already holds more than 1 GiB: make<Big> not checked");
  }
}

TEST_CASE("an OOM handler may stop the pressure and retry with pgc_malloc", "[oom]") {
  const size_t size = FreshLargeSize();
  ScopedOomHandler handler(RetryingHandler);
  g_handler_calls = 0;
  void *p;
  {
    InjectedOsFailures inject;
    p = pgc_malloc(size);
  }
  REQUIRE(p != nullptr);
  CHECK(g_handler_calls == 1);
  CHECK((reinterpret_cast<uintptr_t>(p) & 15) == 0);
  auto *b = static_cast<unsigned char *>(p);
  CHECK(b[0] == 0);
  CHECK(b[size / 2] == 0);
  CHECK(b[size - 1] == 0);
  b[0] = b[size / 2] = b[size - 1] = 1;
}

namespace {
int g_retry_calls = 0;
// The documented retry idiom, for a size no retry can serve. Bounded here only so that the old behaviour (the
// handler called again by its own retry, without end) fails the test instead of overflowing the stack.
void *RetryForeverHandler(size_t size) {
  if (++g_retry_calls > 100) return nullptr;
  return pgc_malloc(size);
}
}  // namespace

TEST_CASE("the retry idiom retries once for an impossible size: the handler is not re-entered", "[oom]") {
  ScopedOomHandler handler(RetryForeverHandler);
  for (size_t size : {size_t{1} << 50, SIZE_MAX}) {
    INFO(size);
    g_retry_calls = 0;
    errno = 0;
    CHECK(pgc_malloc(size) == nullptr);
    CHECK(errno == ENOMEM);
    CHECK(g_retry_calls == 1);
  }
  // The handler is called again for the next failure of another call (the guard is per call, not sticky).
  g_retry_calls = 0;
  CHECK(pgc_malloc_atomic(size_t{1} << 50) == nullptr);
  CHECK(g_retry_calls == 1);
}

TEST_CASE("a NULL from pgc_malloc sets errno to ENOMEM", "[oom]") {
  const size_t size = FreshLargeSize();
  errno = 0;
  void *p;
  {
    InjectedOsFailures inject;
    p = pgc_malloc(size);
  }
  CHECK(p == nullptr);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(pgc_malloc(SIZE_MAX) == nullptr);
  CHECK(errno == ENOMEM);
}

namespace {
void *volatile g_sink = nullptr;
}  // namespace

TEST_CASE("after the OS refusals stop, the heap is usable and earlier structures are intact", "[oom]") {
  Forest forest(2, 50000, 5000);
  Rng rng(3);
  for (int round = 0; round < 3; ++round) {
    const size_t size = FreshLargeSize();
    {
      InjectedOsFailures inject;
      CHECK(pgc_malloc(size) == nullptr);
      // Small requests while the OS refuses: may succeed from existing spans or fail cleanly, never crash.
      for (int i = 0; i < 100; ++i) g_sink = pgc_malloc(48 + static_cast<size_t>(i % 200));
      g_sink = nullptr;
    }
    CHECK(forest.Verify());
    MakeGarbage(rng, 32 * kMiB);
    bool mutated = true;
    for (int i = 0; i < 200; ++i) mutated = forest.Mutate() && mutated;
    CHECK(mutated);
    pgc_collect();
    CHECK(forest.Verify());
  }
  const size_t size = FreshLargeSize();
  auto *p = static_cast<unsigned char *>(pgc_malloc(size));
  REQUIRE(p != nullptr);
  p[0] = p[size - 1] = 9;
  CHECK(pgt::CollectAndVerify() == 0);
  CHECK(forest.Verify());
  CHECK(p[size - 1] == 9);
}

TEST_CASE("the heap verifier finds nothing on a healthy heap, also right after concurrent mutation",
          "[oom][verifier]") {
  Forest forest(4, 50000, 5000);
  CHECK(pgt::CollectAndVerify() == 0);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> mutators;
  for (int t = 0; t < 2; ++t) {
    mutators.emplace_back([&stop, &failures, t] {
      pacegc::ThreadScope scope;
      Forest mine(100 + static_cast<uint64_t>(t), 10000, 1000);
      Rng rng(200 + static_cast<uint64_t>(t));
      while (!stop.load()) {
        if (!mine.Mutate()) failures.fetch_add(1);
        MakeGarbage(rng, 64 * kKiB);
      }
      if (!mine.Verify()) failures.fetch_add(1);
    });
  }
  size_t problems = 0;
  for (int i = 0; i < 10; ++i) problems += pgt::CollectAndVerify();
  stop = true;
  for (auto &t : mutators) t.join();
  CHECK(problems == 0);
  CHECK(failures.load() == 0);
  CHECK(forest.Verify());
  CHECK(pgt::CollectAndVerify() == 0);
}

TEST_CASE("a tiny mark stack overflows and the recovery still marks everything", "[oom][verifier][markstack]") {
  Forest forest(6, 100000, 10000);  // deep and wide: far more pending objects than 16 mark-stack entries
  pgt::SetMarkStackEntries(16);
  Rng rng(7);
  size_t problems = 0;
  uint64_t overflows = 0;
  bool mutated = true;
  for (int round = 0; round < 3; ++round) {
    MakeGarbage(rng, 16 * kMiB);
    for (int i = 0; i < 100; ++i) mutated = forest.Mutate() && mutated;
    problems += pgt::CollectAndVerify();
    overflows += pgt::LastCycleMarkOverflows();
    pgc_collect();
    overflows += pgt::LastCycleMarkOverflows();
  }
  pgt::SetMarkStackEntries(0);
  pgc_collect();
  const uint64_t overflows_default = pgt::LastCycleMarkOverflows();
  INFO("overflows with 16 entries: " << overflows << ", with the default stack: " << overflows_default);
  CHECK(overflows > 0);  // otherwise the recovery path was not exercised
  CHECK(problems == 0);
  CHECK(mutated);
  CHECK(forest.Verify());
  CHECK(pgt::CollectAndVerify() == 0);
}

namespace {

// Owner -> chain of 8 scanned nodes -> child, owner and child finalizable: the child must never be finalized
// before its owner, also when the mark stack overflows while the owners' contents are scanned.
std::atomic<int> g_order_violations{0};
std::atomic<int> g_owners_done{0};
std::atomic<int> g_children_done{0};

struct OrderChild {
  std::atomic<int> owner_done;
};
struct OrderOwner {
  void *chain;
};

PGC_TEST_NOINLINE void MakeOrderedPairs(int n) {
  for (int i = 0; i < n; ++i) {
    auto *child = static_cast<OrderChild *>(pgc_malloc(sizeof(OrderChild)));
    REQUIRE(child != nullptr);
    void *next = child;
    for (int k = 0; k < 8; ++k) {
      auto **node = static_cast<void **>(pgc_malloc(2 * sizeof(void *)));
      REQUIRE(node != nullptr);
      node[0] = next;
      next = node;
    }
    auto *owner = static_cast<OrderOwner *>(pgc_malloc(sizeof(OrderOwner)));
    REQUIRE(owner != nullptr);
    owner->chain = next;
    pgc_register_finalizer(child, [](void *c, void *) {
      if (static_cast<OrderChild *>(c)->owner_done.load() == 0) g_order_violations.fetch_add(1);
      g_children_done.fetch_add(1);
    }, nullptr);
    pgc_register_finalizer(owner, [](void *o, void *) {
      void *p = static_cast<OrderOwner *>(o)->chain;
      for (int k = 0; k < 8; ++k) p = static_cast<void **>(p)[0];
      static_cast<OrderChild *>(p)->owner_done.store(1);
      g_owners_done.fetch_add(1);
    }, nullptr);
  }
}

}  // namespace

TEST_CASE("finalization order holds when the mark stack overflows during finalizer discovery",
          "[oom][markstack][finalizer]") {
  pgt::SetMarkStackEntries(4);
  const int n = 500;
  MakeOrderedPairs(n);
  uint64_t overflows = 0;
  for (int i = 0; i < 40 && g_children_done.load() < n; ++i) {
    ScrubStack();
    pgc_collect();
    overflows += pgt::LastCycleMarkOverflows();
  }
  pgt::SetMarkStackEntries(0);
  INFO("owners " << g_owners_done.load() << ", children " << g_children_done.load() << ", overflows " << overflows);
  CHECK(overflows > 0);  // the overflow path ran during discovery
  CHECK(g_owners_done.load() >= n - 2);  // conservative scanning may keep a pair or two
  CHECK(g_children_done.load() >= n - 2);
  CHECK(g_order_violations.load() == 0);
}

// Keep last: it deliberately damages one collection's mark state.
TEST_CASE("the heap verifier reports a corrupted mark state", "[oom][verifier]") {
  Forest forest(5, 10000, 1000);  // plenty of reachable objects to corrupt
  REQUIRE(pgt::CollectAndVerify() == 0);
  pgt::CorruptNextMarkForTesting();
  const size_t problems = pgt::CollectAndVerify();
  INFO("problems reported for the corrupted cycle: " << problems);
  CHECK(problems > 0);
  // The damage was confined to that one verification: the next cycle is clean and the structure intact.
  CHECK(pgt::CollectAndVerify() == 0);
  CHECK(forest.Verify());
}
