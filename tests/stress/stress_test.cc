// tests/stress/stress_test.cc — deterministic multi-threaded stress tests ("not a benchmark").
//
//   - 4 mutator threads (more than the machine's cores, on purpose) each own a tree + list with checksums, mutate it
//     by random replacement (fixed-seed PRNG per thread), allocate mixed-size garbage (16 B .. 64 KiB), hand linked
//     chains to each other through global mailboxes, and two of them force collections (one also runs the heap
//     verifier now and then). Every structure is verified periodically and at the end.
//   - Threads register and exit repeatedly (some without unregistering) while another thread collects in a loop.
//   - A thread blocked in a system call, holding the only pointer to its objects on its stack, while others collect.
//
// The amount of work is fixed (not time-based) and scaled by PACEGC_STRESS_SCALE. No sleeps, no timing assertions:
// results are recorded in atomics and asserted on the main thread after joining.
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/dirty.h"
#include "base/os.h"
#include "gc/cgroup.h"
#include "gc/collector.h"
#include "gc/concurrent.h"
#include "gc/pacing.h"
#include "common/structures.h"
#include "common/test_util.h"
#include "gc/testing.h"

using namespace pgc_test;
namespace pgt = pacegc::internal::testing;

namespace {

// ---- mailboxes: linked chains handed from thread to thread ---------------------------------------------------

constexpr int kThreads = 4;
constexpr int kChainLength = 16;
std::atomic<Node *> g_mailbox[kThreads];  // data/bss: scanned

Node *MakeChain(Rng &rng) {
  uint64_t key = rng.Next() | 1;
  Node *head = NewNode(key);
  Node *tail = head;
  for (int i = 1; i < kChainLength; ++i) {
    key = Mix(key) | 1;
    Node *n = NewNode(key);
    tail->a = n;
    tail = n;
  }
  return head;
}

bool ChainIntact(const Node *head) {
  if (head == nullptr) return true;
  int count = 0;
  uint64_t expected = head->key;
  for (const Node *n = head; n != nullptr; n = n->a) {
    if (!NodeIntact(n) || n->key != expected || n->b != nullptr) return false;
    expected = Mix(expected) | 1;
    if (++count > kChainLength) return false;
  }
  return count == kChainLength;
}

struct WorkerResult {
  std::atomic<int> verify_failures{0};
  std::atomic<int> mutate_failures{0};
  std::atomic<int> chain_failures{0};
  std::atomic<int> verifier_problems{0};
  std::atomic<int> verifications{0};
  std::atomic<int> chains_received{0};
  std::atomic<uint64_t> forced{0};
};

struct WorkerParams {
  int index;
  uint64_t steps;
  uint64_t collects;       // forced collections this thread performs (0: none)
  bool run_verifier;       // every 8th forced collection is a verified one
  size_t tree_nodes;
  size_t list_nodes;
};

PGC_TEST_NOINLINE void Worker(const WorkerParams &p, WorkerResult *r) {
  pacegc::ThreadScope scope;
  Rng rng(0xC0FFEE + static_cast<uint64_t>(p.index) * 7919);
  Forest forest(rng.Next(), p.tree_nodes, p.list_nodes);  // on this thread's stack
  if (!forest.Verify()) r->verify_failures.fetch_add(1);
  const uint64_t collect_every = p.collects ? (p.steps / p.collects > 0 ? p.steps / p.collects : 1) : 0;
  const uint64_t verify_every = p.steps / 8 > 0 ? p.steps / 8 : 1;
  uint64_t collects_done = 0;
  for (uint64_t step = 1; step <= p.steps; ++step) {
    uint64_t op = rng.Below(8);
    if (op < 3) {
      if (!forest.Mutate()) r->mutate_failures.fetch_add(1);
    } else {
      size_t size = rng.LogUniform(16, 64 * kKiB);
      void *g = (op & 1) ? pgc_malloc_atomic(size) : pgc_malloc(size);
      if (g == nullptr) DieOutOfMemory(size);
      static_cast<unsigned char *>(g)[size - 1] = 0x77;
    }
    if (step % 64 == 0) {
      Node *mine = MakeChain(rng);
      Node *theirs = g_mailbox[(p.index + 1) % kThreads].exchange(mine, std::memory_order_acq_rel);
      if (theirs != nullptr) {
        if (!ChainIntact(theirs)) r->chain_failures.fetch_add(1);
        r->chains_received.fetch_add(1);
      }
    }
    if (collect_every && step % collect_every == 0 && collects_done < p.collects) {
      ++collects_done;
      if (p.run_verifier && collects_done % 8 == 0) {
        size_t problems = pgt::CollectAndVerify();
        if (problems != 0) r->verifier_problems.fetch_add(static_cast<int>(problems));
      } else {
        pgc_collect();
        r->forced.fetch_add(1);
      }
    }
    if (step % verify_every == 0) {
      if (!forest.Verify()) r->verify_failures.fetch_add(1);
      r->verifications.fetch_add(1);
    }
  }
  if (!forest.Verify()) r->verify_failures.fetch_add(1);
  r->verifications.fetch_add(1);
}

}  // namespace

