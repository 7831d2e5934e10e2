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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <unordered_set>

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
std::atomic<uint64_t> g_iterations{0};  // Mutate's rounds, both threads

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

// The structure: the first `arrays` arrays of `slots` nodes each (the others stay null).
PGC_TEST_NOINLINE void Build(int arrays = kArrays, int slots = kSlots) {
  for (int a = 0; a < arrays; ++a) {
    g_arrays[a] = static_cast<Node **>(pgc_malloc(slots * sizeof(Node *)));
    REQUIRE(g_arrays[a] != nullptr);
    for (int i = 0; i < slots; ++i) g_arrays[a][i] = MakeChained();
  }
}

// One round of the mutators: `garbage` objects of garbage, filled so that a live node reused for it fails its check,
// then a replaced or a moved node among the first `arrays` arrays' first `slots` slots.
void MutateRound(Rng &rng, int garbage, int arrays, int slots) {
  g_iterations.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < garbage; ++i) {
    void *p = pgc_malloc(64);
    if (p == nullptr) {
      g_failures.fetch_add(1);
      continue;
    }
    memset(p, 0xAB, 64);
  }
  Node **a = g_arrays[rng.Next() % arrays];
  Node **b = g_arrays[rng.Next() % arrays];
  const size_t i = rng.Next() % slots, j = rng.Next() % slots;
  // Slots are shared by both threads: relaxed atomics (plain loads and stores on x86-64 and AArch64).
  if (rng.Next() % 2 == 0) {
    Node *fresh = MakeChained();  // replace: the old node dies, the new one must be kept
    if (fresh == nullptr) {
      g_failures.fetch_add(1);
      return;
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

PGC_TEST_NOINLINE void Mutate(uint64_t seed) {
  Rng rng(seed);
  while (!g_stop.load(std::memory_order_relaxed)) MutateRound(rng, 32, kArrays, kSlots);
}

size_t CountBroken(int arrays = kArrays, int slots = kSlots) {
  size_t broken = 0;
  for (int a = 0; a < arrays; ++a) {
    for (int i = 0; i < slots; ++i) broken += Intact(g_arrays[a][i]) ? 0 : 1;
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

// The mutation run of the two test cases below; `preclean`: every cycle pre-cleans (below 64 MiB marked, which this
// structure is, cycles go from marking straight to the final pause).
void MutateWhileCollecting(bool preclean) {
  const bool tracker = pacegc::internal::dirty::Available();
  if (!tracker) {
    WARN("no write tracker here (" << pacegc::internal::dirty::Detect().reason << "): cycles are stop-the-world");
  }
  Build();
  if (preclean) pgt::SetPrecleanMinMarkedBytes(0);
  const pgc_stats before = ReadStats();
  g_stop.store(false);
  g_iterations.store(0);
  std::thread t1(Mutate, 1), t2(Mutate, 2);
  size_t problems = 0;
  int collections = 0;
  uint64_t precleaned_spans = 0;
  const int want = static_cast<int>(Scaled(24, 4));  // (PACEGC_STRESS_SCALE: fewer under the sanitizers)
  // Pre-cleaning tracks a span only if a thread's cache let it go full while that cycle marked, which is timing: a
  // slow machine under a sanitizer ran 6 cycles without one (CI, stop 35). So the threads have allocated before the
  // first cycle, and with pre-cleaning on, cycles go on (up to `extra` more) until one pre-cleaned a span.
  while (g_iterations.load(std::memory_order_relaxed) < 64) std::this_thread::yield();
  const int extra = preclean && tracker ? 60 : 0;
  for (; collections < want || (precleaned_spans == 0 && collections < want + extra); ++collections) {
    problems += pgt::CollectAndVerify();
    precleaned_spans += pgt::LastCyclePrecleanedSpans();
  }
  g_stop.store(true);
  t1.join();
  t2.join();
  pgt::SetPrecleanMinMarkedBytes(UINT64_MAX);
  const pgc_stats after = ReadStats();
  INFO("collections " << collections << ", concurrent " << after.num_concurrent_gc - before.num_concurrent_gc
                      << ", verifier problems " << problems << ", allocation failures " << g_failures.load()
                      << ", filled spans pre-cleaned " << precleaned_spans);
  CHECK(problems == 0);
  CHECK(g_failures.load() == 0);
  CHECK(CountBroken() == 0);
  if (tracker) {
    CHECK(after.num_concurrent_gc - before.num_concurrent_gc >= static_cast<uint64_t>(collections));
    // The threads fill spans while every cycle marks (their allocations stay below the goal), and let them go full:
    // pre-cleaning must have tracked some (else the case below tests nothing new).
    if (preclean) CHECK(precleaned_spans > 0);
  } else {
    CHECK(after.num_concurrent_gc == 0);
  }

  // The garbage of the concurrent cycles is gone a few cycles later: the live heap is the structure (the arrays, and
  // two nodes for each distinct node in a slot: racing swaps can leave one node in two slots and drop another, so
  // the distinct ones are counted; a run on 2026-12-06 had one duplicate, 128 bytes under a count by slots), with a
  // little conservative slack.
  CollectN(3);
  std::unordered_set<const Node *> distinct;
  for (auto &array : g_arrays) {
    for (int i = 0; i < kSlots; ++i) distinct.insert(array[i]);
  }
  const uint64_t structure =
      uint64_t{kArrays} * kSlots * sizeof(Node *) + uint64_t{distinct.size()} * 2 * sizeof(Node);
  const pgc_stats settled = ReadStats();
  INFO("live " << settled.heap_live_bytes << ", structure " << structure << " (" << distinct.size()
                << " distinct nodes in " << kArrays * kSlots << " slots)");
  CHECK(settled.heap_live_bytes >= structure);
  CHECK(settled.heap_live_bytes < structure + structure / 4);
  CHECK(CountBroken() == 0);
  for (auto &array : g_arrays) array = nullptr;
}

}  // namespace

TEST_CASE("old objects written while the collector marks are never lost", "[concurrent]") {
  MutateWhileCollecting(/*preclean=*/false);
}

// gc/concurrent.cc, PrecleanFilled: the spans the threads fill during a cycle are protected and re-scanned once their
// cache lets them go, and from then on only their written pages are re-scanned by the final pause. The verifier
// checks that nothing written to them before or after is lost.
TEST_CASE("spans filled during a cycle and tracked by pre-cleaning lose nothing", "[concurrent]") {
  MutateWhileCollecting(/*preclean=*/true);
}

namespace {

// A smaller structure (2 x 8192 nodes, 2 MiB) whose cycles are short, and rounds of 8 garbage objects after ~50 us
// of computing: threads that allocate slowly enough (~10 MB/s each) for the Pacer's runway to fit. Its two arrays
// (64 KiB each) are large objects the threads write all the time: a runway cycle leaves them writable, flagged
// (gc/concurrent.cc, RangeBatch), and pre-cleaning or the final pause scans them again.
constexpr int kSmallArrays = 2, kSmallSlots = 8192;

// The spin between rounds: the allocation rate against the marker's scan rate decides whether Go's runway fits.
// ThreadSanitizer slows the marker several times more than a timed spin slows the program (measured: 719 cycles
// in 3 minutes, none a runway cycle, with 50 us), so its build spins longer.
#if defined(__SANITIZE_THREAD__)
constexpr int kSlowSpinUs = 1000;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kSlowSpinUs = 1000;
#else
constexpr int kSlowSpinUs = 50;
#endif
#else
constexpr int kSlowSpinUs = 50;
#endif

// The spin MutateSlowly uses now: kSlowSpinUs to begin with, doubled by the runway case while no runway cycle comes
// (a slower machine, or a sanitizer slowing the marker more than the spin: measured, 1,127 cycles in 3 minutes and
// none a runway cycle under ASan on a VM twice as slow as the one kSlowSpinUs was chosen on). The workload adapts;
// what is checked does not.
std::atomic<int> g_spin_us{kSlowSpinUs};
constexpr int kMaxSpinUs = 20000;

PGC_TEST_NOINLINE void MutateSlowly(uint64_t seed) {
  Rng rng(seed);
  while (!g_stop.load(std::memory_order_relaxed)) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(g_spin_us.load());
    while (std::chrono::steady_clock::now() < until) {
    }
    MutateRound(rng, 8, kSmallArrays, kSmallSlots);
  }
}

}  // namespace

// pacer/trigger.h and gc/collector.cc, "Runway cycles": threads that compute between allocations get cycles the
// background thread starts below the goal (the Pacer's runway fits once it has measured them), and allocate on
// through the marking, assisting it; every automatic cycle is verified, and nothing reachable is lost.
TEST_CASE("runway cycles: threads that allocate slowly allocate on while the background thread marks",
          "[concurrent]") {
  if (!pacegc::internal::dirty::Available()) {
    WARN("no write tracker here: no concurrent cycle, so no runway");
    return;
  }
  if (ReadStats().cpu_capacity < 2) {
    WARN("fewer than 2 CPUs: runway cycles need a core for the background marker");
    return;
  }
  Build(kSmallArrays, kSmallSlots);
  pgt::SetVerifyEveryCycle(true);
  const size_t problems_before = pgt::VerifyProblemsTotal();
  const uint64_t lifted_before = pgt::LiftedWrittenSpans();
  const pgc_stats before = ReadStats();
  g_stop.store(false);
  g_spin_us.store(kSlowSpinUs);
  std::thread t1(MutateSlowly, 3), t2(MutateSlowly, 4);
  // The first cycles start at the goal (the estimate holds the build's fast allocation for 5 cycles); then runway
  // cycles. Up to 3 minutes (the sanitizer builds are slow), until 3 have run; every 25 cycles without a runway
  // cycle the threads compute twice as long between allocations (g_spin_us, up to kMaxSpinUs).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  pgc_stats now = ReadStats();
  uint64_t cycles_at_spin = now.num_gc;
  while (now.num_runway_gc - before.num_runway_gc < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    now = ReadStats();
    if (now.num_runway_gc == before.num_runway_gc && now.num_gc - cycles_at_spin >= 25 &&
        g_spin_us.load() < kMaxSpinUs) {
      g_spin_us.store(std::min(g_spin_us.load() * 2, kMaxSpinUs));
      cycles_at_spin = now.num_gc;
    }
  }
  g_stop.store(true);
  t1.join();
  t2.join();
  pgt::SetVerifyEveryCycle(false);
  const pgc_stats after = ReadStats();
  INFO("cycles " << after.num_gc - before.num_gc << ", concurrent " << after.num_concurrent_gc - before.num_concurrent_gc
                 << ", runway " << after.num_runway_gc - before.num_runway_gc << ", assist CPU "
                 << after.assist_cpu_ns - before.assist_cpu_ns << " ns, spin " << g_spin_us.load() << " us");
  CHECK(after.num_runway_gc - before.num_runway_gc >= 3);
  CHECK(after.num_runway_gc - before.num_runway_gc <= after.num_concurrent_gc - before.num_concurrent_gc);
  INFO("large written spans left writable by runway cycles: " << pgt::LiftedWrittenSpans() - lifted_before);
  CHECK(pgt::LiftedWrittenSpans() > lifted_before);
  CHECK(pgt::VerifyProblemsTotal() == problems_before);
  CHECK(g_failures.load() == 0);
  CHECK(CountBroken(kSmallArrays, kSmallSlots) == 0);
  for (auto &array : g_arrays) array = nullptr;
}

namespace {

void CountPages(uintptr_t lo, uintptr_t hi, void *arg) { *static_cast<size_t *>(arg) += (hi - lo) / 4096; }

// Pages of [p, p + bytes) that are writable now (not write-protected): what the tracker would report as written.
size_t WritablePages(const void *p, size_t bytes) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + bytes;
  size_t pages = 0;
  REQUIRE(pacegc::internal::dirty::ReportDirty(lo, hi, CountPages, &pages) == 0);
  return pages;
}

constexpr size_t kArrayPointers = 16384;  // 128 KiB: a large object of its own pages

PGC_TEST_NOINLINE void **FilledArray() {
  auto **array = static_cast<void **>(pgc_malloc(kArrayPointers * sizeof(void *)));
  REQUIRE(array != nullptr);
  for (size_t i = 0; i < kArrayPointers; i += 512) array[i] = pgc_malloc(64);  // one pointer per 4 KiB page
  return array;
}

PGC_TEST_NOINLINE void WriteEveryPage(void **array) {
  for (size_t i = 0; i < kArrayPointers; i += 512) array[i] = pgc_malloc(64);
}

}  // namespace

// gc/concurrent.h, "Protection between cycles": the protection outlives the cycle on what the program does not write,
// and a span it writes between every two cycles is left writable at most ends and probed (all but its last page
// writable) at the others. Observed through the kernel's page
// tables (PAGEMAP_SCAN), after collections started as a program starts them.
TEST_CASE("the write protection outlives the cycle where the program does not write", "[concurrent]") {
  if (!pacegc::internal::dirty::Available()) {
    WARN("no write tracker here: nothing is protected");
    return;
  }
  static void **cold, **hot;  // static: roots
  cold = FilledArray();
  hot = FilledArray();
  const size_t bytes = kArrayPointers * sizeof(void *), pages = bytes / 4096;
  const pgc_stats before = ReadStats();
  pgc_collect();
  constexpr int kCycles = 12;
  int hot_writable = 0, hot_probed = 0;
  void **const hot_last_page = hot + (pages - 1) * (4096 / sizeof(void *));
  for (int i = 0; i < kCycles; ++i) {
    WriteEveryPage(hot);  // (every page, the last one included)
    pgc_collect();
    INFO("cycle " << i);
    // Written before the first cycle, never since: protected from the first cycle's end on.
    CHECK(WritablePages(cold, bytes) == 0);
    const size_t writable = WritablePages(hot, bytes);
    const size_t last_writable = WritablePages(hot_last_page, 4096);
    // A span is made writable whole, or all but its last page (a hot span probed: concurrent.cc, LiftEnd), or not
    // at all.
    CHECK((writable == 0 || writable == pages || (writable == pages - 1 && last_writable == 0)));
    hot_writable += writable == pages ? 1 : 0;
    hot_probed += writable == pages - 1 ? 1 : 0;
  }
  // Hot for 4 cycles after each time it is seen written, then probed for one interval (concurrent.cc, kHotCycles):
  // 9 or 10 of these 12 ends leave it writable, the others probe it. At least 8 tolerates a cycle the test did not
  // start (a periodic one).
  INFO("the hot array was writable after " << hot_writable << " and probed after " << hot_probed << " of "
                                           << kCycles << " cycles");
  CHECK(hot_writable >= 8);
  CHECK(hot_probed >= 1);  // it was probed in between, to find out whether it is still hot,
  CHECK(hot_writable + hot_probed >= kCycles - 1);  // and each probe found it written: never protected whole
  // (Every one of these cycles marked concurrently: PACEGC_CONCURRENT=always, set by ctest.)
  CHECK(ReadStats().num_concurrent_gc - before.num_concurrent_gc >= static_cast<uint64_t>(kCycles + 1));
  cold = hot = nullptr;
}

// Last in this file (Catch2 runs test cases in declaration order): it ends concurrent marking for the process.
// A kernel that refuses the protection at a cycle's start (ENOMEM: injected here before the system call) ends
// concurrent mode with a message; that cycle and every later one runs stop-the-world, nothing is lost, and the
// protection earlier cycles left on the heap is dropped (allocators would otherwise fault on it for good).
TEST_CASE("a refused protection ends concurrent marking and drops the protection", "[concurrent]") {
  if (!pacegc::internal::dirty::Available()) {
    WARN("no write tracker here: nothing to refuse");
    return;
  }
  static void **cold;  // static: a root
  cold = FilledArray();
  const size_t bytes = kArrayPointers * sizeof(void *), pages = bytes / 4096;
  pgc_collect();
  const pgc_stats before = ReadStats();
  REQUIRE(WritablePages(cold, bytes) == 0);  // protected by that cycle, and left so (not written since)
  void *const kept = cold[512];
  pacegc::internal::dirty::FailNextCollectsForTesting(1);
  pgc_collect();
  pacegc::internal::dirty::FailNextCollectsForTesting(0);
  pgc_collect();
  const pgc_stats after = ReadStats();
  CHECK(after.num_gc - before.num_gc == 2);
  CHECK(after.num_concurrent_gc == before.num_concurrent_gc);  // both stop-the-world
  CHECK(WritablePages(cold, bytes) == pages);                    // the protection is gone
  CHECK(cold[512] == kept);
  CHECK(pgc_size(kept) >= 64);  // still allocated: reachable objects were kept by the stop-the-world cycles
  CHECK(pgt::CollectAndVerify() == 0);
  cold = nullptr;
}
