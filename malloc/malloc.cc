// malloc/malloc.cc — libpacegc-malloc: pacegc as the process allocator. Every malloc-family function and every C++
// operator new/delete form of the program and of its libraries comes here, whether the library is preloaded
// (LD_PRELOAD=.../libpacegc-malloc.so, an unmodified binary) or linked (pacegc::malloc).
//
// Mode (PACEGC_MALLOC, settings/settings.cc): only `manual` exists in this version. Blocks are mimalloc's (the
// instance that serves pacegc's manual API, base/meta.h; pacegc's metadata has a region of its own): freed by free, counted in pgc_stats.manual_bytes and so
// under GOMEMLIMIT, returned to the OS by mimalloc's own purging. They are NOT scanned for pointers into the
// collected heap yet: a program that also calls pgc_malloc must keep its collected objects reachable from roots
// pacegc scans (README, "Use it as your allocator"). `collect` and `find-leak` need every writable mapping of the
// process as a root and pacegc's own metadata out of it; they are not built yet, and the setting refuses them.
//
// Why mimalloc underneath, not pacegc's span heap: a malloc/free pair on pacegc's heap costs ~4x mimalloc's
// (two atomic read-modify-writes per free, measured in docs/BENCHMARKS.md), and the drop-in must stay within 1.3x.
//
// Start-up order. The dynamic loader and libc allocate before any constructor runs, on any thread, and after fork in
// the child. Nothing here needs pacegc to be initialised: mimalloc initialises itself on its first call (it is
// built to be a process's malloc), and the only pacegc state read on the way is the heap's bounds, which are empty
// (no pointer is in them) until the collector maps its first arena. pacegc's own initialisation (its load-time
// constructor) allocates its metadata from mimalloc directly, never through these functions, so there is no
// recursion.
//
// Pointers from pgc_malloc passed to free/realloc/malloc_usable_size are served by pgc_free/pgc_realloc/pgc_size
// (a range check of the collected heap's bounds on every call; the pointer then goes through pgc_free's checks).
//
// Accounting: what the OS sees, not a per-call tally. pacegc counts mimalloc's committed bytes (mi_process_info,
// read when pacegc needs the total: at its trigger checks and in pgc_read_stats) as manual_bytes: the program's blocks plus mimalloc's free pages not yet returned (base/meta.h). So malloc and free
// carry no accounting at all: a per-call tally (mi_usable_size on both sides) made a pair 1.9x mimalloc's.
//
// Semantics follow glibc where the standards leave a choice (the program was written against it): realloc(p, 0)
// frees p and returns NULL; memalign rounds an alignment up to a power of two; aligned_alloc accepts any size but
// refuses an alignment that is not a power of two (EINVAL); posix_memalign also refuses one that is not a multiple of
// sizeof(void *). Out of memory: pacegc's free pages go back to the OS and the call is retried once, then NULL with
// errno ENOMEM (operator new: the new_handler loop, then std::bad_alloc).
#include <errno.h>
#include <mimalloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <new>

#include "base/meta.h"
#include "gc/collector.h"
#include "pacegc/pacegc.h"

