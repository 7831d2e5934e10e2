// malloc/leak.cc — see leak.h for the design.
//
// State: the site table, the table of reported blocks and the counters are guarded by g_mutex (taken alone, never
// with a pacegc lock held, never around a call that allocates through pacegc). Printing is serialised by
// g_report_mutex, taken before g_mutex, held while symbolising (which allocates: through mimalloc, since t_busy
// keeps the reporter's own allocations out of the sample). Both are taken by fork's prepare handler, so a child
// never inherits one held by a thread that is not there.
#include "malloc/leak.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/collector.h"
#include "gc/finalize.h"
#include "gc/pacing.h"
#include "gc/threads.h"
#include "malloc/symbolize.h"
#include "pacegc/pacegc.h"

namespace pacegc::internal::drop_in::leak {

thread_local int64_t t_countdown __attribute__((tls_model("initial-exec"))) = 0;

namespace {

constexpr int kMaxFrames = 24;
constexpr uint32_t kMaxSites = 8192;      // site 0 is "any other site" once the table is full
constexpr uint32_t kIndexSlots = 16384;   // open addressing over kMaxSites: at most half full
constexpr int kSummarySites = 25;
constexpr uint64_t kMinCheckBytes = 4ull << 20;
constexpr int kSizeBits = 40;             // finalizer data: site << 40 | requested size

struct Site {
  uint64_t hash;
  uint32_t depth;
  uintptr_t pcs[kMaxFrames];
  uint64_t leaked, leaked_bytes;    // the run's total
  double estimated_bytes;           // leaked_bytes scaled by each block's sampling probability
  uint64_t pending, pending_bytes;  // found since the last report
};

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_report_mutex = PTHREAD_MUTEX_INITIALIZER;

int64_t g_rate = 0;  // PACEGC_LEAK_SAMPLE; set once by Start
Site *g_sites = nullptr;       // g_mutex; kMaxSites, mapped (os::MapSparse)
uint32_t *g_index = nullptr;   // g_mutex; site + 1 by hash, 0 = empty
uint32_t g_nsites = 1;         // g_mutex
bool g_pending = false;        // g_mutex: some site has pending leaks

// Reported blocks: an open-addressing set of addresses (0 empty, 1 deleted) in mimalloc's memory, which the
// collector scans, so a reported block stays reachable and is found only once.
uintptr_t *g_kept = nullptr;   // g_mutex
size_t g_kept_capacity = 0, g_kept_used = 0;  // used counts deleted slots too
std::atomic<uint64_t> g_kept_count{0};
uint64_t g_freed_after_report = 0;  // g_mutex

std::atomic<uint64_t> g_samples{0};
std::atomic<uint64_t> g_estimated_alloc{0};  // samples × rate: the bytes the program allocated, estimated
std::atomic<uint64_t> g_next_check{0};       // ... at which the next leak check is due
std::atomic<uint64_t> g_next_check_ns{0};    // and not before this time (monotonic)
constexpr uint64_t kMinCheckIntervalNs = 1'000'000'000;

uintptr_t g_self_lo = 0, g_self_hi = 0;  // this library's code: frames there are not the site

thread_local bool t_busy __attribute__((tls_model("initial-exec"))) = false;  // sampling, reporting
thread_local bool t_drawn __attribute__((tls_model("initial-exec"))) = false;  // t_countdown holds a distance
thread_local uint64_t t_rng __attribute__((tls_model("initial-exec"))) = 0;

Symbolizer *g_symbolizer = nullptr;  // g_report_mutex

// The distance to the next sample: exponential with mean g_rate (xorshift64*, seeded per thread).
int64_t Draw() {
  if (t_rng == 0) t_rng = (os::MonotonicNs() * 0x9E3779B97F4A7C15ull) ^ reinterpret_cast<uintptr_t>(&t_rng) ^ 1;
  t_rng ^= t_rng >> 12;
  t_rng ^= t_rng << 25;
  t_rng ^= t_rng >> 27;
  const double u = static_cast<double>((t_rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;  // [0, 1)
  const double x = -std::log1p(-u) * static_cast<double>(g_rate);
  return x < 1.0 ? 1 : x > 4e18 ? INT64_MAX / 2 : static_cast<int64_t>(x);
}

double SampleProbability(size_t n) {
  if (g_rate <= 1) return 1.0;
  const double p = -std::expm1(-static_cast<double>(n) / static_cast<double>(g_rate));
  return p > 1e-12 ? p : 1e-12;
}

uint64_t Hash(const uintptr_t *pcs, int depth) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < depth; ++i) h = (h ^ pcs[i]) * 0x100000001b3ull;
  return h | 1;
}

// g_mutex held. The site of this stack, added if new; 0 when the table is full.
uint32_t InternLocked(const uintptr_t *pcs, int depth) {
  const uint64_t h = Hash(pcs, depth);
  for (uint32_t i = static_cast<uint32_t>(h) & (kIndexSlots - 1);; i = (i + 1) & (kIndexSlots - 1)) {
    const uint32_t s = g_index[i];
    if (s == 0) {
      if (g_nsites == kMaxSites) return 0;
      const uint32_t id = g_nsites++;
      Site &site = g_sites[id];
      site.hash = h;
      site.depth = static_cast<uint32_t>(depth);
      memcpy(site.pcs, pcs, sizeof(uintptr_t) * static_cast<size_t>(depth));
      g_index[i] = id + 1;
      return id;
    }
    const Site &site = g_sites[s - 1];
    if (site.hash == h && site.depth == static_cast<uint32_t>(depth) &&
        memcmp(site.pcs, pcs, sizeof(uintptr_t) * static_cast<size_t>(depth)) == 0) {
      return s - 1;
    }
  }
}

// g_mutex held. Adds obj to the reported set (growing it; without memory the block is simply not kept).
void KeepLocked(uintptr_t obj) {
  if ((g_kept_used + 1) * 2 > g_kept_capacity) {
    const size_t capacity = g_kept_capacity == 0 ? 1024 : g_kept_capacity * 2;
    auto *table = static_cast<uintptr_t *>(mi_calloc(capacity, sizeof(uintptr_t)));
    if (table == nullptr) return;
    size_t used = 0;
    for (size_t i = 0; i < g_kept_capacity; ++i) {
      if (g_kept[i] <= 1) continue;
      size_t j = (g_kept[i] >> 4) & (capacity - 1);
      while (table[j] != 0) j = (j + 1) & (capacity - 1);
      table[j] = g_kept[i];
      ++used;
    }
    mi_free(g_kept);
    g_kept = table;
    g_kept_capacity = capacity;
    g_kept_used = used;
  }
  size_t j = (obj >> 4) & (g_kept_capacity - 1);
  while (g_kept[j] > 1) j = (j + 1) & (g_kept_capacity - 1);
  if (g_kept[j] == 0) ++g_kept_used;
  g_kept[j] = obj;
  g_kept_count.fetch_add(1, std::memory_order_relaxed);
}

// g_mutex held. obj's slot in the reported set, or nullptr.
uintptr_t *FindKeptLocked(uintptr_t obj) {
  if (g_kept_capacity == 0) return nullptr;
  for (size_t j = (obj >> 4) & (g_kept_capacity - 1); g_kept[j] != 0; j = (j + 1) & (g_kept_capacity - 1)) {
    if (g_kept[j] == obj) return &g_kept[j];
  }
  return nullptr;
}

// The finalizer of a sampled block: nothing pointed to it at the last collection, and free was never called.
void Found(void *obj, void *data) {
  const bool was_busy = t_busy;
  t_busy = true;
  const auto bits = reinterpret_cast<uintptr_t>(data);
  const uint32_t id = static_cast<uint32_t>(bits >> kSizeBits);
  const size_t n = bits & ((uintptr_t{1} << kSizeBits) - 1);
  pthread_mutex_lock(&g_mutex);
  Site &site = g_sites[id];
  ++site.leaked;
  site.leaked_bytes += n;
  site.estimated_bytes += static_cast<double>(n) / SampleProbability(n);
  ++site.pending;
  site.pending_bytes += n;
  g_pending = true;
  KeepLocked(reinterpret_cast<uintptr_t>(obj));
  pthread_mutex_unlock(&g_mutex);
  t_busy = was_busy;
}

std::string Bytes(double b) {
  char buf[32];
  if (b < 1024) {
    snprintf(buf, sizeof(buf), "%.0f bytes", b);
  } else if (b < 1024.0 * 1024) {
    snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024);
  } else if (b < 1024.0 * 1024 * 1024) {
    snprintf(buf, sizeof(buf), "%.1f MiB", b / (1024.0 * 1024));
  } else {
    snprintf(buf, sizeof(buf), "%.2f GiB", b / (1024.0 * 1024 * 1024));
  }
  return buf;
}

// g_report_mutex held. " allocated at f (mod+0x..) <- g (mod+0x..) ...": site 0 has no stack.
void AppendStack(const Site &site, std::string *line) {
  if (site.depth == 0) {
    line->append(" at sites beyond the table's ");
    line->append(std::to_string(kMaxSites - 1));
    return;
  }
  line->append(" allocated at ");
  for (uint32_t i = 0; i < site.depth; ++i) {
    if (i != 0) line->append(" <- ");
    g_symbolizer->Describe(site.pcs[i], line);
  }
}

void WriteLine(std::string *line) {
  line->push_back('\n');
  const char *p = line->data();
  size_t left = line->size();
  while (left != 0) {
    ssize_t n = write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

struct Batch {
  uint32_t id;
  uint64_t count, bytes;
};

// Prints the leaks found since the last report, one line per site. Calling thread not in a pacegc lock.
void Report() {
  const bool was_busy = t_busy;
  t_busy = true;
  pthread_mutex_lock(&g_report_mutex);
  std::vector<Batch> batch;
  pthread_mutex_lock(&g_mutex);
  if (g_pending) {
    for (uint32_t id = 0; id < g_nsites; ++id) {
      Site &s = g_sites[id];
      if (s.pending == 0) continue;
      batch.push_back(Batch{id, s.pending, s.pending_bytes});
      s.pending = s.pending_bytes = 0;
    }
    g_pending = false;
  }
  pthread_mutex_unlock(&g_mutex);
  std::sort(batch.begin(), batch.end(), [](const Batch &a, const Batch &b) { return a.bytes > b.bytes; });
  for (const Batch &b : batch) {
    std::string line = "pacegc: leak: " + std::to_string(b.count) + (g_rate > 1 ? " sampled" : "") +
                       (b.count == 1 ? " block (" : " blocks (") + Bytes(static_cast<double>(b.bytes)) +
                       ") unreachable, never freed,";
    AppendStack(g_sites[b.id], &line);  // a site's stack never changes once interned
    WriteLine(&line);
  }
  pthread_mutex_unlock(&g_report_mutex);
  t_busy = was_busy;
}

void Summary() {
  const bool was_busy = t_busy;
  t_busy = true;
  pthread_mutex_lock(&g_report_mutex);
  struct Row {
    uint32_t id;
    uint64_t count, bytes;
    double estimated;
  };
  std::vector<Row> rows;
  uint64_t freed_after = 0;
  pthread_mutex_lock(&g_mutex);
  for (uint32_t id = 0; id < g_nsites; ++id) {
    const Site &s = g_sites[id];
    if (s.leaked != 0) rows.push_back(Row{id, s.leaked, s.leaked_bytes, s.estimated_bytes});
  }
  freed_after = g_freed_after_report;
  pthread_mutex_unlock(&g_mutex);
  std::sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) { return a.estimated > b.estimated; });

  uint64_t count = 0, bytes = 0;
  double estimated = 0;
  for (const Row &r : rows) {
    count += r.count;
    bytes += r.bytes;
    estimated += r.estimated;
  }
  const uint64_t samples = g_samples.load(std::memory_order_relaxed);
  std::string sampling = std::to_string(samples) + (samples == 1 ? " allocation sampled" : " allocations sampled");
  sampling += g_rate > 1 ? ", 1 per " + Bytes(static_cast<double>(g_rate)) + " allocated" : " (every allocation)";
  std::string line = "pacegc: leak summary (pid " + std::to_string(getpid()) + "): ";
  if (rows.empty()) {
    line += "no leak found; " + sampling;
  } else {
    line += std::to_string(count) + (g_rate > 1 ? " sampled" : "") + (count == 1 ? " block (" : " blocks (") +
            Bytes(static_cast<double>(bytes)) + ") unreachable and never freed";
    if (g_rate > 1) line += ", about " + Bytes(estimated) + " in all";
    line += ", at " + std::to_string(rows.size()) + (rows.size() == 1 ? " site; " : " sites; ") + sampling;
  }
  if (freed_after != 0) {
    line += "; " + std::to_string(freed_after) +
            " reported blocks were freed later (their pointers were hidden from the scan)";
  }
  WriteLine(&line);
  for (size_t i = 0; i < rows.size() && i < kSummarySites; ++i) {
    const Row &r = rows[i];
    line = "pacegc: leak summary: " + std::to_string(r.count) + (r.count == 1 ? " block (" : " blocks (") +
           Bytes(static_cast<double>(r.bytes)) + (g_rate > 1 ? ", about " + Bytes(r.estimated) + " in all)" : ")");
    AppendStack(g_sites[r.id], &line);
    WriteLine(&line);
  }
  if (rows.size() > kSummarySites) {
    double rest = 0;
    for (size_t i = kSummarySites; i < rows.size(); ++i) rest += rows[i].estimated;
    line = "pacegc: leak summary: and " + std::to_string(rows.size() - kSummarySites) + " more sites (" +
           Bytes(rest) + ")";
    WriteLine(&line);
  }
  pthread_mutex_unlock(&g_report_mutex);
  t_busy = was_busy;
}

// The end of the program (atexit): one more collection finds what main left unreachable, then the summary. Not
// for a process that sampled nothing (a short-lived one: a shell's /bin/true): nothing to find, and no line.
void AtExit() {
  if (g_samples.load(std::memory_order_relaxed) == 0) return;
  pgc_collect();         // thread mode: returns when its finalizers have run
  pgc_run_finalizers();  // on-demand mode: runs them here (thread mode: nothing more to wait for)
  Report();
  Summary();
}

void DrainedHook() {
  pthread_mutex_lock(&g_mutex);
  const bool pending = g_pending;
  pthread_mutex_unlock(&g_mutex);
  if (pending) Report();
}

void PrepareFork() {
  pthread_mutex_lock(&g_report_mutex);
  pthread_mutex_lock(&g_mutex);
}
void ParentAfterFork() {
  pthread_mutex_unlock(&g_mutex);
  pthread_mutex_unlock(&g_report_mutex);
}
// A fork child starts its own account: what the parent sampled and found is the parent's to report (its blocks
// stay watched in the child, and are reported by the child if the child loses them). A child that samples nothing
// (one that execs, or exits soon) prints nothing at exit.
void ChildAfterFork() {
  pthread_mutex_init(&g_mutex, nullptr);
  pthread_mutex_init(&g_report_mutex, nullptr);
  for (uint32_t id = 0; id < g_nsites; ++id) {
    Site &site = g_sites[id];
    site.leaked = site.leaked_bytes = site.pending = site.pending_bytes = 0;
    site.estimated_bytes = 0;
  }
  g_pending = false;
  g_freed_after_report = 0;
  g_samples.store(0, std::memory_order_relaxed);
}

// This library's executable segments: return addresses there are malloc's own frames, not the site.
int FindSelf(dl_phdr_info *info, size_t, void *) {
  const auto self = reinterpret_cast<uintptr_t>(&FindSelf);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (self >= lo && self < lo + ph.p_memsz) {
      g_self_lo = lo;
      g_self_hi = lo + ph.p_memsz;
      return 1;
    }
  }
  return 0;
}

}  // namespace

