// alloc_bench — nanoseconds per allocation on the allocation fast path, for 16, 64, 256 and 4096-byte objects.
//
// One source, one executable per allocator, selected by exactly one macro:
//   ALLOC_BENCH_PACEGC    alloc_bench_pacegc:   pgc_malloc, pgc_malloc_atomic
//   ALLOC_BENCH_BDWGC     alloc_bench_bdwgc:    GC_MALLOC, GC_MALLOC_ATOMIC (GC_INIT in main)
//   ALLOC_BENCH_MIMALLOC  alloc_bench_mimalloc: mi_malloc + mi_free
// Why not one binary with all three: each collector scans the data/bss segments of every loaded object, so in one
// process pacegc would scan libgc's static tables at every collection and bdwgc would scan pacegc's globals in the
// executable; each collector's heap would also stay resident while the other is measured. Separate processes keep
// every number about one allocator. scripts/bench.sh --alloc runs the three and merges their JSON output.
//
// Process malloc: the mimalloc binary links libmimalloc.so.2, which replaces glibc malloc process-wide (the
// benchmark library's own allocations included — none of them is inside a timed loop). pacegc links mimalloc for its
// metadata, so the same holds there. The bdwgc binary uses glibc malloc for everything that is not GC_MALLOC.
//
// Benchmarks (names are "<pattern>/<api>/<size>/real_time"; time is wall time per allocation):
//   garbage/*   allocate in a loop and drop every object at once. For a collector this is the honest per-allocation
//               cost: the fast path plus the amortized cost of the collections the allocations trigger (with an
//               almost empty live heap). For mimalloc it is mi_malloc immediately followed by mi_free: the floor.
//   ring4096/*  the same, but the newest 4096 objects stay live in a ring (a static array, which both collectors
//               scan as a root); each allocation evicts the oldest, which becomes garbage (mimalloc: is mi_free'd).
//               Live data is 4096 × size (64 KiB .. 16 MiB), so collections have real marking to do.
// The ring is prefilled and the collector run once before each timed loop (untimed), so every run starts from the
// same state. The collectors' benchmarks also report "gcs_per_kalloc" (collections per 1000 allocations in the
// timed loop), which separates fast-path cost from pacing decisions. Objects are not written after allocation
// (memory from pgc_malloc / GC_MALLOC is zeroed by the allocator; mi_malloc memory is not). Wall time rather than
// CPU time is reported because collector work on other threads (parallel markers) would be missed by the benchmark
// library's per-thread CPU timer.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#if (defined(ALLOC_BENCH_PACEGC) + defined(ALLOC_BENCH_BDWGC) + defined(ALLOC_BENCH_MIMALLOC)) != 1
#error "define exactly one of ALLOC_BENCH_PACEGC, ALLOC_BENCH_BDWGC, ALLOC_BENCH_MIMALLOC"
#endif

#if defined(ALLOC_BENCH_PACEGC)
#include <pacegc/pacegc.h>
#elif defined(ALLOC_BENCH_BDWGC)
#include <gc/gc.h>
#else
#include <mimalloc.h>
#endif

namespace {

constexpr std::size_t kRingSlots = 4096;  // power of two
constexpr std::int64_t kSizes[] = {16, 64, 256, 4096};

// Static storage in the executable: a conservative root for both collectors.
void *g_ring[kRingSlots];

void ClearRing() {
  for (void *&slot : g_ring) slot = nullptr;
}

#if defined(ALLOC_BENCH_PACEGC) || defined(ALLOC_BENCH_BDWGC)

#if defined(ALLOC_BENCH_PACEGC)
void *Malloc(std::size_t n) { return pgc_malloc(n); }
void *MallocAtomic(std::size_t n) { return pgc_malloc_atomic(n); }
void Collect() { pgc_collect(); }
std::uint64_t GcCount() {
  pgc_stats st;
  st.size = sizeof st;
  pgc_read_stats(&st);
  return st.num_gc;
}
constexpr const char *kMallocName = "pgc_malloc";
constexpr const char *kMallocAtomicName = "pgc_malloc_atomic";
#else
void *Malloc(std::size_t n) { return GC_MALLOC(n); }
void *MallocAtomic(std::size_t n) { return GC_MALLOC_ATOMIC(n); }
void Collect() { GC_gcollect(); }
std::uint64_t GcCount() { return GC_get_gc_no(); }
constexpr const char *kMallocName = "GC_MALLOC";
constexpr const char *kMallocAtomicName = "GC_MALLOC_ATOMIC";
#endif

// Collections per 1000 allocations during the timed loop, reported as the counter "gcs_per_kalloc".
void ReportGcs(benchmark::State &state, std::uint64_t gc_before) {
  const double gcs = static_cast<double>(GcCount() - gc_before);
  state.counters["gcs_per_kalloc"] = 1000.0 * gcs / static_cast<double>(state.iterations());
}

template <void *(*Alloc)(std::size_t)>
void Garbage(benchmark::State &state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  ClearRing();
  Collect();
  const std::uint64_t gc_before = GcCount();
  for (auto _ : state) {
    void *p = Alloc(size);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
  ReportGcs(state, gc_before);
}

template <void *(*Alloc)(std::size_t)>
void Ring(benchmark::State &state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  ClearRing();
  Collect();
  for (void *&slot : g_ring) slot = Alloc(size);
  const std::uint64_t gc_before = GcCount();
  std::size_t i = 0;
  for (auto _ : state) {
    void *p = Alloc(size);
    benchmark::DoNotOptimize(p);
    g_ring[i] = p;
    i = (i + 1) & (kRingSlots - 1);
  }
  state.SetItemsProcessed(state.iterations());
  ReportGcs(state, gc_before);
  ClearRing();
}

void RegisterAll() {
  struct Entry {
    const char *pattern;
    const char *api;
    void (*fn)(benchmark::State &);
  };
  const Entry entries[] = {
      {"garbage", kMallocName, &Garbage<Malloc>},
      {"garbage", kMallocAtomicName, &Garbage<MallocAtomic>},
      {"ring4096", kMallocName, &Ring<Malloc>},
      {"ring4096", kMallocAtomicName, &Ring<MallocAtomic>},
  };
  for (const Entry &e : entries) {
    auto *b = benchmark::RegisterBenchmark((std::string(e.pattern) + "/" + e.api).c_str(), e.fn);
    for (std::int64_t size : kSizes) b->Arg(size);
    b->UseRealTime();
  }
}

#else  // ALLOC_BENCH_MIMALLOC

void Garbage(benchmark::State &state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void *p = mi_malloc(size);
    benchmark::DoNotOptimize(p);
    mi_free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void Ring(benchmark::State &state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (void *&slot : g_ring) slot = mi_malloc(size);
  std::size_t i = 0;
  for (auto _ : state) {
    mi_free(g_ring[i]);
    void *p = mi_malloc(size);
    benchmark::DoNotOptimize(p);
    g_ring[i] = p;
    i = (i + 1) & (kRingSlots - 1);
  }
  state.SetItemsProcessed(state.iterations());
  for (void *&slot : g_ring) mi_free(slot);
  ClearRing();
}

void RegisterAll() {
  for (auto [name, fn] : {std::pair{"garbage/mi_malloc_free", &Garbage}, std::pair{"ring4096/mi_malloc_free", &Ring}}) {
    auto *b = benchmark::RegisterBenchmark(name, fn);
    for (std::int64_t size : kSizes) b->Arg(size);
    b->UseRealTime();
  }
}

#endif

}  // namespace

int main(int argc, char **argv) {
#if defined(ALLOC_BENCH_BDWGC)
  GC_INIT();
#endif
  RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
