// tests/stress/fault_test.cc — fault injection (issue 16, item 7): the OS refusing heap memory (mmap/mprotect) and
// returning pages (madvise), and collector metadata running out, at random points while threads allocate,
// collect, free and finalize; and a registered thread that vanishes without unregistering. What must hold:
// nothing reachable is lost, every finalizer still runs exactly once, allocations fail only with NULL and errno
// ENOMEM, the heap verifier finds nothing afterwards, and no injected failure crashes the process.
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "common/structures.h"
#include "common/test_util.h"
#include "gc/testing.h"

using namespace pgc_test;
namespace pgt = pacegc::internal::testing;

namespace {

FinalizerLog g_fault_log;
void *volatile g_fault_sink = nullptr;
void FaultFinalizer(void *, void *data) { g_fault_log.Hit(FinalizerLog::Id(data)); }

// Finalizable garbage registered before any failure is injected, so every registration took effect.
PGC_TEST_NOINLINE void MakeFinalizable(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void *p = pgc_malloc(32 + (i % 5) * 48);
    if (p == nullptr) DieOutOfMemory(256);
    pgc_register_finalizer(p, FaultFinalizer, FinalizerLog::Data(i));
  }
}

struct WorkerResult {
  uint64_t allocations = 0;
  uint64_t failures = 0;     // NULL with errno ENOMEM
  uint64_t bad_errno = 0;    // NULL with any other errno
  bool intact = true;
};

// Keeps a ring of kRing objects (in a collected table on the stack) with patterns, replacing, freeing and
// re-checking them; now and then a large object, which needs fresh OS memory.
PGC_TEST_NOINLINE void Worker(uint64_t seed, const std::atomic<bool> *stop, std::atomic<int> *ready,
                              WorkerResult *r) {
  constexpr size_t kRing = 512;
  Rng rng(seed);
  auto **ring = static_cast<unsigned char **>(pgc_malloc(kRing * sizeof(void *)));
  auto *sizes = static_cast<size_t *>(pgc_malloc_atomic(kRing * sizeof(size_t)));
  if (ring == nullptr || sizes == nullptr) DieOutOfMemory(kRing * sizeof(void *));
  for (size_t i = 0; i < kRing; ++i) sizes[i] = 0;
  ready->fetch_add(1);  // registered, with its ring: failures may be injected from now on
  while (!stop->load(std::memory_order_relaxed)) {
    size_t i = rng.Below(kRing);
    if (ring[i] != nullptr && !CheckPattern(ring[i], sizes[i], seed * kRing + i)) r->intact = false;
    if (ring[i] != nullptr && rng.Below(4) == 0) pgc_free(ring[i]);
    ring[i] = nullptr;
    size_t size = rng.Below(64) == 0 ? (size_t{1} << 20) * (1 + rng.Below(4)) : 16 + rng.Below(2000);
    errno = 0;
    void *p = rng.Below(2) == 0 ? pgc_malloc(size) : pgc_malloc_atomic(size);
    ++r->allocations;
    if (p == nullptr) {
      ++(errno == ENOMEM ? r->failures : r->bad_errno);
      continue;
    }
    FillPattern(p, size, seed * kRing + i);
    ring[i] = static_cast<unsigned char *>(p);
    sizes[i] = size;
  }
  for (size_t i = 0; i < kRing; ++i) {
    if (ring[i] != nullptr && !CheckPattern(ring[i], sizes[i], seed * kRing + i)) r->intact = false;
  }
}

}  // namespace

TEST_CASE("fault injection: OS refusals, madvise failures and metadata exhaustion at random points lose nothing",
          "[stress][fault]") {
  const size_t kFinalizable = 2000;
  g_fault_log.Reset();
  Forest forest(77, 20000, 3000);
  MakeFinalizable(kFinalizable);

  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  WorkerResult results[3];
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&, t] {
      pacegc::ThreadScope scope;
      Worker(1000 + static_cast<uint64_t>(t), &stop, &ready, &results[t]);
    });
  }
  while (ready.load() < 3) std::this_thread::yield();
  Rng rng(4242);
  const uint64_t rounds = Scaled(400, 50);
  uint64_t short_threads_failed = 0;
  for (uint64_t round = 0; round < rounds; ++round) {
    int n = 1 + static_cast<int>(rng.Below(3));
    switch (rng.Below(5)) {
      case 0: pgt::FailNextOsMaps(n); break;
      case 1:
        pgt::FailNextOsReleases(n);
        pgc_free_os_memory();
        break;
      case 2: pgt::FailNextMetaAllocs(n); break;
      case 3: {  // metadata exhaustion during a collection (span records, finalizer queue, segments, verifier)
        pgt::FailNextMetaAllocs(n);
        pgc_collect();
        break;
      }
      default: {  // a thread registering (its record is metadata) and allocating while metadata may run out
        pgt::FailNextMetaAllocs(n);
        std::thread([&] {
          errno = 0;
          void *p = pgc_malloc(100);
          if (p == nullptr && errno != ENOMEM) ++short_threads_failed;
        }).join();
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 + rng.Below(2000)));
  }
  pgt::FailNextOsMaps(0);
  pgt::FailNextOsReleases(0);
  pgt::FailNextMetaAllocs(0);
  stop = true;
  for (auto &w : workers) w.join();

  uint64_t allocations = 0, failures = 0;
  for (const WorkerResult &r : results) {
    CHECK(r.intact);
    CHECK(r.bad_errno == 0);
    allocations += r.allocations;
    failures += r.failures;
  }
  INFO(allocations << " allocations, " << failures << " failed with ENOMEM, " << pgt::OsMapFailures()
                   << " OS refusals so far");
  CHECK(allocations > 0);
  CHECK(short_threads_failed == 0);
  CHECK(forest.Verify());
  CHECK(pgt::CollectAndVerify() == 0);
  // Every finalizer registered before the faults runs, exactly once, even if discovery ran out of memory.
  ScrubStack();
  CHECK(CollectUntil([&] { return g_fault_log.Ran(kFinalizable) == kFinalizable; }, 20));
  int max_count = 0;
  CHECK(g_fault_log.Ran(kFinalizable, &max_count) == kFinalizable);
  CHECK(max_count == 1);
  // The heap is fully usable afterwards.
  void *p = pgc_malloc(4 << 20);
  CHECK(p != nullptr);
  CHECK(forest.Verify());
}

