// tests/pacing/periodic_test.cc — the background thread: its periodic collection (Go's forcegcperiod; with GOGC on,
// a collection runs when the period passes without one, even if the program allocates nothing; with GOGC off it
// does not), and a fork() child that collects and scavenges with a background thread of its own. The period is shortened through gc/testing.h (2 minutes would be too long for a test); the checks wait
// generously (seconds for a 50 ms period) and assert what happened, not how fast.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "common/test_util.h"
#include "gc/testing.h"

using namespace pgc_test;
namespace testing = pacegc::internal::testing;

// A live object: periodic collections skip an empty heap (nothing to collect; the drop-in allocator's manual mode
// starts the background thread without ever allocating a collected object, and must not be signalled).
void *volatile g_live = nullptr;

TEST_CASE("periodic collections run while the program is idle, and only with GOGC on", "[pacing][periodic]") {
  const int gc_percent = pgc_set_gc_percent(100);
  g_live = pgc_malloc(64);
  pgc_collect();  // the background thread starts after the first cycle
  testing::SetPeriodicGcNs(50'000'000);
  const pgc_stats before = Stats();
  pgc_stats now = before;
  for (int i = 0; i < 500 && now.num_periodic_gc < before.num_periodic_gc + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    now = Stats();
  }
  CHECK(now.num_periodic_gc >= before.num_periodic_gc + 2);
  CHECK(now.num_gc >= before.num_gc + 2);             // they are real cycles...
  CHECK(now.num_forced_gc == before.num_forced_gc);   // ...and automatic ones

  pgc_set_gc_percent(-1);  // GOGC off: no periodic collection (as in Go)
  const uint64_t off = Stats().num_periodic_gc;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(Stats().num_periodic_gc == off);

  testing::SetPeriodicGcNs(0);
  pgc_set_gc_percent(gc_percent);
}

namespace {

PGC_TEST_NOINLINE void Garbage(size_t mib) {
  for (size_t i = 0; i < mib * 16; ++i) {
    void *p = pgc_malloc_atomic(64 << 10);
    if (p == nullptr) _exit(3);
    std::memset(p, 1, 64 << 10);
  }
}

}  // namespace

TEST_CASE("a child of fork() keeps collecting, with its own background thread", "[pacing][fork]") {
  Garbage(32);
  pgc_collect();  // the parent's background thread exists now, and may be scavenging while we fork
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: allocation, collection and release work (no inherited lock), and the scavenger runs again.
    Garbage(64);
    pgc_collect();
    if (Stats().num_gc == 0) _exit(4);
    if (pgc_free_os_memory() == 0) _exit(5);
    // The child's own background thread: it runs periodic collections (started at the child's first cycle).
    testing::SetPeriodicGcNs(20'000'000);
    const uint64_t periodic = Stats().num_periodic_gc;
    for (int i = 0; i < 500 && Stats().num_periodic_gc == periodic; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    _exit(Stats().num_periodic_gc > periodic ? 0 : 6);
  }
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 3000 && done == 0; ++i) {  // up to 30 s: a deadlocked child fails instead of hanging
    done = waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  REQUIRE(done == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
