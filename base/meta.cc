// base/meta.cc — see meta.h.
#include "base/meta.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <atomic>
#include <mutex>

#include "base/check.h"
#include "base/hardcap.h"
#include "base/os.h"

namespace pacegc::internal::meta {
namespace {

using MallocFn = void *(*)(size_t);
using CallocFn = void *(*)(size_t, size_t);
using FreeFn = void (*)(void *);
using UsableSizeFn = size_t (*)(const void *);

// Written once by Init (under g_once), read-only afterwards.
MallocFn g_malloc = nullptr;
CallocFn g_calloc = nullptr;
FreeFn g_free = nullptr;
UsableSizeFn g_usable_size = nullptr;
using ReallocFn = void *(*)(void *, size_t);
ReallocFn g_realloc = nullptr;
using GoodSizeFn = size_t (*)(size_t);
GoodSizeFn g_good_size = nullptr;  // the usable size mimalloc would give a request: the hard cap's charge
uintptr_t g_mimalloc_base = 0;     // its link_map's l_addr (PrivateAllocatorBase)
std::once_flag g_once;

std::atomic<uint64_t> g_allocated_bytes{0};
std::atomic<int> g_fail_next{0};  // injected metadata allocation failures still to deliver (testing)

bool InjectedFailure() {
  int n = g_fail_next.load(std::memory_order_relaxed);
  while (n > 0) {
    if (g_fail_next.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) return true;
  }
  return false;
}
std::atomic<uint64_t> g_manual_bytes{0};
std::atomic<uint64_t (*)()> g_committed_bytes{nullptr};
std::atomic<void (*)()> g_release_manual{nullptr};

void Load() {
  // The soname of Debian's libmimalloc2.0 package.
  void *handle = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    Fatal("cannot load mimalloc (libmimalloc.so.2) for collector metadata: %s; install libmimalloc2.0", dlerror());
  }
  g_malloc = reinterpret_cast<MallocFn>(dlsym(handle, "mi_malloc"));
  g_calloc = reinterpret_cast<CallocFn>(dlsym(handle, "mi_calloc"));
  g_free = reinterpret_cast<FreeFn>(dlsym(handle, "mi_free"));
  g_usable_size = reinterpret_cast<UsableSizeFn>(dlsym(handle, "mi_usable_size"));
  g_realloc = reinterpret_cast<ReallocFn>(dlsym(handle, "mi_realloc"));
  g_good_size = reinterpret_cast<GoodSizeFn>(dlsym(handle, "mi_good_size"));
  if (!g_malloc || !g_calloc || !g_free || !g_usable_size || !g_realloc || !g_good_size) {
    Fatal("libmimalloc.so.2 lacks mi_malloc/mi_calloc/mi_realloc/mi_free/mi_usable_size/mi_good_size");
  }
  // Without it the root scan reads mimalloc's data as well: slower, still correct. dlinfo cannot fail for a handle
  // dlopen just returned, but if it did, 0 matches no shared object (only a non-PIE executable loads at 0).
  struct link_map *map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr) g_mimalloc_base = map->l_addr;
}

// mimalloc is loaded uninstrumented, so ThreadSanitizer cannot see that a block one thread frees happens before
// another thread reuses it (mimalloc orders the two with its own atomics) and reports the new owner's first writes
// as racing with the old owner's last accesses. Tell it what the allocator guarantees: a release when a block is
// freed, an acquire when it is handed out; calloc's zeroing inside mimalloc happens before the acquire, so it is
// not recorded. Nothing in other builds.
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void *addr);
extern "C" void __tsan_release(void *addr);
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
void *HandedOut(void *p) {
  if (p != nullptr) __tsan_acquire(p);
  return p;
}
void Freeing(void *p) { __tsan_release(p); }
void *CallocUnrecorded(size_t count, size_t bytes) {
  __tsan_ignore_thread_begin();
  void *p = g_calloc(count, bytes);
  __tsan_ignore_thread_end();
  return p;
}
#else
void *HandedOut(void *p) { return p; }
void Freeing(void *) {}
void *CallocUnrecorded(size_t count, size_t bytes) { return g_calloc(count, bytes); }
#endif


