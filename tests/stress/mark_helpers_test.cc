// tests/stress/mark_helpers_test.cc — marking in parallel in the pause (gc/mark.h, "Helpers"): a parked thread that
// spins for the resume marks from its own stack while the collector marks the rest. A process of its own, with
// exactly one thread besides the collecting one, so that on a machine with two cores or more that thread spins
// and helps (with more threads than spare cores nothing spins: gc/threads.cc).
//
// What it guards:
//   - everything reachable only from the helper's stack survives: a linked list the worker keeps changing, and an
//     array of more objects than the helper's mark stack holds (made small: its overflow is recovered by the
//     collector);
//   - the heap verifier, run by every collection here, finds no reachable object unmarked and the marked bytes
//     equal to the live bytes counted (so a helper's counts are added once);
//   - on two cores or more, helpers actually ran, and at least once overflowed.
//   - with more threads than spare cores (nothing spins), a sleeping parked thread woken to mark scans stacks,
//     its own and others', and they survive.
//   - shared draining: a helper done with its stack, or with no other thread the library's mark thread (also in a
//     forked child, where it is started again), takes part of the collector's drain of a structure only the
//     globals reach, and nothing of it is lost, with a mark stack small enough to overflow and the default one;
//     in the concurrent twin run, the mark thread also takes part of concurrent cycles' marking while the program
//     runs (with the worker allocating, and alone).
// No timing assertions.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>

#include "common/test_util.h"
#include "gc/testing.h"

using namespace pgc_test;
namespace pgt = pacegc::internal::testing;

namespace {

struct Node {
  Node *next;
  uint64_t key;
  unsigned char payload[48];
};

constexpr size_t kListNodes = 20000;
constexpr size_t kArrayObjects = 40000;
constexpr size_t kMarkStackEntries = 1024;
constexpr int kMaxCollections = 3000;  // for the collector and the helpers: a 64 KiB chunk of the array overflows

std::atomic<bool> g_stop{false};
std::atomic<bool> g_ready{false};
std::atomic<uint64_t> g_failures{0};

Node *MakeNode(uint64_t key) {
  auto *n = static_cast<Node *>(pgc_malloc(sizeof(Node)));
  if (n == nullptr) return nullptr;
  n->key = key;
  FillPattern(n->payload, sizeof(n->payload), key);
  return n;
}

bool Intact(const Node *n, uint64_t key) {
  return n != nullptr && n->key == key && CheckPattern(n->payload, sizeof(n->payload), key);
}

// The worker's structures are reachable from this frame only (locals; nothing global points to them).
PGC_TEST_NOINLINE void Work() {
  Node *head = nullptr;
  for (size_t i = 0; i < kListNodes; ++i) {
    Node *n = MakeNode(i);
    if (n == nullptr) {
      g_failures.fetch_add(1);
      return;
    }
    n->next = head;
    head = n;
  }
  auto **array = static_cast<Node **>(pgc_malloc(kArrayObjects * sizeof(Node *)));
  if (array == nullptr) {
    g_failures.fetch_add(1);
    return;
  }
  for (size_t i = 0; i < kArrayObjects; ++i) array[i] = MakeNode(1000000 + i);
  g_ready.store(true);
  Rng rng(42);
  uint64_t round = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    // Running code when the signal comes: garbage, and one list node replaced by a new one now and then.
    for (int i = 0; i < 256; ++i) {
      void *garbage = pgc_malloc(64);
      if (garbage == nullptr) g_failures.fetch_add(1);
    }
    if (++round % 16 == 0) {
      size_t at = rng.Next() % (kListNodes - 1);
      Node *prev = head;
      for (size_t i = 0; i < at; ++i) prev = prev->next;
      Node *old = prev->next;
      Node *fresh = MakeNode(old->key);
      if (fresh == nullptr) {
        g_failures.fetch_add(1);
        continue;
      }
      fresh->next = old->next;
      prev->next = fresh;
    }
  }
  // Every node of both structures, after all the collections.
  size_t i = kListNodes;
  for (Node *n = head; n != nullptr; n = n->next) {
    if (!Intact(n, --i)) g_failures.fetch_add(1);
  }
  if (i != 0) g_failures.fetch_add(1);
  for (size_t k = 0; k < kArrayObjects; ++k) {
    if (!Intact(array[k], 1000000 + k)) g_failures.fetch_add(1);
  }
}

}  // namespace

// More threads than spare cores: nothing spins, and the collector wakes a sleeping parked thread to mark (its own
// stack, then any other nobody has claimed) when the stopped threads' stacks hold enough (128 KiB). Each worker
// keeps 6,000 objects in an array on its stack (48 KiB), replacing one now and then.
constexpr int kStackWorkers = 6;
constexpr size_t kStackSlots = 6000;
std::atomic<int> g_stack_ready{0};
std::atomic<bool> g_stack_stop{false};

