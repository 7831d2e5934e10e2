// base/meta.cc — see meta.h.
#include "base/meta.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>

#include "base/check.h"
#include "base/hardcap.h"

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

// The hard cap (hardcap.h): every allocation charges an upper bound of its usable size before mimalloc is called,
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

void Init() { std::call_once(g_once, Load); }

void FailNextAllocs(int count) { g_fail_next.store(count < 0 ? 0 : count, std::memory_order_relaxed); }

void *Malloc(size_t bytes) {
  if (InjectedFailure()) return nullptr;
  void *p = Charged(bytes, [&] { return HandedOut(g_malloc(bytes)); });
  if (p != nullptr) g_allocated_bytes.fetch_add(g_usable_size(p), std::memory_order_relaxed);
  return p;
}

void *Calloc(size_t count, size_t bytes) {
  if (InjectedFailure()) return nullptr;
  size_t total;
  if (__builtin_mul_overflow(count, bytes, &total)) return nullptr;
  void *p = Charged(total, [&] { return HandedOut(CallocUnrecorded(count, bytes)); });
  if (p != nullptr) g_allocated_bytes.fetch_add(g_usable_size(p), std::memory_order_relaxed);
  return p;
}

void Free(void *p) {
  if (p == nullptr) return;
  const size_t usable = g_usable_size(p);
  g_allocated_bytes.fetch_sub(usable, std::memory_order_relaxed);
  Freeing(p);
  g_free(p);
  hardcap::Uncharge(usable);
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

uint64_t ManualBytes() { return g_manual_bytes.load(std::memory_order_relaxed); }

}  // namespace pacegc::internal::meta
