// tests/api/limits_test.cc — the hard memory limit and limit events (issue 15, items 2 and 3), through the public
// API of a program started as any program is (the library's own load-time initialisation; no test hooks).
//
//   hard limit: a program that keeps allocating live data gets NULL with ENOMEM (small, large, manual,
//     uncollectable; the OOM handler first; std::bad_alloc in C++), and pgc_stats.total_bytes, read all along, never
//     passes the cap — with one allocating thread and with two. After the live data is dropped, allocation works
//     again. PGC_EVENT_HARD_LIMIT is delivered.
//   events: a spiral-like load (live data above the soft limit, garbage churning) turns the CPU limiter on and the
//     total over the limit; each kind fires once per edge, ON/OFF and OVER/UNDER alternate, and there is no storm
//     (the limiter flips far more often than ON events are delivered). The callback allocates and raises the limit
//     from the background thread without deadlock, and the OFF/UNDER edges follow.
// Its own executable (limit_tests): it sets process-wide limits.
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "common/test_util.h"

using namespace pgc_test;

namespace {

// ---- Event recording ----------------------------------------------------------------------------------------------

struct Recorder {
  std::mutex mu;
  std::vector<uint32_t> kinds;
  std::vector<pgc_event> events;
  std::atomic<int> counts[6] = {};
};
Recorder g_rec;

void Record(const pgc_event *ev) {
  std::lock_guard<std::mutex> lock(g_rec.mu);
  g_rec.kinds.push_back(ev->kind);
  g_rec.events.push_back(*ev);
  if (ev->kind < 6) g_rec.counts[ev->kind].fetch_add(1);
}

void ResetRecorder() {
  std::lock_guard<std::mutex> lock(g_rec.mu);
  g_rec.kinds.clear();
  g_rec.events.clear();
  for (auto &c : g_rec.counts) c.store(0);
}

int Count(uint32_t kind) { return g_rec.counts[kind].load(); }

// Checks that in the recorded sequence, the events of an on/off pair alternate starting with `on`.
void CheckAlternates(uint32_t on, uint32_t off) {
  std::lock_guard<std::mutex> lock(g_rec.mu);
  bool state = false;
  for (uint32_t k : g_rec.kinds) {
    if (k == on) {
      CHECK_FALSE(state);
      state = true;
    } else if (k == off) {
      CHECK(state);
      state = false;
    }
  }
}

// Waits (allocating a little garbage, so trigger checks keep closing limiter windows) until pred() or give-up.
// The bound only keeps a broken build from hanging; nothing is asserted about how long it took.
template <typename Pred>
bool WaitFor(Pred pred, int max_seconds = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (int i = 0; i < 64; ++i) {
      void *volatile p = pgc_malloc(1024);
      (void)p;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// ---- Live data ------------------------------------------------------------------------------------------------------

// A list of live nodes hanging off a root slot (globals are scanned). Each node's first word points to the next.
constexpr size_t kMaxThreads = 4;
void *volatile g_live[kMaxThreads];

struct FillResult {
  uint64_t allocated_bytes = 0;
  int err = 0;           // errno of the failing call
  bool failed = false;   // got NULL
};

// Allocates nodes of `size` bytes (kept live in g_live[slot]) until one returns NULL or `max_bytes` were allocated.
PGC_TEST_NOINLINE FillResult FillLive(size_t slot, size_t size, uint64_t max_bytes) {
  FillResult r;
  while (r.allocated_bytes < max_bytes) {
    errno = 0;
    auto **node = static_cast<void **>(pgc_malloc(size));
    if (node == nullptr) {
      r.err = errno;
      r.failed = true;
      break;
    }
    node[0] = g_live[slot];
    g_live[slot] = node;
    r.allocated_bytes += size;
  }
  return r;
}

PGC_TEST_NOINLINE void DropLive() {
  for (auto &p : g_live) p = nullptr;
}

std::atomic<int> g_oom_calls{0};
void *CountingOomHandler(size_t) {
  g_oom_calls.fetch_add(1);
  return nullptr;
}

}  // namespace

TEST_CASE("hard limit: live data beyond the cap gets NULL/ENOMEM and total_bytes never passes the cap", "[hardlimit]") {
  REQUIRE(pgc_set_hard_memory_limit(-1) == INT64_MAX);  // no PACEGC_HARD_MEMLIMIT in the test environment
  ResetRecorder();
  pgc_set_event_callback([](const pgc_event *ev, void *) { Record(ev); }, nullptr);
  pgc_collect();
  const pgc_stats before = Stats();
  const int64_t cap = static_cast<int64_t>(before.total_bytes + 48 * kMiB);
  CHECK(pgc_set_hard_memory_limit(cap) == INT64_MAX);
  CHECK(pgc_set_hard_memory_limit(-5) == cap);  // a negative value queries
  CHECK(Stats().hard_memory_limit_bytes == cap);

  // Small scanned objects, with stats read along the way.
  uint64_t max_total = 0;
  FillResult small;
  for (int round = 0; round < 10000 && !small.failed; ++round) {
    small = FillLive(0, 512, kMiB);
    const pgc_stats s = Stats();
    max_total = s.total_bytes > max_total ? s.total_bytes : max_total;
  }
  REQUIRE(small.failed);
  CHECK(small.err == ENOMEM);
  pgc_stats s = Stats();
  CHECK(s.total_bytes <= static_cast<uint64_t>(cap));
  CHECK(max_total <= static_cast<uint64_t>(cap));
  CHECK(s.hard_limit_failures >= 1);
  // The cap was what stopped it, not a limit far below: most of the room went to live data.
  CHECK(s.heap_alloc_bytes >= before.heap_alloc_bytes + 24 * kMiB);

  // Large objects, manual and uncollectable memory are refused too; the OOM handler runs for collected memory.
  g_oom_calls.store(0);
  pgc_set_oom_handler(CountingOomHandler);
  errno = 0;
  CHECK(pgc_malloc(4 * kMiB) == nullptr);
  CHECK(errno == ENOMEM);
  CHECK(g_oom_calls.load() == 1);
  pgc_set_oom_handler(nullptr);
  errno = 0;
  CHECK(pgc_manual_malloc(4 * kMiB) == nullptr);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(pgc_malloc_uncollectable(4 * kMiB) == nullptr);
  CHECK(errno == ENOMEM);
  CHECK_THROWS_AS(pacegc::make_array<double>(1 << 20), std::bad_alloc);
  s = Stats();
  CHECK(s.total_bytes <= static_cast<uint64_t>(cap));
  CHECK(s.hard_limit_failures >= 5);

  // The event arrives (on the background thread).
  CHECK(WaitFor([] { return Count(PGC_EVENT_HARD_LIMIT) >= 1; }));
  {
    std::lock_guard<std::mutex> lock(g_rec.mu);
    for (const pgc_event &e : g_rec.events) {
      CHECK(e.size == sizeof(pgc_event));
      CHECK(e.version == PGC_EVENT_VERSION);
      if (e.kind == PGC_EVENT_HARD_LIMIT) CHECK(e.hard_memory_limit_bytes == cap);
    }
  }

  // Once the live data is gone, allocation works again under the same cap (the forced collection frees it).
  DropLive();
  void *p = pgc_malloc(4 * kMiB);
  CHECK(p != nullptr);
  void *m = pgc_manual_malloc(kMiB);
  CHECK(m != nullptr);
  pgc_manual_free(m);
  CHECK(Stats().total_bytes <= static_cast<uint64_t>(cap));

  pgc_set_event_callback(nullptr, nullptr);
  CHECK(pgc_set_hard_memory_limit(INT64_MAX) == cap);
  pgc_collect();
}

TEST_CASE("hard limit: two threads allocating live data never take total_bytes past the cap", "[hardlimit]") {
  pgc_collect();
  const pgc_stats before = Stats();
  const int64_t cap = static_cast<int64_t>(before.total_bytes + 48 * kMiB);
  REQUIRE(pgc_set_hard_memory_limit(cap) == INT64_MAX);

  std::atomic<int> running{2};
  FillResult results[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([t, &running, &results] {
      // Mixed sizes: small (credit and partial lists), a class needing new spans, and large objects.
      FillResult r;
      const size_t sizes[] = {64, 2048, 40 * 1024};
      for (int round = 0; !r.failed && round < 100000; ++round) {
        FillResult one = FillLive(1 + t, sizes[round % 3], 256 * 1024);
        r.allocated_bytes += one.allocated_bytes;
        r.failed = one.failed;
        r.err = one.err;
      }
      results[t] = r;
      running.fetch_sub(1);
    });
  }
  uint64_t max_total = 0;
  while (running.load() != 0) {
    const pgc_stats s = Stats();
    max_total = s.total_bytes > max_total ? s.total_bytes : max_total;
    std::this_thread::yield();
  }
  for (auto &th : threads) th.join();
  const pgc_stats s = Stats();
  max_total = s.total_bytes > max_total ? s.total_bytes : max_total;
  for (const FillResult &r : results) {
    CHECK(r.failed);
    CHECK(r.err == ENOMEM);
  }
  CHECK(max_total <= static_cast<uint64_t>(cap));
  CHECK(s.hard_limit_failures >= 2);
  CHECK(results[0].allocated_bytes + results[1].allocated_bytes >= 24 * kMiB);

  DropLive();
  CHECK(pgc_set_hard_memory_limit(INT64_MAX) == cap);
  pgc_collect();
}

namespace {
std::atomic<int> g_callback_allocations{0};
std::atomic<bool> g_raised{false};
void *volatile g_from_callback;

// The callback a program would write: allocates (a log record, say) and, when the limiter turns on, raises the
// limit — both calls into pacegc from the background thread.
void SpiralCallback(const pgc_event *ev, void *) {
  Record(ev);
  auto *rec = static_cast<char *>(pgc_malloc(256));
  if (rec != nullptr) {
    std::memset(rec, 1, 256);
    g_from_callback = rec;
    g_callback_allocations.fetch_add(1);
  }
  // Once the program knows both (the limiter may already be on from earlier work when the callback is set).
  if (Count(PGC_EVENT_LIMITER_ON) >= 1 && Count(PGC_EVENT_OVER_LIMIT) >= 1 && !g_raised.exchange(true)) {
    pgc_set_memory_limit(INT64_MAX);
  }
}
}  // namespace

TEST_CASE("limit events: a spiral-like load fires each edge once, without storms; the callback may allocate and "
          "raise the limit", "[events]") {
  ResetRecorder();
  const int64_t original_limit = pgc_set_memory_limit(-1);
  pgc_collect();
  // Live data well above the soft limit: every collection finds the heap over it again.
  const pgc_stats start = Stats();
  pgc_set_memory_limit(static_cast<int64_t>(start.total_bytes + 8 * kMiB));
  pgc_set_event_callback(SpiralCallback, nullptr);
  FillResult live = FillLive(0, 1024, 48 * kMiB);
  REQUIRE_FALSE(live.failed);

  // Churn until the limiter has turned on, the total is over the limit, and the program was told of both (at most
  // 16 GiB of garbage).
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t churned = 0;
       churned < (uint64_t{16} << 30) && (Count(PGC_EVENT_LIMITER_ON) == 0 || Count(PGC_EVENT_OVER_LIMIT) == 0);
       churned += 64 * 1024) {
    for (int i = 0; i < 1024; ++i) {
      void *volatile g = pgc_malloc(64);
      (void)g;
    }
  }
  REQUIRE(Count(PGC_EVENT_LIMITER_ON) >= 1);
  CHECK(Count(PGC_EVENT_OVER_LIMIT) >= 1);
  // The callback raised the limit: the total falls under it for good, and the limiter stops limiting.
  CHECK(WaitFor([] { return Count(PGC_EVENT_UNDER_LIMIT) >= 1 && Count(PGC_EVENT_LIMITER_OFF) >= 1; }));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const pgc_stats end = Stats();

  CheckAlternates(PGC_EVENT_LIMITER_ON, PGC_EVENT_LIMITER_OFF);
  CheckAlternates(PGC_EVENT_OVER_LIMIT, PGC_EVENT_UNDER_LIMIT);
  // No storm: at most one LIMITER_ON per second of the run (the OFF edge needs a second of quiet), while the
  // limiter postponed collections far more often than that.
  CHECK(Count(PGC_EVENT_LIMITER_ON) <= 1 + static_cast<int>(seconds));
  CHECK(Count(PGC_EVENT_OVER_LIMIT) <= 1 + static_cast<int>(seconds));
  INFO("postponed " << end.limiter_postponed << ", LIMITER_ON events " << Count(PGC_EVENT_LIMITER_ON));
  CHECK(end.memory_limit_bytes == INT64_MAX);  // the callback's pgc_set_memory_limit

  // Events describe the state: OVER_LIMIT was sent with the total above the limit it names.
  {
    std::lock_guard<std::mutex> lock(g_rec.mu);
    for (const pgc_event &e : g_rec.events) {
      if (e.kind == PGC_EVENT_OVER_LIMIT) CHECK(e.total_bytes > static_cast<uint64_t>(e.memory_limit_bytes));
    }
  }

  pgc_set_event_callback(nullptr, nullptr);  // returns once no delivery is in flight
  const size_t delivered = g_rec.kinds.size();
  CHECK(g_callback_allocations.load() == static_cast<int>(delivered));  // every call allocated
  DropLive();
  pgc_collect();
  CHECK(g_rec.kinds.size() == delivered);  // none after the callback was removed
  pgc_set_memory_limit(original_limit);
}

TEST_CASE("limit events: a new callback hears of a state that already holds, via its edge", "[events]") {
  ResetRecorder();
  const int64_t original_limit = pgc_set_memory_limit(-1);
  FillResult live = FillLive(0, 1024, 16 * kMiB);
  REQUIRE_FALSE(live.failed);
  // Below the live heap: over it now, and for as long as the live data stays. (Half of the total failed about one
  // run in four once empty spans were kept for their class; likely, not measured: after a collection and the
  // scavenger returned every free page, the total fell under it and the state the test needs no longer held.)
  pgc_set_memory_limit(static_cast<int64_t>(8 * kMiB));
  pacegc::set_event_callback([](const pgc_event &ev) { Record(&ev); });
  INFO("total " << Stats().total_bytes << " bytes, limit " << Stats().memory_limit_bytes);
  CHECK(WaitFor([] { return Count(PGC_EVENT_OVER_LIMIT) == 1; }));
  pacegc::set_event_callback(nullptr);
  pgc_set_memory_limit(original_limit);
  DropLive();
  pgc_collect();
}