PGC_TEST_NOINLINE void StackWork(int id) {
  Node *slots[kStackSlots];
  for (size_t i = 0; i < kStackSlots; ++i) {
    slots[i] = MakeNode(uint64_t(id) << 32 | i);
    if (slots[i] == nullptr) g_failures.fetch_add(1);
  }
  g_stack_ready.fetch_add(1);
  Rng rng(id);
  while (!g_stack_stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 64; ++i) {
      if (pgc_malloc(64) == nullptr) g_failures.fetch_add(1);
    }
    size_t at = rng.Next() % kStackSlots;
    Node *fresh = MakeNode(slots[at]->key);
    if (fresh == nullptr) {
      g_failures.fetch_add(1);
      continue;
    }
    slots[at] = fresh;
  }
  for (size_t i = 0; i < kStackSlots; ++i) {
    if (!Intact(slots[i], uint64_t(id) << 32 | i)) g_failures.fetch_add(1);
  }
}

// Helping is checked below, so pauses wait (at most 20 ms) for a helper to join: with the machine loaded, a parked
// thread may otherwise not get a core during any of the short pauses (3,000 in a row without, under a CPU hog).
constexpr uint64_t kHelperWaitNs = 20'000'000;
struct HelperWait {  // for one test case
  HelperWait() { pgt::SetHelperWaitNs(kHelperWaitNs); }
  ~HelperWait() { pgt::SetHelperWaitNs(0); }
};

TEST_CASE("a parked thread marks from its own stack, overflow included", "[helpers]") {
  HelperWait wait;
  pgt::SetMarkStackEntries(kMarkStackEntries);
  std::thread worker(Work);
  while (!g_ready.load() && g_failures.load() == 0) std::this_thread::yield();
  // At least 200 collections, and more (up to kMaxCollections) until the helper has marked, and overflowed, in
  // some: on a loaded machine the parked worker may not get a core during a short pause.
  int helped = 0, helped_with_overflow = 0, collections = 0;
  size_t problems = 0;
  while (collections < 200 || (helped_with_overflow == 0 && collections < kMaxCollections)) {
    problems += pgt::CollectAndVerify();
    ++collections;
    if (pgt::LastCycleHelpedStacks() != 0) {
      ++helped;
      if (pgt::LastCycleMarkOverflows() != 0) ++helped_with_overflow;
    }
  }
  g_stop.store(true);
  worker.join();
  pgt::SetMarkStackEntries(0);
  INFO("collections " << collections << ", helped in " << helped << ", with overflow in " << helped_with_overflow
                      << ", verifier problems " << problems << ", failures " << g_failures.load());
  CHECK(problems == 0);
  CHECK(g_failures.load() == 0);
  if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
    CHECK(helped > 0);
    CHECK(helped_with_overflow > 0);
  }
}

TEST_CASE("with more threads than spare cores, a sleeping parked thread is woken to mark", "[helpers]") {
  HelperWait wait;
  std::thread workers[kStackWorkers];
  for (int i = 0; i < kStackWorkers; ++i) workers[i] = std::thread(StackWork, i);
  while (g_stack_ready.load() < kStackWorkers && g_failures.load() == 0) std::this_thread::yield();
  int helped = 0, collections = 0;
  size_t problems = 0;
  while (collections < 200 || (helped == 0 && collections < kMaxCollections)) {
    problems += pgt::CollectAndVerify();
    ++collections;
    if (pgt::LastCycleHelpedStacks() != 0) ++helped;
  }
  g_stack_stop.store(true);
  for (auto &w : workers) w.join();
  INFO("collections " << collections << ", a woken thread marked in " << helped << ", verifier problems "
                      << problems << ", failures " << g_failures.load());
  CHECK(problems == 0);
  CHECK(g_failures.load() == 0);
  if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) CHECK(helped > 0);
}

// Shared draining (gc/mark.h): a structure only a global reaches (10 MiB: above the mark thread's threshold), so
// the collector finds all of it, and a helper done with its own small stack, or the mark thread, can only mark it
// by taking part of the collector's stack from the pool.
constexpr size_t kSharedObjects = 150000;
Node **g_shared_array = nullptr;  // data/bss: a root only the collector scans
std::atomic<bool> g_shared_stop{false};

void GarbageWork() {
  while (!g_shared_stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 64; ++i) {
      if (pgc_malloc(64) == nullptr) g_failures.fetch_add(1);
    }
  }
}

