// gc/collector.cc — see collector.h for the cycle. Also owns initialisation, settings and the statistics
// snapshot behind pgc_read_stats.
#include "gc/collector.h"

#include <pthread.h>
#include <ucontext.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gc/alloc.h"
#include "gc/check.h"
#include "gc/finalize.h"
#include "gc/mark.h"
#include "gc/meta.h"
#include "gc/os.h"
#include "gc/roots.h"
#include "gc/sweep.h"
#include "gc/testing.h"
#include "gc/threads.h"
#include "pacegc/pacegc.h"
#include "pacer/config.h"
#include "pacer/goal.h"
#include "pacer/limit.h"

namespace pacegc::internal {

Heap g_heap;
AllocCounters g_alloc;

namespace {

pthread_mutex_t g_heap_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

// Settings and pacing state (heap lock).
int g_gc_percent = 100;
int64_t g_memory_limit = pacer::kNoLimit;
pacer::LastCycle g_last;  // what the last cycle measured, the pacer's input
uint64_t g_gc_percent_goal = pacer::kDefaultHeapMinimumBytes;  // recomputed per cycle and on SetGcPercent

// The memory the limit counts right now (heap lock).
pacer::MemoryState CurrentMemory() {
  pacer::MemoryState m;
  m.mapped_bytes = g_heap.mapped_bytes() + meta::AllocatedBytes();
  m.heap_free_bytes = g_heap.free_bytes();
  m.heap_alloc_bytes = g_alloc.heap_alloc_bytes;
  m.heap_marked_bytes = g_last.heap_marked_bytes;
  return m;
}

// The goal in force: recomputed at every trigger check, since the limit goal moves with memory use.
pacer::Goal CurrentGoal() {
  return pacer::CombineGoals(g_gc_percent_goal, pacer::MemoryLimitGoal(CurrentMemory(), g_memory_limit));
}

// Cycle statistics (heap lock).
struct CycleStats {
  uint64_t num_gc = 0;
  uint64_t num_forced_gc = 0;
  uint64_t pause_total_ns = 0;
  uint64_t pause_last_ns = 0;
  uint64_t pause_max_ns = 0;
  uint64_t pause_ring_ns[256] = {};  // pause of cycle n at [(n + 255) % 256], as pgc_stats.pause_ns
  uint64_t gc_cpu_ns = 0;
  uint64_t last_heap_scan_bytes = 0;
  uint64_t last_overflows = 0;
} g_cycles;

uint64_t g_start_ns = 0;
int g_num_cpus = 1;
Marker *g_marker = nullptr;
size_t g_mark_stack_entries = Marker::kDefaultStackEntries;

// Test hooks (heap lock).
bool g_force_verify = false;
bool g_corrupt_next = false;
size_t g_last_verify_problems = 0;

#if defined(PACEGC_VERIFY_HEAP)
constexpr bool kVerifyBuild = true;
#else
constexpr bool kVerifyBuild = false;
#endif

[[noreturn]] void ExitMalformed(const std::string &message) {
  Message("%s", message.c_str());
  _exit(2);
}

void InitOnce() {
  meta::Init();
  g_start_ns = os::MonotonicNs();
  g_num_cpus = os::NumCpus();
  if (const char *env = getenv("GOGC"); env != nullptr) {
    std::string error;
    if (!pacer::ParseGogc(env, &g_gc_percent, &error)) ExitMalformed(error);
  }
  if (const char *env = getenv("GOMEMLIMIT"); env != nullptr) {
    std::string error;
    if (!pacer::ParseGomemlimit(env, &g_memory_limit, &error)) ExitMalformed(error);
  }
  g_gc_percent_goal = pacer::GcPercentGoal(g_last, g_gc_percent);
  if (!g_heap.Init()) Fatal("cannot map the page map (%zu MiB of address space)", (size_t{8} << (kAddressBits - kArenaShift)) >> 20);
  if (!threads::Init()) _exit(2);  // the message is printed
  void *mem = meta::Malloc(sizeof(Marker));
  if (mem == nullptr) Fatal("out of memory for the marker");
  g_marker = new (mem) Marker();
  if (threads::Register() != 0) Fatal("cannot register the initial thread");
}

// Clears the mark of the first marked object the root range points to (test hook); true if it found one.
// Reads the range word by word like the marker does, so it is exempt from AddressSanitizer the same way.
PACEGC_NO_SANITIZE_ADDRESS bool CorruptOneMarkIn(const RootRange &r, Span **span_out, uint32_t *index_out) {
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

// The part of the cycle that runs with the world stopped. Its own frame: self_sp is the caller's spilled context.
void MarkAndSweep(uintptr_t self_sp, Marker &marker) {
  marker.Reset();
  marker.KeepCachedSlots();
  MarkReadyFinalizers(marker);
  roots::ForEach(self_sp, [&](const RootRange &r) { marker.ScanRoot(r); });
  marker.Drain();
  DiscoverFinalizers(marker);

  if (kVerifyBuild || g_force_verify) {
    Span *corrupted = nullptr;
    uint32_t corrupted_index = 0;
    if (g_corrupt_next) {
      g_corrupt_next = false;
      CorruptOneMark(self_sp, &corrupted, &corrupted_index);
    }
    g_last_verify_problems = VerifyMarks(marker, self_sp);
    if (corrupted != nullptr) corrupted->TryMark(corrupted_index);  // restore before sweeping frees it
    if (kVerifyBuild && corrupted == nullptr && g_last_verify_problems != 0) {
      Fatal("heap verification found %zu problems after marking", g_last_verify_problems);
    }
  }

  SweepHeap(kVerifyBuild);
  g_last.heap_marked_bytes = marker.marked_bytes();
  g_last.stack_scan_bytes = marker.stack_scan_bytes();
  g_last.globals_scan_bytes = marker.globals_scan_bytes();
  g_cycles.last_heap_scan_bytes = marker.heap_scan_bytes();
  g_cycles.last_overflows = marker.overflows();
}

}  // namespace

void LockHeap() { pthread_mutex_lock(&g_heap_lock); }
void UnlockHeap() { pthread_mutex_unlock(&g_heap_lock); }

void EnsureInit() { pthread_once(&g_init_once, InitOnce); }

bool ShouldCollect(size_t upcoming_bytes) {
  uint64_t goal = CurrentGoal().bytes;
  if (goal == pacer::kNoGoal) return false;
  return g_alloc.heap_alloc_bytes + upcoming_bytes >= goal;
}

void CollectLocked(GcReason reason) {
  PACEGC_CHECK(t_current != nullptr);
  if (!g_marker->Init(g_mark_stack_entries)) {
    Message("out of memory for the mark stack; collection skipped");
    return;
  }
  roots::SnapshotSegments();
  threads::LockRegistry();
  uint64_t start_ns = os::MonotonicNs();
  threads::StopTheWorld();

  // Spill this thread's registers into its stack, above everything MarkAndSweep's frames hold.
  ucontext_t context;
  getcontext(&context);
  __builtin_unwind_init();
  MarkAndSweep(reinterpret_cast<uintptr_t>(&context), *g_marker);

  threads::StartTheWorld();
  threads::UnlockRegistry();
  uint64_t pause_ns = os::MonotonicNs() - start_ns;

  ++g_cycles.num_gc;
  if (reason == GcReason::kForced) ++g_cycles.num_forced_gc;
  g_cycles.pause_total_ns += pause_ns;
  g_cycles.pause_last_ns = pause_ns;
  if (pause_ns > g_cycles.pause_max_ns) g_cycles.pause_max_ns = pause_ns;
  g_cycles.pause_ring_ns[(g_cycles.num_gc + 255) % 256] = pause_ns;
  // The world was stopped: every core was either collecting or held off, as Go counts a stop-the-world pause.
  g_cycles.gc_cpu_ns += pause_ns * static_cast<uint64_t>(g_num_cpus);
  g_gc_percent_goal = pacer::GcPercentGoal(g_last, g_gc_percent);
}

int SetGcPercent(int percent) {
  LockHeap();
  int previous = g_gc_percent;
  g_gc_percent = percent < 0 ? -1 : percent;
  g_gc_percent_goal = pacer::GcPercentGoal(g_last, g_gc_percent);
  UnlockHeap();
  return previous;
}

int64_t SetMemoryLimit(int64_t bytes) {
  LockHeap();
  int64_t previous = g_memory_limit;
  if (bytes >= 0) g_memory_limit = bytes;
  UnlockHeap();
  return previous;
}

void ReadStats(pgc_stats *out) {
  pgc_stats s;
  memset(&s, 0, sizeof(s));
  LockHeap();
  s.num_gc = g_cycles.num_gc;
  s.num_forced_gc = g_cycles.num_forced_gc;
  s.heap_live_bytes = g_last.heap_marked_bytes;
  s.heap_goal_bytes = CurrentGoal().bytes;
  s.heap_alloc_bytes = g_alloc.heap_alloc_bytes;
  s.heap_objects = g_alloc.heap_objects;
  s.heap_mapped_bytes = g_heap.mapped_bytes();
  s.heap_released_bytes = 0;  // nothing is returned to the OS until the scavenger lands
  s.released_bytes = s.heap_released_bytes;
  s.metadata_bytes = meta::AllocatedBytes();
  s.total_bytes = s.heap_mapped_bytes - s.heap_released_bytes + s.metadata_bytes;
  s.total_alloc_bytes = g_alloc.total_alloc_bytes;
  s.total_alloc_objects = g_alloc.total_alloc_objects;
  s.total_free_bytes = g_alloc.total_free_bytes;
  s.total_free_objects = g_alloc.total_free_objects;
  s.pause_total_ns = g_cycles.pause_total_ns;
  s.pause_last_ns = g_cycles.pause_last_ns;
  s.pause_max_ns = g_cycles.pause_max_ns;
  memcpy(s.pause_ns, g_cycles.pause_ring_ns, sizeof(s.pause_ns));
  s.gc_cpu_ns = g_cycles.gc_cpu_ns;
  uint64_t wall = os::MonotonicNs() - g_start_ns;
  s.gc_cpu_fraction = wall == 0 ? 0.0
                                : static_cast<double>(g_cycles.gc_cpu_ns) /
                                      (static_cast<double>(wall) * static_cast<double>(g_num_cpus));
  s.last_stack_scan_bytes = g_last.stack_scan_bytes;
  s.last_globals_scan_bytes = g_last.globals_scan_bytes;
  s.last_heap_scan_bytes = g_cycles.last_heap_scan_bytes;
  s.limiter_last_enabled_cycle = 0;  // no CPU limiter yet: it has never been enabled
  s.finalizers_run = FinalizersRun();
  s.gc_percent = g_gc_percent;
  s.memory_limit_bytes = g_memory_limit;
  threads::LockRegistry();
  s.num_threads = threads::Count();
  // Slots claimed by thread caches but not yet handed out count as allocated inside the collector (the trigger
  // sees them), but are not allocations the program made. Their owners may take them concurrently: a relaxed read
  // gives a value that was exact at some instant of this snapshot.
  uint64_t unused_objects = 0, unused_bytes = 0;
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) {
    for (const CacheSlot &slot : t->cache.slots) {
      uint64_t bits = __atomic_load_n(&slot.bits, __ATOMIC_RELAXED);
      uint64_t n = static_cast<uint64_t>(__builtin_popcountll(bits));
      unused_objects += n;
      unused_bytes += n * slot.size;
    }
  }
  threads::UnlockRegistry();
  s.heap_alloc_bytes -= unused_bytes;
  s.heap_objects -= unused_objects;
  s.total_alloc_bytes -= unused_bytes;
  s.total_alloc_objects -= unused_objects;
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

size_t CollectAndVerify() {
  EnsureInit();
  if (t_current == nullptr) threads::Register();
  LockHeap();
  g_force_verify = true;
  CollectLocked(GcReason::kForced);
  g_force_verify = false;
  size_t problems = g_last_verify_problems;
  UnlockHeap();
  RunFinalizers();
  return problems;
}

void CorruptNextMarkForTesting() {
  EnsureInit();
  LockHeap();
  g_corrupt_next = true;
  UnlockHeap();
}

void SetMarkStackEntries(size_t entries) {
  EnsureInit();
  LockHeap();
  g_mark_stack_entries = entries == 0 ? Marker::kDefaultStackEntries : entries;
  UnlockHeap();
}

uint64_t LastCycleMarkOverflows() {
  LockHeap();
  uint64_t n = g_cycles.last_overflows;
  UnlockHeap();
  return n;
}

}  // namespace testing
}  // namespace pacegc::internal
