// base/dirty.h — which heap pages did the program write since I last looked? The dirty-page tracker under
// mostly-concurrent marking (gc/concurrent.h; docs/ARCHITECTURE.md, "Dirty-page tracking").
//
// Mechanism: userfaultfd write-protection in asynchronous mode (UFFD_FEATURE_WP_ASYNC, Linux >= 6.7) read back with
// the PAGEMAP_SCAN ioctl on /proc/self/pagemap (Linux >= 6.7). One userfaultfd per process, opened with
// UFFD_USER_MODE_ONLY so that a process without CAP_SYS_PTRACE may open it when vm.unprivileged_userfaultfd is 0.
//
//   Register(lo, hi)       UFFDIO_REGISTER in MODE_WP: the range may now carry the per-page uffd-wp bit.
//   Protect / ProtectAll   UFFDIO_WRITEPROTECT: set the bit on every page of the range(s). With WP_UNPOPULATED
//                          the kernel also marks page-table entries never populated (a "pte marker").
//   (the program runs)     The first write to a protected page faults once; in async mode the kernel resolves
//                          the fault itself (clears the bit, no message, no handler thread) and the write goes on.
//   CollectDirty(lo, hi)   PAGEMAP_SCAN over the range with category PAGE_IS_WRITTEN (bit clear) and
//                          PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC: the kernel reports the written pages and
//                          sets the bit on exactly those again, under the page-table lock, in the same walk. A
//                          write racing with the scan lands before the page's entry is read (reported now) or after
//                          it is re-protected (reported next time): none is lost. The TLB is flushed before the
//                          ioctl returns, so no thread keeps writing through a stale writable entry.
//   Unregister(lo, hi)     UFFDIO_UNREGISTER: the bits are dropped, writes no longer fault.
//
// What counts as written. The kernel calls a page "not written" only while it holds a mark for it: the uffd-wp bit
// of a present (or swapped) page, or a "pte marker" in an empty entry (installed by Protect and by the re-protection
// of a scan). Everything else is reported, so the answer is conservative — a page can be reported without a store,
// never the reverse (measured on Linux 6.18 by tests/unit/dirty_test.cc):
//   - a page written after the last Protect / CollectDirty that covered it: reported, once the store is done. A
//     write racing with its first fault can be reported twice (the scan met the fault half done); never zero times;
//   - a page never protected since it was registered — empty, PROT_NONE reservation, or committed later with
//     os::Commit (mprotect keeps marks, it makes none): reported, until a scan has re-protected it. So protect what
//     you register (or ignore the first report of a freshly committed range);
//   - a protected page first touched by a read: not reported (the zero page inherits the mark, WP_UNPOPULATED; on
//     6.18 the async mode installs markers even without that feature);
//   - a page dropped with MADV_DONTNEED (the scavenger's os::Release) after protection: the kernel empties the entry
//     and its mark with it (anonymous memory keeps no marker), so the page is reported once, written or not. Its
//     contents did change, to zeros, and dropping can only remove pointers, never hide one;
//   - transparent huge pages: a written THP is reported whole (2 MiB), and a protection change splits it (changes
//     are made a MiB at a time). Cost, not correctness. pacegc does not ask for THP (no MADV_HUGEPAGE; THP is
//     "madvise" here), and with MADV_HUGEPAGE a protected range still got 4 KiB pages on first touch (its page
//     tables hold the markers).
// Writes by the kernel on the program's behalf (read(2) into the heap, O_DIRECT, futexes) take the same fault path,
// are resolved in async mode even with UFFD_USER_MODE_ONLY (that flag only matters for faults that would be
// delivered to a handler, and none are), and are reported like user writes.
//
// Threads: the write-protection is per address space: writes from every thread are tracked; no thread needs to be
// registered or stopped. A page written by thread A while thread B collects is reported by this collect or the next.
//
// fork: the child does not get a usable tracker. The kernel drops the userfaultfd context from the child's mappings
// (no UFFD_FEATURE_EVENT_FORK) and clears the uffd-wp bits it copies, and the inherited /proc/self/pagemap
// descriptor names the PARENT's address space (a PAGEMAP_SCAN with WP_MATCHING from the child would re-protect the
// parent's pages and lose its dirty state). So every entry point compares getpid() with the pid that detected; in a
// child it closes the inherited descriptors (once, taking no lock: a parent thread may have held it at the fork),
// does nothing else, and Detect() reports unavailable ("fork child"): the child's collector stays stop-the-world.
// Detection is not repeated in the child.
//
// Cost (docs/BENCHMARKS.md, "Dirty-page tracking for concurrent marking"): protect and scan are a page-table walk,
// tens of ms per GiB of 4 KiB pages on these VMs, and proportional to the range, not to what was written; the
// first write to each protected page is one minor fault resolved in the kernel (several µs), later writes are free.
// Protecting (or scanning with re-protection) a never-touched range installs markers and so allocates its page
// tables (2 MiB per GiB of 4 KiB pages): prefer scanning the committed part of an arena to the whole reservation.
// What changes protection (Protect, Unprotect, the re-protecting scan) does so one aligned MiB per system call
// (kProtectChunkBytes): one long change delayed the wake-ups of the program's other threads by milliseconds here
// (dirty.cc, ChunkEnd). A range of N MiB therefore takes at least N calls.
//
// Fallback: where detection fails the collector stays stop-the-world; Detect() says why in one line. An mprotect +
// SIGSEGV tracker (bdwgc's MPROTECT_VDB) would work everywhere but is not built.
//
// Not handled: file-backed or shared mappings (the heap is private anonymous); hugetlbfs; registering a range twice
// or overlapping ranges (a PACEGC_CHECK); more than kMaxRanges registered ranges (an error, ENOSPC).
//
// Errors: an OS refusal is returned as an errno value (0 = success), never an abort; calling anything but Detect()
// while unavailable returns ENOTSUP; malformed use (unaligned or empty ranges, unregistering what was not
// registered, collecting outside a registered range) is a PACEGC_CHECK. Nothing here allocates through malloc.
//
// Locking: one internal mutex (the tracker lock, a leaf) guards the range table; Detect() is serialised by it.
// CollectDirty and Protect do not hold it while the kernel walks (the descriptors never change after detection):
// the caller keeps the range registered for the duration of the call. In the intended use the heap lock is held
// around Register/Unregister, so a thread stopped by the collector never holds the tracker lock.
#ifndef PACEGC_BASE_DIRTY_H_
#define PACEGC_BASE_DIRTY_H_