// ctest runs this suite twice (tests/CMakeLists.txt): as configured (PACEGC_CONCURRENT unset: the default, on), and
// as stress_tests_concurrent with PACEGC_CONCURRENT=always. This case makes sure each run is the mode it claims, so
// that a passing twin means the tests below ran with concurrent cycles, and that the default is what the README says.
TEST_CASE("stress: a collection marks in the mode PACEGC_CONCURRENT asks for", "[stress][concurrent]") {
  const char *env = std::getenv("PACEGC_CONCURRENT");
  const std::string mode = env == nullptr ? "" : env;
  const bool tracker = pacegc::internal::dirty::Available();
  if (!tracker && mode != "off") {
    WARN("no write tracker here (" << pacegc::internal::dirty::Detect().reason << "): every cycle is stop-the-world");
  }
  if (mode == "off" || mode == "always") {
    const pgc_stats before = Stats();
    pgc_collect();
    const pgc_stats after = Stats();
    CHECK(after.num_gc > before.num_gc);
    const bool concurrent = mode == "always" && tracker;
    CHECK((after.num_concurrent_gc > before.num_concurrent_gc) == concurrent);
    return;
  }
  if (!mode.empty() && mode != "on") {
    WARN("PACEGC_CONCURRENT=" << mode << ": this case checks only unset, off, on and always");
    return;
  }
  // Unset (the default) or on: a cycle expected to mark 16 MiB or more (what the last one marked) is concurrent when
  // the program may use 2 CPUs or more (gc/concurrent.h, WantedFor); a smaller one, or one with less CPU,
  // stop-the-world.
  constexpr size_t kChunks = 24, kChunkBytes = size_t{1} << 20;
  void **volatile chunks = static_cast<void **>(pgc_malloc(kChunks * sizeof(void *)));  // a root on this stack
  REQUIRE(chunks != nullptr);
  for (size_t i = 0; i < kChunks; ++i) {
    chunks[i] = pgc_malloc_atomic(kChunkBytes);
    REQUIRE(chunks[i] != nullptr);
  }
  pgc_collect();  // marks the 24 MiB: the next cycle is expected to mark as much
  pgc_stats before = Stats();
  pgc_collect();
  pgc_stats after = Stats();
  CHECK(after.num_gc > before.num_gc);
  const bool cores = after.cpu_capacity >= pacegc::internal::concurrent::kMinCpus;
  INFO("cpu capacity " << after.cpu_capacity);
  CHECK((after.num_concurrent_gc > before.num_concurrent_gc) == (tracker && cores));
  {
    // One CPU to use (a container's quota, simulated as tests/unit/pacing_test.cc does): stop-the-world. (pacegc-bg
    // re-reads the real capacity every second: if it did so here, the stats say so and nothing is checked.)
    namespace pgi = pacegc::internal;
    pgi::LockHeap();
    const pgi::cgroup::CpuCapacity saved = pgi::pacing::CpuCapacity();
    pgi::pacing::SetCpuCapacityLocked(pgi::cgroup::Combine(saved.affinity_cpus, 1.0, pgi::cgroup::CpuSource::kV1Quota),
                                      pgi::os::MonotonicNs());
    pgi::UnlockHeap();
    before = Stats();
    pgc_collect();
    after = Stats();
    pgi::LockHeap();
    pgi::pacing::SetCpuCapacityLocked(saved, pgi::os::MonotonicNs());
    pgi::UnlockHeap();
    CHECK(after.num_gc > before.num_gc);
    if (after.cpu_capacity == 1.0) {
      CHECK(after.num_concurrent_gc == before.num_concurrent_gc);
    } else {
      WARN("the CPU capacity was re-read during the one-CPU check (" << after.cpu_capacity << "): not checked");
    }
  }
  for (size_t i = 0; i < kChunks; ++i) chunks[i] = nullptr;
  ScrubStack();   // (no stale copy of a chunk's address below this frame keeps it)
  pgc_collect();  // marks almost nothing: the next cycle is expected to be small
  before = Stats();
  pgc_collect();
  after = Stats();
  CHECK(after.num_gc > before.num_gc);
  CHECK(after.num_concurrent_gc == before.num_concurrent_gc);
}