// ---- The metadata region ----------------------------------------------------------------------------------------
// Metadata lives in one address range pacegc owns ([Region().lo, Region().hi)), so a scan of the process's
// mappings (the drop-in allocator's roots, gc/roots.h) can leave it out: the finalizer and weak-link tables hold
// object addresses that must not keep their objects alive, and span records hold the address of each span's first
// object. Power-of-two size classes from 16 bytes; classes below kSlabBytes are carved from 64 KiB slabs, larger
// ones are runs of whole slabs; a one-byte table per slab (at the region's start) records the class, so a block needs
// no header. Freed blocks go on their class's list; those of 256 KiB and more give their pages back to the OS first.
// One lock. Metadata is allocated at the rate spans, threads, finalizers and weak links are made, not per object.
//
// The lock is held with every signal blocked: a thread the collector suspends never holds it, so the collector,
// which allocates metadata with the world stopped (finalizer queues, tables), can always take it. fork: the lock is
// taken before and released after in both processes (registered at Init, after nothing else of pacegc's: so it is
// taken last, inside the heap lock that gc's handlers take).
constexpr size_t kRegionBytes = size_t{64} << 30;
constexpr unsigned kSlabShift = 16;
constexpr size_t kSlabBytes = size_t{1} << kSlabShift;
constexpr unsigned kMinShift = 4;
constexpr unsigned kMaxShift = 36;  // one block the size of the region, less its slab table: never handed out
constexpr size_t kCommitStep = size_t{2} << 20;
constexpr size_t kDropBytes = size_t{256} << 10;

struct FreeBlock {
  FreeBlock *next;
};

struct RegionState {
  uintptr_t lo = 0, hi = 0;   // the reservation
  uintptr_t bump = 0;         // the first byte never handed out
  uintptr_t committed = 0;    // [lo, committed) is read-write
  uint8_t *slab_shift = nullptr;  // per slab: the class shift of the block(s) it holds, 0 = none yet
  FreeBlock *free[kMaxShift + 1] = {};
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
};
RegionState g_region;

unsigned ShiftFor(size_t bytes) {
  if (bytes <= (size_t{1} << kMinShift)) return kMinShift;
  return static_cast<unsigned>(64 - __builtin_clzll(bytes - 1));
}

// The suspend handshake's hooks (SetLockHooks): until installed (start-up, before any thread can be registered and
// so suspended), a plain mutex is enough.
std::atomic<bool (*)()> g_enter_section{nullptr};
std::atomic<void (*)()> g_leave_section{nullptr};

// The region's lock, held inside a suspension-deferring section: a registered thread is never stopped holding it
// (the suspend handler defers; the thread parks itself once it has let go), so the collector can allocate metadata
// with the world stopped. This replaced blocking every signal around the lock: two pthread_sigmask system calls per
// allocation and free, a third of the cost of a finalizer registration (perf, find-leak's sampled blocks).
class RegionLock {
 public:
  RegionLock() {
    bool (*enter)() = g_enter_section.load(std::memory_order_acquire);
    entered_ = enter != nullptr && enter();
    pthread_mutex_lock(&g_region.lock);
  }
  ~RegionLock() {
    pthread_mutex_unlock(&g_region.lock);
    if (entered_) g_leave_section.load(std::memory_order_relaxed)();
  }
  RegionLock(const RegionLock &) = delete;
  RegionLock &operator=(const RegionLock &) = delete;

 private:
  bool entered_;
};

// Region lock held. [bump, bump + bytes) becomes handed-out space, committed; 0 when the region or the OS has no
// room.
uintptr_t Carve(size_t bytes) {
  RegionState &r = g_region;
  if (bytes > r.hi - r.bump) return 0;
  const uintptr_t start = r.bump, end = start + bytes;
  if (end > r.committed) {
    const uintptr_t to = (end + kCommitStep - 1) & ~(kCommitStep - 1);
    const uintptr_t limit = to < r.hi ? to : r.hi;
    if (!os::CommitRegion(reinterpret_cast<void *>(r.committed), limit - r.committed)) return 0;
    r.committed = limit;
  }
  r.bump = end;
  return start;
}

