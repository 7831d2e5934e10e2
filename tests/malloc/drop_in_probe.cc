// tests/malloc/drop_in_probe.cc — a program that knows nothing of pacegc, run with libpacegc-malloc.so preloaded
// (drop_in_probe) or linked against it (drop_in_probe_linked). It checks what a program relies on from its
// allocator: every malloc-family function and operator new/delete form, their error cases (glibc's semantics), and
// that they keep working across threads, fork, dlopen and thread-local storage. It finds pacegc only by dlsym, to
// check that the blocks are pacegc's: they appear in pgc_stats.total_bytes.
//
// Exit 0 when every check holds; otherwise one line per failed check on stderr and exit 1. Exit 3 when pacegc is
// not in the process at all (the preload did not take): a failure, not a skip.
// On purpose: a pointer is used after a realloc that failed (the block is kept, as the standard says), and pgc_size
// is asked about a freed pointer.
#pragma GCC diagnostic ignored "-Wuse-after-free"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "pacegc/pacegc.h"
#include "check.h"

namespace {

using ReadStatsFn = void (*)(pgc_stats *);
ReadStatsFn g_read_stats = nullptr;

// What the soft limit counts: the blocks are in it as manual bytes (PACEGC_MALLOC=manual) or heap (collect).
uint64_t TotalBytes() {
  pgc_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  g_read_stats(&s);
  return s.total_bytes;
}

// Sizes no allocator can serve, kept opaque so the compiler neither warns about nor folds the calls.
volatile size_t g_huge = SIZE_MAX - 4096;
volatile size_t g_half = SIZE_MAX / 2;

bool Aligned(const void *p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

// The library that defines `symbol` for this process.
std::string DefiningObject(const char *symbol) {
  Dl_info info;
  void *address = dlsym(RTLD_DEFAULT, symbol);
  if (address == nullptr || dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

void CheckEntryPoints() {
  // malloc / free / usable size
  void *p = malloc(100);
  CHECK(p != nullptr && Aligned(p, 16));
  CHECK(malloc_usable_size(p) >= 100);
  memset(p, 1, 100);
  free(p);
  free(nullptr);
  CHECK(malloc_usable_size(nullptr) == 0);
  void *zero = malloc(0);
  CHECK(zero != nullptr);  // glibc: a unique pointer
  free(zero);

  // calloc zeroes, and refuses an overflowing product
  auto *c = static_cast<unsigned char *>(calloc(1000, 7));
  CHECK(c != nullptr);
  bool zeroed = true;
  for (int i = 0; c != nullptr && i < 7000; ++i) zeroed = zeroed && c[i] == 0;
  CHECK(zeroed);
  free(c);
  errno = 0;
  CHECK(calloc(g_half, 4) == nullptr && errno == ENOMEM);

  // realloc keeps the contents; realloc(p, 0) frees and returns NULL (glibc); realloc(NULL, n) is malloc
  auto *r = static_cast<char *>(malloc(16));
  strcpy(r, "pacegc-realloc");
  r = static_cast<char *>(realloc(r, 100000));
  CHECK(r != nullptr && strcmp(r, "pacegc-realloc") == 0);
  r = static_cast<char *>(realloc(r, 8));
  CHECK(r != nullptr && memcmp(r, "pacegc-r", 8) == 0);
  CHECK(realloc(r, 0) == nullptr);
  void *fresh = realloc(nullptr, 32);
  CHECK(fresh != nullptr);
  errno = 0;
  void *const kept = fresh;
  CHECK(realloc(fresh, g_huge) == nullptr && errno == ENOMEM);  // and fresh is untouched
  free(kept);
  errno = 0;
  CHECK(reallocarray(nullptr, g_half, 3) == nullptr && errno == ENOMEM);
  void *ra = reallocarray(nullptr, 10, 10);
  CHECK(ra != nullptr && malloc_usable_size(ra) >= 100);
  free(ra);

  // the aligned family
  void *pm = nullptr;
  CHECK(posix_memalign(&pm, 4096, 100) == 0 && pm != nullptr && Aligned(pm, 4096));
  free(pm);
  pm = reinterpret_cast<void *>(1);
  CHECK(posix_memalign(&pm, 24, 100) == EINVAL && pm == reinterpret_cast<void *>(1));  // not a power of two
  CHECK(posix_memalign(&pm, 4, 100) == EINVAL);                                       // below sizeof(void *)
  void *aa = aligned_alloc(256, 1000);
  CHECK(aa != nullptr && Aligned(aa, 256));
  free(aa);
  errno = 0;
  CHECK(aligned_alloc(48, 96) == nullptr && errno == EINVAL);
  void *ma = memalign(64, 10);
  CHECK(ma != nullptr && Aligned(ma, 64));
  free(ma);
  void *ma3 = memalign(48, 10);  // glibc rounds the alignment up to 64
  CHECK(ma3 != nullptr && Aligned(ma3, 64));
  free(ma3);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void *va = valloc(10);
  CHECK(va != nullptr && Aligned(va, page));
  free(va);
  void *pv = pvalloc(page + 1);
  CHECK(pv != nullptr && Aligned(pv, page) && malloc_usable_size(pv) >= 2 * page);
  free(pv);
  // Large alignments with sizes from 8 to 32 KiB, where collected size classes are not powers of two (collect and
  // find-leak modes must round to one that is aligned); several of each, since classes hold objects at various
  // alignments.
  for (size_t alignment : {size_t{2048}, size_t{4096}, size_t{8192}}) {
    for (size_t size : {size_t{8200}, size_t{9000}, size_t{12000}, size_t{20000}, size_t{30000}}) {
      void *blocks[6];
      for (void *&b : blocks) {
        CHECK(posix_memalign(&b, alignment, size) == 0 && Aligned(b, alignment));
        memset(b, 0x3c, size);
      }
      for (void *b : blocks) free(b);
    }
  }

  // operator new / delete, every form
  int *one = new int(7);
  CHECK(*one == 7);
  delete one;
  auto *arr = new int[1000]();
  CHECK(arr[999] == 0);
  delete[] arr;
  struct alignas(128) Wide {
    char bytes[128];
  };
  auto *w = new Wide;
  CHECK(Aligned(w, 128));
  delete w;
  auto *wa = new Wide[3];
  CHECK(Aligned(wa, 128));
  delete[] wa;
  void *nt = operator new(64, std::nothrow);
  CHECK(nt != nullptr);
  operator delete(nt, std::nothrow);
  void *ntal = operator new[](64, std::align_val_t{512}, std::nothrow);
  CHECK(ntal != nullptr && Aligned(ntal, 512));
  operator delete[](ntal, std::align_val_t{512}, std::nothrow);
  void *sized = operator new(200);
  operator delete(sized, 200);
  void *sized_al = operator new(200, std::align_val_t{64});
  CHECK(Aligned(sized_al, 64));
  operator delete(sized_al, 200, std::align_val_t{64});
  CHECK(operator new(g_huge, std::nothrow) == nullptr);
  bool threw = false;
  try {
    void *huge = operator new(g_huge);
    operator delete(huge);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw);
  // The new_handler runs before bad_alloc.
  static int handler_calls = 0;
  std::set_new_handler([] {
    ++handler_calls;
    std::set_new_handler(nullptr);
  });
  threw = false;
  try {
    void *huge = operator new[](g_huge);
    operator delete[](huge);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw && handler_calls == 1);
}

// The blocks are pacegc's: counted in total_bytes (in manual mode, as mimalloc's committed bytes, so up to one
// 32 MiB segment committed before the blocks came may absorb part of them). Freed blocks stay counted until their
// pages go back to the OS, so nothing is asserted after the free.
void CheckCounted() {
  const size_t kBlocks = 16384, kBytes = 4096;  // 64 MiB
  const uint64_t before = TotalBytes();
  std::vector<void *> blocks;
  blocks.reserve(kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(malloc(kBytes));
    memset(blocks.back(), 1, kBytes);
  }
  const uint64_t held = TotalBytes();
  CHECK(held >= before + (uint64_t{32} << 20));
  if (held < before + (uint64_t{32} << 20)) {
    fprintf(stderr, "drop_in_probe: total_bytes %llu before 64 MiB of blocks, %llu with them\n",
            (unsigned long long)before, (unsigned long long)held);
  }
  for (void *b : blocks) free(b);
}

// Blocks made on one thread and freed on another; thread-local storage with destructors that free.
thread_local std::string t_name;
thread_local std::unique_ptr<std::vector<int>> t_data;

void CheckThreads() {
  constexpr int kThreads = 4, kPerThread = 20000;
  std::vector<std::vector<char *>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &made] {
      t_name = "worker-" + std::to_string(t) + std::string(100, 'x');
      t_data = std::make_unique<std::vector<int>>(1000, t);
      for (int i = 0; i < kPerThread; ++i) {
        char *p = static_cast<char *>(malloc(16 + (i % 500)));
        snprintf(p, 16, "%d:%d", t, i);
        made[t].push_back(p);
      }
    });
  }
  for (auto &th : threads) th.join();
  // Freed by the main thread (cross-thread frees), after checking their contents.
  bool intact = true;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      char expect[16];
      snprintf(expect, sizeof expect, "%d:%d", t, i);
      intact = intact && strcmp(made[t][i], expect) == 0;
      free(made[t][i]);
    }
  }
  CHECK(intact);
}