TEST_CASE("stress: 4 threads mutate, churn, exchange and collect; every structure stays intact", "[stress]") {
  const uint64_t steps = Scaled(80000, 500);
  const uint64_t collects = Scaled(150, 10);
  const pgc_stats before = Stats();
  WorkerResult results[kThreads];
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    WorkerParams p{i, steps, i < 2 ? collects : 0, i == 0, 20000, 2000};
    threads.emplace_back([p, &results] { Worker(p, &results[p.index]); });
  }
  for (auto &t : threads) t.join();
  const pgc_stats after = Stats();

  int chain_failures = 0;
  for (auto &box : g_mailbox) {
    Node *left = box.exchange(nullptr);
    if (!ChainIntact(left)) ++chain_failures;
  }
  uint64_t forced = 0;
  for (int i = 0; i < kThreads; ++i) {
    INFO("thread " << i);
    CHECK(results[i].verify_failures.load() == 0);
    CHECK(results[i].mutate_failures.load() == 0);
    CHECK(results[i].chain_failures.load() == 0);
    CHECK(results[i].verifier_problems.load() == 0);
    CHECK(results[i].verifications.load() >= 9);
    CHECK(results[i].chains_received.load() > 0);
    forced += results[i].forced.load();
  }
  CHECK(chain_failures == 0);
  const uint64_t gcs = after.num_gc - before.num_gc;
  INFO("collections: " << gcs << " (" << (after.num_forced_gc - before.num_forced_gc) << " forced), steps/thread "
                       << steps);
  CHECK(after.num_forced_gc - before.num_forced_gc >= forced);
  CHECK(gcs >= forced);
  CHECK(gcs >= 2 * collects);
  CHECK(after.num_gc > after.num_forced_gc);  // allocation started collections too
}