void InitRegion() {
  RegionState &r = g_region;
  void *mem = os::ReserveRegion(kRegionBytes + kSlabBytes);
  if (mem == nullptr) Fatal("cannot reserve %zu GiB of address space for collector metadata", kRegionBytes >> 30);
  r.lo = (reinterpret_cast<uintptr_t>(mem) + kSlabBytes - 1) & ~(kSlabBytes - 1);
  r.hi = r.lo + kRegionBytes;
  r.bump = r.committed = r.lo;
  const size_t table = kRegionBytes >> kSlabShift;  // one byte per slab, in the region's first slabs
  r.slab_shift = reinterpret_cast<uint8_t *>(Carve((table + kSlabBytes - 1) & ~(kSlabBytes - 1)));
  if (r.slab_shift == nullptr) Fatal("cannot commit the collector metadata's slab table");
  pthread_atfork([] { pthread_mutex_lock(&g_region.lock); }, [] { pthread_mutex_unlock(&g_region.lock); },
                 [] { pthread_mutex_unlock(&g_region.lock); });
}

// The size of the block RegionAlloc(bytes) hands out, or 0 if it never can.
size_t RegionSizeFor(size_t bytes) {
  return bytes > (size_t{1} << (kMaxShift - 1)) ? 0 : size_t{1} << ShiftFor(bytes);
}

void *RegionAlloc(size_t bytes) {
  if (bytes > (size_t{1} << (kMaxShift - 1))) return nullptr;
  const unsigned shift = ShiftFor(bytes);
  const size_t size = size_t{1} << shift;
  RegionLock guard;
  RegionState &r = g_region;
  if (FreeBlock *b = r.free[shift]) {
    r.free[shift] = b->next;
    return b;
  }
  const size_t carve = size < kSlabBytes ? kSlabBytes : size;
  const uintptr_t start = Carve(carve);
  if (start == 0) return nullptr;
  r.slab_shift[(start - r.lo) >> kSlabShift] = static_cast<uint8_t>(shift);
  if (size < kSlabBytes) {  // the rest of the slab goes on the list, lowest address first
    for (uintptr_t p = start + kSlabBytes - size; p > start; p -= size) {
      auto *b = reinterpret_cast<FreeBlock *>(p);
      b->next = r.free[shift];
      r.free[shift] = b;
    }
  }
  return reinterpret_cast<void *>(start);
}

// The block's size (its class), or 0 if p is not a block of the region.
size_t RegionBlockSize(const void *p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  const RegionState &r = g_region;
  if (a < r.lo || a >= r.hi) return 0;
  uintptr_t slab = (a - r.lo) >> kSlabShift;
  // A block of a large class starts its first slab; only that slab's entry is set.
  const unsigned shift = r.slab_shift[slab];
  return shift == 0 ? 0 : size_t{1} << shift;
}

void RegionFree(void *p, size_t size) {
  if (size >= kDropBytes) os::DropPages(p, size);  // read back as zero; the list link below touches one page
  RegionLock guard;
  RegionState &r = g_region;
  const unsigned shift = ShiftFor(size);
  auto *b = static_cast<FreeBlock *>(p);
  b->next = r.free[shift];
  r.free[shift] = b;
}

// The hard cap (hardcap.h): every manual allocation charges an upper bound of its usable size before mimalloc is called,
// and settles to the usable size after (a block larger than the bound, which mimalloc does not hand out, is charged
// too, or refused if the cap has no room for the difference). `allocate` returns the block or nullptr.
template <typename Fn>
void *Charged(size_t bytes, Fn &&allocate) {
  const uint64_t bound = g_good_size(bytes == 0 ? 1 : bytes);
  if (!hardcap::TryCharge(bound)) return nullptr;
  void *p = allocate();
  if (p == nullptr) {
    hardcap::Uncharge(bound);
    return nullptr;
  }
  const uint64_t usable = g_usable_size(p);
  if (usable < bound) {
    hardcap::Uncharge(bound - usable);
  } else if (usable > bound && !hardcap::TryCharge(usable - bound)) {
    Freeing(p);
    g_free(p);
    hardcap::Uncharge(bound);
    return nullptr;
  }
  return p;
}

}  // namespace

void Init() {
  std::call_once(g_once, [] {
    InitRegion();
    Load();
  });
}

uintptr_t RegionLo() { return g_region.lo; }
uintptr_t RegionHi() { return g_region.hi; }
uintptr_t PrivateAllocatorBase() { return g_mimalloc_base; }

void SetLockHooks(bool (*enter)(), void (*leave)()) {
  g_leave_section.store(leave, std::memory_order_release);
  g_enter_section.store(enter, std::memory_order_release);
}

void FailNextAllocs(int count) { g_fail_next.store(count < 0 ? 0 : count, std::memory_order_relaxed); }

