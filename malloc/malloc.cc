// malloc/malloc.cc — libpacegc-malloc: pacegc as the process allocator. Every malloc-family function and every C++
// operator new/delete form of the program and of its libraries comes here, whether the library is preloaded
// (LD_PRELOAD=.../libpacegc-malloc.so, an unmodified binary) or linked (pacegc::malloc).
//
// Modes (PACEGC_MALLOC, settings/settings.cc; docs/MALLOC.md):
//   manual   (default) blocks are mimalloc's (the instance that serves pacegc's manual API, base/meta.h; pacegc's
//            metadata has a region of its own): freed by free, counted in pgc_stats.manual_bytes and so under
//            GOMEMLIMIT, returned to the OS by mimalloc's own purging.
//   collect  registered threads get collected memory (pgc_malloc: scanned, zeroed); free is honoured (pgc_free) and
//            blocks nothing points to are reclaimed, so GOGC and GOMEMLIMIT pace the whole process.
//   find-leak as manual, except a sample of blocks (about one per PACEGC_LEAK_SAMPLE bytes allocated) that are
//            collected blocks watched by a finalizer: those nothing points to without having been freed are
//            reported by allocation site, at each collection and at exit (malloc/leak.h has the design).
// In every mode the collector's roots include every writable private mapping of the process (gc/roots.h:
// mimalloc's segments, thread-local storage, stacks, the mappings runtimes make themselves), less pacegc's own, so
// a collected object whose only pointer is in a malloc'd block, a std::vector with the default allocator or an
// interpreter's arena stays alive.
//
// Why mimalloc underneath manual, not pacegc's span heap: a malloc/free pair on pacegc's heap costs ~4x mimalloc's
// (two atomic read-modify-writes per free), and the drop-in must stay within 1.3x.
//
// Start-up order. The dynamic loader and libc allocate before any constructor runs, on any thread, and after fork in
// the child. Until collect mode is switched on (a constructor, once pacegc is initialised) every block is
// mimalloc's: mimalloc initialises itself on its first call (it is built to be a process's malloc), and the only
// pacegc state read on the way is the heap's bounds, empty until the collector maps its first arena. pacegc's own
// initialisation allocates from its metadata region, never through these functions. In collect mode, a malloc from
// a thread pacegc has not registered, or made while the calling thread holds pacegc's heap lock (glibc allocating
// inside pthread_getattr_np or pthread_create on pacegc's behalf), is mimalloc's too: pgc_malloc there would wait
// for itself.
//
// Pointers from pgc_malloc passed to free/realloc/malloc_usable_size are served by pgc_free/pgc_realloc/pgc_size
// (a range check of the collected heap's bounds on every call; the pointer then goes through pgc_free's checks).
//
// Accounting of mimalloc's blocks: what the OS sees, not a per-call tally. pacegc counts mimalloc's committed bytes
// (mi_process_info, read when pacegc needs the total: at its trigger checks and in pgc_read_stats) as manual_bytes:
// the blocks plus mimalloc's free pages not yet returned (base/meta.h). So malloc and free carry no accounting at
// all: a per-call tally (mi_usable_size on both sides) made a pair 1.9x mimalloc's. Collected blocks are heap bytes.
//
// Semantics follow glibc where the standards leave a choice (the program was written against it): realloc(p, 0)
// frees p and returns NULL; memalign rounds an alignment up to a power of two; aligned_alloc accepts any size but
// refuses an alignment that is not a power of two (EINVAL); posix_memalign also refuses one that is not a multiple of
// sizeof(void *). Out of memory: pacegc's free pages go back to the OS and the call is retried once, then NULL with
// errno ENOMEM (operator new: the new_handler loop, then std::bad_alloc).
#include <errno.h>
#include <mimalloc.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <new>

#include "base/check.h"
#include "base/meta.h"
#include "gc/collector.h"
#include "gc/pacing.h"
#include "gc/roots.h"
#include "gc/size_classes.h"
#include "malloc/leak.h"
#include "settings/settings.h"
#include "pacegc/pacegc.h"

