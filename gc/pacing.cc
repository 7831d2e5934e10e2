// gc/pacing.cc — see pacing.h for what is measured and decided where.
//
// State below is guarded by the heap lock unless it says otherwise. The background thread takes the heap lock
// for each step it takes (a periodic collection, one scavenging quantum) and never holds it while sleeping; it
// takes g_bg_mutex only to sleep and is woken by Kick(), which may be called with the heap lock held (the order
// is always heap lock → g_bg_mutex, never the reverse).
#include "gc/pacing.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/check.h"
#include "base/hardcap.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/cgroup.h"
#include "gc/collector.h"
#include "gc/concurrent.h"
#include "gc/mark.h"
#include "gc/testing.h"
#include "gc/thread_start.h"
#include "gc/threads.h"
#include "gc/trace.h"
#include "pacer/config.h"
#include "pacer/limiter.h"
#include "pacer/scavenge.h"
#include "settings/settings.h"

namespace pacegc::internal::pacing {
namespace {

// The Pacer that ships (heap lock). Constant-initialised empty; Init assigns pacer::MakePacer's result.
pacer::Pacer g_pacer;
pacer::Settings g_startup_settings;  // what Init made it from (written once, at start-up)

// The cgroup memory limit (cgroup.h) as last read, for the stats (the Pacer gets its bytes); heap lock.
cgroup::MemoryLimit g_cgroup_memory;
cgroup::MemoryLimitReader *g_memory_reader = nullptr;  // background thread only (and Init), under g_cgroup_readers_mutex

// The CPU the program may use (cgroup.h): affinity mask lowered by a cgroup CPU quota; the Pacer gets its cpus.
// Re-read by the background thread every kCpuRefreshNs.
constexpr uint64_t kCpuRefreshNs = 1'000'000'000;
cgroup::CpuCapacity g_cpu;
cgroup::CpuQuotaReader *g_cpu_reader = nullptr;  // background thread only (and Init), under g_cgroup_readers_mutex
cgroup::CpuCapacity g_cpu_read;                  // what the reader said last (same rule as the reader)
// Held while the readers run (they allocate and rebuild strings), and by fork() (PrepareFork, before the heap lock),
// so a child never inherits a reader caught half-way through a refresh. Lock order: this, then the heap lock.
pthread_mutex_t g_cgroup_readers_mutex = PTHREAD_MUTEX_INITIALIZER;

// Background thread (g_bg_mutex).
pthread_mutex_t g_bg_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_bg_cond;
bool g_bg_kicked = false;
bool g_bg_started = false;  // heap lock: the thread was started (or failed to start)
bool g_bg_collect = false;  // heap lock: RequestCollection asked for a collection the thread has not run yet
bool g_bg_runway = false;   // heap lock: RequestRunwayCycle asked for a runway cycle the thread has not begun

// The program's limit-event callback (pgc_set_event_callback) and its data; heap lock.
void (*g_event_fn)(const pgc_event *, void *) = nullptr;
void *g_event_data = nullptr;
// Held by the background thread from reading the callback to its return, so a setter can wait until no call of
// the callback it replaced is in flight (WaitForDelivery). Lock order: this, then the heap lock.
pthread_mutex_t g_delivery_mutex = PTHREAD_MUTEX_INITIALIZER;
thread_local bool t_delivering = false;  // this thread is inside the callback

// Releases up to `bytes` and charges the time to the scavenger and the limiter.
uint64_t ReleaseCharged(uint64_t bytes, trace::Release kind) {
  uint64_t t0 = os::ThreadCpuNs();
  uint64_t released = g_heap.Release(bytes);
  trace::Released(kind, released);
  g_pacer.OnScavenged(os::ThreadCpuNs() - t0);
  return released;
}

uint64_t BackgroundNeed() { return g_pacer.BackgroundScavengeNeed(CurrentMemory()); }

void Kick() {
  if (!g_bg_started) return;
  pthread_mutex_lock(&g_bg_mutex);
  g_bg_kicked = true;
  pthread_cond_signal(&g_bg_cond);
  pthread_mutex_unlock(&g_bg_mutex);
}

// Sleeps until kicked or until deadline_ns (monotonic).
void SleepUntil(uint64_t deadline_ns) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000);
  pthread_mutex_lock(&g_bg_mutex);
  while (!g_bg_kicked) {
    if (pthread_cond_timedwait(&g_bg_cond, &g_bg_mutex, &ts) != 0) break;  // ETIMEDOUT
  }
  g_bg_kicked = false;
  pthread_mutex_unlock(&g_bg_mutex);
}

