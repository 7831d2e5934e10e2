// gc/trace.cc — see trace.h for what is traced, when lines are printed and how the event ring works.
//
// State below is guarded by the heap lock unless it says otherwise: the cycle clock (the collecting thread, world
// stopped or heap lock), the pacer note and the scavtrace counters. The ring has its own protocol (Vyukov's bounded
// queue: producers claim a cell by CAS on g_enqueue_pos and publish it with the cell's sequence number; the single
// flusher, under g_flush_mutex, consumes cells in order and hands them back), and the file is written only under
// g_flush_mutex.
#include "gc/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "base/meta.h"
#include "base/os.h"
#include "pacer/config.h"
#include "pacer/limit.h"
#include "settings/settings.h"

namespace pacegc::internal::trace {

bool g_gctrace = false;
bool g_pacertrace = false;
bool g_scavtrace = false;
bool g_events = false;
bool g_timing = false;
bool g_any = false;

namespace {

uint64_t g_start_ns = 0;  // the library's start: gctrace's @T and U%

// ---- The cycle clock (heap lock; written with the world stopped, and after it by the sweep's phase) ------------

struct CycleClock {
  uint64_t begin_ns = 0;
  uint64_t begin_cpu_ns = 0;
  uint64_t end_ns[kNumPhases] = {};      // monotonic time phase p ended
  uint64_t end_cpu_ns[kNumPhases] = {};  // collecting thread's CPU time then
  uint64_t args[kNumPhases][2] = {};
  bool ran[kNumPhases] = {};             // false: the phase did not run (verify heap), zero length
  int next = 0;                          // the first phase not yet ended
  uint64_t heap_alloc_before_bytes = 0;  // TriggerHeapBytes() at CycleBegin (what the trigger compared)
  uint64_t heap_alloc_after_bytes = 0;   // ... at the end of the sweep
} g_clock;

// ---- gcpacertrace and scavtrace state (heap lock) ---------------------------------------------------------------

pacer::PacerStats g_pacer{};
bool g_pacer_noted = false;              // NotePacer was called since the last line
uint64_t g_postponed_at_last_line = 0;

// Released bytes by kind, cumulative (relaxed atomics: the background batch event reads them without the heap
// lock; all writes are under it).
std::atomic<uint64_t> g_released_bytes[3];
uint64_t g_scav_printed_bytes[3] = {};  // what the last scavtrace line (per cycle, or forced) accounted for

// ---- The event ring -----------------------------------------------------------------------------------------------

// Event kinds: the cycle phases (Phase values), then these.
enum Kind : uint8_t { kCycleEvent = kNumPhases, kRunFinalizersEvent, kScavengeEvent, kNumKinds };

struct KindInfo {
  const char *name;
  const char *cat;
  const char *arg_names[4];  // nullptr: no such argument
};
constexpr KindInfo kKinds[kNumKinds] = {
    {"stop the world", "gc", {"threads_stopped"}},
    {"mark roots", "gc", {"stack_bytes", "globals_bytes"}},
    {"mark heap", "gc", {"heap_scan_bytes", "marked_bytes"}},
    {"finalizer discovery", "gc", {"ready_objects"}},
    {"verify heap", "gc", {"problems"}},
    {"start the world", "gc", {}},
    {"sweep", "gc", {"freed_bytes", "freed_objects"}},
    {"gc", "gc", {"heap_alloc_before_bytes", "heap_alloc_after_bytes", "marked_bytes", "goal_bytes"}},
    {"run finalizers", "finalize", {"finalizers"}},
    {"background scavenge", "scavenge", {"released_bytes"}},
};

constexpr const char *kReasonNames[] = {"automatic", "forced", "out of memory", "periodic", "requested"};  // GcReason order

struct Event {
  uint64_t ts_ns;   // monotonic
  uint64_t dur_ns;
  uint64_t args[4];
  uint64_t cycle;   // 0: not part of a cycle
  int32_t tid;
  uint8_t kind;
  uint8_t reason;   // GcReason, for kCycleEvent
};

struct Cell {
  std::atomic<uint64_t> seq;  // == position: free for the producer of that position; == position + 1: published
  Event event;
};

constexpr uint64_t kRingEvents = 4096;  // a cycle records 8 or 9; flushed after every cycle and scavenging batch
Cell *g_ring = nullptr;                 // kRingEvents cells, metadata, allocated by Init
std::atomic<uint64_t> g_enqueue_pos{0};
std::atomic<uint64_t> g_dropped{0};

// The file (g_flush_mutex).
pthread_mutex_t g_flush_mutex = PTHREAD_MUTEX_INITIALIZER;
int g_fd = -1;
bool g_closed = false;
uint64_t g_dequeue_pos = 0;
uint64_t g_origin_ns = 0;  // ts 0 in the file
int g_pid = 0;
constexpr int kNamedThreads = 64;
int32_t g_named_tids[kNamedThreads];  // threads whose thread_name metadata event is written
int g_num_named = 0;

void WriteAll(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // nowhere to report it: the trace goes to stderr or is the file itself
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// A fixed-size text buffer that never allocates: Append truncates at capacity.
template <size_t kSize>
struct Text {
  char data[kSize];
  size_t len = 0;
  void Append(const char *fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (len >= kSize - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(data + len, kSize - len, fmt, ap);
    va_end(ap);
    if (m > 0) len += static_cast<size_t>(m) < kSize - len ? static_cast<size_t>(m) : kSize - 1 - len;
  }
};

void Push(const Event &e) {
  uint64_t pos = g_enqueue_pos.load(std::memory_order_relaxed);
  for (;;) {
    Cell &cell = g_ring[pos % kRingEvents];
    uint64_t seq = cell.seq.load(std::memory_order_acquire);
    int64_t dif = static_cast<int64_t>(seq - pos);
    if (dif == 0) {
      if (g_enqueue_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        cell.event = e;
        cell.seq.store(pos + 1, std::memory_order_release);
        return;
      }
    } else if (dif < 0) {  // full: the flusher has not handed this cell back yet
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    } else {
      pos = g_enqueue_pos.load(std::memory_order_relaxed);
    }
  }
}

// g_flush_mutex held. false when the next event is not published yet (or there is none).
bool Pop(Event *out) {
  Cell &cell = g_ring[g_dequeue_pos % kRingEvents];
  if (cell.seq.load(std::memory_order_acquire) != g_dequeue_pos + 1) return false;
  *out = cell.event;
  cell.seq.store(g_dequeue_pos + kRingEvents, std::memory_order_release);
  ++g_dequeue_pos;
  return true;
}

// Appends a JSON string body (no quotes) of s: printable ASCII as is, the rest as '?' (thread names only).
template <size_t kSize>
void AppendJsonSafe(Text<kSize> &t, const char *s) {
  for (; *s != '\0' && *s != '\n'; ++s) {
    char c = *s;
    t.Append("%c", (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : c);
  }
}

// g_flush_mutex held. The thread_name metadata event the first time tid appears, named from /proc.
template <size_t kSize>
void NameThread(Text<kSize> &t, int32_t tid) {
  for (int i = 0; i < g_num_named; ++i) {
    if (g_named_tids[i] == tid) return;
  }
  if (g_num_named == kNamedThreads) return;  // Perfetto shows the bare tid
  g_named_tids[g_num_named++] = tid;
  char path[64], comm[32] = {};
  snprintf(path, sizeof(path), "/proc/self/task/%d/comm", static_cast<int>(tid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // the thread has exited
  ssize_t n = read(fd, comm, sizeof(comm) - 1);
  close(fd);
  if (n <= 0) return;
  t.Append(",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"", g_pid,
           static_cast<int>(tid));
  AppendJsonSafe(t, comm);
  t.Append("\"}}");
}

template <size_t kSize>
void AppendEvent(Text<kSize> &t, const Event &e) {
  const KindInfo &k = kKinds[e.kind];
  uint64_t ts = e.ts_ns > g_origin_ns ? e.ts_ns - g_origin_ns : 0;
  t.Append(",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%llu.%03llu,"
           "\"dur\":%llu.%03llu,\"args\":{",
           k.name, k.cat, g_pid, static_cast<int>(e.tid), static_cast<unsigned long long>(ts / 1000),
           static_cast<unsigned long long>(ts % 1000), static_cast<unsigned long long>(e.dur_ns / 1000),
           static_cast<unsigned long long>(e.dur_ns % 1000));
  const char *sep = "";
  if (e.cycle != 0) {
    t.Append("\"cycle\":%llu", static_cast<unsigned long long>(e.cycle));
    sep = ",";
  }
  if (e.kind == kCycleEvent) {
    t.Append("%s\"reason\":\"%s\"", sep, kReasonNames[e.reason]);
    sep = ",";
  }
  for (int i = 0; i < 4 && k.arg_names[i] != nullptr; ++i) {
    t.Append("%s\"%s\":%llu", sep, k.arg_names[i], static_cast<unsigned long long>(e.args[i]));
    sep = ",";
  }
  t.Append("}}");
}

// Writes every published event to the file. Any thread, no heap lock needed; never with the world stopped.
void Flush() {
  pthread_mutex_lock(&g_flush_mutex);
  if (!g_closed) {
    Text<16384> t;
    Event e;
    while (Pop(&e)) {
      NameThread(t, e.tid);
      AppendEvent(t, e);
      if (t.len > sizeof(t.data) - 2048) {  // an event and a thread name take < 1 KiB
        WriteAll(g_fd, t.data, t.len);
        t.len = 0;
      }
    }
    WriteAll(g_fd, t.data, t.len);
  }
  pthread_mutex_unlock(&g_flush_mutex);
}

// atexit: the last events and the closing bracket, so the file is valid JSON.
void CloseTraceFile() {
  Flush();
  pthread_mutex_lock(&g_flush_mutex);
  if (!g_closed) {
    static const char kTail[] = "\n]}\n";
    WriteAll(g_fd, kTail, sizeof(kTail) - 1);
    close(g_fd);
    g_closed = true;
  }
  pthread_mutex_unlock(&g_flush_mutex);
  uint64_t dropped = g_dropped.load(std::memory_order_relaxed);
  if (dropped != 0) {
    Message("PACEGC_TRACE: %llu events were dropped (the event ring was full)",
            static_cast<unsigned long long>(dropped));
  }
}

// path: PACEGC_TRACE, not empty (settings/settings.cc refuses an empty one).
void OpenTraceFile(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    ExitMalformedSetting("PACEGC_TRACE=%s: cannot open the trace file for writing: %s",
                         pacer::QuoteSetting(path).c_str(), strerror(errno));
  }
  void *mem = meta::Calloc(kRingEvents, sizeof(Cell));
  if (mem == nullptr) Fatal("out of memory for the PACEGC_TRACE event ring");
  g_ring = static_cast<Cell *>(mem);
  for (uint64_t i = 0; i < kRingEvents; ++i) new (&g_ring[i]) Cell{{i}, Event{}};
  g_fd = fd;
  g_pid = static_cast<int>(getpid());
  g_origin_ns = os::MonotonicNs();
  Text<512> head;
  head.Append("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
              "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"pacegc: ",
              g_pid, g_pid);
  char comm[32] = {};
  int cfd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (cfd >= 0) {
    if (read(cfd, comm, sizeof(comm) - 1) < 0) comm[0] = '\0';
    close(cfd);
  }
  AppendJsonSafe(head, comm);
  head.Append("\"}}");
  WriteAll(g_fd, head.data, head.len);
  atexit(CloseTraceFile);
}

// ---- Line formats -------------------------------------------------------------------------------------------------

// Go's fmtNSAsMS: whole milliseconds from 10 ms on; below, two significant digits, at most three decimals.
template <size_t kSize>
void AppendMs(Text<kSize> &t, uint64_t ns) {
  if (ns >= 10'000'000) {
    t.Append("%llu", static_cast<unsigned long long>(ns / 1'000'000));
    return;
  }
  uint64_t x = ns / 1000;
  if (x == 0) {
    t.Append("0");
    return;
  }
  int dec = 3;
  while (x >= 100) {
    x /= 10;
    --dec;
  }
  uint64_t pow10 = dec == 3 ? 1000 : dec == 2 ? 100 : 10;
  t.Append("%llu.%0*llu", static_cast<unsigned long long>(x / pow10), dec,
           static_cast<unsigned long long>(x % pow10));
}

constexpr uint64_t kMiB = uint64_t{1} << 20;

// gctrace's "P" (Go prints GOMAXPROCS): the CPU capacity, rounded up to whole CPUs (a 30% quota prints 1 P).
int GctraceProcs() {
  double cpus = pacing::CpuCapacity().cpus;
  int p = static_cast<int>(cpus);
  return p < cpus || p < 1 ? p + 1 : p;
}

template <size_t kSize>
void AppendGctrace(Text<kSize> &t, const pacing::CycleReport &r, GcReason reason, uint64_t gc_cpu_ns_total,
                   const CycleStats &stats) {
  const CycleClock &c = g_clock;
  double fraction = pacing::GcCpuFraction(gc_cpu_ns_total, os::MonotonicNs());
  uint64_t since_start_ms = (c.begin_ns - g_start_ns) / 1'000'000;
  t.Append("gc %llu @%llu.%03llus %d%%: ", static_cast<unsigned long long>(r.num_gc),
           static_cast<unsigned long long>(since_start_ms / 1000),
           static_cast<unsigned long long>(since_start_ms % 1000),
           static_cast<int>(fraction * 100));
  // A stop-the-world cycle, clock a+b+c: stop the world, mark (roots, heap, finalizer discovery, verification), the
  // rest of the pause (the sweep's start and the restart); the sweep after the restart is not in them (Go leaves its
  // sweep out too). cpu d+e/f/g+h: the collecting thread's CPU in the same three spans; no assists (e) and no idle
  // workers (g). A concurrent cycle, as Go's: a the start pause, b the work with the world running up to the final
  // pause (tracking, marking, pre-cleaning), c the final pause; d, f and h the collecting thread's CPU in them, f
  // with the mark thread's share of the marking (mark.h, "Background sharing"), as Go's background workers count.
  // e: a runway cycle's mark assists, the program's threads' CPU (collector.cc, "Runway cycles"); 0 otherwise. In a
  // runway cycle the collecting thread is the background thread, so f is all background marking, as in Go.
  uint64_t clock[3], cpu[3];
  const uint64_t end = c.end_ns[kStartTheWorld], end_cpu = c.end_cpu_ns[kStartTheWorld];
  if (stats.last_concurrent) {
    clock[0] = stats.last_start_pause_ns;
    clock[2] = stats.last_final_pause_ns;
    cpu[0] = stats.last_start_pause_cpu_ns;
    cpu[2] = stats.last_final_pause_cpu_ns;
  } else {
    clock[0] = c.end_ns[kStopTheWorld] - c.begin_ns;
    clock[2] = end - c.end_ns[kVerifyHeap];
    cpu[0] = c.end_cpu_ns[kStopTheWorld] - c.begin_cpu_ns;
    cpu[2] = end_cpu - c.end_cpu_ns[kVerifyHeap];
  }
  const uint64_t total = end - c.begin_ns, total_cpu = end_cpu - c.begin_cpu_ns;
  clock[1] = total > clock[0] + clock[2] ? total - clock[0] - clock[2] : 0;
  cpu[1] = (total_cpu > cpu[0] + cpu[2] ? total_cpu - cpu[0] - cpu[2] : 0) + stats.last_background_thread_cpu_ns;
  AppendMs(t, clock[0]);
  t.Append("+");
  AppendMs(t, clock[1]);
  t.Append("+");
  AppendMs(t, clock[2]);
  t.Append(" ms clock, ");
  AppendMs(t, cpu[0]);
  t.Append("+");
  AppendMs(t, stats.last_assist_cpu_ns);
  t.Append("/");
  AppendMs(t, cpu[1]);
  t.Append("/0+");
  AppendMs(t, cpu[2]);
  uint64_t goal = pacing::CurrentGoal().bytes;
  t.Append(" ms cpu, %llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, %llu MB globals, %d P",
           static_cast<unsigned long long>(c.heap_alloc_before_bytes / kMiB),
           static_cast<unsigned long long>(c.heap_alloc_after_bytes / kMiB),
           static_cast<unsigned long long>(r.heap_marked_bytes / kMiB), static_cast<unsigned long long>(goal / kMiB),
           static_cast<unsigned long long>(r.stack_scan_bytes / kMiB),
           static_cast<unsigned long long>(r.globals_scan_bytes / kMiB), GctraceProcs());
  if (reason == GcReason::kForced) t.Append(" (forced)");
  if (reason == GcReason::kPeriodic) t.Append(" (periodic)");
  if (reason == GcReason::kRequested) t.Append(" (requested)");
  if (reason == GcReason::kOutOfMemory) t.Append(" (out of memory)");
  // (A and B repeat the clock's a and c, for readers of the earlier format.)
  if (stats.last_concurrent) {
    t.Append(" (concurrent: pauses ");
    AppendMs(t, stats.last_start_pause_ns);
    t.Append("+");
    AppendMs(t, stats.last_final_pause_ns);
    t.Append(" ms, mark thread %llu MB, pre-cleaned %llu pages %llu filled spans, final re-scan %llu pages %llu objects"
             " %llu filled spans)",
             static_cast<unsigned long long>(stats.last_background_thread_scan_bytes / kMiB),
             static_cast<unsigned long long>(stats.last_precleaned_pages),
             static_cast<unsigned long long>(stats.last_precleaned_spans),
             static_cast<unsigned long long>(stats.last_rescan_pages),
             static_cast<unsigned long long>(stats.last_rescan_objects),
             static_cast<unsigned long long>(stats.last_filled_spans));
    if (stats.last_runway) {
      t.Append(" (runway: started at %llu MB, assist ratio %.3f, %llu assists scanned %llu MB)",
               static_cast<unsigned long long>(stats.last_runway_trigger_bytes / kMiB), stats.last_assist_ratio,
               static_cast<unsigned long long>(stats.last_assists),
               static_cast<unsigned long long>(stats.last_assist_scan_bytes / kMiB));
    }
  }
  t.Append("\n");
}

template <size_t kSize>
void AppendBytesOrNone(Text<kSize> &t, const char *key, uint64_t bytes, uint64_t none) {
  if (bytes == none) {
    t.Append(" %s=none", key);
  } else {
    t.Append(" %s=%llu", key, static_cast<unsigned long long>(bytes));
  }
}

template <size_t kSize>
void AppendPacer(Text<kSize> &t, const pacing::CycleReport &r, const CycleStats &stats) {
  const pacer::PacerStats &p = g_pacer;
  t.Append("pacer: gc %llu", static_cast<unsigned long long>(r.num_gc));
  if (p.gc_percent < 0) {
    t.Append(" gogc=off");
  } else {
    t.Append(" gogc=%d", p.gc_percent);
  }
  AppendBytesOrNone(t, "gogc_goal_bytes", p.gc_percent_goal_bytes, pacer::kNoGoal);
  AppendBytesOrNone(t, "limit_bytes", static_cast<uint64_t>(p.memory_limit_bytes),
                    static_cast<uint64_t>(pacer::kNoLimit));
  AppendBytesOrNone(t, "limit_goal_bytes", p.limit_goal_bytes, UINT64_MAX);
  AppendBytesOrNone(t, "goal_bytes", p.heap_goal_bytes, pacer::kNoGoal);
  const char *regime = p.heap_goal_bytes == pacer::kNoGoal    ? "none"
                       : p.regime == pacer::Regime::kGcPercent ? "gogc"
                                                               : "limit";
  const char *limiter = !p.limiter_active ? "disabled" : p.limiter_enabled ? "on" : "off";
  t.Append(" regime=%s marked_bytes=%llu limiter=%s limiter_fill_ns=%llu limiter_capacity_ns=%llu postponed=%llu "
           "postponed_total=%llu limit_source=%s",
           regime, static_cast<unsigned long long>(r.heap_marked_bytes), limiter,
           static_cast<unsigned long long>(p.limiter_fill_ns), static_cast<unsigned long long>(p.limiter_capacity_ns),
           static_cast<unsigned long long>(p.limiter_postponed - g_postponed_at_last_line),
           static_cast<unsigned long long>(p.limiter_postponed), pacer::LimitSourceName(static_cast<pacer::LimitSource>(p.memory_limit_source)));
  AppendBytesOrNone(t, "hard_limit_bytes", static_cast<uint64_t>(p.hard_memory_limit_bytes),
                    static_cast<uint64_t>(pacer::kNoLimit));
  // Go's concurrent trigger (pacer/trigger.h) for the next cycle, and how this one started and was assisted.
  t.Append(" cons_mark=%.4f last_cons_mark=%.4f trigger_bytes=%llu runway_bytes=%llu runway=%s started=%s "
           "assist_ratio=%.4f assists=%llu assist_scan_bytes=%llu",
           p.cons_mark, p.last_cons_mark, static_cast<unsigned long long>(p.trigger_bytes),
           static_cast<unsigned long long>(p.runway_bytes), p.runway_fits ? "fits" : "none",
           stats.last_runway ? "runway" : "goal", stats.last_runway ? stats.last_assist_ratio : 0.0,
           static_cast<unsigned long long>(stats.last_assists),
           static_cast<unsigned long long>(stats.last_assist_scan_bytes));
  t.Append("\n");
  g_postponed_at_last_line = p.limiter_postponed;
}

// Go's printScavTrace, plus the retained bytes: "work" is what was released since the previous line of its kind
// (bg: the background scavenger; eager: synchronous scavenging for the limit, or, on the forced line, what
// pgc_free_os_memory released); "now" is every heap byte released and not reused; util = in-use / retained pages.
template <size_t kSize>
void AppendScav(Text<kSize> &t, bool forced) {
  auto since_last = [](Release kind) {
    int i = static_cast<int>(kind);
    uint64_t total = g_released_bytes[i].load(std::memory_order_relaxed);
    uint64_t d = total - g_scav_printed_bytes[i];
    g_scav_printed_bytes[i] = total;
    return d;
  };
  uint64_t bg = forced ? 0 : since_last(Release::kBackground);
  uint64_t eager = forced ? since_last(Release::kForced) : since_last(Release::kEager);
  uint64_t retained = g_heap.retained_bytes();
  uint64_t util = retained == 0 ? 0 : g_heap.in_use_bytes() * 100 / retained;
  t.Append("scav %llu KiB work (bg), %llu KiB work (eager), %llu KiB now, %llu KiB retained, %llu%% util%s\n",
           static_cast<unsigned long long>(bg >> 10), static_cast<unsigned long long>(eager >> 10),
           static_cast<unsigned long long>(g_heap.released_bytes() >> 10),
           static_cast<unsigned long long>(retained >> 10), static_cast<unsigned long long>(util),
           forced ? " (forced)" : "");
}

// The cycle's events, from the clock: the cycle, then each phase that ran.
void PushCycleEvents(const pacing::CycleReport &r, GcReason reason) {
  const CycleClock &c = g_clock;
  int32_t tid = static_cast<int32_t>(os::CurrentTid());
  Event e{};
  e.tid = tid;
  e.cycle = r.num_gc;
  e.kind = kCycleEvent;
  e.reason = static_cast<uint8_t>(reason);
  e.ts_ns = c.begin_ns;
  e.dur_ns = c.end_ns[kNumPhases - 1] - c.begin_ns;  // to the end of the sweep, after the restart
  e.args[0] = c.heap_alloc_before_bytes;
  e.args[1] = c.heap_alloc_after_bytes;
  e.args[2] = r.heap_marked_bytes;
  e.args[3] = pacing::CurrentGoal().bytes;
  Push(e);
  uint64_t begin = c.begin_ns;
  for (int p = 0; p < kNumPhases; ++p) {
    if (c.ran[p]) {
      Event ph{};
      ph.tid = tid;
      ph.cycle = r.num_gc;
      ph.kind = static_cast<uint8_t>(p);
      ph.ts_ns = begin;
      ph.dur_ns = c.end_ns[p] - begin;
      ph.args[0] = c.args[p][0];
      ph.args[1] = c.args[p][1];
      Push(ph);
    }
    begin = c.end_ns[p];
  }
}

}  // namespace

void Init(uint64_t start_ns) {
  g_start_ns = start_ns;
  const settings::Values &env = settings::Get();  // GODEBUG, PACEGC_TRACE
  g_gctrace = env.godebug.gctrace > 0;
  g_pacertrace = env.godebug.gcpacertrace > 0;
  g_scavtrace = env.godebug.scavtrace > 0;
  if (env.trace_path != nullptr) {
    OpenTraceFile(env.trace_path);
    g_events = true;
  }
  g_timing = g_gctrace || g_events;
  g_any = g_timing || g_pacertrace || g_scavtrace;
}

void RecordCycleBegin(uint64_t now_ns, uint64_t cpu_ns) {
  g_clock.begin_ns = now_ns;
  g_clock.begin_cpu_ns = cpu_ns;
  g_clock.next = 0;
  g_clock.heap_alloc_before_bytes = TriggerHeapBytes();
}

void RecordPhaseEnd(Phase phase, uint64_t arg0, uint64_t arg1) {
  CycleClock &c = g_clock;
  uint64_t now = os::MonotonicNs();
  uint64_t cpu = os::ThreadCpuNs();
  // Phases that did not run since the last one end where it ended (zero length).
  uint64_t last_ns = c.next == 0 ? c.begin_ns : c.end_ns[c.next - 1];
  uint64_t last_cpu = c.next == 0 ? c.begin_cpu_ns : c.end_cpu_ns[c.next - 1];
  for (; c.next < phase; ++c.next) {
    c.end_ns[c.next] = last_ns;
    c.end_cpu_ns[c.next] = last_cpu;
    c.ran[c.next] = false;
  }
  c.end_ns[phase] = now;
  c.end_cpu_ns[phase] = cpu;
  c.args[phase][0] = arg0;
  c.args[phase][1] = arg1;
  c.ran[phase] = true;
  c.next = phase + 1;
  if (phase == kSweep) c.heap_alloc_after_bytes = g_alloc.heap_alloc_bytes;
}

void RecordCycleEnd(const CycleStats &stats, GcReason reason) {
  const pacing::CycleReport &report = stats.report;
  Text<2048> lines;
  if (g_gctrace) AppendGctrace(lines, report, reason, stats.gc_cpu_ns, stats);
  if (g_pacertrace && g_pacer_noted) AppendPacer(lines, report, stats);
  g_pacer_noted = false;
  if (g_scavtrace) AppendScav(lines, false);
  WriteAll(STDERR_FILENO, lines.data, lines.len);
  if (g_events) {
    PushCycleEvents(report, reason);
    Flush();
  }
}

void NotePacer(const pacer::PacerStats &state) {
  g_pacer = state;
  g_pacer_noted = true;
}

void MemoryLimitFromCgroup(int64_t limit_bytes, uint64_t cgroup_bytes, double ratio, const char *hierarchy) {
  if (!g_gctrace && !g_pacertrace) return;
  Text<256> line;
  if (limit_bytes == pacer::kNoLimit) {
    line.Append("pacegc: memory limit none (no cgroup memory limit)\n");
  } else {
    line.Append("pacegc: memory limit %lld bytes from the cgroup (%.3g x %s limit %llu bytes)\n",
                static_cast<long long>(limit_bytes), ratio, hierarchy, static_cast<unsigned long long>(cgroup_bytes));
  }
  WriteAll(STDERR_FILENO, line.data, line.len);
}

void LimitEvent(uint32_t kind, uint64_t total_bytes, int64_t limit_bytes, int64_t hard_limit_bytes) {
  if (!g_gctrace && !g_pacertrace) return;
  static const char *const kNames[] = {"?", "limiter-on", "limiter-off", "over-limit", "under-limit", "hard-limit"};
  Text<256> line;
  line.Append("pacegc: event %s total_bytes=%llu", kNames[kind < 6 ? kind : 0],
              static_cast<unsigned long long>(total_bytes));
  AppendBytesOrNone(line, "limit_bytes", static_cast<uint64_t>(limit_bytes), static_cast<uint64_t>(pacer::kNoLimit));
  AppendBytesOrNone(line, "hard_limit_bytes", static_cast<uint64_t>(hard_limit_bytes),
                    static_cast<uint64_t>(pacer::kNoLimit));
  line.Append("\n");
  WriteAll(STDERR_FILENO, line.data, line.len);
}

void HardLimitHit(bool failed, uint64_t total_bytes, int64_t hard_limit_bytes) {
  if (!g_gctrace && !g_pacertrace) return;
  Text<256> line;
  line.Append("pacegc: hard limit hit: %s total_bytes=%llu hard_limit_bytes=%lld\n",
              failed ? "refused" : "saved by a forced collection", static_cast<unsigned long long>(total_bytes),
              static_cast<long long>(hard_limit_bytes));
  WriteAll(STDERR_FILENO, line.data, line.len);
}

void RecordRelease(Release kind, uint64_t bytes) {
  g_released_bytes[static_cast<int>(kind)].fetch_add(bytes, std::memory_order_relaxed);
}

void RecordForcedScavenge() {
  Text<256> line;
  AppendScav(line, true);
  WriteAll(STDERR_FILENO, line.data, line.len);
}

BatchStart RecordBatchStart() {
  return BatchStart{os::MonotonicNs(),
                    g_released_bytes[static_cast<int>(Release::kBackground)].load(std::memory_order_relaxed)};
}

void RecordBatchEnd(const BatchStart &start) {
  Event e{};
  e.tid = static_cast<int32_t>(os::CurrentTid());
  e.kind = kScavengeEvent;
  e.ts_ns = start.ns;
  e.dur_ns = os::MonotonicNs() - start.ns;
  e.args[0] = g_released_bytes[static_cast<int>(Release::kBackground)].load(std::memory_order_relaxed) -
              start.released_bytes;
  Push(e);
  Flush();
}

uint64_t RecordNow() { return os::MonotonicNs(); }

void RecordFinalizersRan(uint64_t start_ns, uint64_t count) {
  Event e{};
  e.tid = static_cast<int32_t>(os::CurrentTid());
  e.kind = kRunFinalizersEvent;
  e.ts_ns = start_ns;
  e.dur_ns = os::MonotonicNs() - start_ns;
  e.args[0] = count;
  Push(e);
}

}  // namespace pacegc::internal::trace