namespace pacegc::internal::drop_in {
namespace {

uint64_t MimallocCommittedBytes() {
  size_t committed = 0;
  mi_process_info(nullptr, nullptr, nullptr, nullptr, nullptr, &committed, nullptr, nullptr);
  return committed;
}

// mimalloc keeps the pages of freed blocks (and the segments of exited threads) committed until a later allocation
// of the same thread purges them: a thread that freed 1 GiB and exited left it resident for good. A forced
// collection from another thread returns the segments of threads that exited and mimalloc's segment cache (measured:
// 1,088 -> 61 MiB); pages freed by threads that are still running stay committed until those threads allocate
// again. pacegc's scavenger calls it when the limit needs it (backing off when it returns little), and
// pgc_free_os_memory does.
void MimallocRelease() { mi_collect(true); }

// Before pacegc's own load-time initialisation (default priority), which may already read the total. mimalloc's
// eager commit stays on (its default): segments are committed whole, so up to 32 MiB committed and not yet used is
// counted; turned off, mimalloc ran a python3 workload 8-23% slower here (docs/MALLOC.md).
__attribute__((constructor(101))) void InstallManualMemory() {
  meta::SetManualMemory(&MimallocCommittedBytes, &MimallocRelease);
}

// The mode: set once, at start-up (below), after which malloc returns collected memory (collect) or samples
// (find-leak). Until then (the loader's and libc's allocations before any constructor, and pacegc's own
// initialisation) blocks come from mimalloc in every mode; free tells them apart by address. Manual mode's fast
// path pays one load and a not-taken branch for it.
enum Mode : uint8_t { kManual, kCollect, kFindLeak };
uint8_t g_mode = kManual;

inline Mode CurrentMode() { return static_cast<Mode>(__atomic_load_n(&g_mode, __ATOMIC_RELAXED)); }

// Only registered threads get collected memory, and not while pacegc holds its heap lock: a malloc from pacegc's
// own way there would wait for itself in pgc_malloc (glibc's pthread_create allocating the TLS of a thread pacegc
// starts under the lock; pthread_getattr_np reallocating while a new thread registers). mimalloc serves those,
// and the mallocs of threads pacegc does not know (made with the suspend signal blocked, or by raw clone): such
// blocks are scanned and freed by free, never collected.
inline bool CollectHere() { return t_current != nullptr && !HeapLockHeldHere(); }

// The roots: every writable mapping of the process (mimalloc's segments among them) from the first collection on
// (gc/roots.h), so malloc'd blocks are scanned. Right after pacegc's own initialisation, which this runs.
__attribute__((constructor(102))) void StartMode() {
  EnsureInit();
  const settings::Values &env = settings::Get();
  const bool collect = env.malloc_mode == settings::Values::MallocMode::kCollect;
  if (!roots::EnableProcessMappings()) {
    if (collect) {
      Fatal("libpacegc-malloc: PACEGC_MALLOC=collect needs /proc/self/maps to find its roots, and it cannot be "
            "opened (%s)", strerror(errno));
    }
    Message("libpacegc-malloc: cannot open /proc/self/maps (%s): malloc'd blocks are not scanned for pointers to "
            "collected objects in this process (a collected object whose only pointer is in one can be freed)",
            strerror(errno));
  }
  // Under a memory limit, pacegc's scavenger returns mimalloc's free pages when the total passes it
  // (pacer::ManualReleaseDue). It runs on the background thread, which a program that never collects would not
  // start: start it now.
  if (pgc_set_memory_limit(-1) != INT64_MAX) {
    LockHeap();
    pacing::StartBackground();
    UnlockHeap();
  }
  if (collect) __atomic_store_n(&g_mode, kCollect, __ATOMIC_RELAXED);
  if (env.malloc_mode == settings::Values::MallocMode::kFindLeak) {
    leak::Start(env.leak_sample_bytes);
    __atomic_store_n(&g_mode, kFindLeak, __ATOMIC_RELAXED);
  }
}

inline bool Collected(const void *p) { return g_heap.InArena(reinterpret_cast<uintptr_t>(p)); }

// collect mode: a collected, scanned, zeroed block (pgc_malloc). NULL with errno ENOMEM when even a collection
// and the OOM handler could not find memory.
__attribute__((noinline)) void *CollectedBlock(size_t n) {
  void *p = pgc_malloc(n);
  if (p == nullptr) errno = ENOMEM;
  return p;
}

// collect mode, an alignment above 16: power-of-two size classes up to 8 KiB hold objects aligned to their size
// (spans start on 8 KiB pages), and large objects start on a page; so a power-of-two size at least the alignment
// serves alignments up to 8 KiB. 0 when the alignment is larger: such blocks come from mimalloc (scanned, never
// collected, still freed by free).
size_t CollectedAlignedSize(size_t alignment, size_t n) {
  if (alignment > kPageSize) return 0;
  size_t want = n > alignment ? n : alignment;
  if (want > kMaxSmallSize) return want;  // a large object: page-aligned
  size_t pow2 = 16;
  while (pow2 < want) pow2 <<= 1;
  return pow2;
}

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

// A block of n bytes in collect or find-leak mode (zeroed if `zero`; alignment at most 16, or the aligned forms'):
// collected, sampled, or mimalloc's as in manual mode when this thread cannot have a collected one.
__attribute__((noinline)) void *ModeBlock(Mode mode, size_t n, size_t alignment, bool zero) {
  if (mode == kCollect && CollectHere()) {
    if (alignment <= 16) return CollectedBlock(n);
    if (size_t size = CollectedAlignedSize(alignment, n); size != 0) return CollectedBlock(size);
  } else if (mode == kFindLeak && leak::ShouldSample(n)) {
    const size_t size = alignment <= 16 ? (n == 0 ? 1 : n) : CollectedAlignedSize(alignment, n);
    if (void *p = leak::SampledBlock(n, size); p != nullptr) return p;  // zeroed
  }
  if (alignment > 16) return Allocate([alignment, n] { return mi_malloc_aligned(n, alignment); });
  if (zero) return Allocate([n] { return mi_zalloc(n); });
  return Allocate([n] { return mi_malloc(n); });
}

inline void *Malloc(size_t n) {
  if (Mode mode = CurrentMode(); __builtin_expect(mode != kManual, 0)) return ModeBlock(mode, n, 16, false);
  return Allocate([n] { return mi_malloc(n); });
}

inline void *Aligned(size_t alignment, size_t n) {
  if (Mode mode = CurrentMode(); mode != kManual) return ModeBlock(mode, n, alignment < 16 ? 16 : alignment, false);
  return Allocate([alignment, n] { return mi_malloc_aligned(n, alignment); });
}

inline void Free(void *p) {
  if (Collected(p)) {  // never NULL; mi_free(NULL) does nothing
    if (CurrentMode() == kFindLeak) leak::Freed(p);
    pgc_free(p);
    return;
  }
  mi_free(p);
}

void *Realloc(void *p, size_t n) {
  if (p == nullptr) return Malloc(n);
  if (Collected(p)) {
    // find-leak: a sampled block's finalizer and site stay with that block; the new one is an allocation of its own
    // (sampled or not), as with any allocator that moves the block.
    if (CurrentMode() == kFindLeak && leak::IsSampled(p)) {
      if (n == 0) {
        Free(p);
        return nullptr;
      }
      void *q = Malloc(n);
      if (q == nullptr) return nullptr;
      const size_t old = pgc_size(p);
      memcpy(q, p, old < n ? old : n);
      Free(p);
      return q;
    }
    return pgc_realloc(p, n);
  }
  if (n == 0) {
    Free(p);
    return nullptr;
  }
  return Allocate([p, n] { return mi_realloc(p, n); });  // a refused mi_realloc leaves p untouched
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
  if (drop_in::Mode mode = drop_in::CurrentMode(); mode != drop_in::kManual) {
    return drop_in::ModeBlock(mode, bytes, 16, /*zero=*/true);  // collected blocks come zeroed
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
