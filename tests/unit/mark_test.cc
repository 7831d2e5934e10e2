// Unit tests for gc/mark: mark-stack overflow and its recovery, and the heap verifier tested both ways.
#include <catch2/catch.hpp>

#include <pacegc/pacegc.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "gc/testing.h"

using namespace pacegc::internal;

namespace {

struct Wide {
  Wide **children;  // an array of kFanout pointers (collected)
  uint64_t id;
};

constexpr int kFanout = 256;
constexpr int kDepth = 2;  // 1 + 256 + 65536 nodes

Wide *Build(int depth, uint64_t *next_id) {
  auto *w = static_cast<Wide *>(pgc_malloc(sizeof(Wide)));
  w->id = (*next_id)++;
  if (depth > 0) {
    w->children = static_cast<Wide **>(pgc_malloc(kFanout * sizeof(Wide *)));
    for (int i = 0; i < kFanout; ++i) w->children[i] = Build(depth - 1, next_id);
  }
  return w;
}

uint64_t Check(const Wide *w, int depth, uint64_t *expect_id) {
  uint64_t count = 1;
  if (w->id != (*expect_id)++) return 0;
  if (depth > 0) {
    for (int i = 0; i < kFanout; ++i) {
      uint64_t c = Check(w->children[i], depth - 1, expect_id);
      if (c == 0) return 0;
      count += c;
    }
  }
  return count;
}

Wide *g_root;

}  // namespace

TEST_CASE("a mark stack far too small overflows, recovers, and marks everything", "[mark][overflow]") {
  uint64_t id = 0;
  g_root = Build(kDepth, &id);
  testing::SetMarkStackEntries(8);
  size_t problems = testing::CollectAndVerify();
  uint64_t overflows = testing::LastCycleMarkOverflows();
  // Churn so that anything wrongly freed gets reused and overwritten, then check the structure.
  for (int i = 0; i < 200000; ++i) memset(pgc_malloc(32), 0xAB, 32);
  pgc_collect();
  testing::SetMarkStackEntries(0);
  CHECK(problems == 0);
  CHECK(overflows > 0);
  uint64_t expect = 0;
  CHECK(Check(g_root, kDepth, &expect) == 1 + kFanout + kFanout * kFanout);
  g_root = nullptr;
}

TEST_CASE("with the default stack the same graph marks without overflow", "[mark]") {
  uint64_t id = 0;
  g_root = Build(kDepth, &id);
  CHECK(testing::CollectAndVerify() == 0);
  CHECK(testing::LastCycleMarkOverflows() == 0);
  g_root = nullptr;
}

TEST_CASE("the verifier reports a reachable object whose mark was cleared", "[mark][verify]") {
  uint64_t id = 0;
  g_root = Build(1, &id);
  testing::CorruptNextMarkForTesting();
  CHECK(testing::CollectAndVerify() > 0);
  // The corrupted mark was restored before sweeping: the structure is intact and the next check is clean.
  CHECK(testing::CollectAndVerify() == 0);
  uint64_t expect = 0;
  CHECK(Check(g_root, 1, &expect) == 1 + kFanout);
  g_root = nullptr;
}

// The marker and the verifier must read the same words of a parked thread (gc/threads.h, "Where a stopped thread's
// state is recorded"); verified pauses check it with a hash taken when the world stopped. A word of a parked thread's
// park frame changed during the pause must be reported, and the next pause, with the word put back, is clean.
TEST_CASE("the verifier reports a parked thread whose stack changed during the pause", "[mark][verify]") {
  std::atomic<bool> started{false}, done{false};
  std::thread spinner([&] {  // made with pthread_create: registered, its frames' top recorded
    started.store(true);
    while (!done.load(std::memory_order_relaxed)) {
    }
  });
  while (!started.load()) std::this_thread::yield();
  testing::DisturbNextParkedFrame();
  CHECK(testing::CollectAndVerify() > 0);
  CHECK(testing::CollectAndVerify() == 0);
  done.store(true);
  spinner.join();
}
