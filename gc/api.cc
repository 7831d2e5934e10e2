// gc/api.cc — the public C API (include/pacegc/pacegc.h): argument checks and the mapping onto the mechanism.
// Every entry point that can collect makes sure the library is initialised and the calling thread registered
// (a collection needs the collecting thread's stack bounds).
#include "pacegc/pacegc.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "base/check.h"
#include "base/hardcap.h"
#include "base/meta.h"
#include "gc/alloc.h"
#include "gc/collector.h"
#include "gc/finalize.h"
#include "gc/roots.h"
#include "gc/threads.h"
#include "gc/weak.h"
#include "pacer/config.h"

using namespace pacegc::internal;

namespace {

// Initialises at load time so the main thread is registered before main() runs.
// If another thread ran the initialisation first (a thread started by an earlier constructor), register this one
// too: the main thread is always registered.
__attribute__((constructor)) void LoadTimeInit() {
  EnsureInit();
  if (t_current == nullptr) threads::Register();
}

// Copies a parser's message into the caller's buffer, truncated and always NUL-terminated.
void CopyError(const std::string &message, char *error, size_t error_size) {
  if (error == nullptr || error_size == 0) return;
  size_t n = message.size() < error_size - 1 ? message.size() : error_size - 1;
  memcpy(error, message.data(), n);
  error[n] = '\0';
}

bool EnsureThread() {
  EnsureInit();
  return t_current != nullptr || threads::Register() == 0;
}

// Manual (non-collected) memory: mimalloc, counted in meta::ManualBytes and so under the memory limit.
// When mimalloc fails, free heap pages go back to the OS (after a collection) and the call is tried once more.
// At the hard cap (base/hardcap.h) the same rescue applies (a collection, then every free page released); the hit
// is reported (pgc_stats.hard_limit_gc / hard_limit_failures, PGC_EVENT_HARD_LIMIT). The OOM handler is not
// called: it answers with collected memory, no substitute for a manual block.
template <typename Fn>
void *ManualWithRetry(Fn &&fn) {
  EnsureInit();
  const uint64_t refusals = hardcap::ThreadRefusals();
  void *p = fn();
  if (p == nullptr && EnsureThread()) {
    const bool at_cap = hardcap::ThreadRefusals() != refusals;
    FreeOsMemory();
    p = fn();
    if (at_cap || (p == nullptr && hardcap::ThreadRefusals() != refusals)) NoteHardLimitHit(/*failed=*/p == nullptr);
  }
  if (p == nullptr) errno = ENOMEM;
  return p;
}

bool IsCollected(const void *p) { return g_heap.InArena(reinterpret_cast<uintptr_t>(p)); }

// Whether p is an uncollectable block (pgc_malloc_uncollectable); cheap when there are none.
bool IsUncollectable(const void *p) {
  if (!roots::AnyUncollectable()) return false;
  LockHeap();
  bool is = roots::IsUncollectable(reinterpret_cast<uintptr_t>(p));
  UnlockHeap();
  return is;
}

// A misused manual entry point: an uncollectable block must go back through pgc_free, which unregisters it (a
// freed block left registered would be scanned after mimalloc reused or unmapped it).
bool ManualMisuse(const char *call, const void *p) {
  if (p == nullptr) return false;
  if (IsCollected(p)) {
    Misuse("%s(%p): a collected object, not a manual allocation", call, p);
    return true;
  }
  if (IsUncollectable(p)) {
    Misuse("%s(%p): an uncollectable block from pgc_malloc_uncollectable, not a manual allocation (use pgc_free)",
           call, p);
    return true;
  }
  return false;
}

// pgc_strdup / pgc_strndup: at most n bytes of s, NUL-terminated, in an atomic (unscanned) object.
char *DupString(const char *call, const char *s, size_t n) {
  if (s == nullptr) {
    Misuse("%s(NULL)", call);
    errno = EINVAL;
    return nullptr;
  }
  size_t len = n == SIZE_MAX ? strlen(s) : strnlen(s, n);
  auto *d = static_cast<char *>(pgc_malloc_atomic(len + 1));
  if (d == nullptr) return nullptr;
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

}  // namespace

extern "C" {

void *pgc_malloc(size_t size) { return Allocate(size, /*noscan=*/false); }

void *pgc_malloc_atomic(size_t size) { return Allocate(size, /*noscan=*/true); }

void pgc_free(void *p) {
  if (p == nullptr) return;
  if (!IsCollected(p) && roots::AnyUncollectable()) {
    LockHeap();
    bool was = roots::RemoveUncollectable(reinterpret_cast<uintptr_t>(p));
    UnlockHeap();
    if (was) {
      meta::ManualFree(p);  // no longer a root: no collection reads it from here on
      return;
    }
  }
  FreeObject(p);  // reports anything else than a collected object as misuse
}

void *pgc_malloc_uncollectable(size_t size) {
  // Zeroed, like pgc_malloc: the block is scanned from the next collection on, and old bytes would retain objects.
  void *p = ManualWithRetry([&] { return meta::ManualCalloc(1, size == 0 ? 1 : size); });
  if (p == nullptr) return nullptr;
  LockHeap();
  bool added = roots::AddUncollectable(reinterpret_cast<uintptr_t>(p), meta::ManualUsableSize(p));
  UnlockHeap();
  if (!added) {
    meta::ManualFree(p);
    errno = ENOMEM;
    return nullptr;
  }
  return p;
}

void *pgc_realloc(void *p, size_t size) {
  if (p == nullptr) return pgc_malloc(size);
  if (!IsCollected(p) && IsUncollectable(p)) {
    Misuse("pgc_realloc(%p): an uncollectable block; pgc_realloc takes collected objects only", p);
    errno = EINVAL;
    return nullptr;
  }
  ObjectInfo old;
  if (const char *why = FindObject(reinterpret_cast<uintptr_t>(p), &old); why != nullptr) {
    Misuse("pgc_realloc(%p): %s", p, why);
    errno = EINVAL;
    return nullptr;
  }
  if (old.start != reinterpret_cast<uintptr_t>(p)) {
    Misuse("pgc_realloc(%p): an interior pointer, not the start of an object", p);
    errno = EINVAL;
    return nullptr;
  }
  if (size == 0) {  // as glibc's realloc: frees, returns NULL
    FreeObject(p);
    return nullptr;
  }
  // Fits and does not waste more than half of it: in place.
  if (size <= old.size && size >= old.size / 2) return p;
  void *q = old.noscan ? pgc_malloc_atomic(size) : pgc_malloc(size);
  if (q == nullptr) return nullptr;  // p untouched, as realloc
  memcpy(q, p, size < old.size ? size : old.size);
  FreeObject(p);
  return q;
}

char *pgc_strdup(const char *s) { return DupString("pgc_strdup", s, SIZE_MAX); }

char *pgc_strndup(const char *s, size_t n) { return DupString("pgc_strndup", s, n); }

void *pgc_base(const void *p) {
  ObjectInfo o;
  if (p == nullptr || !IsCollected(p)) return nullptr;  // a query: not an object is an answer, not misuse
  return FindObject(reinterpret_cast<uintptr_t>(p), &o) == nullptr ? reinterpret_cast<void *>(o.start) : nullptr;
}

size_t pgc_size(const void *p) {
  ObjectInfo o;
  if (p == nullptr || !IsCollected(p)) return 0;
  return FindObject(reinterpret_cast<uintptr_t>(p), &o) == nullptr ? o.size : 0;
}

void pgc_keep_alive(const void *p) {
  // The caller had to have p in a register or its stack frame to pass it, up to this call; the barrier keeps the
  // call itself from being optimised away (e.g. under LTO).
  __asm__ volatile("" : : "r"(p) : "memory");
}


void *pgc_manual_malloc(size_t size) {
  return ManualWithRetry([&] { return meta::ManualMalloc(size); });
}

void *pgc_manual_calloc(size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;  // as calloc: the product does not fit, nothing is allocated
    return nullptr;
  }
  return ManualWithRetry([&] { return meta::ManualCalloc(count, size); });
}

void *pgc_manual_realloc(void *p, size_t size) {
  if (ManualMisuse("pgc_manual_realloc", p)) {
    errno = EINVAL;
    return nullptr;
  }
  return ManualWithRetry([&] { return meta::ManualRealloc(p, size); });
}

void pgc_manual_free(void *p) {
  if (p == nullptr) return;
  EnsureInit();
  if (ManualMisuse("pgc_manual_free", p)) return;
  meta::ManualFree(p);
}

size_t pgc_manual_usable_size(const void *p) {
  if (p != nullptr && IsCollected(p)) {
    Misuse("pgc_manual_usable_size(%p): a collected object, not a manual allocation", p);
    return 0;
  }
  return meta::ManualUsableSize(p);
}

size_t pgc_free_os_memory(void) {
  if (!EnsureThread()) {
    Message("pgc_free_os_memory: cannot register the calling thread; nothing released");
    return 0;
  }
  return static_cast<size_t>(FreeOsMemory());
}

void pgc_collect(void) {
  if (!EnsureThread()) {
    Message("pgc_collect: cannot register the calling thread; collection skipped");
    return;
  }
  LockHeap();
  CollectLocked(GcReason::kForced);
  uint64_t queued = FinalizersQueued();
  UnlockHeap();
  WaitForFinalizers(queued);  // thread mode: the promise; on-demand mode and inside a finalizer: returns at once
}

size_t pgc_run_finalizers(void) {
  if (!EnsureThread()) {
    Message("pgc_run_finalizers: cannot register the calling thread; no finalizer run");
    return 0;
  }
  return RunFinalizersNow();
}

int pgc_parse_gc_percent(const char *text, int *percent, char *error, size_t error_size) {
  std::string message;
  int value = 0;
  if (text == nullptr) {
    CopyError("pgc_parse_gc_percent: text is NULL", error, error_size);
    return EINVAL;
  }
  if (!pacegc::pacer::ParseGogc(text, &value, &message)) {
    CopyError(message, error, error_size);
    return EINVAL;
  }
  if (percent != nullptr) *percent = value;
  return 0;
}

int pgc_parse_memory_limit(const char *text, int64_t *bytes, char *error, size_t error_size) {
  std::string message;
  int64_t value = 0;
  if (text == nullptr) {
    CopyError("pgc_parse_memory_limit: text is NULL", error, error_size);
    return EINVAL;
  }
  if (!pacegc::pacer::ParseGomemlimit(text, &value, &message)) {
    CopyError(message, error, error_size);
    return EINVAL;
  }
  if (bytes != nullptr) *bytes = value;
  return 0;
}

int pgc_set_gc_percent(int percent) {
  EnsureInit();
  return SetGcPercent(percent);
}

int64_t pgc_set_memory_limit(int64_t bytes) {
  EnsureInit();
  return SetMemoryLimit(bytes);
}

int64_t pgc_set_hard_memory_limit(int64_t bytes) {
  EnsureInit();
  return SetHardMemoryLimit(bytes);
}

void pgc_set_event_callback(void (*fn)(const pgc_event *ev, void *data), void *data) {
  EnsureInit();
  SetEventCallback(fn, data);
}

void pgc_register_finalizer(void *obj, void (*fn)(void *, void *), void *data) {
  EnsureInit();
  LockHeap();
  RegisterFinalizer(reinterpret_cast<uintptr_t>(obj), fn, data);
  UnlockHeap();
}

int pgc_register_weak_link(void **link, const void *obj) {
  EnsureInit();
  LockHeap();
  int rc = weak::Register(link, reinterpret_cast<uintptr_t>(obj));
  UnlockHeap();
  return rc;
}

int pgc_unregister_weak_link(void **link) {
  EnsureInit();
  LockHeap();
  int rc = weak::Unregister(link);
  UnlockHeap();
  return rc;
}

void *pgc_weak_get(void *const *link) {
  EnsureInit();
  return weak::Get(link);
}

int pgc_register_thread(void) {
  EnsureInit();
  return threads::Register();
}

void pgc_unregister_thread(void) {
  EnsureInit();
  if (!threads::Unregister()) Misuse("pgc_unregister_thread: the calling thread is not registered");
}

void *pgc_do_blocking(void *(*fn)(void *), void *arg) {
  if (fn == nullptr) {
    Misuse("pgc_do_blocking: fn is NULL");
    return nullptr;
  }
  return threads::DoBlocking(fn, arg);
}

// pgc_enter_blocking is defined in assembly in gc/threads.cc (it records the caller's registers).

void pgc_leave_blocking(void) { threads::LeaveBlocking(); }

void pgc_add_roots(void *begin, void *end) {
  EnsureInit();
  LockHeap();
  roots::Add(reinterpret_cast<uintptr_t>(begin), reinterpret_cast<uintptr_t>(end));
  UnlockHeap();
}

void pgc_remove_roots(void *begin, void *end) {
  EnsureInit();
  LockHeap();
  roots::Remove(reinterpret_cast<uintptr_t>(begin), reinterpret_cast<uintptr_t>(end));
  UnlockHeap();
}

void pgc_set_oom_handler(void *(*handler)(size_t size)) {
  EnsureInit();
  SetOomHandler(handler);
}

void pgc_read_stats(pgc_stats *out) {
  EnsureInit();
  if (out == nullptr) {
    Misuse("pgc_read_stats(NULL)");
    return;
  }
  if (out->size < sizeof(size_t)) {
    Misuse("pgc_read_stats: out->size is %zu; set it to sizeof(pgc_stats)", out->size);
    return;
  }
  ReadStats(out);
}

}  // extern "C"