// One background batch: 64 KiB quanta (the heap lock is released between them) until the need is met or the
// batch has done kBackgroundMinBatchWorkNs of work. Returns the batch's CPU time (0 if there was nothing to do).
uint64_t ScavengeBatch() {
  trace::BatchStart trace_start = trace::ScavengeBatchStart();
  uint64_t t0 = os::ThreadCpuNs();
  uint64_t work = 0;
  for (;;) {
    LockHeap();
    uint64_t need = BackgroundNeed();
    if (need != 0) {
      ReleaseCharged(need < pacer::kScavengeQuantumBytes ? need : pacer::kScavengeQuantumBytes,
                     trace::Release::kBackground);
    }
    UnlockHeap();
    work = os::ThreadCpuNs() - t0;
    if (need == 0 || work >= pacer::kBackgroundMinBatchWorkNs) break;
  }
  trace::ScavengeBatchEnd(trace_start);
  return work;
}

// Reads the CPU capacity and the cgroup memory limit (file I/O: no pacegc lock held, the readers' own mutex) and
// installs them (heap lock).
void RefreshCgroup() {
  pthread_mutex_lock(&g_cgroup_readers_mutex);
  cgroup::CpuCapacity c = g_cpu_reader->Refresh();
  // Installed when what the cgroup and the affinity mask say has changed since the last read: the same answer again
  // would change nothing, and a capacity installed otherwise (tests simulating a resized container,
  // SetCpuCapacityLocked) stays until the container itself changes; re-installing the unchanged reading every
  // second overwrote it in the middle of such a test (a UBSan run of unit_tests).
  const bool cpu_changed = c != g_cpu_read;
  g_cpu_read = c;
  cgroup::MemoryLimit m = g_memory_reader->Refresh();
  pthread_mutex_unlock(&g_cgroup_readers_mutex);
  LockHeap();
  if (cpu_changed) SetCpuCapacityLocked(c, os::MonotonicNs());
  SetCgroupMemoryLocked(m);
  UnlockHeap();
}

template <typename T>
T *NewMeta() {
  void *mem = meta::Malloc(sizeof(T));
  if (mem == nullptr) Fatal("out of memory for the cgroup readers");
  return new (mem) T();
}

