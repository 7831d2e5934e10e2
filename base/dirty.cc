// base/dirty.cc — see dirty.h. Like os.cc, a platform file: it makes the userfaultfd system call and the
// userfaultfd and PAGEMAP_SCAN ioctls; memory and /proc come through os.h.
//
// Debian 12's kernel headers predate PAGEMAP_SCAN, UFFD_FEATURE_WP_ASYNC and UFFD_FEATURE_WP_UNPOPULATED, so the
// few definitions needed are declared below from the Linux uapi (include/uapi/linux/fs.h, userfaultfd.h; the
// numbers are ABI and cannot change). Detection checks at run time what the kernel actually supports.
#include "base/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/check.h"
#include "base/os.h"

namespace pacegc::internal::dirty {
namespace {

// ---- uapi declarations missing from older headers (Linux 6.7) --------------------------------------------------
constexpr uint64_t kFeatureWpUnpopulated = 1ull << 13;  // UFFD_FEATURE_WP_UNPOPULATED
constexpr uint64_t kFeatureWpAsync = 1ull << 15;        // UFFD_FEATURE_WP_ASYNC
constexpr int kUserModeOnly = 1;                        // UFFD_USER_MODE_ONLY (Linux 5.11)

// PAGEMAP_SCAN page categories (a bit set when the page has the property).
constexpr uint64_t kPageIsWritten = 1ull << 1;  // PAGE_IS_WRITTEN: written since write-protected
// PAGEMAP_SCAN flags.
constexpr uint64_t kScanWpMatching = 1ull << 0;    // PM_SCAN_WP_MATCHING: write-protect the pages reported
constexpr uint64_t kScanCheckWpAsync = 1ull << 1;  // PM_SCAN_CHECK_WPASYNC: fail on a page without async WP

// struct page_region: one run [start, end) of pages with the same categories.
struct PageRegion {
  uint64_t start, end, categories;
};
// struct pm_scan_arg: every field 64 bits; the kernel checks `size`.
struct PmScanArg {
  uint64_t size, flags, start, end;
  uint64_t walk_end;  // out: where the walk stopped; == end when the whole range was walked
  uint64_t vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
static_assert(sizeof(PmScanArg) == 96, "struct pm_scan_arg is twelve 64-bit fields");
const unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);  // PAGEMAP_SCAN

// ---- state --------------------------------------------------------------------------------------------------
// Kept as page numbers, not addresses: the table lives in the library's data segment, which a collector using
// this tracker scans as a root, and a registered heap range's bounds must not look like pointers into the heap
// (an arena's base is the address of its first object: it was retained forever).
class Range {
 public:
  Range() = default;
  Range(uintptr_t lo, uintptr_t hi) : lo_page_(lo / kPageUnit), hi_page_(hi / kPageUnit) {}
  uintptr_t lo() const { return lo_page_ * kPageUnit; }
  uintptr_t hi() const { return hi_page_ * kPageUnit; }

