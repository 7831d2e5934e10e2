// Unit tests for gc/threads: the registry's counting, automatic registration, and removal at thread exit.
// (Registration at thread start, blocking regions and the finalizer thread are tested as a program meets them, in
// tests/threads/.)
#include <catch2/catch.hpp>

#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "base/meta.h"
#include "gc/collector.h"
#include "gc/heap.h"
#include "gc/threads.h"

using namespace pacegc::internal;

namespace {
size_t RegisteredCount() {
  threads::LockRegistry();
  size_t n = threads::Count();
  threads::UnlockRegistry();
  return n;
}
// Inside a blocking region: where the collector would start scanning this thread's stack, and the top of what
// this function's call wrote: its frame record (saved frame pointer, then the return address), whose end is the
// caller's stack pointer at the call on x86-64. (On AArch64 GCC may put locals above the frame record: the check is
// then weaker, never wrong.)
uintptr_t g_region_scan_from = 0;
uintptr_t g_region_code_top = 0;
__attribute__((noinline)) void *RecordFromRegion(void *) {
  g_region_code_top = reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) + 2 * sizeof(void *);
  g_region_scan_from = t_current->suspended_sp;
  return nullptr;
}
}  // namespace

TEST_CASE("the main thread is registered at load time", "[threads]") {
  CHECK(t_current != nullptr);
  CHECK(t_current->stack_lo < t_current->stack_hi);
  int local = 0;
  auto addr = reinterpret_cast<uintptr_t>(&local);
  CHECK(addr >= t_current->stack_lo);
  CHECK(addr < t_current->stack_hi);
}

TEST_CASE("registration is counted and a thread is removed at zero", "[threads]") {
  size_t before = RegisteredCount();
  std::atomic<bool> ok{true};
  std::thread th([&] {
    // Registered from its start (pthread_create is interposed: gc/thread_start.h); drop that registration first.
    if (t_current == nullptr || RegisteredCount() != before + 1) ok = false;
    pgc_unregister_thread();
    if (t_current != nullptr || RegisteredCount() != before) ok = false;
    if (pgc_register_thread() != 0) ok = false;
    if (RegisteredCount() != before + 1) ok = false;
    if (pgc_register_thread() != 0) ok = false;  // nested: counted
    if (RegisteredCount() != before + 1) ok = false;
    pgc_unregister_thread();
    if (t_current == nullptr || RegisteredCount() != before + 1) ok = false;
    pgc_unregister_thread();
    if (t_current != nullptr || RegisteredCount() != before) ok = false;
  });
  th.join();
  CHECK(ok);
  CHECK(RegisteredCount() == before);
}

TEST_CASE("a thread is registered by its first allocation and removed when it exits", "[threads]") {
  size_t before = RegisteredCount();
  std::atomic<size_t> during{0};
  std::thread th([&] {
    pgc_unregister_thread();  // as a thread pacegc did not see being created
    void *p = pgc_malloc(64);
    during = (p != nullptr && t_current != nullptr) ? RegisteredCount() : 0;
  });
  th.join();
  CHECK(during == before + 1);
  CHECK(RegisteredCount() == before);  // the exit hook unregistered it
}

TEST_CASE("a thread that exits still registered (explicitly) is removed", "[threads]") {
  size_t before = RegisteredCount();
  std::thread th([] {
    pgc_register_thread();
    pgc_register_thread();  // two registrations, never undone
  });
  th.join();
  CHECK(RegisteredCount() == before);
  pgc_collect();  // the collector does not wait for it
  CHECK(RegisteredCount() == before);
}

namespace {
void KeepFinalizer(void *, void *) {}
void *g_finalizable = nullptr;  // a global root: live, so its finalizer never runs
}  // namespace