namespace {

// ---- threads that register and exit repeatedly ----------------------------------------------------------------

// Builds and verifies a small list and some garbage. Returns false if the list was damaged.
PGC_TEST_NOINLINE bool ShortLivedWork(uint64_t seed) {
  Rng rng(seed);
  Node *volatile head = nullptr;
  for (int i = 0; i < 200; ++i) {
    Node *n = NewNode(Mix(seed * 1000 + static_cast<uint64_t>(i)) | 1);
    n->a = head;
    head = n;
  }
  MakeGarbage(rng, 256 * kKiB);
  int count = 199;
  bool ok = true;
  for (Node *n = head; n != nullptr; n = n->a, --count) {
    ok = ok && NodeIntact(n) && n->key == (Mix(seed * 1000 + static_cast<uint64_t>(count)) | 1);
  }
  return ok && count == -1;
}

std::atomic<int> g_short_failures{0};
std::atomic<int> g_register_errors{0};

void ShortLivedThread(int mode, uint64_t seed) {
  bool ok = true;
  switch (mode) {
    case 0: {  // ThreadScope
      pacegc::ThreadScope scope;
      ok = ShortLivedWork(seed);
      break;
    }
    case 1:  // registered, exits without unregistering
      if (pgc_register_thread() != 0) g_register_errors.fetch_add(1);
      ok = ShortLivedWork(seed);
      break;
    case 2:  // registered automatically by its first allocation, exits
      ok = ShortLivedWork(seed);
      break;
    case 3:  // registered twice, unregistered once, exits still registered
      if (pgc_register_thread() != 0) g_register_errors.fetch_add(1);
      if (pgc_register_thread() != 0) g_register_errors.fetch_add(1);
      ok = ShortLivedWork(seed);
      pgc_unregister_thread();
      ok = ShortLivedWork(seed + 1) && ok;
      break;
    default:  // register, unregister, register again, exit
      if (pgc_register_thread() != 0) g_register_errors.fetch_add(1);
      ok = ShortLivedWork(seed);
      pgc_unregister_thread();
      if (pgc_register_thread() != 0) g_register_errors.fetch_add(1);
      ok = ShortLivedWork(seed + 1) && ok;
      break;
  }
  if (!ok) g_short_failures.fetch_add(1);
}

}  // namespace

TEST_CASE("stress: threads register and exit (some without unregistering) while another thread collects",
          "[stress][threads]") {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> collections{0};
  std::thread collector([&] {
    pacegc::ThreadScope scope;
    while (!stop.load()) {
      pgc_collect();
      collections.fetch_add(1);
      sched_yield();  // give the mutators a chance at the heap lock between back-to-back collections
    }
  });
  while (collections.load() < 1) sched_yield();
  const uint64_t baseline_threads = Stats().num_threads;

  const uint64_t rounds = Scaled(40, 5);
  for (uint64_t round = 0; round < rounds; ++round) {
    std::vector<std::thread> batch;
    for (int k = 0; k < 4; ++k) {
      int mode = static_cast<int>((round * 4 + static_cast<uint64_t>(k)) % 5);
      batch.emplace_back(ShortLivedThread, mode, round * 4 + static_cast<uint64_t>(k) + 1);
    }
    for (auto &t : batch) t.join();
  }
  // The collector must still make progress after all those exits (no hang on a dead thread).
  const uint64_t seen = collections.load();
  while (collections.load() < seen + 2) sched_yield();
  const uint64_t threads_after = Stats().num_threads;
  stop = true;
  collector.join();

  CHECK(g_short_failures.load() == 0);
  CHECK(g_register_errors.load() == 0);
  CHECK(collections.load() >= 3);
  INFO("registered threads: baseline " << baseline_threads << ", after " << threads_after << "; "
                                        << collections.load() << " collections");
  CHECK(threads_after == baseline_threads);  // exited threads were unregistered automatically
}