// Polls the Pacer for limit events (heap lock) and delivers them (no lock held). The callback may call anything,
// allocation included, so this thread registers for the call (the suspend signal unblocked, as the finalizer
// thread does) and unregisters after: between deliveries it stays out of every stop-the-world.
void DeliverEvents() {
  pthread_mutex_lock(&g_delivery_mutex);
  LockHeap();
  void (*fn)(const pgc_event *, void *) = g_event_fn;
  void *data = g_event_data;
  if (fn == nullptr) {
    UnlockHeap();
    pthread_mutex_unlock(&g_delivery_mutex);
    return;
  }
  const uint64_t now = os::MonotonicNs();
  const pacer::MemoryState memory = CurrentMemory();
  const pacer::EventBatch batch = g_pacer.PollEvents(now, memory);
  pgc_event events[5];
  uint64_t num_gc = 0, gc_cpu_ns = 0;
  CycleCountersLocked(&num_gc, &gc_cpu_ns);
  for (uint32_t i = 0; i < batch.n; ++i) {
    pgc_event &e = events[i];
    memset(&e, 0, sizeof(e));
    e.size = sizeof(pgc_event);
    e.version = PGC_EVENT_VERSION;
    e.kind = static_cast<uint32_t>(batch.kinds[i]);
    e.num_gc = num_gc;
    e.total_bytes = memory.total_bytes;
    e.memory_limit_bytes = g_pacer.memory_limit_bytes();
    e.gc_cpu_fraction = g_pacer.GcCpuFraction(gc_cpu_ns, now);
    e.hard_memory_limit_bytes = g_pacer.hard_limit_bytes();
    trace::LimitEvent(e.kind, e.total_bytes, e.memory_limit_bytes, e.hard_memory_limit_bytes);
  }
  UnlockHeap();
  if (batch.n == 0) {
    pthread_mutex_unlock(&g_delivery_mutex);
    return;
  }

  sigset_t suspend, old;
  sigemptyset(&suspend);
  sigaddset(&suspend, threads::SuspendSignal());
  pthread_sigmask(SIG_UNBLOCK, &suspend, &old);
  // Registration needs a thread record (metadata), which the hard cap may refuse: the events are delivered all
  // the same, unregistered; a pacegc call in the callback then registers the thread itself, or fails as any
  // allocation at the cap does. Either way the thread leaves the registry after the callback.
  threads::Register(/*internal=*/true);
  t_delivering = true;
  for (uint32_t i = 0; i < batch.n; ++i) fn(&events[i], data);
  t_delivering = false;
  if (t_current != nullptr) threads::Unregister();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_mutex_unlock(&g_delivery_mutex);
}

void *BackgroundMain(void *) {
  uint64_t next_cpu_refresh = os::MonotonicNs() + kCpuRefreshNs;
  for (;;) {
    if (os::MonotonicNs() >= next_cpu_refresh) {
      RefreshCgroup();
      next_cpu_refresh = os::MonotonicNs() + kCpuRefreshNs;
    }
    DeliverEvents();
    // The periodic collection (GOGC on only, as in Go).
    LockHeap();
    if (g_bg_runway) {
      g_bg_runway = false;
      CollectLocked(GcReason::kRunway);
    }
    if (g_bg_collect) {
      g_bg_collect = false;
      CollectLocked(GcReason::kRequested);
    } else if (g_alloc.heap_alloc_bytes != 0 && g_pacer.PeriodicGcDue(os::MonotonicNs())) {
      // Not for an empty heap: nothing to collect, and a program that has no collected object (the drop-in
      // allocator's manual mode, where this thread runs to return mimalloc's pages) is never signalled.
      CollectLocked(GcReason::kPeriodic);
    }
    uint64_t next_periodic = g_pacer.NextPeriodicGcNs();
    bool need = BackgroundNeed() != 0;
    const double cpus = g_pacer.cpus();  // read under the heap lock: tests install capacities from other threads
    const uint64_t now = os::MonotonicNs();
    const pacer::MemoryState memory = CurrentMemory();
    const bool release_manual = g_pacer.ManualReleaseDue(memory, now);
    const uint64_t excess = release_manual ? g_pacer.ManualExcess(memory) : 0;
    UnlockHeap();

    if (release_manual) {
      const uint64_t released = ReleaseManual(/*forced=*/false);
      LockHeap();
      g_pacer.OnManualRelease(now, released, excess);
      UnlockHeap();
    }

    if (need) {
      uint64_t work = ScavengeBatch();
      if (work != 0) {
        uint64_t sleep_ns = pacer::BackgroundSleepNs(work, cpus);
        timespec ts{static_cast<time_t>(sleep_ns / 1'000'000'000), static_cast<long>(sleep_ns % 1'000'000'000)};
        while (nanosleep(&ts, &ts) != 0) {
        }
        continue;
      }
    }
    SleepUntil(next_periodic < next_cpu_refresh ? next_periodic : next_cpu_refresh);
  }
  return nullptr;
}