TEST_CASE("threads use collector metadata while collections stop the world: none is stopped holding its lock",
          "[threads][meta]") {
  // meta::Malloc/Free take the region's lock inside a section in which a registered thread defers its suspension
  // (base/meta.h, SetLockHooks). Collections allocate metadata with the world stopped (finalizer discovery's
  // candidate list, for the live finalizable object below; the verifier's visited set in verify builds): a thread
  // stopped holding the lock, or one parked while another waits for it, would hang a collection here.
  g_finalizable = pgc_malloc(64);
  REQUIRE(g_finalizable != nullptr);
  pgc_register_finalizer(g_finalizable, KeepFinalizer, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<bool> ok{true};
  std::atomic<uint64_t> blocks{0};
  auto churn = [&](int id, bool registered) {
    if (!registered) pgc_unregister_thread();
    if ((t_current != nullptr) != registered) ok = false;
    void *ring[8] = {};
    size_t sizes[8] = {};
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      const size_t slot = i % 8;
      if (ring[slot] != nullptr) {
        const auto *b = static_cast<const unsigned char *>(ring[slot]);
        for (size_t k = 0; k < sizes[slot]; ++k) {
          if (b[k] != static_cast<unsigned char>(id * 31 + slot)) ok = false;
        }
        meta::Free(ring[slot]);
      }
      sizes[slot] = size_t{16} << ((i + id) % 9);  // 16 B .. 4 KiB
      ring[slot] = meta::Malloc(sizes[slot]);
      if (ring[slot] == nullptr) {
        ok = false;
        break;
      }
      std::memset(ring[slot], id * 31 + static_cast<int>(slot), sizes[slot]);
      blocks.fetch_add(1, std::memory_order_relaxed);
      if (registered && id == 0 && i % 512 == 511) pgc_collect();  // a registered collector that is also a target
    }
    for (void *p : ring) meta::Free(p);
  };
  std::vector<std::thread> threads;
  for (int id = 0; id < 3; ++id) threads.emplace_back(churn, id, true);
  threads.emplace_back(churn, 3, false);
  while (blocks.load() < 1000) std::this_thread::yield();
  for (int i = 0; i < 50; ++i) pgc_collect();
  stop = true;
  for (auto &t : threads) t.join();
  pgc_register_finalizer(g_finalizable, nullptr, nullptr);
  g_finalizable = nullptr;
  CHECK(ok);
  CHECK(blocks.load() >= 1000);
}

TEST_CASE("fork: a span a vanished thread had taken but not recorded is given back in the child", "[threads][fork]") {
  // What a thread of the parent inside an allocation critical section leaves when fork() runs between taking a
  // span (cached) and recording it in its cache: a span owned by no record of the child.
  pgc_collect();  // initialised, and the heap in a known state
  const uint32_t cls = SizeToClass(3000);
  LockHeap();
  Span *s = g_heap.AllocSmallSpan(cls, /*noscan=*/true);
  REQUIRE(s != nullptr);
  __atomic_store_n(&s->cached, true, __ATOMIC_SEQ_CST);
  UnlockHeap();

  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child's handler adopted it: unowned (owned, it would never be swept or reused), and listed: it has room.
    _exit(!s->IsCached() && s->in_partial ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  // The parent still has the span "owned": give it back.
  LockHeap();
  __atomic_store_n(&s->cached, false, __ATOMIC_SEQ_CST);
  g_heap.FreeSpan(s);
  UnlockHeap();
}

// A held region's stack is scanned from where it was entered, while its code runs on below: that code's frames must
// lie below the scan (they change during the pause; in a build without inlining, entering from a helper function's
// frame, dead at its return, put them inside it and the verifier saw their words change), and the entering
// function's frame above it.
TEST_CASE("a blocking region is scanned from the frame that entered it, above the frames of the code it runs",
          "[threads][blocking]") {
  volatile int caller_local = 0;
  const auto caller_frame = reinterpret_cast<uintptr_t>(&caller_local);
  g_region_scan_from = g_region_code_top = 0;
  pgc_do_blocking(RecordFromRegion, nullptr);
  CHECK(g_region_code_top <= g_region_scan_from);
  CHECK(g_region_scan_from < caller_frame);
  g_region_scan_from = g_region_code_top = 0;
  {
    pacegc::BlockingRegion region;  // the C++ form
    RecordFromRegion(nullptr);
  }
  CHECK(g_region_code_top <= g_region_scan_from);
  CHECK(g_region_scan_from < caller_frame);
}
