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

#include "gc/cgroup.h"
#include "gc/check.h"
#include "gc/collector.h"
#include "gc/meta.h"
#include "gc/os.h"
#include "gc/testing.h"
#include "gc/threads.h"
#include "gc/trace.h"
#include "pacer/config.h"
#include "pacer/limiter.h"
#include "pacer/scavenge.h"
#include "settings/settings.h"

namespace pacegc::internal::pacing {
namespace {

constexpr uint64_t kPeriodicGcNs = uint64_t{120} * 1'000'000'000;  // Go's forcegcperiod: 2 minutes
uint64_t g_periodic_gc_ns = kPeriodicGcNs;  // heap lock; only tests change it (testing::SetPeriodicGcNs)

// Settings.
int g_gc_percent = 100;
int64_t g_memory_limit = pacer::kNoLimit;
LimitSource g_limit_source = LimitSource::kNone;  // who set g_memory_limit
double g_auto_ratio = pacer::kDefaultAutoMemoryLimitRatio;  // PACEGC_AUTOMEMLIMIT; 0 = off

// The cgroup memory limit (cgroup.h), re-read with the CPU capacity; the default of g_memory_limit while
// g_limit_source is kNone or kCgroup.
cgroup::MemoryLimit g_cgroup_memory;
cgroup::MemoryLimitReader *g_memory_reader = nullptr;  // background thread only (and Init), under g_cgroup_readers_mutex

// The CPU the program may use (cgroup.h): affinity mask lowered by a cgroup CPU quota. Re-read by the background
// thread every kCpuRefreshNs. g_capacity_ns integrates cpus over wall time up to g_capacity_since_ns (the
// denominator of gc_cpu_fraction when the capacity changed along the way).
constexpr uint64_t kCpuRefreshNs = 1'000'000'000;
cgroup::CpuCapacity g_cpu;
double g_capacity_ns = 0;
uint64_t g_capacity_since_ns = 0;
cgroup::CpuQuotaReader *g_cpu_reader = nullptr;  // background thread only (and Init), under g_cgroup_readers_mutex
// Held while the readers run (they allocate and rebuild strings), and by fork() (PrepareFork, before the heap lock),
// so a child never inherits a reader caught half-way through a refresh. Lock order: this, then the heap lock.
pthread_mutex_t g_cgroup_readers_mutex = PTHREAD_MUTEX_INITIALIZER;

// The last cycle, as the pacer sees it.
pacer::LastCycle g_last;
uint64_t g_gc_percent_goal = pacer::kDefaultHeapMinimumBytes;  // recomputed per cycle and on SetGcPercent
uint64_t g_num_gc = 0;
uint64_t g_last_cycle_end_ns = 0;  // monotonic; the start time before the first cycle

// GC CPU limiter and its current accounting window.
pacer::CpuLimiter g_limiter{1.0};
bool g_limiter_active = true;        // PACEGC_CPU_LIMITER (on unless "off")
uint64_t g_window_start_ns = 0;        // monotonic time the window opened
uint64_t g_window_process_cpu_ns = 0;  // process CPU time when the window opened
uint64_t g_window_pause_ns = 0;        // wall time of pauses in the window
uint64_t g_window_gc_cpu_ns = 0;       // GC CPU charged in the window (pauses × cores, scavenging)
uint64_t g_window_own_cpu_ns = 0;      // CPU the collector and scavenger used themselves in the window
uint64_t g_expected_cycle_gc_cpu_ns = 0;  // the last cycle's charge: what the next one is expected to cost
pacer::ParallelismEstimate g_parallelism;  // cores the program uses outside pauses: what a pause costs it
uint64_t g_postponed = 0;

// Scavenger.
uint64_t g_scavenge_cpu_ns = 0;
uint64_t g_retain_goal_bytes = UINT64_MAX;  // GOGC retain goal (heap bytes), UINT64_MAX = none yet
// In-use heap bytes at the mark of the last kRetainCycles cycles (see OnCycle).
constexpr int kRetainCycles = 4;
uint64_t g_recent_in_use[kRetainCycles] = {};
uint64_t g_last_goal_bytes = 0;             // the goal in force at the end of the previous cycle
uint64_t g_num_periodic_gc = 0;

// Background thread (g_bg_mutex).
pthread_mutex_t g_bg_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_bg_cond;
bool g_bg_kicked = false;
bool g_bg_started = false;  // heap lock: the thread was started (or failed to start)

pacer::MemoryState CurrentMemory() {
  pacer::MemoryState m;
  m.mapped_bytes = TotalBytes();
  m.heap_free_bytes = g_heap.free_resident_bytes();
  m.heap_alloc_bytes = TriggerHeapBytes();
  m.heap_marked_bytes = g_last.heap_marked_bytes;
  return m;
}

pacer::ScavengeState CurrentScavengeState() {
  return pacer::ScavengeState{TotalBytes(), g_heap.retained_bytes(), g_heap.free_resident_bytes()};
}

bool LimiterOn() { return g_limiter_active && g_limiter.enabled(); }

// Closes the limiter's accounting window at now_ns.
void CloseWindow(uint64_t now_ns) {
  uint64_t cpu = os::ProcessCpuNs();
  uint64_t used = cpu > g_window_process_cpu_ns ? cpu - g_window_process_cpu_ns : 0;
  uint64_t mutator = used > g_window_own_cpu_ns ? used - g_window_own_cpu_ns : 0;
  uint64_t wall = now_ns > g_window_start_ns ? now_ns - g_window_start_ns : 0;
  g_parallelism.Observe(mutator, wall > g_window_pause_ns ? wall - g_window_pause_ns : 0);
  g_limiter.SetCapacityNs(pacer::LimiterCapacityNs(g_cpu.cpus, g_expected_cycle_gc_cpu_ns), now_ns, g_num_gc);
  g_limiter.Account(now_ns, g_window_gc_cpu_ns, mutator, g_num_gc);
  g_window_start_ns = now_ns;
  g_window_process_cpu_ns = cpu;
  g_window_gc_cpu_ns = 0;
  g_window_own_cpu_ns = 0;
  g_window_pause_ns = 0;
}

// Releases up to `bytes` and charges the time to the scavenger and the limiter.
uint64_t ReleaseCharged(uint64_t bytes, trace::Release kind) {
  uint64_t t0 = os::ThreadCpuNs();
  uint64_t released = g_heap.Release(bytes);
  trace::Released(kind, released);
  uint64_t work = os::ThreadCpuNs() - t0;
  g_scavenge_cpu_ns += work;
  g_window_gc_cpu_ns += work;
  g_window_own_cpu_ns += work;
  return released;
}

uint64_t BackgroundNeed() {
  return pacer::BackgroundScavengeBytes(CurrentScavengeState(), pacer::MemoryLimitRetainGoal(g_memory_limit),
                                        g_retain_goal_bytes);
}

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
  cgroup::MemoryLimit m = g_memory_reader->Refresh();
  pthread_mutex_unlock(&g_cgroup_readers_mutex);
  LockHeap();
  SetCpuCapacityLocked(c, os::MonotonicNs());
  SetCgroupMemoryLocked(m);
  UnlockHeap();
}

template <typename T>
T *NewMeta() {
  void *mem = meta::Malloc(sizeof(T));
  if (mem == nullptr) Fatal("out of memory for the cgroup readers");
  return new (mem) T();
}

void *BackgroundMain(void *) {
  uint64_t next_cpu_refresh = os::MonotonicNs() + kCpuRefreshNs;
  for (;;) {
    if (os::MonotonicNs() >= next_cpu_refresh) {
      RefreshCgroup();
      next_cpu_refresh = os::MonotonicNs() + kCpuRefreshNs;
    }
    // The periodic collection (GOGC on only, as in Go).
    LockHeap();
    uint64_t now = os::MonotonicNs();
    bool periodic = g_gc_percent >= 0 && now - g_last_cycle_end_ns >= g_periodic_gc_ns;
    if (periodic) {
      ++g_num_periodic_gc;
      CollectLocked(GcReason::kPeriodic);
    }
    uint64_t next_periodic = g_last_cycle_end_ns + g_periodic_gc_ns;
    bool need = BackgroundNeed() != 0;
    const double cpus = g_cpu.cpus;  // read under the heap lock: tests install capacities from other threads
    UnlockHeap();

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

}  // namespace

void Init() {
  g_cpu_reader = NewMeta<cgroup::CpuQuotaReader>();
  g_memory_reader = NewMeta<cgroup::MemoryLimitReader>();
  g_cpu = g_cpu_reader->Refresh();
  g_limiter = pacer::CpuLimiter(g_cpu.cpus);
  g_last_cycle_end_ns = os::MonotonicNs();
  g_capacity_since_ns = g_last_cycle_end_ns;
  g_window_start_ns = g_last_cycle_end_ns;
  g_window_process_cpu_ns = os::ProcessCpuNs();
  const settings::Values &env = settings::Get();  // GOGC, GOMEMLIMIT, PACEGC_AUTOMEMLIMIT, PACEGC_CPU_LIMITER
  g_gc_percent = env.gc_percent;
  if (env.memory_limit_set) {
    g_memory_limit = env.memory_limit_bytes;
    g_limit_source = LimitSource::kEnv;
  }
  g_auto_ratio = env.auto_memory_limit_ratio;
  SetCgroupMemoryLocked(g_memory_reader->Refresh());
  g_limiter_active = env.cpu_limiter;
  g_gc_percent_goal = pacer::GcPercentGoal(g_last, g_gc_percent);
}

uint64_t TotalBytes() { return g_heap.retained_bytes() + meta::AllocatedBytes() + meta::ManualBytes(); }

pacer::Goal CurrentGoal() {
  return pacer::CombineGoals(g_gc_percent_goal, pacer::MemoryLimitGoal(CurrentMemory(), g_memory_limit));
}

bool CollectionDue(uint64_t upcoming_bytes) {
  uint64_t now = os::MonotonicNs();
  if (g_limiter_active && g_limiter.NeedsUpdate(now)) CloseWindow(now);
  uint64_t heap = TriggerHeapBytes() + upcoming_bytes;
  pacer::TriggerDecision d = pacer::DecideTrigger(heap, CurrentGoal().bytes, g_gc_percent_goal,
                                                  g_limiter_active ? &g_limiter : nullptr, now,
                                                  g_expected_cycle_gc_cpu_ns, g_num_gc);
  if (d == pacer::TriggerDecision::kPostponed) ++g_postponed;
  return d == pacer::TriggerDecision::kStart;
}

uint64_t OnCycle(const CycleReport &r) {
  uint64_t now = os::MonotonicNs();
  uint64_t charge = CycleChargeNs(r);
  g_num_gc = r.num_gc;
  g_last_cycle_end_ns = now;
  g_last.heap_marked_bytes = r.heap_marked_bytes;
  g_last.stack_scan_bytes = r.stack_scan_bytes;
  g_last.globals_scan_bytes = r.globals_scan_bytes;
  g_gc_percent_goal = pacer::GcPercentGoal(g_last, g_gc_percent);

  g_window_gc_cpu_ns += charge;
  g_window_own_cpu_ns += r.collector_cpu_ns;
  g_window_pause_ns += r.pause_ns;
  g_expected_cycle_gc_cpu_ns = charge;
  if (g_limiter_active) CloseWindow(now);

  // The scavenger's GOGC goal: what the heap needed at this peak, scaled by how the goal moved, + 10%.
  uint64_t goal = CurrentGoal().bytes;
  if (g_last_goal_bytes != 0) {
    // Go's retain goal, but never below what the heap needed at its peak (in use at the mark, + 10%) in any of the
    // last kRetainCycles cycles. Go scales the last peak by how far the goal fell, so a heap that shrinks for a
    // cycle or two and grows back (GCBench: its stretch tree dies, then its long-lived tree is built) has pages
    // released and faulted back in at once: GCBench ran 13% slower with the background scavenger than without.
    // After a lasting drop (the spike scenario) the goal follows Go's within kRetainCycles cycles.
    g_recent_in_use[r.num_gc % kRetainCycles] = r.heap_in_use_at_mark;
    uint64_t recent_peak = 0;
    for (uint64_t b : g_recent_in_use) recent_peak = b > recent_peak ? b : recent_peak;
    uint64_t go_goal = pacer::GcPercentRetainGoal(r.heap_in_use_at_mark, goal, g_last_goal_bytes);
    uint64_t floor = pacer::GcPercentRetainGoal(recent_peak, 1, 1);  // recent_peak + 10%, rounded to a page
    g_retain_goal_bytes = go_goal != UINT64_MAX && floor > go_goal ? floor : go_goal;  // UINT64_MAX: disabled
  }
  g_last_goal_bytes = goal;
  if (trace::g_pacertrace) {
    trace::NotePacer({g_gc_percent, g_memory_limit, LimitSourceName(g_limit_source), g_gc_percent_goal,
                      pacer::MemoryLimitGoal(CurrentMemory(), g_memory_limit), g_limiter.fill_ns(),
                      g_limiter.capacity_ns(), g_limiter_active, LimiterOn(), g_postponed});
  }
  StartBackground();
  if (BackgroundNeed() != 0) Kick();
  // Go's GCCPUFraction definition (pause × GOMAXPROCS), with the capacity as GOMAXPROCS, for the stats.
  double go_charge = static_cast<double>(r.pause_ns) * g_cpu.cpus;
  return go_charge >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(go_charge);
}

uint64_t CycleChargeNs(const CycleReport &r) {
  // The collector's CPU, not the pause's wall time: see pacer/limiter.h, "Units".
  return pacer::PauseChargeNs(r.collector_cpu_ns, g_parallelism.value(), g_cpu.cpus);
}

const cgroup::CpuCapacity &CpuCapacity() { return g_cpu; }

void SetCpuCapacityLocked(const cgroup::CpuCapacity &c, uint64_t now_ns) {
  if (now_ns > g_capacity_since_ns) {
    g_capacity_ns += static_cast<double>(now_ns - g_capacity_since_ns) * g_cpu.cpus;
    g_capacity_since_ns = now_ns;
  }
  g_cpu = c;
  g_limiter.SetCapacityNs(pacer::LimiterCapacityNs(g_cpu.cpus, g_expected_cycle_gc_cpu_ns), now_ns, g_num_gc);
}

const char *LimitSourceName(LimitSource s) {
  switch (s) {
    case LimitSource::kEnv: return "env";
    case LimitSource::kApi: return "api";
    case LimitSource::kCgroup: return "cgroup";
    case LimitSource::kNone: break;
  }
  return "none";
}

void SetCgroupMemoryLocked(const cgroup::MemoryLimit &m) {
  g_cgroup_memory = m;
  if (g_limit_source == LimitSource::kEnv || g_limit_source == LimitSource::kApi) return;  // they always win
  int64_t derived = pacer::AutoMemoryLimit(m.bytes, g_auto_ratio);
  LimitSource source = derived == pacer::kNoLimit ? LimitSource::kNone : LimitSource::kCgroup;
  if (derived == g_memory_limit && source == g_limit_source) return;
  g_memory_limit = derived;
  g_limit_source = source;
  trace::MemoryLimitFromCgroup(derived, m.bytes, g_auto_ratio, cgroup::HierarchyName(m.hierarchy));
  if (g_bg_started && BackgroundNeed() != 0) Kick();  // (not yet started at Init, before the heap is)
}

double GcCpuFraction(uint64_t gc_cpu_ns, uint64_t now_ns) {
  double total = g_capacity_ns;
  if (now_ns > g_capacity_since_ns) total += static_cast<double>(now_ns - g_capacity_since_ns) * g_cpu.cpus;
  return total <= 0 ? 0.0 : static_cast<double>(gc_cpu_ns) / total;
}

void BeforeSpanAlloc(uint64_t bytes) {
  if (g_memory_limit == pacer::kNoLimit) return;
  uint64_t n = pacer::SyncScavengeBytes(CurrentScavengeState(), bytes, g_memory_limit, LimiterOn());
  if (n != 0) ReleaseCharged(n, trace::Release::kEager);
}

uint64_t ReleaseAll() {
  uint64_t released = ReleaseCharged(UINT64_MAX, trace::Release::kForced);
  trace::ForcedScavengeDone();
  return released;
}

int SetGcPercent(int percent) {
  int previous = g_gc_percent;
  g_gc_percent = percent < 0 ? -1 : percent;
  g_gc_percent_goal = pacer::GcPercentGoal(g_last, g_gc_percent);
  Kick();
  return previous;
}

int64_t SetMemoryLimit(int64_t bytes) {
  int64_t previous = g_memory_limit;
  if (bytes >= 0) {
    g_memory_limit = bytes;
    g_limit_source = LimitSource::kApi;
  }
  if (BackgroundNeed() != 0) Kick();
  return previous;
}

Snapshot Read() {
  Snapshot s;
  s.gc_percent = g_gc_percent;
  s.memory_limit_bytes = g_memory_limit;
  s.limit_source = g_limit_source;
  s.cgroup_memory = g_cgroup_memory;
  s.auto_ratio = g_auto_ratio;
  s.total_bytes = TotalBytes();
  s.heap_marked_bytes = g_last.heap_marked_bytes;
  s.stack_scan_bytes = g_last.stack_scan_bytes;
  s.globals_scan_bytes = g_last.globals_scan_bytes;
  s.limiter_enabled = LimiterOn();
  s.limiter_last_enabled_cycle = g_limiter.last_enabled_cycle();
  s.limiter_enabled_ns = g_limiter.enabled_total_ns(os::MonotonicNs());
  s.limiter_postponed = g_postponed;
  s.scavenge_cpu_ns = g_scavenge_cpu_ns;
  s.num_periodic_gc = g_num_periodic_gc;
  return s;
}

// In the child of fork() only the forking thread exists: the background thread must be started again there (at the
// child's next cycle) rather than kicked in vain.
// fork() waits for the heap lock and then the registry lock (the documented order), so the child never inherits
// either locked by a thread it does not have: any allocating thread takes the heap lock on its slow path, the
// background thread for every scavenging quantum, a registering thread the registry lock. Only the forking thread
// holds them in the child, and releases them there.
static void PrepareFork() {
  pthread_mutex_lock(&g_cgroup_readers_mutex);
  LockHeap();
  threads::LockRegistry();  // then threads.cc's handler takes the class locks
}
static void ParentAfterFork() {
  threads::UnlockRegistry();
  UnlockHeap();
  pthread_mutex_unlock(&g_cgroup_readers_mutex);
}
static void ChildAfterFork() {
  g_bg_started = false;
  g_bg_kicked = false;
  pthread_mutex_init(&g_bg_mutex, nullptr);
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
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  int rc = pthread_create(&thread, nullptr, BackgroundMain, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    Message("cannot start the background scavenger thread (%s); free memory is returned to the OS only "
            "synchronously, and there is no periodic collection", strerror(rc));
    return;
  }
  pthread_setname_np(thread, "pacegc-bg");
  pthread_detach(thread);
}

}  // namespace pacegc::internal::pacing

namespace pacegc::internal::testing {

void SetPeriodicGcNs(uint64_t period_ns) {
  EnsureInit();
  LockHeap();
  pacing::g_periodic_gc_ns = period_ns == 0 ? pacing::kPeriodicGcNs : period_ns;
  pacing::Kick();
  UnlockHeap();
}

}  // namespace pacegc::internal::testing
