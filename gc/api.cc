// gc/api.cc — the public C API (include/pacegc/pacegc.h): argument checks and the mapping onto the mechanism.
// Every entry point that can collect makes sure the library is initialised and the calling thread registered
// (a collection needs the collecting thread's stack bounds).
#include "pacegc/pacegc.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "gc/alloc.h"
#include "gc/check.h"
#include "gc/collector.h"
#include "gc/finalize.h"
#include "gc/meta.h"
#include "gc/roots.h"
#include "gc/threads.h"
#include "pacer/config.h"

using namespace pacegc::internal;

namespace {

// Initialises at load time so the main thread is registered before main() runs.
__attribute__((constructor)) void LoadTimeInit() { EnsureInit(); }

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
template <typename Fn>
void *ManualWithRetry(Fn &&fn) {
  EnsureInit();
  void *p = fn();
  if (p == nullptr && EnsureThread()) {
    FreeOsMemory();
    p = fn();
  }
  if (p == nullptr) errno = ENOMEM;
  return p;
}

bool IsCollected(const void *p) { return g_heap.InArena(reinterpret_cast<uintptr_t>(p)); }

}  // namespace

extern "C" {

void *pgc_malloc(size_t size) { return Allocate(size, /*noscan=*/false); }

void *pgc_malloc_atomic(size_t size) { return Allocate(size, /*noscan=*/true); }

void pgc_free(void *p) {
  if (p != nullptr) FreeObject(p);
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
  if (p != nullptr && IsCollected(p)) {
    Misuse("pgc_manual_realloc(%p): a collected object, not a manual allocation", p);
    errno = EINVAL;
    return nullptr;
  }
  return ManualWithRetry([&] { return meta::ManualRealloc(p, size); });
}

void pgc_manual_free(void *p) {
  if (p == nullptr) return;
  EnsureInit();
  if (IsCollected(p)) {
    Misuse("pgc_manual_free(%p): a collected object, not a manual allocation (use pgc_free)", p);
    return;
  }
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
  UnlockHeap();
  RunFinalizers();
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

void pgc_register_finalizer(void *obj, void (*fn)(void *, void *), void *data) {
  EnsureInit();
  LockHeap();
  RegisterFinalizer(reinterpret_cast<uintptr_t>(obj), fn, data);
  UnlockHeap();
}

int pgc_register_thread(void) {
  EnsureInit();
  return threads::Register();
}

void pgc_unregister_thread(void) {
  EnsureInit();
  if (!threads::Unregister()) Misuse("pgc_unregister_thread: the calling thread is not registered");
}

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