void *Malloc(size_t bytes) {
  if (InjectedFailure()) return nullptr;
  // The hard cap is charged the block's exact size (its class) before the region is asked.
  const size_t size = RegionSizeFor(bytes);
  if (size == 0 || !hardcap::TryCharge(size)) return nullptr;
  void *p = RegionAlloc(bytes);
  if (p == nullptr) {
    hardcap::Uncharge(size);
    return nullptr;
  }
  g_allocated_bytes.fetch_add(size, std::memory_order_relaxed);
  return p;
}

void *Calloc(size_t count, size_t bytes) {
  size_t total;
  if (__builtin_mul_overflow(count, bytes, &total)) return nullptr;
  void *p = Malloc(total);
  if (p != nullptr) memset(p, 0, total);
  return p;
}

void Free(void *p) {
  if (p == nullptr) return;
  const size_t size = RegionBlockSize(p);
  if (size == 0) Fatal("meta::Free(%p): not a block of the metadata region", p);
  g_allocated_bytes.fetch_sub(size, std::memory_order_relaxed);
  RegionFree(p, size);
  hardcap::Uncharge(size);
}

uint64_t AllocatedBytes() { return g_allocated_bytes.load(std::memory_order_relaxed); }

void *ManualMalloc(size_t bytes) {
  void *p = Charged(bytes, [&] { return HandedOut(g_malloc(bytes)); });
  if (p != nullptr) g_manual_bytes.fetch_add(g_usable_size(p), std::memory_order_relaxed);
  return p;
}

void *ManualCalloc(size_t count, size_t bytes) {
  size_t total;
  if (__builtin_mul_overflow(count, bytes, &total)) return nullptr;
  void *p = Charged(total, [&] { return HandedOut(CallocUnrecorded(count, bytes)); });
  if (p != nullptr) g_manual_bytes.fetch_add(g_usable_size(p), std::memory_order_relaxed);
  return p;
}

void *ManualRealloc(void *p, size_t bytes) {
  const uint64_t old = p != nullptr ? g_usable_size(p) : 0;
  // The new block is charged before (while mimalloc copies, both exist); once the old one is gone the charge
  // settles to the new usable size. A block resized in place (usable size unchanged, possibly above the bound)
  // settles to no change at all.
  const uint64_t bound = g_good_size(bytes == 0 ? 1 : bytes);
  if (!hardcap::TryCharge(bound)) return nullptr;
  if (p != nullptr) Freeing(p);
  void *q = HandedOut(g_realloc(p, bytes));
  if (q == nullptr) {  // p is untouched
    hardcap::Uncharge(bound);
    return nullptr;
  }
  const uint64_t usable = g_usable_size(q);
  g_manual_bytes.fetch_add(usable, std::memory_order_relaxed);
  g_manual_bytes.fetch_sub(old, std::memory_order_relaxed);
  if (usable > bound + old) {
    hardcap::ForceCharge(usable - bound - old);  // not handed out by mimalloc for a moved block; kept exact
  } else {
    hardcap::Uncharge(bound + old - usable);
  }
  return q;
}

void ManualFree(void *p) {
  if (p == nullptr) return;
  const size_t usable = g_usable_size(p);
  g_manual_bytes.fetch_sub(usable, std::memory_order_relaxed);
  Freeing(p);
  g_free(p);
  hardcap::Uncharge(usable);
}

size_t ManualUsableSize(const void *p) { return p == nullptr ? 0 : g_usable_size(const_cast<void *>(p)); }

uint64_t ManualBytes() {
  const uint64_t manual = g_manual_bytes.load(std::memory_order_relaxed);
  uint64_t (*committed_bytes)() = g_committed_bytes.load(std::memory_order_acquire);
  if (committed_bytes == nullptr) return manual;
  const uint64_t committed = committed_bytes();  // the manual API's blocks are in it too
  return committed > manual ? committed : manual;
}

void SetManualMemory(uint64_t (*committed_bytes)(), void (*release)()) {
  g_release_manual.store(release, std::memory_order_release);
  g_committed_bytes.store(committed_bytes, std::memory_order_release);
}

bool ReleaseManualMemory() {
  void (*release)() = g_release_manual.load(std::memory_order_acquire);
  if (release == nullptr) return false;
  release();
  return true;
}

}  // namespace pacegc::internal::meta