namespace pacegc::internal::drop_in {
namespace {

uint64_t MimallocCommittedBytes() {
  size_t committed = 0;
  mi_process_info(nullptr, nullptr, nullptr, nullptr, nullptr, &committed, nullptr, nullptr);
  return committed;
}

// Before pacegc's own load-time initialisation (default priority), which may already read the total.
// mimalloc's eager commit (on by default) commits whole segments up front, which would count 32 MiB that no block
// uses; off, committed bytes follow the blocks.
__attribute__((constructor(101))) void InstallCommittedBytesSource() {
  mi_option_set(mi_option_eager_commit, 0);
  meta::SetCommittedBytesSource(&MimallocCommittedBytes);
}

inline bool Collected(const void *p) { return g_heap.InArena(reinterpret_cast<uintptr_t>(p)); }

inline bool PowerOfTwo(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// The block; or, when mimalloc has no memory, pacegc's free pages go back to the OS and it is asked once more.
// `allocate` is any mimalloc allocation call.
template <typename F>
inline void *Allocate(F allocate) {
  void *p = allocate();
  if (__builtin_expect(p == nullptr, 0)) {
    if (g_heap.retained_bytes() != 0) pgc_free_os_memory();
    p = allocate();
    if (p == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  return p;
}

inline void *Malloc(size_t n) {
  return Allocate([n] { return mi_malloc(n); });
}

inline void *Aligned(size_t alignment, size_t n) {
  return Allocate([alignment, n] { return mi_malloc_aligned(n, alignment); });
}

inline void Free(void *p) {
  if (p == nullptr) return;
  if (Collected(p)) {
    pgc_free(p);
    return;
  }
  mi_free(p);
}

void *Realloc(void *p, size_t n) {
  if (p == nullptr) return Malloc(n);
  if (Collected(p)) return pgc_realloc(p, n);
  if (n == 0) {
    Free(p);
    return nullptr;
  }
  void *q = mi_realloc(p, n);
  if (q == nullptr) {
    if (g_heap.retained_bytes() != 0) pgc_free_os_memory();
    q = mi_realloc(p, n);
    if (q == nullptr) {
      errno = ENOMEM;
      return nullptr;  // p is untouched
    }
  }
  return q;
}

// operator new's loop: the new_handler may free memory and return, or throw, or there is none and bad_alloc says so.
template <typename F>
void *NewLoop(F allocate) {
  for (;;) {
    void *p = allocate();
    if (__builtin_expect(p != nullptr, 1)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void *New(size_t n) {
  return NewLoop([n] { return Malloc(n); });
}
void *NewAligned(size_t n, std::align_val_t a) {
  return NewLoop([n, a] { return Aligned(static_cast<size_t>(a), n); });
}
void *NewNothrow(size_t n) noexcept {
  try {
    return New(n);
  } catch (...) {
    return nullptr;
  }
}
void *NewAlignedNothrow(size_t n, std::align_val_t a) noexcept {
  try {
    return NewAligned(n, a);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace
}  // namespace pacegc::internal::drop_in

namespace drop_in = pacegc::internal::drop_in;

#define PACEGC_EXPORT extern "C" __attribute__((visibility("default")))

PACEGC_EXPORT void *malloc(size_t n) noexcept { return drop_in::Malloc(n); }

PACEGC_EXPORT void free(void *p) noexcept { drop_in::Free(p); }

PACEGC_EXPORT void *calloc(size_t count, size_t n) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(count, n, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return drop_in::Allocate([bytes] { return mi_zalloc(bytes); });
}

PACEGC_EXPORT void *realloc(void *p, size_t n) noexcept { return drop_in::Realloc(p, n); }

PACEGC_EXPORT void *reallocarray(void *p, size_t count, size_t n) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(count, n, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return drop_in::Realloc(p, bytes);
}

PACEGC_EXPORT int posix_memalign(void **out, size_t alignment, size_t n) noexcept {
  if (!drop_in::PowerOfTwo(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  const int saved = errno;
  void *p = drop_in::Aligned(alignment, n);
  if (p == nullptr) {
    errno = saved;  // posix_memalign reports by its result, not errno
    return ENOMEM;
  }
  *out = p;
  return 0;
}

PACEGC_EXPORT void *aligned_alloc(size_t alignment, size_t n) noexcept {
  if (!drop_in::PowerOfTwo(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return drop_in::Aligned(alignment, n);
}

PACEGC_EXPORT void *memalign(size_t alignment, size_t n) noexcept {
  if (alignment > (SIZE_MAX >> 1) + 1) {
    errno = EINVAL;
    return nullptr;
  }
  size_t a = alignment < sizeof(void *) ? sizeof(void *) : alignment;
  if (!drop_in::PowerOfTwo(a)) a = size_t{1} << (64 - __builtin_clzll(a));  // glibc rounds up
  return drop_in::Aligned(a, n);
}

PACEGC_EXPORT void *valloc(size_t n) noexcept { return drop_in::Aligned(static_cast<size_t>(sysconf(_SC_PAGESIZE)), n); }

PACEGC_EXPORT void *pvalloc(size_t n) noexcept {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (n > SIZE_MAX - page) {
    errno = ENOMEM;
    return nullptr;
  }
  return drop_in::Aligned(page, n == 0 ? page : (n + page - 1) & ~(page - 1));
}

PACEGC_EXPORT size_t malloc_usable_size(void *p) noexcept {
  if (p == nullptr) return 0;
  if (drop_in::Collected(p)) return pgc_size(p);
  return mi_usable_size(p);
}

// C++: every replaceable operator new/delete form ([new.delete]).
#define PACEGC_NEW_EXPORT __attribute__((visibility("default")))
PACEGC_NEW_EXPORT void *operator new(size_t n) { return drop_in::New(n); }
PACEGC_NEW_EXPORT void *operator new[](size_t n) { return drop_in::New(n); }
PACEGC_NEW_EXPORT void *operator new(size_t n, const std::nothrow_t &) noexcept { return drop_in::NewNothrow(n); }
PACEGC_NEW_EXPORT void *operator new[](size_t n, const std::nothrow_t &) noexcept { return drop_in::NewNothrow(n); }
PACEGC_NEW_EXPORT void *operator new(size_t n, std::align_val_t a) { return drop_in::NewAligned(n, a); }
PACEGC_NEW_EXPORT void *operator new[](size_t n, std::align_val_t a) { return drop_in::NewAligned(n, a); }
PACEGC_NEW_EXPORT void *operator new(size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return drop_in::NewAlignedNothrow(n, a);
}
PACEGC_NEW_EXPORT void *operator new[](size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return drop_in::NewAlignedNothrow(n, a);
}
PACEGC_NEW_EXPORT void operator delete(void *p) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete[](void *p) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete(void *p, size_t) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete[](void *p, size_t) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete(void *p, std::align_val_t) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete[](void *p, std::align_val_t) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete(void *p, size_t, std::align_val_t) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete[](void *p, size_t, std::align_val_t) noexcept { drop_in::Free(p); }
PACEGC_NEW_EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  drop_in::Free(p);
}
PACEGC_NEW_EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  drop_in::Free(p);
}
