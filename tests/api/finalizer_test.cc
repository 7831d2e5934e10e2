// tests/api/finalizer_test.cc — finalizer semantics: exactly once, never inside a pause (they may allocate and
// read statistics; other registered threads are running while they do), on the finalizer thread (never the thread
// that collected: finalize.h), objects reachable
// from a finalizable object stay alive until it ran, resurrection, replacement and removal, pgc_free drops them.
// Public API only.
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/structures.h"
#include "common/test_util.h"

using namespace pgc_test;

namespace {

// One log per test case: objects of an earlier test that die late must not count for a later one.
FinalizerLog g_probe_log, g_owner_log, g_child_log, g_resurrect_log, g_replace_a_log, g_replace_b_log, g_freed_log,
    g_alloc_log;
constexpr size_t kPayload = 96;

// ---- exactly once, never in a pause --------------------------------------------------------------------------

struct PauseProbe {
  std::atomic<uint64_t> ping{0};
  std::atomic<uint64_t> pong{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> running{false};
};
PauseProbe g_probe;
pthread_t g_collecting_thread;
std::atomic<int> g_wrong_thread{0};
std::atomic<int> g_alloc_problems{0};
std::atomic<int> g_stats_problems{0};
std::atomic<int> g_world_stopped{0};
std::atomic<int> g_payload_damaged{0};

void ProbingFinalizer(void *obj, void *data) {
  g_probe_log.Hit(FinalizerLog::Id(data));
  if (pthread_equal(pthread_self(), g_collecting_thread)) g_wrong_thread.fetch_add(1);
  // The object is intact when its finalizer runs.
  if (!CheckPattern(obj, kPayload, 7000 + FinalizerLog::Id(data))) g_payload_damaged.fetch_add(1);
  // Allocating is allowed (it would deadlock or corrupt inside a pause).
  auto *q = static_cast<unsigned char *>(pgc_malloc(200));
  if (q == nullptr) {
    g_alloc_problems.fetch_add(1);
  } else {
    for (int i = 0; i < 200; ++i) {
      if (q[i] != 0) {
        g_alloc_problems.fetch_add(1);
        break;
      }
    }
    q[0] = 1;
  }
  pgc_stats s = Stats();
  if (s.version != PGC_STATS_VERSION || s.num_gc == 0) g_stats_problems.fetch_add(1);
  // Another registered thread must be running: a round trip with it cannot complete while the world is stopped.
  // (A generous deadline turns a stopped world into a failure instead of a hang; it is not a timing assertion.)
  uint64_t k = g_probe.ping.fetch_add(1) + 1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (g_probe.pong.load() < k) {
    if (std::chrono::steady_clock::now() > deadline) {
      g_world_stopped.fetch_add(1);
      break;
    }
    sched_yield();
  }
}

PGC_TEST_NOINLINE void MakeProbed(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void *p = pgc_malloc(kPayload);
    REQUIRE(p != nullptr);
    FillPattern(p, kPayload, 7000 + i);
    pgc_register_finalizer(p, ProbingFinalizer, FinalizerLog::Data(i));
  }
}

}  // namespace

TEST_CASE("finalizers run exactly once, after the pause, on the finalizer thread, and may allocate",
          "[api][finalizer]") {
  g_probe_log.Reset();
  g_collecting_thread = pthread_self();
  g_probe.stop = false;
  std::thread partner([] {
    pacegc::ThreadScope scope;  // a registered mutator: stopped during every pause
    g_probe.running = true;
    while (!g_probe.stop.load()) {
      uint64_t k = g_probe.ping.load();
      if (g_probe.pong.load() < k) g_probe.pong.store(k);
      sched_yield();
    }
  });
  while (!g_probe.running.load()) sched_yield();

  const size_t n = 64;
  const uint64_t finalizers_before = Stats().finalizers_run;
  MakeProbed(n);
  bool all = CollectUntil([&] { return g_probe_log.Ran(n) >= n; });
  CollectN(3);  // more cycles: nothing may run twice
  g_probe.stop = true;
  partner.join();

  int max_count = 0;
  size_t ran = g_probe_log.Ran(n, &max_count);
  INFO("finalized " << ran << " of " << n);
  CHECK((all || ran >= n - 2));
  CHECK(max_count == 1);
  CHECK(g_wrong_thread.load() == 0);
  CHECK(g_payload_damaged.load() == 0);
  CHECK(g_alloc_problems.load() == 0);
  CHECK(g_stats_problems.load() == 0);
  CHECK(g_world_stopped.load() == 0);
  CHECK(Stats().finalizers_run - finalizers_before >= ran);
}

