// gc/collector.cc — see collector.h for the cycle. Also owns initialisation, settings and the statistics
// snapshot behind pgc_read_stats.
#include "gc/collector.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <ucontext.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/check.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/alloc.h"
#include "gc/concurrent.h"
#include "gc/finalize.h"
#include "gc/mark.h"
#include "gc/pacing.h"
#include "gc/roots.h"
#include "gc/sweep.h"
#include "gc/testing.h"
#include "gc/threads.h"
#include "gc/trace.h"
#include "gc/untouched.h"
#include "gc/weak.h"
#include "metrics/registry.h"
#include "pacegc/pacegc.h"
#include "settings/settings.h"

namespace pacegc::internal {

Heap g_heap;
AllocCounters g_alloc;

namespace {

SafePointMutex g_heap_lock;  // waiters acknowledge a stop themselves (threads.h)
pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

CycleStats g_cycles;  // the collector's counters (gc/stats.h); heap lock

// pacegc's own metric in the go-metrics registry: a timer of every pause (a decaying sample for percentiles, a meter
// for the rate), so PACEGC_METRICS_LOG and pgc_write_metrics show it beside the program's metrics. Heap lock held.
void RecordPauseInRegistry(uint64_t pause_ns) {
  static metrics::Timer *timer = nullptr;  // heap lock; looked up again after a failure (out of metadata memory)
  if (timer == nullptr) {
    metrics::Registry *r = metrics::Registry::Default();
    timer = r != nullptr ? r->GetTimer("/pacegc/gc/pause:seconds") : nullptr;
  }
  if (timer != nullptr) timer->UpdateNs(static_cast<int64_t>(pause_ns));
}

// pgc_stats.pause_hist bucket of a pause: the smallest i with pause <= 2^i us, at most the last bucket.
size_t PauseBucket(uint64_t pause_ns) {
  uint64_t us = (pause_ns + 999) / 1000;
  size_t i = 0;
  while (i + 1 < PGC_PAUSE_HIST_BUCKETS && (uint64_t{1} << i) < us) ++i;
  return i;
}

uint64_t g_start_ns = 0;
Marker *g_marker = nullptr;
size_t g_mark_stack_entries = Marker::kDefaultStackEntries;

// Test hooks (heap lock).
bool g_force_verify = false;
bool g_corrupt_next = false;
bool g_disturb_next = false;  // testing::DisturbNextParkedFrame (heap lock)
size_t g_last_verify_problems = 0;
bool g_verify_every_cycle = false;   // testing::SetVerifyEveryCycle (heap lock)
uint64_t g_helper_wait_ns = 0;       // testing::SetHelperWaitNs (heap lock)
size_t g_verify_problems_total = 0;  // every verification's problems (testing::VerifyProblemsTotal; heap lock)

#if defined(PACEGC_VERIFY_HEAP)
constexpr bool kVerifyBuild = true;
#else
constexpr bool kVerifyBuild = false;
#endif

// Is the pause about to run verified (heap lock)? Every one in a verify build, and where a test asked.
bool VerifyingPauses() { return kVerifyBuild || g_force_verify || g_verify_every_cycle; }

thread_local bool t_initialising = false;

void InitOnce() {
  settings::Get();  // the one reading of the environment: a malformed setting exits 2 here, before anything starts
  t_initialising = true;
  meta::Init();
  g_start_ns = os::MonotonicNs();
  trace::Init(g_start_ns);  // first: pacing::Init traces a limit derived from the cgroup
  pacing::Init();
  concurrent::Init();  // before the first arena (registered for write tracking when concurrent marking is on)
  InitFinalizers();
  if (!g_heap.Init()) Fatal("cannot map the page map (%zu MiB of address space)", (size_t{8} << (kAddressBits - kArenaShift)) >> 20);
  if (!threads::Init()) _exit(2);  // the message is printed
  threads::SetParkWork(helpers::Help);
  void *mem = meta::Malloc(sizeof(Marker));
  if (mem == nullptr) Fatal("out of memory for the marker");
  g_marker = new (mem) Marker();
  if (threads::Register() != 0) Fatal("cannot register the initial thread");
  // With a hard cap, the mark stack is taken now: a collection at the cap must not need new metadata to run.
  if (pacing::PacerSettings().hard_limit_bytes != pacer::kNoLimit && !g_marker->Init(g_mark_stack_entries)) {
    Fatal("out of memory for the mark stack (PACEGC_HARD_MEMLIMIT too small?)");
  }
  pacing::InstallForkHandlers();
  t_initialising = false;
}

// Clears the mark of the first marked object the root range points to (test hook); true if it found one.
// Reads the range word by word like the marker does, so it is exempt from AddressSanitizer the same way.
PACEGC_NO_SANITIZE_ADDRESS PACEGC_NO_SANITIZE_THREAD bool CorruptOneMarkIn(const RootRange &r, Span **span_out,
                                                                          uint32_t *index_out) {
  for (uintptr_t p = (r.lo + 7) & ~uintptr_t{7}; p + 8 <= r.hi; p += 8) {
    uintptr_t word = *reinterpret_cast<const uintptr_t *>(p);
    Span *s = nullptr;
    uint32_t index = 0;
    if (Marker::ObjectContaining(word, &s, &index) != 0 && s->IsMarked(index)) {
      s->ClearMark(index);
      *span_out = s;
      *index_out = index;
      return true;
    }
  }
  return false;
}

// Clears the mark of the first marked object a root points to (test hook). Returns {span, index} to restore.
bool CorruptOneMark(uintptr_t self_sp, Span **span_out, uint32_t *index_out) {
  bool done = false;
  roots::ForEach(self_sp, [&](const RootRange &r) {
    if (!done) done = CorruptOneMarkIn(r, span_out, index_out);
  });
  return done;
}

// Stacks other threads hold, above which a stop in which nothing spins wakes sleeping helpers (mark.h, "Helpers"):
// waking one costs the collector a system call and the helper 30-50 us before it runs, about what scanning this
// much takes.
constexpr size_t kWakeHelpersStackBytes = 128 << 10;

// What a pause must be expected to mark for the mark thread to join it (mark.h, "The mark thread"): waking it costs
// the collector a system call and the thread 30-50 us before it runs; marking 8 MiB takes ~2 ms here.
constexpr uint64_t kMarkThreadMinBytes = uint64_t{8} << 20;
// The same threshold lets it share a concurrent cycle's marking (mark.h, "Background sharing").
bool g_use_mark_thread = false;  // this cycle may use the mark thread (heap lock; set by CollectLocked)

// World stopped: the roots — the globals, then every thread's stack and registers, the helpers scanning stacks
// beside the collector (mark.h, "Helpers"). `helpers`: parked threads the collector may wake to mark (a stop in
// which nothing spins), or 0. Records the kMarkRoots phase if `trace_phase`.
void MarkRoots(uintptr_t self_sp, Marker &marker, int helpers, bool trace_phase) {
  // Parked threads that spin may claim their own stacks from here on: the globals first, which are ours alone,
  // while they do.
  helpers::Open();
  bool may_join = threads::SpinningNow() > 0;
  if (helpers > 0 && helpers::OtherStackBytes() >= kWakeHelpersStackBytes) {
    threads::WakeToWork(helpers);
    may_join = true;
  } else if (g_use_mark_thread && !may_join) {
    helpers::WakeMarkThread();  // a spare core nobody marks on
    may_join = true;
  }
  if (may_join && g_helper_wait_ns != 0) helpers::WaitForJoin(g_helper_wait_ns);
  roots::ForEachGlobal([&](const RootRange &r) { marker.ScanRoot(r); });
  g_cycles.last_helped_stacks = helpers::ScanOthersAndJoin(marker, self_sp);
  g_cycles.last_shared_entries = marker.taken_entries();  // = given: the pool is empty at the join
  if (trace_phase) trace::PhaseEnd(trace::kMarkRoots, marker.stack_scan_bytes(), marker.globals_scan_bytes());
}

// World stopped, marking done: weak links, finalizers, verification, the cycle's figures, and the sweep's start
// (gc/sweep.h: the rest of it runs after the restart, SweepAfterPause).
SweepResult g_swept_in_pause;  // BeginSweep's part of this cycle's sweep (heap lock)

void FinishPause(uintptr_t self_sp, Marker &marker) {
  trace::PhaseEnd(trace::kMarkHeap, marker.heap_scan_bytes(), marker.marked_bytes());
  weak::ClearUnreachable();  // before finalizers are found: a finalized object's links are already cleared
  trace::PhaseEnd(trace::kFinalizerDiscovery, DiscoverFinalizers(marker));

  if (VerifyingPauses()) {
    Span *corrupted = nullptr;
    uint32_t corrupted_index = 0;
    if (g_corrupt_next) {
      g_corrupt_next = false;
      CorruptOneMark(self_sp, &corrupted, &corrupted_index);
    }
    uintptr_t *disturbed = nullptr;
    if (g_disturb_next && g_force_verify) {  // CollectAndVerify's cycle, not one that came before it
      g_disturb_next = false;
      disturbed = DisturbParkedFrame();
    }
    const bool concurrent_cycle = concurrent::g_tracking_epoch.load(std::memory_order_relaxed) != 0;
    g_last_verify_problems = VerifyMarks(marker, self_sp, concurrent_cycle);
    if (disturbed != nullptr) RestoreParkedFrame(disturbed);  // before the thread resumes
    if (corrupted != nullptr) corrupted->TryMark(corrupted_index);  // restore before sweeping frees it
    const bool deliberate = corrupted != nullptr || disturbed != nullptr;
    if (!deliberate) g_verify_problems_total += g_last_verify_problems;
    if (kVerifyBuild && !deliberate && g_last_verify_problems != 0) {
      Fatal("heap verification found %zu problems after marking", g_last_verify_problems);
    }
    trace::PhaseEnd(trace::kVerifyHeap, g_last_verify_problems);
  }

  g_cycles.report.heap_in_use_at_mark = g_heap.in_use_bytes();
  KeepQuarantined(marker);  // verify builds: slots pgc_free released during a concurrent cycle stay quarantined
  UnstashSpans();  // stashed spans are swept like any other: a stash lasts a cycle at most
  // Credit for the threads that allocate while the rest of the sweep runs, published before they resume (the
  // handshake ended all credit): the live heap is what was just marked, the goal the one the cycle began under.
  PublishGrantLimitWhileSweeping(marker.marked_bytes());
  g_swept_in_pause = BeginSweep(kVerifyBuild);
  g_cycles.report.heap_marked_bytes = marker.marked_bytes();
  g_cycles.report.stack_scan_bytes = marker.stack_scan_bytes();
  g_cycles.report.globals_scan_bytes = marker.globals_scan_bytes();
  g_cycles.last_heap_scan_bytes = marker.heap_scan_bytes();
  g_cycles.last_overflows = marker.overflows();
}

// Heap lock held, the world running again after the pause that began the sweep: the rest of it (gc/sweep.h).
void SweepAfterPause() {
  SweepResult swept = g_swept_in_pause;
  swept += FinishSweep(kVerifyBuild);
  trace::PhaseEnd(trace::kSweep, swept.freed_bytes, swept.freed_objects);
}

// A stop-the-world cycle's pause. Its own frame: self_sp is the caller's spilled context.
void MarkAndBeginSweep(uintptr_t self_sp, Marker &marker, int helpers) {
  untouched::Refresh();  // before any marking: which spans may hold data (gc/untouched.h)
  marker.Reset();
  marker.KeepCachedSlots();
  MarkReadyFinalizers(marker);
  MarkRoots(self_sp, marker, helpers, /*trace_phase=*/true);
  marker.Drain();
  FinishPause(self_sp, marker);
}

// A concurrent cycle is in progress: its collecting thread holds the heap lock only in slices. Heap lock.
bool g_cycle_active = false;
uint64_t g_alloc_at_last_end = 0;  // g_alloc.total_alloc_bytes at the last cycle's end (CycleReport::allocated_bytes)
// Bumped (heap lock held) when g_cycle_active goes back to false, and before each pause of a concurrent cycle;
// WaitForConcurrentCycle sleeps on it.
std::atomic<uint32_t> g_cycle_end_seq{0};

// Heap lock held: wakes the threads waiting for the concurrent cycle (they look at g_cycle_active again).
void WakeCycleWaiters() {
  g_cycle_end_seq.fetch_add(1, std::memory_order_release);
  os::FutexWakeAll(&g_cycle_end_seq);
}

// Heap lock held: the cycle in progress is over (or never started).
void EndCycleActive() {
  g_cycle_active = false;
  WakeCycleWaiters();
}

// One stop of the world around work(self_sp, helpers): the registry lock, the handshake (spinning where a core would
// be idle, with helpers ready), the counters folded, this thread's registers spilled into its stack above every
// frame `work` uses, and the restart. Returns the pause's wall time. Records kStopTheWorld if `trace_stop`. Adds
// the CPU other threads used while they were stopped (the process's less this thread's) to
// g_cycles.last_pause_others_cpu_ns. Read once every thread is parked and before any resumes: the kernel brings a
// running thread's CPU time up to date only at its next tick or switch, so a first read before the stop would put
// up to a tick of each running thread's own work into the pause (it parks, and is counted, inside); read inside,
// the threads that sleep are up to date at both reads and those that spin lag alike at both.
template <typename Work>
uint64_t WithWorldStopped(bool trace_stop, Work &&work) {
  threads::LockRegistry();
  const uint64_t start_ns = os::MonotonicNs();
  // Threads waiting for this concurrent cycle go back to the heap lock, whose waiters the stop wakes: a futex wait
  // entered just as the stop's signal came may not take it at once (ThreadSanitizer holds signals back until an
  // intercepted call), and would hold the stop up until its timeout.
  if (g_cycle_active) WakeCycleWaiters();
  // Whole cores the program may use besides this one (a quota of 1.5 CPUs leaves none): waits in the handshake
  // spin on those only.
  int spare_cpus = static_cast<int>(pacing::CpuCapacity().cpus) - 1;
  if (spare_cpus > 0) spare_cpus = helpers::Prepare(spare_cpus, g_mark_stack_entries);  // a spinner marks
  bool spinning = false;
  int stopped = threads::StopTheWorld(&g_heap_lock, spare_cpus, &spinning);
  if (VerifyingPauses()) NoteParkedStates();
  FoldAllocationCounters();  // every thread is parked outside its allocation critical section
  if (trace_stop) trace::PhaseEnd(trace::kStopTheWorld, static_cast<uint64_t>(stopped));
  const uint64_t process_cpu0 = os::ProcessCpuNs(), own_cpu0 = os::ThreadCpuNs();

  ucontext_t context;
  getcontext(&context);
  __builtin_unwind_init();
  work(reinterpret_cast<uintptr_t>(&context), spinning || stopped < 2 ? 0 : spare_cpus);

  const uint64_t process_cpu = os::ProcessCpuNs() - process_cpu0, own_cpu = os::ThreadCpuNs() - own_cpu0;
  if (process_cpu > own_cpu) g_cycles.last_pause_others_cpu_ns += process_cpu - own_cpu;
  threads::StartTheWorld();
  threads::UnlockRegistry();
  return os::MonotonicNs() - start_ns;
}

// A pause's length into the pause statistics (each pause of a concurrent cycle counts as one, as in Go).
void RecordPause(uint64_t pause_ns) {
  g_cycles.pause_total_ns += pause_ns;
  g_cycles.pause_last_ns = pause_ns;
  if (pause_ns > g_cycles.pause_max_ns) g_cycles.pause_max_ns = pause_ns;
  ++g_cycles.pause_hist[PauseBucket(pause_ns)];
  RecordPauseInRegistry(pause_ns);
}

// ---- Concurrent cycles (gc/concurrent.h) ----

// WaitForConcurrentCycle's longest sleep before it looks again (a safety net: the cycle's end wakes it).
constexpr uint64_t kCycleWaitTimeoutNs = 10'000'000;

// Heap bytes the collector scans per slice of concurrent marking, holding the heap lock (~0.2-0.5 ms here): what
// another thread's slow path may wait for it.
constexpr uint64_t kSliceBytes = 256 << 10;
// Pre-cleaning rounds at most, and the reported pages below which the final pause takes the rest. Below
// kPrecleanMinMarkedBytes marked there is no pre-cleaning: the final pause's re-scan is bounded by a heap that
// small (a stop-the-world mark of 64 MiB is ~10 ms here), and each round costs a scan system call per protected run.
constexpr int kMaxPrecleanRounds = 4;
constexpr uint64_t kPrecleanEnoughPages = 256;
constexpr uint64_t kPrecleanEnoughSpans = 64;  // filled spans a round found (and tracked from then on)
constexpr uint64_t kPrecleanMinMarkedBytes = uint64_t{64} << 20;
uint64_t g_preclean_min_marked_bytes = kPrecleanMinMarkedBytes;  // heap lock (testing::SetPrecleanMinMarkedBytes)

// ---- Runway cycles (pacer/trigger.h) ----
// A concurrent cycle that starts below the goal, at the Pacer's trigger, on the background thread (Go's dedicated
// mark worker), while the program's threads go on allocating up to the goal and assist the marking. Its first drain
// is the background thread's alone while no thread waits at the goal: the mark thread beside it would take the
// program's core and spin between slices, and the pacing below holds the markers to one share of the CPU anyway
// (the same marking took 1.3-1.7x the CPU shared as alone, measured with alloc_stalls --threads 1 --spin 2000).
// Once one waits, the mark thread shares the rest (DrainConcurrently). All heap lock.
bool g_cycle_runway = false;      // the cycle in progress is a runway cycle
bool g_cycle_marking = false;     // it is in its first concurrent drain: assists help, the background paces itself
bool g_runway_requested = false;  // asked of the background thread, not yet begun
uint32_t g_goal_waiters = 0;      // threads waiting for the cycle at the goal
uint64_t g_mark_begin_ns = 0;     // the runway cycle's drain began: wall clock
uint64_t g_mark_begin_cpu_ns = 0;  // ... and the background thread's CPU clock
uint64_t g_first_wait_ns = 0;     // when a thread first waited at the goal for this runway cycle (0: none has)

// A thread waits at the goal for the runway cycle in progress: the cycle's measurement of what the program
// allocates counts only the time before (CollectConcurrent).
void NoteRunwayWait() {
  if (g_cycle_runway && g_first_wait_ns == 0) g_first_wait_ns = os::MonotonicNs();
}

// A runway cycle's background marking takes the share of the CPU the Pacer's runway assumed
// (pacer::BackgroundUtilization: Go's 25%, or the cores the program leaves idle, as Go's idle mark workers), unless
// a thread waits at the goal: then it marks flat out. Between slices, the heap lock released: sleeps while its CPU
// since the drain began is ahead of that share of the wall time.
void PaceBackgroundMarking() {
  for (;;) {
    if (g_goal_waiters != 0) return;
    const double share = g_cycles.last_runway_utilization * pacing::CpuCapacity().cpus;  // (cores)
    const uint64_t busy = os::ThreadCpuNs() - g_mark_begin_cpu_ns;
    const double allowed = share * static_cast<double>(os::MonotonicNs() - g_mark_begin_ns);
    if (static_cast<double>(busy) <= allowed) return;
    uint64_t sleep_ns = static_cast<uint64_t>((static_cast<double>(busy) - allowed) / share);
    if (sleep_ns > 2'000'000) sleep_ns = 2'000'000;  // look again at least every 2 ms (a waiter may have come)
    UnlockHeap();
    timespec ts{0, static_cast<long>(sleep_ns)};
    nanosleep(&ts, nullptr);
    LockHeap();
  }
}

// Between two slices of concurrent marking: the heap lock is released for other threads' slow paths
// (YieldHeapLock).
void BetweenSlices() {
  YieldHeapLock();
  if (g_cycle_marking) PaceBackgroundMarking();
}

// Heap lock held (released between slices): drains the marker with other threads running, sharing the work with the
// mark thread when the cycle may use it (mark.h, "Background sharing"); overflow is recovered by this thread after.
void DrainConcurrently(Marker &marker) {
  // A runway cycle's first drain is the background thread's alone while the program allocates beside it ("Runway
  // cycles" above), until a thread waits at the goal: that thread sleeps to the cycle's end, and its core is the
  // mark thread's from then on. (Marking alone there, the churn of the wake-up benchmark used 1.3 of the 2 cores
  // and took 2.5x its stop-the-world time: docs/BENCHMARKS.md.)
  for (;;) {
    if (g_use_mark_thread && (!g_cycle_marking || g_goal_waiters != 0) && helpers::BackgroundBegin()) {
      while (!helpers::BackgroundStep(marker, kSliceBytes)) BetweenSlices();
      uint64_t scan_bytes = 0, cpu_ns = 0;
      helpers::BackgroundEnd(marker, &scan_bytes, &cpu_ns);
      g_cycles.last_background_thread_scan_bytes += scan_bytes;
      g_cycles.last_background_thread_cpu_ns += cpu_ns;
      break;
    }
    if (marker.DrainSome(kSliceBytes)) return;
    BetweenSlices();
  }
  while (!marker.DrainSome(kSliceBytes)) BetweenSlices();  // the mark thread's overflow, recovered here
}


// Zeroes the stack below the caller's frame, where the calls that came before left heap addresses (an arena's base
// while protecting it, the runs of written pages and the objects re-scanned): the pause that follows scans from a
// frame that overlaps that area, and stale words in its padding would keep objects alive (bdwgc's GC_clear_stack
// for the same reason). CollectDirty's output buffer alone takes 12 KiB.
__attribute__((noinline)) void ScrubStackBelow() {
  char area[16 << 10];
  explicit_bzero(area, sizeof area);
}

}  // namespace

// The waiter sleeps on a futex until the cycle ends. It used to poll every 100 us: each wake-up took a core from
// the two markers (on 2 cores, a thread that wakes preempts the mark thread), and a waiter retook the heap lock the
// collector wanted between slices. Each pause of the cycle wakes it too (WithWorldStopped), so that it takes the
// stop's signal on the heap lock; the timeout is a safety net only (every bump comes after the waiter read the
// sequence under the lock, so none is lost).
void WaitForConcurrentCycle() {
  while (g_cycle_active) {
    const uint32_t seen = g_cycle_end_seq.load(std::memory_order_acquire);
    UnlockHeap();
    os::FutexWait(&g_cycle_end_seq, seen, kCycleWaitTimeoutNs);
    LockHeap();
  }
}

// ---- Runway cycles: the allocation slow path's side ----

namespace {

// What the next cycle will mark (heap lock): about what the last one did; before any, at most what is in use (a
// program that runs with GOGC=off reaches its limit before its first cycle: that one must not be the longest pause).
uint64_t ExpectedMarkedBytes() {
  return g_cycles.num_gc > 0 ? g_cycles.report.heap_marked_bytes : g_heap.in_use_bytes();
}

uint64_t g_runway_start_heap = 0;  // the heap when the runway cycle began (heap lock)

// Could the next cycle be a runway cycle? It marks concurrently (what it is expected to mark, as CollectLocked
// decides), and there is a core besides the one the program's allocating thread uses.
bool RunwayPossible() {
  const double cpus = pacing::CpuCapacity().cpus;
  return g_cycles.num_gc > 0 && cpus >= 2 && concurrent::WantedFor(ExpectedMarkedBytes(), cpus);
}

// No cycle is in progress or asked of the background thread, and the next could be a runway cycle.
bool RunwayMayBegin() { return !g_cycle_active && !g_runway_requested && RunwayPossible(); }

}  // namespace

uint64_t GrantGoalBytes() {
  const uint64_t goal = pacing::CurrentGoal().bytes;
  if (!RunwayMayBegin()) return goal;
  // (Past the trigger with no cycle asked for, one was not due, the CPU limiter being on: credit goes to the goal
  // as without a runway, rather than every refill coming to the lock.)
  const uint64_t trigger = pacing::RunwayTriggerBytes();
  return trigger < goal && TriggerHeapBytes() < trigger ? trigger : goal;
}

void RunwayCheckLocked(uint64_t upcoming_bytes) {
  if (!RunwayMayBegin()) return;
  if (!pacing::RunwayDue(TriggerHeapBytes() + upcoming_bytes)) return;
  g_runway_requested = true;
  pacing::RequestRunwayCycle();
}

// How much an assist scans is the pacer's (pacer/trigger.h AssistScanBytes: the marking's debt against the heap's
// way from the cycle's start to the goal). The thread holds the heap lock, between the background thread's slices:
// the marker is the collector's to drain under the lock (the mark thread does not share a runway cycle's first
// drain).
void AssistLocked() {
  // (Not while the CPU limiter is on, as in Go: the heap may then pass the goal, and a thread there waits.)
  if (!g_cycle_active || !g_cycle_runway || !g_cycle_marking || pacing::LimiterOn()) return;
  const uint64_t done = g_marker->heap_scan_bytes();
  // (0 also when the goal fell below the cycle's start: the goal's wait applies)
  const uint64_t budget = pacing::AssistScanBytes(g_runway_start_heap, done, TriggerHeapBytes());
  if (budget == 0) return;
  const uint64_t cpu0 = os::ThreadCpuNs();
  g_marker->DrainSome(budget);
  g_cycles.last_assist_cpu_ns += os::ThreadCpuNs() - cpu0;
  const uint64_t after = g_marker->heap_scan_bytes();
  g_cycles.last_assist_scan_bytes += after > done ? after - done : 0;
  ++g_cycles.last_assists;
}

namespace {

// CollectConcurrent's result for a cycle given up before its final pause.
constexpr uint64_t kAbandoned = UINT64_MAX;

// Heap lock held, world running, a concurrent cycle given up before its final pause: every mark bit and overflow
// flag is cleared, so the next cycle starts from white (a mark left over would make an object black without its
// contents being scanned next time). Nothing but this thread writes marks outside a pause.
void AbandonMarks() {
  for (Span *s = g_heap.FirstInUse(); s != nullptr; s = s->all_next) {
    memset(s->mark_bits, 0, s->nwords * sizeof(uint64_t));
    s->rescan = false;
  }
}

// Returns the total pause (or kAbandoned); *paused_cpu_ns the collecting thread's CPU in the two pauses.
uint64_t CollectConcurrent(Marker &marker, uint64_t *paused_cpu_ns) {
  uint64_t pause_ns = 0;
  // 2. The start pause: the roots.
  ScrubStackBelow();  // BeginTracking held arena bases
  uint64_t c = os::ThreadCpuNs();
  uint64_t start_pause = WithWorldStopped(true, [&](uintptr_t self_sp, int) {
    // No refresh of untouched spans here (BeginTracking's is recent): a span still presumed untouched that the
    // program writes from now on is found by the final pause's refresh and re-scanned whole there.
    marker.Reset();
    MarkReadyFinalizers(marker);
    // The roots only: what they reach is marked after the restart. No helpers (they drain what they reach).
    roots::ForEach(self_sp, [&](const RootRange &r) { marker.ScanRoot(r); });
    trace::PhaseEnd(trace::kMarkRoots, marker.stack_scan_bytes(), marker.globals_scan_bytes());
  });
  *paused_cpu_ns = os::ThreadCpuNs() - c;
  const uint64_t start_pause_cpu = *paused_cpu_ns;
  RecordPause(start_pause);
  pause_ns += start_pause;
  // (a runway cycle's measurement: what the program allocates from here to the final pause, and for how long)
  const uint64_t alloc_at_start = g_alloc.total_alloc_bytes, started_ns = os::MonotonicNs();
  g_first_wait_ns = 0;
  // 3. Concurrent marking (paced and assisted in a runway cycle), 4. pre-cleaning (a runway cycle's threads allocate
  // on, unassisted; at the goal they wait for its end).
  g_mark_begin_ns = started_ns;
  g_mark_begin_cpu_ns = os::ThreadCpuNs();
  g_cycle_marking = g_cycle_runway;
  DrainConcurrently(marker);
  g_cycle_marking = false;
  g_cycles.last_precleaned_pages = 0;
  g_cycles.last_precleaned_spans = 0;
  for (int round = 0; round < kMaxPrecleanRounds && marker.marked_bytes() >= g_preclean_min_marked_bytes; ++round) {
    concurrent::RescanStats r = concurrent::RescanWritten(marker, /*final=*/false);
    g_cycles.last_precleaned_pages += r.pages;
    g_cycles.last_precleaned_spans += r.precleaned_spans;
    DrainConcurrently(marker);
    if (r.pages < kPrecleanEnoughPages && r.precleaned_spans < kPrecleanEnoughSpans) break;
  }
  // 5. The final pause. Without a complete root table the cycle cannot end: it is abandoned (below).
  if (!roots::SnapshotSegments()) {
    Message("out of memory for the root segment table; the concurrent cycle is abandoned, nothing is freed");
    AbandonMarks();
    concurrent::EndTracking();
    return kAbandoned;
  }
  ScrubStackBelow();
  const uint64_t final_ns = os::MonotonicNs();
  c = os::ThreadCpuNs();
  uint64_t final_pause = WithWorldStopped(false, [&](uintptr_t self_sp, int helpers) {
    untouched::Refresh();
    MarkReadyFinalizers(marker);
    marker.ForgetRootBytes();  // the roots are scanned again: the pacer counts them once
    MarkRoots(self_sp, marker, helpers, /*trace_phase=*/false);
    concurrent::RescanStats r = concurrent::RescanWritten(marker, /*final=*/true);
    g_cycles.last_rescan_pages = r.pages;
    g_cycles.last_rescan_objects = r.objects;
    g_cycles.last_filled_spans = r.filled_spans;
    marker.Drain();
    // The slots caches claimed and have not handed out are kept after the re-scan, not before: marked then, the
    // re-scan of the spans filled during the cycle would read their old contents as if they were objects.
    marker.KeepCachedSlots();
    FinishPause(self_sp, marker);
  });
  trace::PhaseEnd(trace::kStartTheWorld);
  const uint64_t final_pause_cpu = os::ThreadCpuNs() - c;
  *paused_cpu_ns += final_pause_cpu;
  RecordPause(final_pause);
  pause_ns += final_pause;
  g_cycles.last_start_pause_ns = start_pause;
  g_cycles.last_final_pause_ns = final_pause;
  g_cycles.last_start_pause_cpu_ns = start_pause_cpu;
  g_cycles.last_final_pause_cpu_ns = final_pause_cpu;
  // The sweep, before EndTracking: it must end before anything releases the heap lock (gc/sweep.h).
  SweepAfterPause();
  // 6. The protection is lifted from what allocators fill next and from hot spans; the rest keeps it.
  concurrent::EndTracking();
  if (g_cycle_runway) {
    // What the program would have allocated over the whole cycle had no thread waited at the goal: its rate from
    // the start pause to the final one (the counters are folded in both), over the time before the first wait
    // (at least a tenth of it), times the cycle's length to its end here.
    const uint64_t allocated = g_alloc.total_alloc_bytes - alloc_at_start;
    const uint64_t to_final = final_ns - started_ns, whole = os::MonotonicNs() - started_ns;
    uint64_t free_ns = g_first_wait_ns == 0 || g_first_wait_ns > final_ns ? to_final : g_first_wait_ns - started_ns;
    if (free_ns < to_final / 10) free_ns = to_final / 10;
    g_cycles.last_runway_alloc_bytes =
        free_ns == 0 ? allocated
                     : static_cast<uint64_t>(static_cast<double>(allocated) * static_cast<double>(whole) /
                                             static_cast<double>(free_ns));
  }
  return pause_ns;
}

}  // namespace

// How many times the calling thread holds the heap lock (0 or 1; the world stop and fork paths take it through these
// two as well). The drop-in allocator reads it: a malloc made while pacegc holds its lock (glibc's pthread_create
// allocating a new thread's TLS for pacegc's own threads) must not allocate collected memory.
thread_local int t_heap_lock_held __attribute__((tls_model("initial-exec"))) = 0;

void LockHeap() {
  g_heap_lock.Lock();
  ++t_heap_lock_held;
}
void UnlockHeap() {
  --t_heap_lock_held;
  g_heap_lock.Unlock();
}
bool HeapLockHeldHere() { return t_heap_lock_held != 0; }

// How long YieldHeapLock waits for a woken waiter to take the heap lock before it takes it back.
constexpr uint64_t kHandOverNs = 1'000'000;

// The lock barges: a waiter woken by the unlock needs tens of microseconds to run, and a collector that unlocks and
// locks again takes it back first, piece after piece (during a runway cycle, threads waited 11-60 ms for a refill
// while the collector marked and pre-cleaned). So when a thread waits, it gets the lock first (or kHandOverNs pass).
void YieldHeapLock() {
  const bool contended = g_heap_lock.Contended();
  UnlockHeap();
  if (contended) {
    const uint64_t until = os::MonotonicNs() + kHandOverNs;
    while (!g_heap_lock.Held() && os::MonotonicNs() < until) sched_yield();
  } else {
    sched_yield();  // a waiter woken by the unlock gets a chance at the lock (a new locker would take it first)
  }
  LockHeap();
}

void EnsureInit() { pthread_once(&g_init_once, InitOnce); }
bool InitialisingOnThisThread() { return t_initialising; }

bool ShouldCollect(size_t upcoming_bytes) { return pacing::CollectionDue(upcoming_bytes); }

uint64_t TriggerHeapBytes() {
  int64_t heap = static_cast<int64_t>(g_alloc.heap_alloc_bytes) + GrantedBytes();
  return heap > 0 ? static_cast<uint64_t>(heap) : 0;
}

void CollectLocked(GcReason reason) {
  // The collecting thread is registered, except pacegc's background thread (periodic collections), which holds
  // no collected pointers: then every registered thread is stopped and no stack is "self".
  PACEGC_CHECK(t_current != nullptr || reason == GcReason::kPeriodic || reason == GcReason::kRequested ||
               reason == GcReason::kRunway);
  if (reason == GcReason::kRunway) {
    g_runway_requested = false;
    // Another thread's cycle may have run since the request (the heap reached the goal first): then none is due.
    if (!RunwayMayBegin() || !pacing::RunwayDue(TriggerHeapBytes())) {
      PublishGrantLimit();
      return;
    }
  }
  if (g_cycle_active) {
    // Another thread's concurrent cycle is in progress (it released the heap lock between slices). The trigger's
    // cycle is that one: an allocation that reached the trigger waits for it to end (the heap would otherwise grow
    // past the goal without bound while it marks; Go's mark assists bound it by making such threads mark). Any other
    // reason wants a cycle that starts after it was asked for.
    NoteRunwayWait();
    ++g_goal_waiters;  // (a runway cycle's background marking stops pacing itself: mark flat out)
    WaitForConcurrentCycle();
    --g_goal_waiters;
    if (reason == GcReason::kAuto) return;
  }
  if (!g_marker->Init(g_mark_stack_entries)) {
    Message("out of memory for the mark stack; collection skipped");
    return;
  }
  ReleaseQuarantine();  // verify builds: slots freed since the last cycle become free (and are not marked)
  if (!roots::SnapshotSegments()) {
    Message("out of memory for the root segment table; collection skipped");
    return;
  }
  uint64_t start_cpu_ns = os::ThreadCpuNs();
  uint64_t start_ns = os::MonotonicNs();
  trace::CycleBegin(start_ns, start_cpu_ns);
  // A runway cycle is one limiter window (pacing::OnCycleBegin): the program runs beside it. A cycle at the goal is
  // accounted as before, its CPU charged at its end in whatever window is open (see pacer.h, OnCycleBegin).
  const bool own_window = reason == GcReason::kRunway;
  if (own_window) pacing::OnCycleBegin();
  // 1. (concurrent) The heap is write-protected before the roots are read; false: this cycle is stop-the-world.
  bool concurrent = false;
  const uint64_t expected_marked = ExpectedMarkedBytes();
  // The mark thread for the pauses (mark.h): with a core to spare and enough to mark. (Its marker's stack is sized
  // with the collector's before the world stops.)
  g_use_mark_thread = pacing::CpuCapacity().cpus >= 2 && expected_marked >= kMarkThreadMinBytes &&
                        helpers::StartMarkThread(g_mark_stack_entries);
  g_cycles.last_assist_cpu_ns = g_cycles.last_assist_scan_bytes = g_cycles.last_assists = 0;
  g_cycles.last_runway = false;
  if (concurrent::WantedFor(expected_marked, pacing::CpuCapacity().cpus)) {
    g_cycle_active = true;  // from here: other threads may take the heap lock while this cycle runs
    // A runway cycle: the program's threads allocate on to the goal, assisting (AssistLocked).
    g_cycle_runway = reason == GcReason::kRunway;
    g_runway_start_heap = TriggerHeapBytes();
    if (g_cycle_runway) {
      g_cycles.last_runway_utilization =
          pacer::BackgroundUtilization(pacing::CpuCapacity().cpus, pacing::Parallelism());
      g_cycles.last_runway_trigger_bytes = g_runway_start_heap;
      g_cycles.last_assist_ratio = pacing::AssistRatio(g_runway_start_heap);
      PublishGrantLimit();  // credit up to the goal (GrantGoalBytes)
    }
    concurrent = concurrent::BeginTracking(/*allocators_run=*/g_cycle_runway);
    if (!concurrent) {
      g_cycle_runway = false;
      EndCycleActive();  // (BeginTracking released the lock: a thread may be waiting)
    }
  }
  g_cycles.last_runway = g_cycle_runway;
  uint64_t pause_ns = 0;
  g_cycles.last_background_thread_scan_bytes = 0;
  g_cycles.last_background_thread_cpu_ns = 0;
  g_cycles.last_pause_others_cpu_ns = 0;
  // The collecting thread's CPU, split into its pauses' (charged like a stop-the-world pause) and the rest, spent
  // while the world ran: the sweep after the pause, and in a concurrent cycle the tracking, marking and
  // pre-cleaning (charged one to one, pacer.h CycleReport).
  uint64_t collector_cpu_ns = 0;
  if (concurrent) {
    pause_ns = CollectConcurrent(*g_marker, &collector_cpu_ns);
    g_cycle_runway = false;
    EndCycleActive();
    if (pause_ns == kAbandoned) {  // (its start pause is in the pause statistics; nothing else counts it)
      if (own_window) pacing::OnCycleAbandoned();
      return;
    }
  } else {
    pause_ns = WithWorldStopped(true, [](uintptr_t self_sp, int helpers) {
      MarkAndBeginSweep(self_sp, *g_marker, helpers);
    });
    trace::PhaseEnd(trace::kStartTheWorld);
    collector_cpu_ns = os::ThreadCpuNs() - start_cpu_ns;
    RecordPause(pause_ns);
    SweepAfterPause();
  }
  const uint64_t cycle_cpu_ns = os::ThreadCpuNs() - start_cpu_ns;
  const uint64_t concurrent_cpu_ns = cycle_cpu_ns > collector_cpu_ns ? cycle_cpu_ns - collector_cpu_ns : 0;

  ++g_cycles.num_gc;
  if (reason == GcReason::kForced) ++g_cycles.num_forced_gc;
  if (concurrent) ++g_cycles.num_concurrent_gc;
  if (g_cycles.last_runway) ++g_cycles.num_runway_gc;
  g_cycles.assist_cpu_ns += g_cycles.last_assist_cpu_ns;
  g_cycles.last_concurrent = concurrent;
  g_cycles.pause_ns[(g_cycles.num_gc + 255) % 256] = pause_ns;
  pacing::CycleReport &report = g_cycles.report;
  report.pause_ns = pause_ns;
  report.collector_cpu_ns = collector_cpu_ns;
  report.concurrent_cpu_ns = concurrent_cpu_ns;
  // (the mark thread's share of concurrent marking: mark.h, "Background sharing"; pacer/limiter.h, "Background
  // marking")
  report.background_thread_cpu_ns = g_cycles.last_background_thread_cpu_ns;
  report.pause_others_cpu_ns = g_cycles.last_pause_others_cpu_ns;  // (neither the program's nor charged)
  if (g_cycles.last_runway) {
    // The collecting thread is the background thread, not a program thread whose allocation waits: its marking is
    // background marking (charged for the share of a core the program would have used), and what the program's
    // threads spent on assists is charged one to one (Go counts assists as GC time).
    report.background_thread_cpu_ns += concurrent_cpu_ns;
    report.concurrent_cpu_ns = g_cycles.last_assist_cpu_ns;
  }
  report.runway_alloc_bytes = g_cycles.last_runway ? g_cycles.last_runway_alloc_bytes : 0;
  report.runway_utilization = g_cycles.last_runway_utilization;
  report.allocated_bytes = g_alloc.total_alloc_bytes - g_alloc_at_last_end;
  g_alloc_at_last_end = g_alloc.total_alloc_bytes;
  report.num_gc = g_cycles.num_gc;
  // In a pause every core was either collecting or held off, as Go counts a stop-the-world pause; the work done while
  // the world ran (the sweep, a concurrent cycle's marking) adds its CPU one to one.
  g_cycles.gc_cpu_ns += pacing::OnCycle(report);
  PublishGrantLimit();  // the new goal: threads may take credit again
  trace::CycleEnd(g_cycles, reason);  // prints and flushes: the world runs again
  FinalizersAfterCycle();  // wakes the finalizer thread if this cycle queued some
}

int SetGcPercent(int percent) {
  LockHeap();
  int previous = pacing::SetGcPercent(percent);
  PublishGrantLimit();
  UnlockHeap();
  return previous;
}

int64_t SetMemoryLimit(int64_t bytes) {
  LockHeap();
  int64_t previous = pacing::SetMemoryLimit(bytes);
  PublishGrantLimit();
  UnlockHeap();
  return previous;
}

int64_t SetHardMemoryLimit(int64_t bytes) {
  LockHeap();
  // The mark stack first (a collection at the cap must not need new metadata); kept if the cap has no room.
  if (bytes >= 0 && bytes != pacer::kNoLimit) g_marker->Init(g_mark_stack_entries);
  int64_t previous = pacing::SetHardMemoryLimit(bytes);
  PublishGrantLimit();
  UnlockHeap();
  return previous;
}

void SetEventCallback(void (*fn)(const pgc_event *, void *), void *data) {
  LockHeap();
  pacing::SetEventCallback(fn, data);
  UnlockHeap();
  pacing::WaitForDelivery();  // the callback replaced is not running when this returns
}

void NoteHardLimitHit(bool failed) {
  LockHeap();
  pacing::OnHardLimitHit(failed);
  UnlockHeap();
}

void CycleCountersLocked(uint64_t *num_gc, uint64_t *gc_cpu_ns) {
  *num_gc = g_cycles.num_gc;
  *gc_cpu_ns = g_cycles.gc_cpu_ns;
}

uint64_t FreeOsMemory() {
  LockHeap();
  CollectLocked(GcReason::kForced);
  uint64_t released = pacing::ReleaseAll();
  UnlockHeap();
  return released + pacing::ReleaseManual(/*forced=*/true);
}

namespace {

// The gauges of pgc_stats (gc/stats.h, PACEGC_GAUGE_STATS), read from the mechanisms: heap lock and registry lock
// held. `memory` is the one pacing::CurrentMemory() the Pacer's figures were computed from, so the sums add up.
Gauges ReadGauges(const pacing::Snapshot &p) {
  Gauges g;
  g.total_bytes = p.memory.total_bytes;
  g.heap_mapped_bytes = p.memory.heap_retained_bytes;
  g.heap_in_use_bytes = p.memory.heap_retained_bytes - p.memory.heap_free_bytes;  // in_use_bytes(), kept spans read once
  g.heap_free_bytes = p.memory.heap_free_bytes;
  g.heap_released_bytes = g_heap.released_bytes();
  g.released_bytes = g.heap_released_bytes;
  g.metadata_bytes = meta::AllocatedBytes();
  g.manual_bytes = meta::ManualBytes();
  g.gc_cpu_fraction = pacing::GcCpuFraction(g_cycles.gc_cpu_ns, os::MonotonicNs());
  g.finalizers_run = FinalizersRun();
  g.num_threads = threads::Count();
  const cgroup::CpuCapacity &cpu = pacing::CpuCapacity();
  g.cpu_capacity = cpu.cpus;
  g.cpu_quota = cpu.quota_cpus;
  g.cpu_affinity = static_cast<uint32_t>(cpu.affinity_cpus);
  g.cpu_capacity_source = static_cast<uint32_t>(cpu.source);
  g.cgroup_memory_hierarchy = static_cast<uint32_t>(p.cgroup_memory.hierarchy);
  g.cgroup_memory_limit_bytes = p.cgroup_memory.bytes;
  return g;
}

// The allocation counters as the program sees them (registry lock held): g_alloc, plus the claims and frees made
// without the heap lock and not yet folded in, less the slots thread caches claimed and have not handed out. Those
// count as allocated inside the collector (the trigger sees them) but are not allocations the program made; their
// owners may take them concurrently: a relaxed read gives a value that was exact at some instant of this snapshot.
AllocCounters ProgramAllocCounters() {
  AllocCounters a = g_alloc;
  const PendingCounts pending = Pending();
  a.Alloc(pending.claimed_objects, pending.claimed_bytes);
  a.Free(pending.freed_objects, pending.freed_bytes);
  uint64_t unused_objects = 0, unused_bytes = 0;
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    for (const CacheSlot &slot : t->cache.slots) {
      uint64_t bits = __atomic_load_n(&slot.bits, __ATOMIC_RELAXED);
      uint64_t n = static_cast<uint64_t>(__builtin_popcountll(bits));
      unused_objects += n;
      unused_bytes += n * __atomic_load_n(&slot.size, __ATOMIC_RELAXED);
    }
  }
  a.Unclaim(unused_objects, unused_bytes);
  return a;
}

}  // namespace

