// gc/finalize.cc — see finalize.h.
#include "gc/finalize.h"

#include <atomic>
#include <new>
#include <unordered_map>
#include <vector>

#include "gc/alloc.h"
#include "gc/check.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/meta.h"
#include "gc/trace.h"

namespace pacegc::internal {
namespace {

struct Finalizer {
  FinalizerFn fn;
  void *data;
};
struct Ready {
  uintptr_t obj;
  Finalizer f;
};

using Table = std::unordered_map<uintptr_t, Finalizer, std::hash<uintptr_t>, std::equal_to<uintptr_t>,
                                 meta::StlAllocator<std::pair<const uintptr_t, Finalizer>>>;
using ReadyQueue = std::vector<Ready, meta::StlAllocator<Ready>>;
using CandidateList = std::vector<uintptr_t, meta::StlAllocator<uintptr_t>>;

// All guarded by the heap lock.
Table *g_table = nullptr;
ReadyQueue *g_ready = nullptr;
std::atomic<size_t> g_ready_count{0};   // mirrors g_ready->size() for the lock-free FinalizersPending hint
std::atomic<uint64_t> g_run{0};
thread_local bool t_running_finalizers = false;

ReadyQueue *NewReadyQueue() {
  void *mem = meta::Malloc(sizeof(ReadyQueue));
  return mem != nullptr ? new (mem) ReadyQueue() : nullptr;
}

}  // namespace

void RegisterFinalizer(uintptr_t obj, FinalizerFn fn, void *data) {
  Span *s = nullptr;
  uint32_t index = 0;
  if (const char *why = NotAnObject(obj, &s, &index); why != nullptr) {
    Misuse("pgc_register_finalizer(%p): %s", reinterpret_cast<void *>(obj), why);
    return;
  }
  if (fn == nullptr) {
    if (g_table != nullptr) g_table->erase(obj);
    return;
  }
  try {
    if (g_table == nullptr) {
      void *mem = meta::Malloc(sizeof(Table));
      if (mem == nullptr) throw std::bad_alloc();
      g_table = new (mem) Table();
    }
    NoteFinalizerRegistered();  // pgc_free takes the heap lock from now on (it must drop the entry)
    (*g_table)[obj] = Finalizer{fn, data};
  } catch (const std::bad_alloc &) {
    Message("pgc_register_finalizer(%p): out of memory for the finalizer table; the finalizer is not registered",
            reinterpret_cast<void *>(obj));
  }
}

void DropFinalizer(uintptr_t obj) {
  if (g_table != nullptr) g_table->erase(obj);
}

void MarkReadyFinalizers(Marker &marker) {
  if (g_ready == nullptr) return;
  for (const Ready &r : *g_ready) marker.MarkAddress(r.obj);
}

size_t DiscoverFinalizers(Marker &marker) {
  if (g_table == nullptr || g_table->empty()) return 0;
  CandidateList candidates;
  try {
    candidates.reserve(g_table->size());
  } catch (const std::bad_alloc &) {
    // Out of metadata with the world stopped: keep every finalizable object (and what it reaches) for this cycle
    // rather than sweep one whose finalizer has not run. Discovery is tried again at the next collection.
    Message("out of memory for finalizer discovery; finalizable objects are kept until a later collection");
    for (const auto &[obj, f] : *g_table) marker.MarkAddress(obj);
    marker.Drain();
    return 0;
  }
  for (const auto &[obj, f] : *g_table) {
    Span *s = nullptr;
    uint32_t index = 0;
    if (Marker::ObjectContaining(obj, &s, &index) == obj && !s->IsMarked(index)) candidates.push_back(obj);
  }
  if (candidates.empty()) return 0;
  for (uintptr_t obj : candidates) marker.ScanContentsOf(obj);
  marker.Drain();
  size_t made_ready = 0;
  bool out_of_memory = g_ready == nullptr && (g_ready = NewReadyQueue()) == nullptr;
  for (uintptr_t obj : candidates) {
    Span *s = nullptr;
    uint32_t index = 0;
    Marker::ObjectContaining(obj, &s, &index);
    if (s->IsMarked(index)) continue;  // reachable from another finalizable object: a later cycle
    marker.MarkAddress(obj);          // survives until its finalizer ran (its contents are marked already)
    if (out_of_memory) continue;      // stays registered (and alive): made ready at a later collection
    auto it = g_table->find(obj);
    try {
      g_ready->push_back(Ready{obj, it->second});
    } catch (const std::bad_alloc &) {
      out_of_memory = true;
      continue;
    }
    g_table->erase(it);
    ++made_ready;
  }
  if (out_of_memory) {
    Message("out of memory for the finalizer queue; the remaining finalizers run after a later collection");
  }
  marker.Drain();
  if (g_ready != nullptr) g_ready_count.store(g_ready->size(), std::memory_order_release);
  return made_ready;
}

size_t PendingFinalizers() { return g_ready == nullptr ? 0 : g_ready->size(); }
uint64_t FinalizersRun() { return g_run.load(std::memory_order_relaxed); }

bool FinalizersPending() { return g_ready_count.load(std::memory_order_acquire) != 0; }

void RunFinalizers() {
  if (t_running_finalizers) return;  // a finalizer allocated; the outer loop runs the rest
  t_running_finalizers = true;
  uint64_t trace_start_ns = trace::Now();  // 0 unless PACEGC_TRACE is on
  uint64_t ran = 0;
  for (;;) {
    LockHeap();
    if (g_ready == nullptr || g_ready->empty()) {
      UnlockHeap();
      break;
    }
    Ready r = g_ready->back();
    g_ready->pop_back();
    g_ready_count.store(g_ready->size(), std::memory_order_release);
    UnlockHeap();
    // obj is on this thread's stack (r) from here on, which keeps it alive while fn runs.
    r.f.fn(reinterpret_cast<void *>(r.obj), r.f.data);
    g_run.fetch_add(1, std::memory_order_relaxed);
    ++ran;
  }
  trace::FinalizersRan(trace_start_ns, ran);
  t_running_finalizers = false;
}

}  // namespace pacegc::internal
