// gc/finalize.cc — see finalize.h.
#include "gc/finalize.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <unordered_map>
#include <vector>

#include "base/check.h"
#include "base/meta.h"
#include "gc/alloc.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/thread_start.h"
#include "settings/settings.h"
#include "gc/threads.h"
#include "gc/trace.h"
#include "pacer/config.h"

namespace pacegc::internal {
namespace {

struct Finalizer {
  FinalizerFn fn;
  void *data;
  bool queued = false;  // in the ready queue: the entry stays so that pgc_free or a new registration cancels it
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
ReadyQueue *g_ready = nullptr;  // FIFO: entries [g_ready_head, size()) are queued; emptied when all have run
size_t g_ready_head = 0;
uint64_t g_queued_total = 0;    // entries ever queued
uint64_t g_popped_total = 0;    // entries ever taken off the queue (to be run, or skipped as cancelled)
std::atomic<uint64_t> g_run{0};  // finalizers that have returned (release after each)
thread_local bool t_running_finalizers = false;
void (*g_drained_hook)() = nullptr;  // set once at start-up (SetQueueDrainedHook)

enum class Mode { kThread, kOnDemand };
Mode g_mode = Mode::kThread;  // set once at start-up

// The finalizer thread. g_fin_mutex only wakes and puts to sleep (the thread for work, waiters for completion);
// taken after the heap lock or alone, never held while taking another lock.
pthread_mutex_t g_fin_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_fin_work = PTHREAD_COND_INITIALIZER;  // the thread waits for g_fin_kicked
pthread_cond_t g_fin_done = PTHREAD_COND_INITIALIZER;  // WaitForFinalizers waits for g_run to reach its target
bool g_fin_kicked = false;  // g_fin_mutex
bool g_fin_started = false;  // heap lock: the thread was started (or failed to start)
std::atomic<bool> g_fin_failed{false};  // it could not be started: waiters run finalizers themselves

// PACEGC_FINALIZERS (the settings table).
Mode ModeFromSettings() { return settings::Get().finalizers_on_demand ? Mode::kOnDemand : Mode::kThread; }

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
    (*g_table)[obj] = Finalizer{fn, data};  // replacing a queued one cancels it (PopReady)
  } catch (const std::bad_alloc &) {
    Message("pgc_register_finalizer(%p): out of memory for the finalizer table; the finalizer is not registered",
            reinterpret_cast<void *>(obj));
  }
}

void DropFinalizer(uintptr_t obj) {
  if (g_table != nullptr) g_table->erase(obj);
}

FinalizerFn FinalizerOf(uintptr_t obj) {
  if (g_table == nullptr) return nullptr;
  auto it = g_table->find(obj);
  return it == g_table->end() ? nullptr : it->second.fn;
}

void MarkReadyFinalizers(Marker &marker) {
  if (g_ready == nullptr) return;
  for (size_t i = g_ready_head; i < g_ready->size(); ++i) marker.MarkAddress((*g_ready)[i].obj);
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
    if (f.queued) continue;  // already ready (and marked by MarkReadyFinalizers)
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
    it->second.queued = true;
    ++g_queued_total;
    ++made_ready;
  }
  if (out_of_memory) {
    Message("out of memory for the finalizer queue; the remaining finalizers run after a later collection");
  }
  marker.Drain();
  return made_ready;
}

size_t PendingFinalizers() { return g_ready == nullptr ? 0 : g_ready->size() - g_ready_head; }
uint64_t FinalizersRun() { return g_run.load(std::memory_order_relaxed); }
uint64_t FinalizersQueued() { return g_queued_total; }