void ReadStats(pgc_stats *out) {
  pgc_stats s;
  memset(&s, 0, sizeof(s));
  LockHeap();
  const pacing::Snapshot p = pacing::Read();
  threads::LockRegistry();
  CopyStats(g_cycles, ProgramAllocCounters(), p.pacer, ReadGauges(p), &s);  // every field but the envelope
  threads::UnlockRegistry();
  UnlockHeap();
  size_t n = out->size < sizeof(s) ? out->size : sizeof(s);
  size_t caller_size = out->size;
  memcpy(out, &s, n);
  out->size = caller_size;
  if (n >= offsetof(pgc_stats, version) + sizeof(uint32_t)) out->version = PGC_STATS_VERSION;
}

namespace testing {

void FailNextOsMaps(int count) { os::FailNextMaps(count); }
uint64_t OsMapFailures() { return os::MapFailures(); }
void FailNextOsReleases(int count) { os::FailNextReleases(count); }
void FailNextMetaAllocs(int count) { meta::FailNextAllocs(count); }

void SetVerifyEveryCycle(bool on) {
  EnsureInit();
  LockHeap();
  g_verify_every_cycle = on;
  UnlockHeap();
}

size_t VerifyProblemsTotal() {
  LockHeap();
  const size_t problems = g_verify_problems_total;
  UnlockHeap();
  return problems;
}

size_t CollectAndVerify() {
  EnsureInit();
  if (t_current == nullptr) threads::Register();
  LockHeap();
  g_force_verify = true;
  CollectLocked(GcReason::kForced);
  g_force_verify = false;
  size_t problems = g_last_verify_problems;
  uint64_t queued = FinalizersQueued();
  UnlockHeap();
  WaitForFinalizers(queued);  // as pgc_collect
  return problems;
}

void CorruptNextMarkForTesting() {
  EnsureInit();
  LockHeap();
  g_corrupt_next = true;
  UnlockHeap();
}

void DisturbNextParkedFrame() {
  EnsureInit();
  LockHeap();
  g_disturb_next = true;
  UnlockHeap();
}

void SetMarkStackEntries(size_t entries) {
  EnsureInit();
  LockHeap();
  g_mark_stack_entries = entries == 0 ? Marker::kDefaultStackEntries : entries;
  UnlockHeap();
}

void SetHelperWaitNs(uint64_t ns) {
  EnsureInit();
  LockHeap();
  g_helper_wait_ns = ns;
  UnlockHeap();
}

uint64_t LastCycleMarkOverflows() {
  LockHeap();
  uint64_t n = g_cycles.last_overflows;
  UnlockHeap();
  return n;
}

void SetPrecleanMinMarkedBytes(uint64_t bytes) {
  EnsureInit();
  LockHeap();
  g_preclean_min_marked_bytes = bytes == UINT64_MAX ? kPrecleanMinMarkedBytes : bytes;
  UnlockHeap();
}

uint64_t LastCyclePrecleanedSpans() {
  LockHeap();
  uint64_t n = g_cycles.last_concurrent ? g_cycles.last_precleaned_spans : 0;
  UnlockHeap();
  return n;
}

uint64_t LastCycleHelpedStacks() {
  LockHeap();
  uint64_t n = g_cycles.last_helped_stacks;
  UnlockHeap();
  return n;
}

uint64_t LastCycleSharedEntries() {
  LockHeap();
  uint64_t n = g_cycles.last_shared_entries;
  UnlockHeap();
  return n;
}

uint64_t LastCycleBackgroundThreadBytes() {
  LockHeap();
  uint64_t n = g_cycles.last_background_thread_scan_bytes;
  UnlockHeap();
  return n;
}

}  // namespace testing
}  // namespace pacegc::internal