void Start(int64_t sample_bytes) {
  g_rate = sample_bytes < 1 ? 1 : sample_bytes;
  // Mapped, not calloc'd: the pages are touched as sites are added (a calloc of 2 MiB cost every process ~500 page
  // faults at start-up). Writable and private, so the collector scans them, as it must: they hold no pointer into
  // the heap, only return addresses.
  g_sites = static_cast<Site *>(os::MapSparse(kMaxSites * sizeof(Site)));
  g_index = static_cast<uint32_t *>(os::MapSparse(kIndexSlots * sizeof(uint32_t)));
  g_symbolizer = new (std::nothrow) Symbolizer;
  if (g_sites == nullptr || g_index == nullptr || g_symbolizer == nullptr) {
    Fatal("libpacegc-malloc: PACEGC_MALLOC=find-leak: no memory for the table of allocation sites");
  }
  dl_iterate_phdr(FindSelf, nullptr);
  void *probe[2];
  t_busy = true;
  backtrace(probe, 2);  // the unwinder's first use loads libgcc_s (dlopen, which allocates): now, not in a sample
  t_busy = false;
  g_next_check.store(std::max(kMinCheckBytes, meta::ManualBytes()), std::memory_order_relaxed);
  SetQueueDrainedHook(&DrainedHook);
  pthread_atfork(PrepareFork, ParentAfterFork, ChildAfterFork);
  if (atexit(AtExit) != 0) Message("libpacegc-malloc: find-leak cannot register its exit report; none at exit");
}