// The environment's settings (GOGC, GOMEMLIMIT, PACEGC_AUTOMEMLIMIT, PACEGC_CPU_LIMITER), from the settings table
// (read once at start-up, where a malformed value printed one line and exited with status 2).
void ReadEnvironment(pacer::Settings *s) {
  const settings::Values &env = settings::Get();  // read and checked once, at start-up (settings/settings.h)
  s->gc_percent = env.gc_percent;
  if (env.memory_limit_set) {
    s->memory_limit_bytes = env.memory_limit_bytes;
    s->limit_source = LimitSource::kEnv;
  }
  s->auto_ratio = env.auto_memory_limit_ratio;
  s->cpu_limiter = env.cpu_limiter;
  s->hard_limit_bytes = env.hard_memory_limit_bytes;
}

// A limit derived from the cgroup was set or moved: say so (gctrace), and wake the scavenger if there is work.
void CgroupLimitMoved() {
  trace::MemoryLimitFromCgroup(g_pacer.memory_limit_bytes(), g_cgroup_memory.bytes, g_pacer.settings().auto_ratio,
                               cgroup::HierarchyName(g_cgroup_memory.hierarchy));
  if (g_bg_started && BackgroundNeed() != 0) Kick();  // (not yet started at Init, before the heap is)
}

}  // namespace

void Init() {
  g_cpu_reader = NewMeta<cgroup::CpuQuotaReader>();
  g_memory_reader = NewMeta<cgroup::MemoryLimitReader>();
  g_cpu = g_cpu_reader->Refresh();
  g_cpu_read = g_cpu;
  const uint64_t now = os::MonotonicNs();
  const uint64_t process_cpu = os::ProcessCpuNs();
  pacer::Settings s;
  ReadEnvironment(&s);
  g_cgroup_memory = g_memory_reader->Refresh();
  s.cgroup_memory_bytes = g_cgroup_memory.bytes;
  s.cpus = g_cpu.cpus;
  g_startup_settings = s;
  g_pacer = pacer::MakePacer(s, now, process_cpu);
  hardcap::SetLimit(g_pacer.hard_limit_bytes());
  if (g_pacer.limit_source() == LimitSource::kCgroup) CgroupLimitMoved();
}

uint64_t TotalBytes() { return g_heap.retained_bytes() + meta::AllocatedBytes() + meta::ManualBytes(); }

pacer::MemoryState CurrentMemory() {
  pacer::MemoryState m;
  m.total_bytes = TotalBytes();
  m.heap_retained_bytes = g_heap.retained_bytes();
  m.heap_free_bytes = g_heap.free_resident_bytes();
  m.heap_alloc_bytes = TriggerHeapBytes();
  return m;
}

pacer::Goal CurrentGoal() { return g_pacer.CurrentGoal(CurrentMemory()); }

bool CollectionDue(uint64_t upcoming_bytes) {
  const uint64_t now = os::MonotonicNs();
  const pacer::TriggerDecision d = g_pacer.OnTriggerCheck(now, [] { return os::ProcessCpuNs(); }, CurrentMemory(),
                                                          TriggerHeapBytes() + upcoming_bytes);
  if (g_event_fn != nullptr && g_pacer.EventsMayBeDue()) Kick();  // a limiter edge: tell the program soon
  return d == pacer::TriggerDecision::kStart;
}

void OnCycleBegin() { g_pacer.OnCycleBegin(os::MonotonicNs(), os::ProcessCpuNs()); }

void OnCycleAbandoned() { g_pacer.OnCycleAbandoned(); }

uint64_t OnCycle(const CycleReport &r) {
  const uint64_t now = os::MonotonicNs();
  const pacer::MemoryState memory = CurrentMemory();
  const pacer::CycleOutcome out = g_pacer.OnCycleEnd(now, os::ProcessCpuNs(), r, memory);
  if (trace::g_pacertrace) {
    trace::NotePacer(g_pacer.Stats(now, memory));
  }
  StartBackground();
  if (out.scavenge_need_bytes != 0 || g_event_fn != nullptr) Kick();  // (events: poll after every cycle)
  return out.go_gc_cpu_ns;
}

double Parallelism() { return g_pacer.parallelism(); }

