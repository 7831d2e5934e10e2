// tests/stress/concurrent_test.cc — mostly-concurrent marking (gc/concurrent.h) under mutation: a process of its own
// with PACEGC_CONCURRENT=always (set by ctest), so that every collection marks while these threads run.
//
// What it guards:
//   - the heap verifier, run by every collection here after the final pause's marking, finds no reachable object
//     unmarked while two threads keep writing into old objects during marking: replacing pointers with new objects,
//     and swapping pointers between arrays (an object whose only reference moves from an array the marker has not
//     scanned yet into one it has scanned is the case a collector without write tracking loses);
//   - every object reachable at the end is intact (a live object freed and reused by the threads' garbage, which is
//     filled with 0xAB, fails its check);
//   - garbage made during concurrent cycles is reclaimed: a few collections after the threads stop, the live heap
//     is close to the structure's size;
//   - cycles were concurrent when the kernel has the tracker, and all stop-the-world when it has not.
// No timing assertions.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>

#include "base/dirty.h"
#include "common/test_util.h"
#include "gc/testing.h"

using namespace pgc_test;
namespace pgt = pacegc::internal::testing;

namespace {

struct Node {
  uint64_t key;
  uint64_t check;  // Check(key)
  Node *next;      // a short chain: pointers inside old objects, not only in the arrays
  uint64_t pad[5];
};
static_assert(sizeof(Node) == 64);

uint64_t Check(uint64_t key) { return key * 0x9E3779B97F4A7C15ull ^ 0x5DEECE66Dull; }

constexpr int kArrays = 64;
constexpr int kSlots = 4096;  // 64 x 4096 nodes (+ one chained node each) = 32 MiB live: above the 16 MiB of `on`
Node **g_arrays[kArrays];
std::atomic<uint64_t> g_next_key{1};
std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_failures{0};

Node *MakeNode() {
  auto *n = static_cast<Node *>(pgc_malloc(sizeof(Node)));
  if (n == nullptr) return nullptr;
  n->key = g_next_key.fetch_add(1, std::memory_order_relaxed);
  n->check = Check(n->key);
  n->next = nullptr;
  return n;
}

Node *MakeChained() {
  Node *n = MakeNode();
  if (n != nullptr) n->next = MakeNode();
  return n;
}

bool Intact(const Node *n) {
  if (n == nullptr || n->check != Check(n->key)) return false;
  return n->next == nullptr || n->next->check == Check(n->next->key);
}

PGC_TEST_NOINLINE void Build() {
  for (auto &array : g_arrays) {
    array = static_cast<Node **>(pgc_malloc(kSlots * sizeof(Node *)));
    REQUIRE(array != nullptr);
    for (int i = 0; i < kSlots; ++i) array[i] = MakeChained();
  }
}

PGC_TEST_NOINLINE void Mutate(uint64_t seed) {
  Rng rng(seed);
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 32; ++i) {  // garbage, filled so that a live node reused for it fails its check
      void *p = pgc_malloc(64);
      if (p == nullptr) {
        g_failures.fetch_add(1);
        continue;
      }
      memset(p, 0xAB, 64);
    }
    Node **a = g_arrays[rng.Next() % kArrays];
    Node **b = g_arrays[rng.Next() % kArrays];
    const size_t i = rng.Next() % kSlots, j = rng.Next() % kSlots;
    // Slots are shared by both threads: relaxed atomics (plain loads and stores on x86-64 and AArch64).
    if (rng.Next() % 2 == 0) {
      Node *fresh = MakeChained();  // replace: the old node dies, the new one must be kept
      if (fresh == nullptr) {
        g_failures.fetch_add(1);
        continue;
      }
      __atomic_store_n(&a[i], fresh, __ATOMIC_RELAXED);
    } else {
      // Move: for a moment the node is only in this thread's registers, then only in b (and a's slot gets b's).
      // Swaps race with the other thread's: a node may end in two slots and another be dropped, never lost while
      // referenced.
      Node *x = __atomic_load_n(&a[i], __ATOMIC_RELAXED);
      Node *y = __atomic_exchange_n(&b[j], x, __ATOMIC_RELAXED);
      __atomic_store_n(&a[i], y, __ATOMIC_RELAXED);
    }
  }
}

size_t CountBroken() {
  size_t broken = 0;
  for (auto &array : g_arrays) {
    for (int i = 0; i < kSlots; ++i) broken += Intact(array[i]) ? 0 : 1;
  }
  return broken;
}

pgc_stats ReadStats() {
  pgc_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  pgc_read_stats(&s);
  return s;
}

}  // namespace

TEST_CASE("old objects written while the collector marks are never lost", "[concurrent]") {
  const bool tracker = pacegc::internal::dirty::Available();
  if (!tracker) {
    WARN("no write tracker here (" << pacegc::internal::dirty::Detect().reason << "): cycles are stop-the-world");
  }
  Build();
  const pgc_stats before = ReadStats();
  std::thread t1(Mutate, 1), t2(Mutate, 2);
  size_t problems = 0;
  int collections = 0;
  const int want = static_cast<int>(Scaled(24, 4));  // (PACEGC_STRESS_SCALE: fewer under the sanitizers)
  for (; collections < want; ++collections) problems += pgt::CollectAndVerify();
  g_stop.store(true);
  t1.join();
  t2.join();
  const pgc_stats after = ReadStats();
  INFO("collections " << collections << ", concurrent " << after.num_concurrent_gc - before.num_concurrent_gc
                      << ", verifier problems " << problems << ", allocation failures " << g_failures.load());
  CHECK(problems == 0);
  CHECK(g_failures.load() == 0);
  CHECK(CountBroken() == 0);
  if (tracker) {
    CHECK(after.num_concurrent_gc - before.num_concurrent_gc >= static_cast<uint64_t>(collections));
  } else {
    CHECK(after.num_concurrent_gc == 0);
  }

  // The garbage of the concurrent cycles is gone a few cycles later: the live heap is the structure (arrays and
  // two nodes per slot), with a little conservative slack.
  CollectN(3);
  const uint64_t structure = uint64_t{kArrays} * (kSlots * sizeof(Node *) + uint64_t{kSlots} * 2 * sizeof(Node));
  const pgc_stats settled = ReadStats();
  INFO("live " << settled.heap_live_bytes << ", structure " << structure);
  CHECK(settled.heap_live_bytes >= structure);
  CHECK(settled.heap_live_bytes < structure + structure / 4);
  CHECK(CountBroken() == 0);
  for (auto &array : g_arrays) array = nullptr;
}