bool SampleSlow(size_t n) {
  if (g_rate <= 1) {
    t_countdown = 0;  // every allocation
  } else {
    if (!t_drawn) {
      // The thread's first call: the countdown held no distance yet. Draw one, and sample only if this allocation
      // reaches it (sampling every thread's first allocation would weigh a 24-byte block as 512 KiB).
      t_drawn = true;
      t_countdown = Draw() - static_cast<int64_t>(n);
      if (t_countdown > 0) return false;
    }
    if (t_countdown < -64 * g_rate) t_countdown = 0;  // a huge block: one sample, and a fresh distance
    while (t_countdown <= 0) t_countdown += Draw();
  }
  return g_rate != 0 && !t_busy && t_current != nullptr && !HeapLockHeldHere() && !InitialisingOnThisThread();
}

void *SampledBlock(size_t n, size_t size) {
  if (size == 0 || n >= (uintptr_t{1} << kSizeBits)) return nullptr;
  t_busy = true;
  void *raw[kMaxFrames + 8];
  const int got = backtrace(raw, kMaxFrames + 8);
  int first = 0;
  while (first < got && reinterpret_cast<uintptr_t>(raw[first]) >= g_self_lo &&
         reinterpret_cast<uintptr_t>(raw[first]) < g_self_hi) {
    ++first;
  }
  uintptr_t pcs[kMaxFrames];
  int depth = 0;
  for (int i = first; i < got && depth < kMaxFrames; ++i) pcs[depth++] = reinterpret_cast<uintptr_t>(raw[i]);

  void *p = pgc_malloc(size);
  if (p == nullptr) {
    t_busy = false;
    return nullptr;
  }
  pthread_mutex_lock(&g_mutex);
  const uint32_t id = InternLocked(pcs, depth);
  pthread_mutex_unlock(&g_mutex);
  const uintptr_t data = (static_cast<uintptr_t>(id) << kSizeBits) | n;
  pgc_register_finalizer(p, &Found, reinterpret_cast<void *>(data));
  t_busy = false;

  g_samples.fetch_add(1, std::memory_order_relaxed);
  const uint64_t rate = static_cast<uint64_t>(g_rate);
  const uint64_t allocated = g_estimated_alloc.fetch_add(rate, std::memory_order_relaxed) + rate;
  uint64_t next = g_next_check.load(std::memory_order_relaxed);
  if (allocated >= next) {
    const uint64_t now = os::MonotonicNs();
    const uint64_t step = std::max(kMinCheckBytes, meta::ManualBytes());  // mimalloc's committed bytes
    if (now >= g_next_check_ns.load(std::memory_order_relaxed) &&
        g_next_check.compare_exchange_strong(next, allocated + step, std::memory_order_relaxed)) {
      g_next_check_ns.store(now + kMinCheckIntervalNs, std::memory_order_relaxed);
      pacing::RequestCollection();
    }
  }
  return p;
}

bool IsSampled(void *p) {
  LockHeap();
  const bool watched = FinalizerOf(reinterpret_cast<uintptr_t>(p)) == &Found;
  UnlockHeap();
  if (watched) return true;
  if (g_kept_count.load(std::memory_order_relaxed) == 0) return false;
  pthread_mutex_lock(&g_mutex);
  const bool reported = FindKeptLocked(reinterpret_cast<uintptr_t>(p)) != nullptr;
  pthread_mutex_unlock(&g_mutex);
  return reported;
}

void Freed(void *p) {
  if (g_kept_count.load(std::memory_order_relaxed) == 0) return;
  pthread_mutex_lock(&g_mutex);
  if (uintptr_t *slot = FindKeptLocked(reinterpret_cast<uintptr_t>(p)); slot != nullptr) {
    *slot = 1;  // deleted
    g_kept_count.fetch_sub(1, std::memory_order_relaxed);
    ++g_freed_after_report;
  }
  pthread_mutex_unlock(&g_mutex);
}

}  // namespace pacegc::internal::drop_in::leak