namespace {

// ---- objects reachable from a finalizable object stay alive until it ran ---------------------------------------

constexpr size_t kChainLength = 50;
std::atomic<int> g_chain_damaged{0};
std::atomic<int> g_chain_checked{0};
std::atomic<int> g_child_finalized_first{0};

struct Owner {
  Node *chain;
  uint64_t index;
};

void ChildFinalizer(void * /*obj*/, void *data) { g_child_log.Hit(FinalizerLog::Id(data)); }

void OwnerFinalizer(void *obj, void *data) {
  size_t i = FinalizerLog::Id(data);
  g_owner_log.Hit(i);
  // Reuse as many freed slots of the node size classes as possible first: a chain node reclaimed too early would be
  // zeroed and overwritten by these allocations.
  Rng rng(100 + i);
  MakeGarbage(rng, 1 * kMiB, 48, 160);
  auto *owner = static_cast<Owner *>(obj);
  bool ok = owner->index == i;
  size_t count = 0;
  for (Node *p = owner->chain; p != nullptr; p = p->a) {
    ok = ok && NodeIntact(p) && p->key == (Mix(i * 1000 + count) | 1);
    ++count;
  }
  if (!ok || count != kChainLength) g_chain_damaged.fetch_add(1);
  g_chain_checked.fetch_add(1);
  if (g_child_log.Count(i) != 0) g_child_finalized_first.fetch_add(1);
}

PGC_TEST_NOINLINE void MakeOwners(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    auto *owner = static_cast<Owner *>(pgc_malloc(sizeof(Owner)));
    REQUIRE(owner != nullptr);
    owner->index = i;
    Node **tail = &owner->chain;
    for (size_t j = 0; j < kChainLength; ++j) {
      Node *node = NewNode(Mix(i * 1000 + j) | 1);
      *tail = node;
      tail = &node->a;
    }
    pgc_register_finalizer(owner->chain, ChildFinalizer, FinalizerLog::Data(i));  // the chain's head
    pgc_register_finalizer(owner, OwnerFinalizer, FinalizerLog::Data(i));
  }
}

}  // namespace

TEST_CASE("objects reachable from a finalizable object stay alive until its finalizer ran", "[api][finalizer]") {
  g_owner_log.Reset();
  g_child_log.Reset();
  const size_t n = 16;
  MakeOwners(n);
  bool owners = CollectUntil([&] { return g_owner_log.Ran(n) >= n; });
  size_t owners_ran = g_owner_log.Ran(n);
  INFO("owners finalized: " << owners_ran << " of " << n);
  CHECK((owners || owners_ran >= n - 1));
  CHECK(g_chain_checked.load() == static_cast<int>(owners_ran));
  CHECK(g_chain_damaged.load() == 0);
  CHECK(g_child_finalized_first.load() == 0);
  // Once the owners are gone, the chains are unreachable too and their heads get finalized.
  bool children = CollectUntil([&] { return g_child_log.Ran(n) >= owners_ran; });
  size_t children_ran = g_child_log.Ran(n);
  INFO("chain heads finalized: " << children_ran);
  CHECK((children || children_ran + 1 >= owners_ran));
  int max_count = 0;
  g_owner_log.Ran(n, &max_count);
  CHECK(max_count == 1);
  g_child_log.Ran(n, &max_count);
  CHECK(max_count == 1);
}

namespace {

// ---- resurrection -----------------------------------------------------------------------------------------------

void *volatile g_resurrected = nullptr;
void ResurrectingFinalizer(void *obj, void *data) {
  g_resurrect_log.Hit(FinalizerLog::Id(data));
  g_resurrected = obj;
}

PGC_TEST_NOINLINE void MakeResurrectable() {
  void *p = pgc_malloc(512);
  REQUIRE(p != nullptr);
  FillPattern(p, 512, 8080);
  pgc_register_finalizer(p, ResurrectingFinalizer, FinalizerLog::Data(0));
}

}  // namespace

TEST_CASE("a finalizer may resurrect its object, which then stays intact and is not finalized again",
          "[api][finalizer]") {
  g_resurrect_log.Reset();
  g_resurrected = nullptr;
  MakeResurrectable();
  REQUIRE(CollectUntil([] { return g_resurrect_log.Count(0) >= 1; }));
  REQUIRE(g_resurrected != nullptr);
  Rng rng(9);
  for (int i = 0; i < 3; ++i) {
    MakeGarbage(rng, 8 * kMiB, 16, 1024);
    pgc_collect();
  }
  CHECK(CheckPattern(g_resurrected, 512, 8080));
  g_resurrected = nullptr;
  CollectN(3);
  CHECK(g_resurrect_log.Count(0) == 1);
}

namespace {

// ---- replacement, removal, pgc_free -------------------------------------------------------------------------------

void FinalizerA(void *, void *data) { g_replace_a_log.Hit(FinalizerLog::Id(data)); }
void FinalizerB(void *, void *data) { g_replace_b_log.Hit(FinalizerLog::Id(data)); }
void FreedFinalizer(void *, void *data) { g_freed_log.Hit(FinalizerLog::Id(data)); }

PGC_TEST_NOINLINE void MakeReplacedAndRemoved() {
  void *a = pgc_malloc(64);
  void *b = pgc_malloc(64);
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  pgc_register_finalizer(a, FinalizerA, FinalizerLog::Data(0));
  pgc_register_finalizer(a, FinalizerB, FinalizerLog::Data(0));  // replaces FinalizerA
  pgc_register_finalizer(b, FinalizerA, FinalizerLog::Data(1));
  pgc_register_finalizer(b, nullptr, nullptr);                    // removes it
}

PGC_TEST_NOINLINE void MakeAndFree(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void *p = pgc_malloc(i % 2 ? 64 : 64 * kKiB);
    REQUIRE(p != nullptr);
    pgc_register_finalizer(p, FreedFinalizer, FinalizerLog::Data(i));
    pgc_free(p);
  }
  // Reuse the freed slots: a finalizer left attached to the address would fire for these objects.
  for (size_t i = 0; i < 4 * n; ++i) {
    void *q = pgc_malloc(i % 2 ? 64 : 64 * kKiB);
    REQUIRE(q != nullptr);
  }
}

}  // namespace