bool LimiterOn() { return g_pacer.limiter_on(); }

uint64_t RunwayTriggerBytes() { return g_pacer.ConcurrentTrigger(CurrentMemory()).trigger_bytes; }

bool RunwayDue(uint64_t heap_bytes) { return g_pacer.RunwayDue(CurrentMemory(), heap_bytes); }

double AssistRatio(uint64_t start_heap) { return g_pacer.AssistRatio(CurrentMemory(), start_heap); }

uint64_t AssistScanBytes(uint64_t start_heap, uint64_t scan_done, uint64_t heap_bytes) {
  return g_pacer.AssistScanBytes(CurrentMemory(), start_heap, scan_done, heap_bytes);
}

void RequestRunwayCycle() {
  g_bg_runway = true;
  StartBackground();  // (started at the first cycle's end already: a runway needs a measured cycle)
  Kick();
}

uint64_t CycleChargeNs(const CycleReport &r) { return g_pacer.CycleChargeNs(r.collector_cpu_ns); }

const cgroup::CpuCapacity &CpuCapacity() { return g_cpu; }

void SetCpuCapacityLocked(const cgroup::CpuCapacity &c, uint64_t now_ns) {
  g_cpu = c;
  g_pacer.OnCpuCapacity(c.cpus, now_ns);
}

void SetCgroupMemoryLocked(const cgroup::MemoryLimit &m) {
  g_cgroup_memory = m;
  if (g_pacer.OnCgroupMemoryLimit(m.bytes)) CgroupLimitMoved();
}

double GcCpuFraction(uint64_t gc_cpu_ns, uint64_t now_ns) { return g_pacer.GcCpuFraction(gc_cpu_ns, now_ns); }

void BeforeSpanAlloc(uint64_t bytes) {
  if (g_pacer.memory_limit_bytes() == pacer::kNoLimit) return;  // (no memory to measure)
  uint64_t n = g_pacer.OnSpanAlloc(CurrentMemory(), bytes);
  if (n != 0) ReleaseCharged(n, trace::Release::kEager);
}

uint64_t ReleaseManual(bool forced) {
  const uint64_t before = meta::ManualBytes();
  const uint64_t t0 = os::ThreadCpuNs();
  if (!meta::ReleaseManualMemory()) return 0;  // not under the drop-in allocator
  const uint64_t work = os::ThreadCpuNs() - t0;
  const uint64_t after = meta::ManualBytes();
  const uint64_t released = before > after ? before - after : 0;
  LockHeap();
  trace::Released(forced ? trace::Release::kForced : trace::Release::kBackground, released);
  g_pacer.OnScavenged(work);
  UnlockHeap();
  return released;
}

uint64_t ReleaseAll() {
  uint64_t released = ReleaseCharged(UINT64_MAX, trace::Release::kForced);
  trace::ForcedScavengeDone();
  return released;
}

int SetGcPercent(int percent) {
  int previous = g_pacer.SetGcPercent(percent);
  Kick();
  return previous;
}

int64_t SetMemoryLimit(int64_t bytes) {
  int64_t previous = g_pacer.SetMemoryLimit(bytes);
  if (BackgroundNeed() != 0) Kick();
  return previous;
}

int64_t SetHardMemoryLimit(int64_t bytes) {
  const int64_t previous = g_pacer.SetHardLimit(bytes);
  hardcap::SetLimit(bytes);  // (a negative value only queries, in both)
  if (BackgroundNeed() != 0) Kick();
  return previous;
}

void SetEventCallback(void (*fn)(const pgc_event *, void *), void *data) {
  g_event_fn = fn;
  g_event_data = data;
  g_pacer.ResetEvents();
  if (fn == nullptr) return;
  StartBackground();
  Kick();
}

void WaitForDelivery() {
  if (t_delivering) return;  // called from the callback: the call in flight is the caller's own
  threads::DoBlocking(
      [](void *) -> void * {
        pthread_mutex_lock(&g_delivery_mutex);
        pthread_mutex_unlock(&g_delivery_mutex);
        return nullptr;
      },
      nullptr);
}