TEST_CASE("fault injection: madvise failing leaves pages resident and counted, and a later release succeeds",
          "[stress][fault]") {
  for (int i = 0; i < 64; ++i) g_fault_sink = pgc_malloc_atomic(256 << 10);  // garbage: free pages after a cycle
  g_fault_sink = nullptr;
  pgc_collect();
  // Every release fails, however many the background scavenger also attempts meanwhile (it may run while a
  // concurrent cycle marks with the heap lock released, and each attempt takes one of the injected failures).
  pgt::FailNextOsReleases(1'000'000'000);
  const size_t released_failing = pgc_free_os_memory();
  pgt::FailNextOsReleases(0);
  const pgc_stats s = Stats();
  CHECK(released_failing == 0);
  CHECK(s.heap_mapped_bytes == s.heap_in_use_bytes + s.heap_free_bytes);  // still counted resident
  CHECK(s.heap_free_bytes > 0);
  CHECK(pgc_free_os_memory() > 0);
  CHECK(pgt::CollectAndVerify() == 0);
}

namespace {

Node *volatile g_vanished_list = nullptr;  // a root in the data segment
std::atomic<pid_t> g_vanished_tid{0};

// Registers (by allocating), publishes a list, keeps claimed-but-unused slots in its cache, and leaves with a raw
// exit: no thread-specific-data destructor runs, so it never unregisters.
void *VanishingThread(void *) {
  Node *head = nullptr;
  for (uint64_t k = 1; k <= 2000; ++k) {
    Node *n = NewNode(Mix(k) | 1);
    n->a = head;
    head = n;
  }
  g_vanished_list = head;
  for (int i = 0; i < 10; ++i) g_fault_sink = pgc_malloc(24 + 16 * i);  // claims cache slots in several classes
  g_fault_sink = nullptr;
  g_vanished_tid = static_cast<pid_t>(syscall(SYS_gettid));
  syscall(SYS_exit, 0);
  return nullptr;
}

}  // namespace

TEST_CASE("a registered thread that vanishes without unregistering: its objects and cache are not lost",
          "[stress][fault][threads]") {
#if defined(__SANITIZE_THREAD__)
  // A thread that leaves with a raw SYS_exit is dead to the kernel but not to ThreadSanitizer, which then reports
  // the collector's clean-up of its cache (on whichever thread collects next) as a race with the dead thread's last
  // fast-path read: nothing orders them that TSan can see. The release and UBSan builds run this test.
  WARN("skipped under ThreadSanitizer: a raw SYS_exit is invisible to it");
  return;
#endif
#if defined(__SANITIZE_ADDRESS__)
  // Nor does AddressSanitizer see the thread go: its per-thread state is never torn down, glibc hands the dead
  // thread's cached stack and TLS to the next thread created, and ASan's runtime then aborts that thread's start
  // ("CHECK failed: asan_thread.cpp:449 ((0)) == ((AsanTSDGet()))"), failing whichever test creates threads next
  // (the 8-thread alloc_scaling stress case, since it runs after this one).
  WARN("skipped under AddressSanitizer: a raw SYS_exit leaves ASan's thread state behind");
  return;
#endif
  pgc_collect();
  const uint64_t threads_before = Stats().num_threads;
  pthread_t thread;
  REQUIRE(pthread_create(&thread, nullptr, VanishingThread, nullptr) == 0);
  pthread_join(thread, nullptr);  // the kernel clears the tid at exit, so join returns
  REQUIRE(g_vanished_tid.load() != 0);
  CHECK(Stats().num_threads == threads_before + 1);  // still registered: nothing unregistered it
  pgc_collect();                                      // finds it gone (ESRCH) and drops it, returning its cache
  CHECK(Stats().num_threads == threads_before);
  CHECK(pgt::CollectAndVerify() == 0);
  uint64_t k = 2000;
  bool intact = true;
  for (Node *n = g_vanished_list; n != nullptr; n = n->a, --k) {
    intact = intact && NodeIntact(n) && n->key == (Mix(k) | 1);
  }
  CHECK(intact);
  CHECK(k == 0);
  g_vanished_list = nullptr;
}