 private:
  static constexpr uintptr_t kPageUnit = 4096;  // every page size Linux has is a multiple (CheckRange: page-aligned)
  uintptr_t lo_page_ = 0, hi_page_ = 0;
};

std::mutex g_lock;                      // the tracker lock (a leaf): detection and the range table
std::atomic<bool> g_detected{false};    // g_status is final (release after writing it)
Status g_status{false, false, ""};      // written once, under g_lock, before g_detected
char g_reason[200];                     // g_status.reason's text when it is not a literal
pid_t g_owner_pid = 0;                  // the process that detected; the descriptors are its own
int g_uffd = -1;                        // the userfaultfd (O_CLOEXEC); constant once detected
int g_pagemap_fd = -1;                  // /proc/<owner>/pagemap; constant once detected
std::atomic<bool> g_child_closed{false};  // a fork child closed the inherited descriptors
Range g_ranges[kMaxRanges];             // registered ranges, unordered (g_lock)
int g_nranges = 0;                      // entries used in g_ranges (g_lock)
std::atomic<int> g_scan_regions{kScanRegions};  // output buffer capacity used by CollectDirty (tests shrink it)
std::atomic<int> g_fail_collects{0};            // CollectDirty calls still to fail (FailNextCollectsForTesting)

const Status kForkChild{false, false,
                        "fork child: the userfaultfd registrations and the pagemap descriptor are the parent's"};

const char *ErrnoName(int err) {
  const char *name = strerrorname_np(err);
  return name != nullptr ? name : "unknown errno";
}

// Sets g_status to unavailable with a formatted reason.
void Unavailable(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void Unavailable(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_reason, sizeof g_reason, fmt, ap);
  va_end(ap);
  g_status = Status{false, false, g_reason};
}

// ioctl, retried on EINTR and (bounded) EAGAIN. The result, or -1 with errno set.
long Ioctl(int fd, unsigned long request, void *arg) {
  for (int tries = 0;; ++tries) {
    long r = ioctl(fd, request, arg);
    if (r >= 0) return r;
    if (errno == EINTR || (errno == EAGAIN && tries < 100)) continue;
    return -1;
  }
}

int RegisterWith(int uffd, uintptr_t lo, uintptr_t hi) {
  uffdio_register reg{};
  reg.range.start = lo;
  reg.range.len = hi - lo;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  return Ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? errno : 0;
}

int UnregisterWith(int uffd, uintptr_t lo, uintptr_t hi) {
  uffdio_range range{lo, hi - lo};
  return Ioctl(uffd, UFFDIO_UNREGISTER, &range) < 0 ? errno : 0;
}

// The end of the protection chunk that starts at `start` (dirty.h, kProtectChunkBytes): the next 1 MiB boundary,
// or hi. Measured on this project's 2-core VMs (docs/BENCHMARKS.md, "Write-protection in chunks"): while one thread
// write-protected a 1 GiB heap in runs of hundreds of MiB, another thread of the process that woke from a 1 ms
// sleep was late by 2-4 ms (10x more often during those ioctls than otherwise), which made the wake-up lateness p99
// 2.0-3.0 ms; in 1 MiB chunks the p99 was 0.35-0.42 ms (kdamond off), and the protection walk took ~30% more clock
// time (108-124 -> ~150 ms per 1.1 GiB). The cost is in the kernel, or the hypervisor under it, handling one long
// page-table change; the chunk bounds it. Boundaries are absolute, so a chunk is half a page-table page exactly.
uintptr_t ChunkEnd(uintptr_t start, uintptr_t hi) {
  const uintptr_t boundary = (start | (kProtectChunkBytes - 1)) + 1;
  return boundary < hi && boundary > start ? boundary : hi;
}

// protect: set the write-protection (mode WP), else clear it (mode 0). Stops at the first refusal.
int ProtectWith(int uffd, uintptr_t lo, uintptr_t hi, bool protect = true) {
  for (uintptr_t start = lo; start < hi;) {
    const uintptr_t end = ChunkEnd(start, hi);
    uffdio_writeprotect wp{};
    wp.range.start = start;
    wp.range.len = end - start;
    wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
    if (Ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0) return errno;
    start = end;
  }
  return 0;
}

// The scan itself: see CollectDirty. Runs are merged across calls, so each visited run is maximal.
int ScanWith(int pagemap_fd, uintptr_t lo, uintptr_t hi, int capacity, RunVisitor visit, void *arg,
             CollectStats *stats, bool reprotect) {
  PageRegion regions[kScanRegions];
  uintptr_t run_lo = 0, run_hi = 0;  // pending run, not yet visited (empty when equal)
  uintptr_t cursor = lo;
  while (cursor < hi) {
    PmScanArg scan{};
    scan.size = sizeof scan;
    scan.flags = reprotect ? kScanWpMatching | kScanCheckWpAsync : 0;
    scan.start = cursor;
    // Re-protecting changes page-table entries as UFFDIO_WRITEPROTECT does: in chunks (kProtectChunkBytes).
    scan.end = reprotect ? ChunkEnd(cursor, hi) : hi;
    scan.vec = reinterpret_cast<uintptr_t>(regions);
    scan.vec_len = static_cast<uint64_t>(capacity);
    scan.category_mask = kPageIsWritten;  // only pages whose WRITTEN bit is set
    scan.return_mask = kPageIsWritten;
    long n = Ioctl(pagemap_fd, kPagemapScan, &scan);
    if (stats != nullptr) ++stats->scans;
    // An answer outside the kernel's documented contract is reported as EIO, like a refusal (it is the OS's
    // state, not pacegc's, that would be wrong); either way the caller then treats the whole range as dirty.
    int err = n < 0 ? errno : n > capacity ? EIO : 0;
    uintptr_t prev_end = run_hi;  // regions come in address order, after what was already reported
    for (long i = 0; err == 0 && i < n; ++i) {
      const PageRegion &r = regions[i];
      if (!(r.start >= cursor && r.start >= prev_end && r.start < r.end && r.end <= scan.end)) err = EIO;
      prev_end = r.end;
    }
    for (long i = 0; err == 0 && i < n; ++i) {
      uintptr_t s = regions[i].start, e = regions[i].end;
      if (stats != nullptr) stats->pages += (e - s) / os::OsPageSize();
      if (s == run_hi && run_hi > run_lo) {
        run_hi = e;
        continue;
      }
      if (run_hi > run_lo) {
        visit(run_lo, run_hi, arg);
        if (stats != nullptr) ++stats->runs;
      }
      run_lo = s;
      run_hi = e;
    }
    if (err == 0 && !(scan.walk_end > cursor && scan.walk_end <= scan.end)) err = EIO;  // no progress, or too far
    if (err != 0) {
      if (run_hi > run_lo) {  // those pages were re-protected: report them
        visit(run_lo, run_hi, arg);
        if (stats != nullptr) ++stats->runs;
      }
      return err;
    }
    // The kernel walks to `end` (the chunk's) unless the buffer filled; then it stops at the first page it could
    // not report (not re-protected either) and says so in walk_end. Resume there.
    cursor = scan.walk_end;
  }
  if (run_hi > run_lo) {
    visit(run_lo, run_hi, arg);
    if (stats != nullptr) ++stats->runs;
  }
  return 0;
}

struct ProbeResult {
  uintptr_t base;
  int runs;
  uintptr_t run_lo[4], run_hi[4];
};

void ProbeVisit(uintptr_t lo, uintptr_t hi, void *arg) {
  auto *r = static_cast<ProbeResult *>(arg);
  if (r->runs < 4) {
    r->run_lo[r->runs] = lo - r->base;
    r->run_hi[r->runs] = hi - r->base;
  }
  ++r->runs;
}

// Proves the mechanism on four pages: 0 and 1 populated before protection, 2 and 3 not; then 0 and 2 written.
// The scan must report exactly pages 0 and 2, a second scan nothing. Sets g_status when it fails.
bool Probe() {
  const size_t page = os::OsPageSize();
  auto *mem = static_cast<volatile char *>(os::MapSparse(4 * page));
  if (mem == nullptr) {
    Unavailable("cannot map a probe page (%s)", ErrnoName(errno));
    return false;
  }
  const uintptr_t lo = reinterpret_cast<uintptr_t>(mem), hi = lo + 4 * page;
  bool ok = false;
  mem[0] = 1;
  mem[page] = 1;
  int err = RegisterWith(g_uffd, lo, hi);
  if (err != 0) {
    Unavailable("UFFDIO_REGISTER(MODE_WP) on anonymous memory: %s", ErrnoName(err));
  } else {
    if ((err = ProtectWith(g_uffd, lo, hi)) != 0) {
      Unavailable("UFFDIO_WRITEPROTECT: %s", ErrnoName(err));
    } else {
      mem[0] = 2;
      mem[2 * page] = 2;
      ProbeResult first{lo, 0, {}, {}}, second{lo, 0, {}, {}};
      err = ScanWith(g_pagemap_fd, lo, hi, 4, ProbeVisit, &first, nullptr, true);
      if (err == 0) err = ScanWith(g_pagemap_fd, lo, hi, 4, ProbeVisit, &second, nullptr, true);
      if (err == ENOTTY || err == EINVAL) {
        Unavailable("kernel lacks the PAGEMAP_SCAN ioctl on /proc/self/pagemap (Linux >= 6.7): %s", ErrnoName(err));
      } else if (err != 0) {
        Unavailable("PAGEMAP_SCAN on the probe mapping: %s", ErrnoName(err));
      } else if (first.runs != 2 || first.run_lo[0] != 0 || first.run_hi[0] != page ||
                 first.run_lo[1] != 2 * page || first.run_hi[1] != 3 * page || second.runs != 0) {
        Unavailable("PAGEMAP_SCAN reported %d run(s) starting at page %zu, then %d, on the probe (expected pages "
                    "0 and 2, then none)",
                    first.runs, first.runs > 0 ? static_cast<size_t>(first.run_lo[0] / page) : 0, second.runs);
      } else {
        ok = true;
      }
    }
    UnregisterWith(g_uffd, lo, hi);
  }
  os::Unreserve(const_cast<char *>(mem), 4 * page);
  return ok;
}

// Detection proper. g_lock held, g_detected false.
void DetectLocked() {
  g_owner_pid = getpid();
  // 1. The userfaultfd. UFFD_USER_MODE_ONLY: faults from kernel mode are not ours to handle (in async WP mode
  //    none is delivered at all), and it is what lets a process without CAP_SYS_PTRACE open one when
  //    vm.unprivileged_userfaultfd is 0.
  const int flags = O_CLOEXEC | O_NONBLOCK | kUserModeOnly;
  int query = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (query < 0) {
    int err = errno;
    const char *why = err == ENOSYS   ? "kernel without CONFIG_USERFAULTFD, or a seccomp filter"
                      : err == EPERM  ? "refused: seccomp, or an LSM policy"
                      : err == EINVAL ? "kernel older than 5.11 (no UFFD_USER_MODE_ONLY)"
                                      : "refused";
    Unavailable("userfaultfd(UFFD_USER_MODE_ONLY): %s (%s)", ErrnoName(err), why);
    return;
  }
  // 2. Which features the kernel has: UFFDIO_API with no feature asked returns them all. UFFDIO_API succeeds once
  //    per descriptor, so the features are then enabled on a second one.
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = 0;
  if (Ioctl(query, UFFDIO_API, &api) < 0) {
    int err = errno;
    close(query);
    Unavailable("UFFDIO_API: %s", ErrnoName(err));
    return;
  }
  close(query);
  const uint64_t features = api.features;
  if ((features & kFeatureWpAsync) == 0) {
    Unavailable("kernel lacks UFFD_FEATURE_WP_ASYNC (Linux >= 6.7; features 0x%llx)",
                static_cast<unsigned long long>(features));
    return;
  }
  g_uffd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (g_uffd < 0) {
    Unavailable("userfaultfd (second descriptor): %s", ErrnoName(errno));
    return;
  }
  api = uffdio_api{};
  api.api = UFFD_API;
  api.features = kFeatureWpAsync | (features & kFeatureWpUnpopulated);
  if (Ioctl(g_uffd, UFFDIO_API, &api) < 0) {
    Unavailable("UFFDIO_API(WP_ASYNC%s): %s", (features & kFeatureWpUnpopulated) ? " | WP_UNPOPULATED" : "",
                ErrnoName(errno));
    close(g_uffd);
    g_uffd = -1;
    return;
  }
  // 3. /proc/self/pagemap, for PAGEMAP_SCAN.
  g_pagemap_fd = os::OpenProcSelf("pagemap");
  if (g_pagemap_fd < 0) {
    Unavailable("cannot open /proc/self/pagemap: %s", ErrnoName(errno));
    close(g_uffd);
    g_uffd = -1;
    return;
  }
  // 4. The probe: the kernel must report exactly what was written.
  if (!Probe()) {
    close(g_uffd);
    close(g_pagemap_fd);
    g_uffd = g_pagemap_fd = -1;
    return;
  }
  g_status = Status{true, (features & kFeatureWpUnpopulated) != 0,
                    (features & kFeatureWpUnpopulated) != 0
                        ? "userfaultfd WP-async (+ WP_UNPOPULATED) + PAGEMAP_SCAN"
                        : "userfaultfd WP-async + PAGEMAP_SCAN (no WP_UNPOPULATED: pages first read after "
                          "protection are reported once)"};
}

// In a fork child: closes the inherited descriptors, once. Takes no lock: another thread of the parent may have
// held g_lock at the fork, and the child's copy of it would never be released. The child never reads the range
// table (every entry point returns ENOTSUP first).
void BecomeChild() {
  if (g_child_closed.exchange(true)) return;
  if (g_uffd >= 0) close(g_uffd);
  if (g_pagemap_fd >= 0) close(g_pagemap_fd);
}

bool InChild() { return g_detected.load(std::memory_order_acquire) && getpid() != g_owner_pid; }

// Whether the tracker can be used by this process. Detects on first use.
bool Usable() {
  if (!Detect().available) return false;
  return !InChild();  // (Detect() already closed the descriptors in a child)
}

void CheckRange(uintptr_t lo, uintptr_t hi) {
  const uintptr_t mask = os::OsPageSize() - 1;
  PACEGC_CHECK(lo < hi && (lo & mask) == 0 && (hi & mask) == 0);
}

// Whether [lo, hi) lies inside one registered range. g_lock held.
bool InsideRegisteredLocked(uintptr_t lo, uintptr_t hi) {
  for (int i = 0; i < g_nranges; ++i) {
    if (g_ranges[i].lo() <= lo && hi <= g_ranges[i].hi()) return true;
  }
  return false;
}

}  // namespace

const Status &Detect() {
  if (g_detected.load(std::memory_order_acquire)) {
    if (getpid() == g_owner_pid) return g_status;
    BecomeChild();
    return kForkChild;
  }
  std::lock_guard<std::mutex> guard(g_lock);
  if (!g_detected.load(std::memory_order_relaxed)) {
    DetectLocked();
    PACEGC_CHECK(g_status.reason != nullptr && g_status.reason[0] != '\0');
    g_detected.store(true, std::memory_order_release);
  }
  if (getpid() != g_owner_pid) {  // detected by a parent in another thread meanwhile: unlikely, but possible
    BecomeChild();
    return kForkChild;
  }
  return g_status;
}

bool Available() { return Detect().available; }

int Register(uintptr_t lo, uintptr_t hi) {
  CheckRange(lo, hi);
  if (!Usable()) return ENOTSUP;
  std::lock_guard<std::mutex> guard(g_lock);
  for (int i = 0; i < g_nranges; ++i) {
    PACEGC_CHECK(hi <= g_ranges[i].lo() || g_ranges[i].hi() <= lo);  // no overlap with a registered range
  }
  if (g_nranges == kMaxRanges) return ENOSPC;
  int err = RegisterWith(g_uffd, lo, hi);
  if (err != 0) return err;
  g_ranges[g_nranges++] = Range{lo, hi};
  return 0;
}

int Unregister(uintptr_t lo, uintptr_t hi) {
  CheckRange(lo, hi);
  if (!Usable()) return ENOTSUP;
  std::lock_guard<std::mutex> guard(g_lock);
  int i = 0;
  while (i < g_nranges && !(g_ranges[i].lo() == lo && g_ranges[i].hi() == hi)) ++i;
  PACEGC_CHECK(i < g_nranges);  // only a range given to Register
  int err = UnregisterWith(g_uffd, lo, hi);
  // Forget the range even if the kernel refused (ENOMEM splitting a mapping): it cannot be used reliably anyway,
  // and a second Unregister of it would otherwise be a check failure.
  g_ranges[i] = g_ranges[--g_nranges];
  return err;
}

int RegisteredRanges() {
  if (InChild()) return 0;
  std::lock_guard<std::mutex> guard(g_lock);
  return g_nranges;
}

int Protect(uintptr_t lo, uintptr_t hi) {
  CheckRange(lo, hi);
  if (!Usable()) return ENOTSUP;
  {
    std::lock_guard<std::mutex> guard(g_lock);
    PACEGC_CHECK(InsideRegisteredLocked(lo, hi));
  }
  return ProtectWith(g_uffd, lo, hi);
}

int Unprotect(uintptr_t lo, uintptr_t hi) {
  CheckRange(lo, hi);
  if (!Usable()) return ENOTSUP;
  {
    std::lock_guard<std::mutex> guard(g_lock);
    PACEGC_CHECK(InsideRegisteredLocked(lo, hi));
  }
  return ProtectWith(g_uffd, lo, hi, /*protect=*/false);
}

int ProtectAll() {
  if (!Usable()) return ENOTSUP;
  std::lock_guard<std::mutex> guard(g_lock);  // held: the table must not change under the loop
  int first_err = 0;
  for (int i = 0; i < g_nranges; ++i) {
    int err = ProtectWith(g_uffd, g_ranges[i].lo(), g_ranges[i].hi());
    if (err != 0 && first_err == 0) first_err = err;
  }
  return first_err;
}

namespace {

// CollectDirty and ReportDirty: checks the range, then one scan (re-protecting what it reports or not).
int Scan(uintptr_t lo, uintptr_t hi, RunVisitor visit, void *arg, CollectStats *stats, bool reprotect) {
  CheckRange(lo, hi);
  PACEGC_CHECK(visit != nullptr);
  if (!Usable()) return ENOTSUP;
  {
    std::lock_guard<std::mutex> guard(g_lock);
    PACEGC_CHECK(InsideRegisteredLocked(lo, hi));
  }
  int capacity = g_scan_regions.load(std::memory_order_relaxed);
  return ScanWith(g_pagemap_fd, lo, hi, capacity, visit, arg, stats, reprotect);
}

}  // namespace

int CollectDirty(uintptr_t lo, uintptr_t hi, RunVisitor visit, void *arg, CollectStats *stats) {
  if (g_fail_collects.load(std::memory_order_relaxed) > 0 && g_fail_collects.fetch_sub(1) > 0) return ENOMEM;
  return Scan(lo, hi, visit, arg, stats, /*reprotect=*/true);
}

int ReportDirty(uintptr_t lo, uintptr_t hi, RunVisitor visit, void *arg, CollectStats *stats) {
  return Scan(lo, hi, visit, arg, stats, /*reprotect=*/false);
}

void FailNextCollectsForTesting(int count) {
  PACEGC_CHECK(count >= 0);
  g_fail_collects.store(count, std::memory_order_relaxed);
}

void SetScanRegionsForTesting(int regions) {
  PACEGC_CHECK(regions >= 0 && regions <= kScanRegions);
  g_scan_regions.store(regions == 0 ? kScanRegions : regions, std::memory_order_relaxed);
}

}  // namespace pacegc::internal::dirty