#include <cstddef>
#include <cstdint>

namespace pacegc::internal::dirty {

// The outcome of detection, computed once per process (the first call) and then returned as is.
struct Status {
  bool available;
  bool wp_unpopulated;  // the kernel marks never-populated pages too (UFFD_FEATURE_WP_UNPOPULATED)
  // One line, never empty: "userfaultfd WP-async + PAGEMAP_SCAN" when available, else the missing piece and errno
  // ("userfaultfd(UFFD_USER_MODE_ONLY): EPERM ...", "kernel lacks UFFD_FEATURE_WP_ASYNC (Linux >= 6.7)", ...).
  const char *reason;
};

// Opens the userfaultfd and /proc/self/pagemap and proves the mechanism on a probe mapping (protect, write one
// populated and one never-populated page, scan: exactly those two are written, a second scan finds none).
// Cheap after the first call. Thread-safe. In a fork child: unavailable.
const Status &Detect();
bool Available();  // Detect().available

// Registers [lo, hi) (page-aligned, non-empty, private anonymous memory of any protection) for write tracking.
// Returns 0, ENOTSUP (unavailable), ENOSPC (kMaxRanges reached), or the kernel's errno (EINVAL: not a mapping
// userfaultfd accepts, ENOMEM). Registering does not protect: call Protect.
constexpr int kMaxRanges = 1024;
int Register(uintptr_t lo, uintptr_t hi);
// Unregisters exactly a range given to Register (a PACEGC_CHECK otherwise). 0 or errno.
int Unregister(uintptr_t lo, uintptr_t hi);
// Number of registered ranges.
int RegisteredRanges();

// Begins tracking: write-protects [lo, hi) (inside one registered range) / every registered range. Pages written
// from now on are reported by the next CollectDirty. 0 or errno.
int Protect(uintptr_t lo, uintptr_t hi);
int ProtectAll();
// Ends tracking of [lo, hi) (inside one registered range): clears the pages' write-protection, so writes no longer
// fault; the pages are reported as written by the next CollectDirty (they carry no mark). 0 or errno.
int Unprotect(uintptr_t lo, uintptr_t hi);

// Reports, through visit(run_lo, run_hi, arg), each maximal run of pages of [lo, hi) (inside one registered range)
// written since they were last protected or collected, in address order, and write-protects those pages again in
// the same kernel walk. Called from any thread, while other threads write. 0 or errno (then some runs may have been
// visited and re-protected, the rest not: the caller treats the whole range as dirty).
struct CollectStats {
  uint64_t pages = 0;   // pages reported
  uint64_t runs = 0;    // runs visited
  uint64_t scans = 0;   // PAGEMAP_SCAN calls: one per aligned MiB (kProtectChunkBytes), more where the buffer filled
};
using RunVisitor = void (*)(uintptr_t run_lo, uintptr_t run_hi, void *arg);
int CollectDirty(uintptr_t lo, uintptr_t hi, RunVisitor visit, void *arg, CollectStats *stats = nullptr);

// The same report without protecting anything again: a read of the page tables, no change and no TLB flush (the
// last look of a tracking period, before Unprotect). Pages never protected are reported as written, as above.
int ReportDirty(uintptr_t lo, uintptr_t hi, RunVisitor visit, void *arg, CollectStats *stats = nullptr);

// What one system call that changes protection covers at most: an aligned MiB (256 page-table entries).
constexpr uintptr_t kProtectChunkBytes = uintptr_t{1} << 20;

// Tests only: the number of page runs one PAGEMAP_SCAN may return (default and maximum kScanRegions), so a test
// can make the buffer fill. 0 restores the default.
constexpr int kScanRegions = 512;
void SetScanRegionsForTesting(int regions);
// Tests only: the next `count` CollectDirty calls fail with ENOMEM before any system call, as a kernel refusing the
// protection would (nothing visited, nothing re-protected). 0 cancels pending failures.
void FailNextCollectsForTesting(int count);

}  // namespace pacegc::internal::dirty

#endif  // PACEGC_BASE_DIRTY_H_
