// alloc_threads — aggregate allocation rate with 1, 2, 4 and 8 threads (issue: allocation that scales).
//
// Each thread allocates 64-byte objects and keeps the newest 4096 of its own in a ring on its stack; the object a
// new one evicts becomes garbage (mimalloc: is mi_free'd, by the thread that allocated it). The figure is the
// aggregate rate: items_per_second is every thread's allocations over the wall time of the run. A second shape,
// "xfree", is for the explicit-free paths: every object is freed (pgc_free / GC_FREE / mi_free), by its owner when it
// is evicted from the owner's ring, or earlier by the neighbouring thread, which takes objects out of the owner's ring
// at the position it is at itself: the cross-thread frees a service's queues make. With one thread all frees are own.
//
// One source, one executable per allocator (a collector scans every loaded object's data, so the peers are kept out
// of each other's processes; see alloc_bench.cc):
//   ALLOC_THREADS_PACEGC    alloc_threads_pacegc:   pgc_malloc (threads register on their first allocation)
//   ALLOC_THREADS_BDWGC     alloc_threads_bdwgc:    GC_MALLOC with thread-local allocation; each benchmark thread
//                                                   registers itself (GC_register_my_thread)
//   ALLOC_THREADS_MIMALLOC  alloc_threads_mimalloc: mi_malloc + mi_free
// scripts/bench.sh --threads runs the three, alternating, and prints the rates and their ratios.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#if (defined(ALLOC_THREADS_PACEGC) + defined(ALLOC_THREADS_BDWGC) + defined(ALLOC_THREADS_MIMALLOC)) != 1
#error "define exactly one of ALLOC_THREADS_PACEGC, ALLOC_THREADS_BDWGC, ALLOC_THREADS_MIMALLOC"
#endif

#if defined(ALLOC_THREADS_PACEGC)
#include <pacegc/pacegc.h>
#elif defined(ALLOC_THREADS_BDWGC)
#define GC_THREADS 1
#include <gc/gc.h>
#else
#include <mimalloc.h>
#endif

namespace {

constexpr std::size_t kRingSlots = 4096;  // power of two
constexpr std::size_t kObjectBytes = 64;
constexpr int kMaxThreads = 8;  // the most Args() runs; the rings are a root, so keep them small

#if defined(ALLOC_THREADS_PACEGC)
constexpr const char *kApi = "pgc_malloc";
inline void *Allocate() { return pgc_malloc(kObjectBytes); }
inline void Release(void *) {}
inline void ReleaseForeign(void *p) { pgc_free(p); }
struct ThreadScope {};
#elif defined(ALLOC_THREADS_BDWGC)
constexpr const char *kApi = "GC_MALLOC";
inline void *Allocate() { return GC_MALLOC(kObjectBytes); }
inline void Release(void *) {}
inline void ReleaseForeign(void *p) { GC_FREE(p); }
// Benchmark threads are std::threads bdwgc does not know: each registers itself for the run (the main thread, which
// also runs the benchmark, is registered by GC_INIT).
struct ThreadScope {
  bool registered = false;
  ThreadScope() {
    if (!GC_thread_is_registered()) {
      GC_stack_base sb;
      GC_get_stack_base(&sb);
      registered = GC_register_my_thread(&sb) == GC_SUCCESS;
    }
  }
  ~ThreadScope() {
    if (registered) GC_unregister_my_thread();
  }
};
#else
constexpr const char *kApi = "mi_malloc+mi_free";
inline void *Allocate() { return mi_malloc(kObjectBytes); }
inline void Release(void *p) { mi_free(p); }
inline void ReleaseForeign(void *p) { mi_free(p); }
struct ThreadScope {};
#endif

// Untimed, before each timed loop: 1 M allocations per thread (64 MiB), so that the heap has grown to its size
// for this thread count and its pages have been touched once (a first touch costs 15-30 us on these VMs: with a
// 40 MiB heap at GOGC=1000 the first pass over it would dominate a short timed loop).
constexpr std::size_t kWarmUp = std::size_t{1} << 20;

// ring/<threads>: each thread keeps its newest 4096 objects; the evicted one is garbage (or freed by its owner).
void BM_Ring(benchmark::State &state) {
  [[maybe_unused]] ThreadScope scope;
  void *ring[kRingSlots] = {};  // on this thread's stack: a root for both collectors
  std::size_t i = 0;
  for (std::size_t w = 0; w < kWarmUp; ++w) {
    void *p = Allocate();
    void *&slot = ring[i++ & (kRingSlots - 1)];
    Release(slot);
    slot = p;
  }
  for (auto _ : state) {
    void *p = Allocate();
    benchmark::DoNotOptimize(p);
    void *&slot = ring[i++ & (kRingSlots - 1)];
    Release(slot);
    slot = p;
  }
  for (void *p : ring) Release(p);
  benchmark::DoNotOptimize(ring);
  state.SetItemsProcessed(state.iterations());
}

// xfree/<threads>: the evicted object is explicitly freed by the next thread (round robin), so every free is of a
// block another thread allocated. The rings live in a static array (a root) so threads can reach each other's.
struct alignas(64) SharedRing {
  std::atomic<void *> slots[kRingSlots];
};
SharedRing g_rings[kMaxThreads];

void BM_CrossFree(benchmark::State &state) {
  [[maybe_unused]] ThreadScope scope;
  const int me = state.thread_index();
  const int n = state.threads();
  SharedRing &mine = g_rings[me];
  SharedRing &next = g_rings[(me + 1) % n];
  std::size_t i = 0;
  for (std::size_t w = 0; w < kWarmUp; ++w) {  // as in BM_Ring (own frees only)
    void *old = mine.slots[i++ & (kRingSlots - 1)].exchange(Allocate(), std::memory_order_acq_rel);
    if (old != nullptr) ReleaseForeign(old);
  }
  for (auto _ : state) {
    void *p = Allocate();
    std::size_t k = i++ & (kRingSlots - 1);
    // The object this one evicts, unless the neighbour already took it: freed here (an own free).
    void *old = mine.slots[k].exchange(p, std::memory_order_acq_rel);
    if (old != nullptr) ReleaseForeign(old);
    // Take the neighbour's object at the same position (if it has one) and free it: a cross-thread free.
    void *theirs = next.slots[k].exchange(nullptr, std::memory_order_acq_rel);
    if (theirs != nullptr) ReleaseForeign(theirs);
  }
  state.SetItemsProcessed(state.iterations());
}

void Args(benchmark::internal::Benchmark *b) {
  for (int t : {1, 2, 4, 8}) b->Threads(t);
  b->UseRealTime();
}

}  // namespace

int main(int argc, char **argv) {
#if defined(ALLOC_THREADS_BDWGC)
  GC_INIT();
  GC_allow_register_threads();
#endif
  benchmark::RegisterBenchmark((std::string("ring/") + kApi).c_str(), BM_Ring)->Apply(Args);
  benchmark::RegisterBenchmark((std::string("xfree/") + kApi).c_str(), BM_CrossFree)->Apply(Args);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