TEST_CASE("a second registration replaces the first and a NULL function removes it", "[api][finalizer]") {
  g_replace_a_log.Reset();
  g_replace_b_log.Reset();
  MakeReplacedAndRemoved();
  bool replaced_ran = CollectUntil([] { return g_replace_b_log.Count(0) >= 1; });
  CollectN(2);
  CHECK(replaced_ran);
  CHECK(g_replace_b_log.Count(0) == 1);
  CHECK(g_replace_a_log.Count(0) == 0);  // the replaced finalizer
  CHECK(g_replace_a_log.Count(1) == 0);  // the removed finalizer
}

TEST_CASE("pgc_free of an object with a finalizer drops the finalizer without running it", "[api][finalizer]") {
  g_freed_log.Reset();
  const size_t n = 32;
  MakeAndFree(n);
  CollectN(4);
  size_t ran = 0;
  for (size_t i = 0; i < n; ++i) ran += g_freed_log.Count(i) != 0;
  CHECK(ran == 0);
}

namespace {

// ---- finalizers whose allocations start collections ----------------------------------------------------------

void AllocatingFinalizer(void *, void *data) {
  g_alloc_log.Hit(FinalizerLog::Id(data));
  Rng rng(FinalizerLog::Id(data));
  MakeGarbage(rng, 512 * kKiB);  // 200 of these allocate 100 MiB: collections start from inside finalizers
}

PGC_TEST_NOINLINE void MakeAllocatingFinalizables(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void *p = pgc_malloc(32);
    REQUIRE(p != nullptr);
    pgc_register_finalizer(p, AllocatingFinalizer, FinalizerLog::Data(i));
  }
}

}  // namespace

TEST_CASE("finalizers that allocate enough to start collections run once each", "[api][finalizer]") {
  g_alloc_log.Reset();
  const int old_percent = pgc_set_gc_percent(100);
  const size_t n = 200;
  MakeAllocatingFinalizables(n);
  const uint64_t gcs_before = Stats().num_gc;
  bool all = CollectUntil([&] { return g_alloc_log.Ran(n) >= n; });
  CollectN(2);
  pgc_set_gc_percent(old_percent);
  int max_count = 0;
  size_t ran = g_alloc_log.Ran(n, &max_count);
  INFO("finalized " << ran << " of " << n);
  CHECK((all || ran >= n - 2));
  CHECK(max_count == 1);
  CHECK(Stats().num_gc > gcs_before);
}

namespace {

// ---- pointers into the object itself ----------------------------------------------------------------------------

std::atomic<int> g_self_finalized{0};
std::atomic<int> g_cycle_finalized{0};

struct SelfRef {
  void *self;          // the object's own start
  char *field_ptr;     // into its own buffer, as a std::string in small-string form does
  char buffer[48];
};

PGC_TEST_NOINLINE void MakeSelfReferencing(int n) {
  for (int i = 0; i < n; ++i) {
    auto *o = static_cast<SelfRef *>(pgc_malloc(sizeof(SelfRef)));
    REQUIRE(o != nullptr);
    o->self = o;
    o->field_ptr = o->buffer + 5;
    pgc_register_finalizer(o, [](void *, void *) { g_self_finalized.fetch_add(1); }, nullptr);
  }
}

// Two finalizable objects pointing at each other: a cycle, never finalized (as in Go).
PGC_TEST_NOINLINE void MakeFinalizableCycle() {
  auto **a = static_cast<void **>(pgc_malloc(2 * sizeof(void *)));
  auto **b = static_cast<void **>(pgc_malloc(2 * sizeof(void *)));
  REQUIRE((a != nullptr && b != nullptr));
  a[0] = b;
  b[0] = a;
  pgc_register_finalizer(a, [](void *, void *) { g_cycle_finalized.fetch_add(1); }, nullptr);
  pgc_register_finalizer(b, [](void *, void *) { g_cycle_finalized.fetch_add(1); }, nullptr);
}

}  // namespace

TEST_CASE("an object pointing into itself is finalized; a cycle of finalizable objects is not", "[api][finalizer]") {
  g_self_finalized = 0;
  g_cycle_finalized = 0;
  const int n = 64;
  MakeSelfReferencing(n);
  MakeFinalizableCycle();
  CHECK(CollectUntil([&] { return g_self_finalized.load() >= n - 1; }));  // conservative scanning may keep one
  CollectN(4);
  CHECK(g_self_finalized.load() <= n);
  CHECK(g_cycle_finalized.load() == 0);
}
