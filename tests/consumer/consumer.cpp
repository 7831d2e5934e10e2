// consumer.cpp — a C++ program built against an installed pacegc (find_package(pacegc), pacegc::pacegc).
//
// Uses the C++ API the way a user would: pacegc::make, make_array, a std::vector with pacegc::allocator, and a
// second thread registered with pacegc::ThreadScope whose stack holds the only pointers to its objects while the
// main thread collects. Prints "consumer_cpp: OK" and exits 0 only if every check passed.
#include <pacegc/pacegc.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <latch>
#include <thread>
#include <vector>

#if defined(CONSUMER_EXPECT_VERSION_MAJOR) && \
    (PACEGC_VERSION_MAJOR != CONSUMER_EXPECT_VERSION_MAJOR || PACEGC_VERSION_MINOR != CONSUMER_EXPECT_VERSION_MINOR)
#error "pacegc.hpp is not the version of the package found: headers from another installation?"
#endif

namespace {

constexpr int kLiveNodes = 1000;
constexpr int kArrayLength = 4096;
constexpr int kGarbageObjects = 100000;
constexpr int kWorkerNodes = 500;

struct Node {
  Node(std::uint64_t v, Node *n) : value(v), next(n) {}
  std::uint64_t value;
  Node *next;
};

int g_failures = 0;

void Check(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "consumer_cpp: check failed: %s\n", what);
    ++g_failures;
  }
}

// Unreferenced objects, allocated in a frame of their own so no pointer to them outlives the call.
[[gnu::noinline]] void MakeGarbage() {
  for (int i = 0; i < kGarbageObjects; ++i) {
    Node *n = pacegc::make<Node>(static_cast<std::uint64_t>(i), nullptr);
    n->value ^= 1;
  }
}

// Holds kWorkerNodes objects reachable only from this thread's stack (the vector object) while main collects.
void Worker(std::latch &built, std::latch &collected, bool &ok) {
  pacegc::ThreadScope scope;
  std::vector<Node *, pacegc::allocator<Node *>> mine;
  for (int i = 0; i < kWorkerNodes; ++i) mine.push_back(pacegc::make<Node>(static_cast<std::uint64_t>(i) * 7, nullptr));
  built.count_down();
  collected.wait();
  ok = static_cast<int>(mine.size()) == kWorkerNodes;
  for (int i = 0; i < kWorkerNodes && ok; ++i) ok = mine[i]->value == static_cast<std::uint64_t>(i) * 7;
}

}  // namespace

int main() {
  // On main's stack (a root): the vector's buffer is collected memory and is scanned, keeping every Node alive.
  std::vector<Node *, pacegc::allocator<Node *>> live;
  Node *chain = nullptr;
  for (int i = 0; i < kLiveNodes; ++i) {
    live.push_back(pacegc::make<Node>(static_cast<std::uint64_t>(i), nullptr));
    chain = pacegc::make<Node>(static_cast<std::uint64_t>(i), chain);
  }
  double *samples = pacegc::make_array<double>(kArrayLength);  // pointer-free: atomic memory
  for (int i = 0; i < kArrayLength; ++i) samples[i] = i * 0.5;

  std::latch built(1), collected(1);
  bool worker_ok = false;
  std::thread worker(Worker, std::ref(built), std::ref(collected), std::ref(worker_ok));
  built.wait();
  MakeGarbage();
  pacegc::collect();
  collected.count_down();
  worker.join();

  const pgc_stats st = pacegc::stats();

  bool live_ok = live.size() == static_cast<std::size_t>(kLiveNodes);
  for (int i = 0; i < kLiveNodes && live_ok; ++i) live_ok = live[i]->value == static_cast<std::uint64_t>(i);
  Check(live_ok, "vector<Node*, pacegc::allocator> contents survived the collection");
  int chain_length = 0;
  bool chain_ok = true;
  for (const Node *n = chain; n != nullptr; n = n->next) {
    chain_ok = chain_ok && n->value == static_cast<std::uint64_t>(kLiveNodes - 1 - chain_length);
    ++chain_length;
  }
  Check(chain_ok && chain_length == kLiveNodes, "linked chain survived the collection");
  bool samples_ok = true;
  for (int i = 0; i < kArrayLength; ++i) samples_ok = samples_ok && samples[i] == i * 0.5;
  Check(samples_ok, "make_array<double> contents survived the collection");
  Check(worker_ok, "objects on the registered worker thread's stack survived the collection");

  // Reachable at the collection: both node sets, the vector's buffer and the array (the worker's objects aside).
  const std::uint64_t live_bytes =
      2ull * kLiveNodes * sizeof(Node) + kLiveNodes * sizeof(Node *) + kArrayLength * sizeof(double);
  const std::uint64_t garbage_bytes = static_cast<std::uint64_t>(kGarbageObjects) * sizeof(Node);
  Check(st.version == PGC_STATS_VERSION, "stats version matches the header");
  Check(st.num_gc >= 1, "num_gc >= 1");
  Check(st.num_forced_gc >= 1, "num_forced_gc >= 1");
  Check(st.heap_live_bytes >= live_bytes, "heap_live_bytes covers the reachable data");
  Check(st.heap_live_bytes < live_bytes + garbage_bytes / 2, "heap_live_bytes excludes most of the garbage");

  std::printf("consumer_cpp: num_gc=%llu heap_live_bytes=%llu heap_goal_bytes=%llu pause_total_ns=%llu\n",
              static_cast<unsigned long long>(st.num_gc), static_cast<unsigned long long>(st.heap_live_bytes),
              static_cast<unsigned long long>(st.heap_goal_bytes),
              static_cast<unsigned long long>(st.pause_total_ns));
  if (g_failures != 0) {
    std::fprintf(stderr, "consumer_cpp: FAILED (%d checks)\n", g_failures);
    return 1;
  }
  std::printf("consumer_cpp: OK\n");
  return 0;
}
