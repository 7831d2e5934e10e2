// bench/malloc_pairs.cc — malloc/free pairs of 16-1024 bytes through the process's malloc, with 1 and 2 threads.
// The binary links no allocator: scripts/bench-malloc.sh runs it as it is (glibc), with mimalloc's override
// preloaded (libmimalloc.so.2) and with pacegc's drop-in preloaded (libpacegc-malloc.so), alternating, so that the
// three serve the same code.
//
// Each thread keeps a window of 64 live blocks and replaces one per iteration (free the oldest, malloc a new one of
// a size from a fixed pseudo-random sequence over 16..1024 bytes) and writes the first byte of each, so the block
// is really handed out. items_per_second counts pairs, summed over threads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>

namespace {

constexpr int kWindow = 64;
constexpr int kSizes = 4096;

struct Sizes {
  size_t bytes[kSizes];
  Sizes() {
    uint32_t x = 12345;
    for (int i = 0; i < kSizes; ++i) {
      x = x * 1103515245u + 12345u;
      bytes[i] = 16 + (x >> 8) % 1009;
    }
  }
};
const Sizes g_sizes;

void BM_MallocFreePairs(benchmark::State &state) {
  void *window[kWindow] = {};
  uint64_t i = 0;
  for (auto _ : state) {
    const int k = static_cast<int>(i & (kWindow - 1));
    free(window[k]);
    auto *p = static_cast<char *>(malloc(g_sizes.bytes[i & (kSizes - 1)]));
    p[0] = static_cast<char>(i);
    window[k] = p;
    ++i;
  }
  for (void *p : window) free(p);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_MallocFreePairs)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