void OnHardLimitHit(bool failed) {
  g_pacer.OnHardLimitHit(os::MonotonicNs(), failed);
  trace::HardLimitHit(failed, TotalBytes(), g_pacer.hard_limit_bytes());
  if (g_event_fn != nullptr) Kick();
}

Snapshot Read() {
  Snapshot s;
  const pacer::MemoryState memory = CurrentMemory();
  s.pacer = g_pacer.Stats(os::MonotonicNs(), memory);
  s.memory = memory;
  s.cgroup_memory = g_cgroup_memory;
  return s;
}

pacer::Settings PacerSettings() { return g_pacer.settings(); }
pacer::Settings StartupSettings() { return g_startup_settings; }

// In the child of fork() only the forking thread exists: the background thread must be started again there (at the
// child's next cycle) rather than kicked in vain.
// fork() waits for the heap lock and then the registry lock (the documented order), so the child never inherits
// either locked by a thread it does not have: any allocating thread takes the heap lock on its slow path, the
// background thread for every scavenging quantum, a registering thread the registry lock. Only the forking thread
// holds them in the child, and releases them there.
static void PrepareFork() {
  pthread_mutex_lock(&g_cgroup_readers_mutex);
  LockHeap();
  WaitForConcurrentCycle();  // a concurrent cycle releases the heap lock while it marks: not to be inherited half done
  threads::LockRegistry();  // then threads.cc's handler takes the class locks
}
static void ParentAfterFork() {
  threads::UnlockRegistry();
  UnlockHeap();
  pthread_mutex_unlock(&g_cgroup_readers_mutex);
}
static void ChildAfterFork() {
  pthread_mutex_init(&g_delivery_mutex, nullptr);  // the background thread, which may have held it, is not here
  g_bg_started = false;
  g_bg_kicked = false;
  g_bg_collect = false;
  g_bg_runway = false;
  pthread_mutex_init(&g_bg_mutex, nullptr);
  concurrent::OnForkChild();  // the kernel does not carry write tracking into a child
  helpers::OnForkChild();     // nor the mark thread
  threads::UnlockRegistry();
  UnlockHeap();
  pthread_mutex_unlock(&g_cgroup_readers_mutex);
}

void InstallForkHandlers() {
  // At initialisation, not with the background thread: a program forks while other threads allocate long before
  // its first collection (issue 16: half the children of such a fork hung on an inherited heap lock).
  pthread_atfork(PrepareFork, ParentAfterFork, ChildAfterFork);
}

void StartBackground() {
  // Heap lock held: g_bg_started is read under it by Kick's callers. The new thread blocks on the heap lock until
  // the caller releases it.
  if (g_bg_started) return;
  g_bg_started = true;  // also after a failure: do not retry at every cycle
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&g_bg_cond, &attr);
  pthread_condattr_destroy(&attr);
  // The thread starts with every signal blocked: it is not registered, so the collector never signals it, and
  // the program's own signals belong on its threads.
  pthread_t thread;
  int rc = thread_start::CreateUnregistered(&thread, BackgroundMain, nullptr);
  if (rc != 0) {
    Message("cannot start the background scavenger thread (%s); free memory is returned to the OS only "
            "synchronously, and there is no periodic collection", strerror(rc));
    return;
  }
  pthread_setname_np(thread, "pacegc-bg");
  pthread_detach(thread);
}

void RequestCollection() {
  LockHeap();
  g_bg_collect = true;
  StartBackground();  // once; a failure was said then, and the request waits for the next cycle's end
  Kick();
  UnlockHeap();
}

}  // namespace pacegc::internal::pacing

namespace pacegc::internal::testing {

void SetPeriodicGcNs(uint64_t period_ns) {
  EnsureInit();
  LockHeap();
  pacing::g_pacer.SetPeriodicGcNs(period_ns);
  pacing::Kick();
  UnlockHeap();
}

}  // namespace pacegc::internal::testing