void BuildShared() {
  g_shared_array = static_cast<Node **>(pgc_malloc(kSharedObjects * sizeof(Node *)));
  REQUIRE(g_shared_array != nullptr);
  for (size_t i = 0; i < kSharedObjects; ++i) {
    Node *n = MakeNode(7000000 + i);
    g_shared_array[i] = n;
    // A short chain under every 16th node: work that is only found by scanning what was taken.
    if (n != nullptr && i % 16 == 0) n->next = MakeNode(8000000 + i);
  }
}

size_t SharedDamage() {
  size_t damage = 0;
  for (size_t i = 0; i < kSharedObjects; ++i) {
    const Node *n = g_shared_array[i];
    if (!Intact(n, 7000000 + i)) {
      ++damage;
    } else if (i % 16 == 0 ? !Intact(n->next, 8000000 + i) || n->next->next != nullptr : n->next != nullptr) {
      ++damage;
    }
  }
  return damage;
}

// Collections with the default mark stack, then with one small enough to overflow (the collector recovers the
// other markers' overflows), each until a pause shared its drain and, in a run with concurrent cycles (the twin run
// with PACEGC_CONCURRENT=always), until the mark thread took part of a cycle's marking while the program ran (mark.h,
// "Background sharing"). A concurrent cycle leaves its final pause little to drain: pause sharing is expected of
// stop-the-world cycles; every cycle is verified all the same.
struct SharedRun {
  int collections = 0;
  int stop_the_world = 0;
  int concurrent = 0;
  int shared = 0;
  int background = 0;  // concurrent cycles in which the mark thread scanned something
  size_t problems = 0;
  // The checks this run supports, on two cores or more (one core never uses the mark thread, and parked threads
  // do not spin): something shared by a stop-the-world pause, and by a concurrent cycle's background marking.
  static bool TwoCores() { return sysconf(_SC_NPROCESSORS_ONLN) >= 2; }
  bool SharingSeen() const { return !TwoCores() || stop_the_world == 0 || shared > 0; }
  bool BackgroundSeen() const { return !TwoCores() || concurrent == 0 || background > 0; }
  bool Done() const { return shared > 0 || stop_the_world == 0; }
  bool BackgroundDone() const { return background > 0 || concurrent == 0; }
};
uint64_t ConcurrentCycles() {
  pgc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  pgc_read_stats(&s);
  return s.num_concurrent_gc;
}
SharedRun CollectUntilShared(size_t mark_stack_entries) {
  HelperWait wait;
  pgt::SetMarkStackEntries(mark_stack_entries);
  SharedRun r;
  while (r.collections < 50 || ((!r.Done() || !r.BackgroundDone()) && r.collections < kMaxCollections / 10)) {
    const uint64_t concurrent_before = ConcurrentCycles();
    r.problems += pgt::CollectAndVerify();
    ++r.collections;
    if (ConcurrentCycles() == concurrent_before) {
      ++r.stop_the_world;
    } else {
      ++r.concurrent;
      if (pgt::LastCycleBackgroundThreadBytes() != 0) ++r.background;
    }
    if (pgt::LastCycleSharedEntries() != 0) ++r.shared;
  }
  pgt::SetMarkStackEntries(0);
  return r;
}

// The default mark stack, then one small enough to overflow: the verifier is clean, a pause shared its drain, and
// the mark thread shared a concurrent cycle's.
void CollectSharingWithBothStacks() {
  for (size_t entries : {size_t{0}, size_t{512}}) {
    SharedRun r = CollectUntilShared(entries);
    INFO("mark stack " << entries << ": collections " << r.collections << " (stop-the-world " << r.stop_the_world
                       << ", concurrent " << r.concurrent << "), shared in " << r.shared
                       << ", mark thread in the background in " << r.background << ", verifier problems "
                       << r.problems);
    CHECK(r.problems == 0);
    CHECK(r.SharingSeen());
    CHECK(r.BackgroundSeen());
  }
}

TEST_CASE("a parked thread done with its stack takes part of the collector's drain", "[helpers]") {
  g_failures = 0;
  BuildShared();
  std::thread worker(GarbageWork);
  CollectSharingWithBothStacks();
  g_shared_stop.store(true);
  worker.join();
  CHECK(SharedDamage() == 0);
  CHECK(g_failures.load() == 0);
  g_shared_array = nullptr;
}

TEST_CASE("with no other thread, the mark thread takes part of the collector's drain, also in a forked child",
          "[helpers]") {
  // Only this thread is registered now (the other cases joined theirs): nothing parks, so only the library's mark
  // thread can share the drain.
  g_failures = 0;
  BuildShared();
  CollectSharingWithBothStacks();
  CHECK(SharedDamage() == 0);
  // In a child of fork() the mark thread does not exist: the next pause that wants it starts it again.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    SharedRun r = CollectUntilShared(0);
    _exit(r.problems == 0 && SharedDamage() == 0 && r.SharingSeen() ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(g_failures.load() == 0);
  g_shared_array = nullptr;
}