// The child of fork allocates, frees, and starts a thread; the parent sees its exit status.
void CheckFork() {
  void *held = malloc(1 << 20);
  pid_t pid = fork();
  if (pid == 0) {
    bool ok = held != nullptr;
    free(held);
    std::vector<std::string> v;
    for (int i = 0; i < 10000; ++i) v.push_back(std::string(50, 'a' + i % 26));
    std::thread th([&v] { v.resize(10); });
    th.join();
    _exit(ok && v.size() == 10 ? 0 : 1);
  }
  CHECK(pid > 0);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  free(held);
}

// A library loaded at run time allocates through the same functions (libz's deflate state, via zlibVersion's
// neighbour: any library that calls malloc will do; libm is always there but never allocates, so use strdup in a
// freshly loaded libc-using library: libz if present, else skip this part).
void CheckDlopen() {
  void *z = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
  if (z == nullptr) {
    fprintf(stderr, "drop_in_probe: libz.so.1 not found; the dlopen check is skipped\n");
    return;
  }
  using CompressBound = unsigned long (*)(unsigned long);
  using Compress = int (*)(unsigned char *, unsigned long *, const unsigned char *, unsigned long);
  using Uncompress = int (*)(unsigned char *, unsigned long *, const unsigned char *, unsigned long);
  auto bound = reinterpret_cast<CompressBound>(dlsym(z, "compressBound"));
  auto compress = reinterpret_cast<Compress>(dlsym(z, "compress"));  // allocates its deflate state with malloc
  auto uncompress = reinterpret_cast<Uncompress>(dlsym(z, "uncompress"));
  CHECK(bound && compress && uncompress);
  if (bound && compress && uncompress) {
    std::string text(100000, 'p');
    for (size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
    std::vector<unsigned char> packed(bound(text.size())), unpacked(text.size());
    unsigned long packed_size = packed.size(), unpacked_size = unpacked.size();
    CHECK(compress(packed.data(), &packed_size, reinterpret_cast<const unsigned char *>(text.data()), text.size()) == 0);
    CHECK(uncompress(unpacked.data(), &unpacked_size, packed.data(), packed_size) == 0);
    CHECK(unpacked_size == text.size() && memcmp(unpacked.data(), text.data(), text.size()) == 0);
  }
  dlclose(z);
}

// Collected objects handed to the malloc family are served by pacegc's functions (free is honoured, realloc keeps
// the object collected, malloc_usable_size sees it).
void CheckCollectedPointers() {
  using MallocFn = void *(*)(size_t);
  using SizeFn = size_t (*)(const void *);
  auto pgc_malloc_fn = reinterpret_cast<MallocFn>(dlsym(RTLD_DEFAULT, "pgc_malloc"));
  auto pgc_size_fn = reinterpret_cast<SizeFn>(dlsym(RTLD_DEFAULT, "pgc_size"));
  CHECK(pgc_malloc_fn != nullptr && pgc_size_fn != nullptr);
  if (pgc_malloc_fn == nullptr || pgc_size_fn == nullptr) return;
  auto *p = static_cast<char *>(pgc_malloc_fn(40));
  CHECK(p != nullptr && pgc_size_fn(p) >= 40 && malloc_usable_size(p) == pgc_size_fn(p));
  strcpy(p, "collected");
  auto *q = static_cast<char *>(realloc(p, 4000));
  CHECK(q != nullptr && strcmp(q, "collected") == 0 && pgc_size_fn(q) >= 4000);
  const uintptr_t freed = reinterpret_cast<uintptr_t>(q);
  free(q);
  CHECK(pgc_size_fn(reinterpret_cast<const void *>(freed)) == 0);  // freed by pgc_free: no longer an object
}

}  // namespace

int main() {
  g_read_stats = reinterpret_cast<ReadStatsFn>(dlsym(RTLD_DEFAULT, "pgc_read_stats"));
  if (g_read_stats == nullptr) {
    fprintf(stderr, "drop_in_probe: pacegc is not in this process (run it with LD_PRELOAD=libpacegc-malloc.so)\n");
    return 3;
  }
  const std::string malloc_from = DefiningObject("malloc");
  const std::string new_from = DefiningObject("_Znwm");
  CHECK(malloc_from.find("libpacegc-malloc") != std::string::npos);
  CHECK(new_from.find("libpacegc-malloc") != std::string::npos);
  if (malloc_from.find("libpacegc-malloc") == std::string::npos) {
    fprintf(stderr, "drop_in_probe: malloc comes from %s, operator new from %s\n", malloc_from.c_str(),
            new_from.c_str());
  }
  CheckEntryPoints();
  CheckCounted();
  CheckThreads();
  CheckFork();
  CheckDlopen();
  CheckCollectedPointers();
  if (Failures() == 0) printf("drop_in_probe: all checks passed\n");
  return Failures() == 0 ? 0 : 1;
}