namespace {

// ---- a thread blocked in a system call ----------------------------------------------------------------------

struct BlockedSync {
  int read_fd = -1;    // the blocked thread reads one byte from here
  int poll_fd = -1;    // ... then polls this one
  std::atomic<int> phase{0};  // 1: about to read; 2: about to poll; 3: done
  std::atomic<pid_t> tid{0};
  bool intact_after_read = false;
  bool intact_after_poll = false;
  char byte = 0;
};

FinalizerLog g_blocked_log;
void BlockedFinalizer(void *, void *data) { g_blocked_log.Hit(FinalizerLog::Id(data)); }

// Under ThreadSanitizer with GCC 12's runtime, a signal reaching a thread inside read() is handled only when read()
// returns (TSan defers signals except in the calls it marks blocking, and read() is marked only from LLVM 18 on), so
// the collections below would wait for a byte written after them (gc/threads.h). There the thread first waits for
// the byte in poll(), where TSan does deliver the signal, and reads it after.
#if defined(__SANITIZE_THREAD__)
constexpr bool kReadDefersSignals = true;
#else
constexpr bool kReadDefersSignals = false;
#endif

int PollReadable(int fd) {
  struct pollfd pfd = {fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(&pfd, 1, -1);  // never restarted automatically: EINTR is possible and handled
  } while (rc < 0 && errno == EINTR);
  return rc;
}

PGC_TEST_NOINLINE void BlockedThreadBody(BlockedSync *s) {
  void *volatile obj = pgc_malloc(4096);
  void *volatile big = pgc_malloc(256 * kKiB);
  if (obj == nullptr || big == nullptr) DieOutOfMemory(256 * kKiB);
  FillPattern(obj, 4096, 31);
  FillPattern(big, 256 * kKiB, 32);
  pgc_register_finalizer(obj, BlockedFinalizer, FinalizerLog::Data(0));
  pgc_register_finalizer(big, BlockedFinalizer, FinalizerLog::Data(1));
  s->tid = static_cast<pid_t>(syscall(SYS_gettid));

  s->phase = 1;
  char c = 0;
  ssize_t n;
  if (kReadDefersSignals) PollReadable(s->read_fd);
  do {
    n = read(s->read_fd, &c, 1);  // blocks until main writes
  } while (n < 0 && errno == EINTR);
  s->byte = n == 1 ? c : 0;
  s->intact_after_read = CheckPattern(obj, 4096, 31) && CheckPattern(big, 256 * kKiB, 32);

  s->phase = 2;
  int rc = PollReadable(s->poll_fd);
  s->intact_after_poll = rc == 1 && CheckPattern(obj, 4096, 31) && CheckPattern(big, 256 * kKiB, 32);
  s->phase = 3;
}

// Waits (bounded, without sleeping) until thread tid is in state S (sleeping in the kernel). Best effort: returns
// false if it could not be observed, which only makes the test weaker, never wrong.
bool WaitUntilSleeping(pid_t tid) {
  std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  for (int i = 0; i < 200000; ++i) {
    std::ifstream f(path);
    std::string stat;
    std::getline(f, stat);
    size_t close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'S') return true;
    sched_yield();
  }
  return false;
}

PGC_TEST_NOINLINE void CollectWhileBlocked(uint64_t seed) {
  Rng rng(seed);
  for (int i = 0; i < 10; ++i) {
    MakeGarbage(rng, 4 * kMiB);
    ScrubStack();
    pgc_collect();
  }
}

}  // namespace

TEST_CASE("stress: a thread blocked in read() and poll() keeps its objects and resumes correctly",
          "[stress][threads]") {
  g_blocked_log.Reset();
  int read_pipe[2], poll_pipe[2];
  REQUIRE(pipe(read_pipe) == 0);
  REQUIRE(pipe(poll_pipe) == 0);
  BlockedSync s;
  s.read_fd = read_pipe[0];
  s.poll_fd = poll_pipe[0];
  std::thread blocked([&s] {
    pacegc::ThreadScope scope;
    BlockedThreadBody(&s);
  });

  while (s.phase.load() < 1) sched_yield();
  bool slept_in_read = WaitUntilSleeping(s.tid.load());
  CollectWhileBlocked(1);
  const char x = 'x';
  REQUIRE(write(read_pipe[1], &x, 1) == 1);

  while (s.phase.load() < 2) sched_yield();
  bool slept_in_poll = WaitUntilSleeping(s.tid.load());
  CollectWhileBlocked(2);
  REQUIRE(write(poll_pipe[1], &x, 1) == 1);
  blocked.join();

  if (!slept_in_read || !slept_in_poll) WARN("could not observe the thread sleeping in the kernel");
  CHECK(s.byte == 'x');
  CHECK(s.intact_after_read);
  CHECK(s.intact_after_poll);
  CHECK(s.phase.load() == 3);
  CHECK(g_blocked_log.Ran(2) == 0);  // nothing was finalized while the thread held it
  for (int fd : {read_pipe[0], read_pipe[1], poll_pipe[0], poll_pipe[1]}) close(fd);
}