namespace {

// Pops the oldest queued finalizer into *out; *last says whether that emptied the queue, *cancelled whether it
// must not run: its object was freed (pgc_free drops the entry) or its finalizer removed or replaced since it was
// queued. Either way it counts as run. Heap lock NOT held (takes it).
bool PopReady(Ready *out, bool *last, bool *cancelled) {
  LockHeap();
  bool any = g_ready != nullptr && g_ready_head < g_ready->size();
  if (any) {
    *out = (*g_ready)[g_ready_head++];
    ++g_popped_total;
    auto it = g_table->find(out->obj);
    *cancelled = it == g_table->end() || !it->second.queued;
    if (!*cancelled) g_table->erase(it);
    *last = g_ready_head == g_ready->size();
    if (*last) {
      g_ready->clear();
      g_ready_head = 0;
    }
  }
  UnlockHeap();
  return any;
}

// Runs queued finalizers on this thread, one at a time, with no lock held, until the queue is empty. Returns how
// many ran. The caller is registered: each object is on this thread's stack while its finalizer runs. The drained
// hook runs after the finalizer that emptied the queue and before it counts as run, so a pgc_collect waiting for
// its finalizers also waits for the hook.
size_t RunQueuedHere() {
  if (t_running_finalizers) return 0;  // a finalizer asked; the outer loop runs the rest
  t_running_finalizers = true;
  uint64_t trace_start_ns = trace::Now();  // 0 unless PACEGC_TRACE is on
  size_t ran = 0;
  Ready r;
  bool last = false, cancelled = false;
  while (PopReady(&r, &last, &cancelled)) {
    if (!cancelled) {
      r.f.fn(reinterpret_cast<void *>(r.obj), r.f.data);
      ++ran;
    }
    r = Ready{};
    if (last && g_drained_hook != nullptr) g_drained_hook();
    g_run.fetch_add(1, std::memory_order_release);  // a cancelled entry too: waiters count entries, not calls
    pthread_mutex_lock(&g_fin_mutex);
    pthread_cond_broadcast(&g_fin_done);
    pthread_mutex_unlock(&g_fin_mutex);
  }
  trace::FinalizersRan(trace_start_ns, ran);
  t_running_finalizers = false;
  return ran;
}

void *WaitForWork(void *) {
  pthread_mutex_lock(&g_fin_mutex);
  while (!g_fin_kicked) pthread_cond_wait(&g_fin_work, &g_fin_mutex);
  g_fin_kicked = false;
  pthread_mutex_unlock(&g_fin_mutex);
  return nullptr;
}

void *FinalizerMain(void *) {
  // Created with every signal blocked (thread_start::CreateUnregistered): take the suspend signal only, then
  // register, so collections can stop this thread while it runs a finalizer.
  sigset_t suspend;
  sigemptyset(&suspend);
  sigaddset(&suspend, threads::SuspendSignal());
  pthread_sigmask(SIG_UNBLOCK, &suspend, nullptr);
  if (threads::Register(/*internal=*/true) != 0) {
    Message("cannot register the finalizer thread; finalizers run where pgc_collect waits for them");
    g_fin_failed.store(true, std::memory_order_release);
    pthread_mutex_lock(&g_fin_mutex);
    pthread_cond_broadcast(&g_fin_done);
    pthread_mutex_unlock(&g_fin_mutex);
    return nullptr;
  }
  for (;;) {
    RunQueuedHere();
    threads::DoBlocking(WaitForWork, nullptr);  // waiting for work never delays a collection
  }
  return nullptr;
}

void StartFinalizerThread() {
  // Heap lock held (g_fin_started). The new thread takes the heap lock only after the caller releases it.
  g_fin_started = true;  // also after a failure: do not retry at every cycle
  pthread_t thread;
  int rc = thread_start::CreateUnregistered(&thread, FinalizerMain, nullptr);
  if (rc != 0) {
    Message("cannot start the finalizer thread (%s); finalizers run where pgc_collect or pgc_run_finalizers "
            "waits for them", strerror(rc));
    g_fin_failed.store(true, std::memory_order_release);
    return;
  }
  pthread_setname_np(thread, "pacegc-fin");
  pthread_detach(thread);
}

struct DoneWait {
  uint64_t target;
};

void *WaitForDone(void *arg) {
  const uint64_t target = static_cast<DoneWait *>(arg)->target;
  pthread_mutex_lock(&g_fin_mutex);
  while (g_run.load(std::memory_order_acquire) < target && !g_fin_failed.load(std::memory_order_acquire)) {
    pthread_cond_wait(&g_fin_done, &g_fin_mutex);
  }
  pthread_mutex_unlock(&g_fin_mutex);
  return nullptr;
}

// In the child of fork() only the forking thread exists (threads.cc drops the finalizer thread's record). An
// entry the parent's finalizer thread had taken but not finished never finishes here: count it as run, or a
// pgc_collect in the child (find-leak's exit report) would wait for it forever. (fork holds the heap lock.)
void ChildAfterFork() {
  g_run.store(g_popped_total, std::memory_order_relaxed);
  g_fin_started = false;
  g_fin_kicked = false;
  pthread_mutex_init(&g_fin_mutex, nullptr);
  pthread_cond_init(&g_fin_work, nullptr);
  pthread_cond_init(&g_fin_done, nullptr);
}

}  // namespace

void SetQueueDrainedHook(void (*hook)()) { g_drained_hook = hook; }

void InitFinalizers() {
  g_mode = ModeFromSettings();
  pthread_atfork(nullptr, nullptr, ChildAfterFork);
}

void FinalizersAfterCycle() {
  if (g_mode != Mode::kThread || PendingFinalizers() == 0) return;
  if (!g_fin_started) StartFinalizerThread();
  pthread_mutex_lock(&g_fin_mutex);
  g_fin_kicked = true;
  pthread_cond_signal(&g_fin_work);
  pthread_mutex_unlock(&g_fin_mutex);
}

void WaitForFinalizers(uint64_t target) {
  if (g_mode != Mode::kThread || t_running_finalizers) return;
  if (g_fin_failed.load(std::memory_order_acquire)) {
    RunQueuedHere();
    return;
  }
  DoneWait wait{target};
  threads::DoBlocking(WaitForDone, &wait);
  if (g_fin_failed.load(std::memory_order_acquire)) RunQueuedHere();
}

size_t RunFinalizersNow() {
  if (g_mode == Mode::kOnDemand || g_fin_failed.load(std::memory_order_acquire)) return RunQueuedHere();
  LockHeap();
  uint64_t target = g_queued_total;
  UnlockHeap();
  WaitForFinalizers(target);
  return 0;
}

}  // namespace pacegc::internal
