// gc/concurrent.h — mostly-concurrent marking: what the program wrote while the collector marked (issue 12).
//
// The cycle (collector.cc, CollectConcurrent; Boehm, Demers and Shenker's "mostly parallel" collection):
//   1. BeginTracking, world running: a new tracking epoch, then the in-use spans that hold pointers are
//      write-protected (base/dirty.h: userfaultfd WP-async) by a re-protecting scan: pages still protected since an
//      earlier cycle cost a read of their page-table entries ("Protection between cycles"). From here on every page
//      the program writes is reported.
//   2. Start pause: the roots (stacks, registers, data/bss, registered ranges, ready finalizers) are scanned and
//      what they reach is marked and pushed. The world restarts.
//   3. Concurrent marking: the collecting thread drains the mark stack in slices, holding the heap lock for each
//      (the page map and the span structures it reads change only under that lock) and releasing it in between, so
//      other threads allocate, free and refill their caches meanwhile. With a spare core and enough to mark, the
//      library's mark thread marks beside it within each slice (gc/mark.h, "Background sharing").
//   4. Pre-cleaning (RescanWritten, concurrently): pages written since they were protected are reported and
//      protected again, the marked objects on them are scanned again and what they mark drained; then the spans
//      filled during the cycle that no cache owns any more are protected and their marked objects scanned again
//      (PrecleanFilled in concurrent.cc; untouched spans refreshed first, as spans that became in use during the
//      cycle are presumed untouched), so the final pause sees only what is written to them afterwards. Repeated
//      while it finds much (collector.cc; not for a heap that marked less than 64 MiB).
//   5. Final pause: RescanWritten once more, with the roots scanned again and the cached slots kept; the mark stack
//      is drained; finalizers, weak links, verification and the sweep's start run as in a stop-the-world cycle,
//      and the rest of the sweep after the restart (gc/sweep.h), before EndTracking.
//   6. EndTracking, world running: the protection is lifted from what allocators will fill next and from what the
//      program writes; the rest keeps it.
//
// Why the final pause's work is enough (a conservative collector has no write barrier): at the final pause, take
// any object X reachable from a root, by a path of pointers. Every root is scanned again in the pause. Along the
// path, every edge out of an object the pause scans (it is newly marked, or re-scanned) is followed in the pause.
// The other edges leave a marked object that the pause does not scan again: one that was scanned after the tracking
// began and whose memory was not written since its scan (else its page is reported, or its span was filled and is
// re-scanned whole, below). Its contents are what the scan read, so the edge's target was marked then. By induction
// along the path, X is marked. Objects allocated during the cycle are white (not marked): they live only if the
// pause reaches them, so garbage made during the cycle is freed by this cycle's sweep.
//
// Allocation without faults. Slots are handed out of spans a thread cache owns, and zeroing or filling them would
// take one write-protection fault per 4 KiB page (~17 us on these VMs): a span an allocator claims slots in (or a
// large span allocated) has its pages unprotected first unless they are known writable (BeforeFilling: a relaxed
// load and a compare on the fast refill path, then an ioctl per MiB of the span), and its `wp_epoch` records the
// cycle (Heap::FlagWp, which first sets a bit at the span's first page in its arena's `rescan` bits: the final pause
// visits the spans with a bit set, not every span). The final pause re-scans every marked object of such a span
// whole, whatever the tracker says of its pages.
// The order of the flag and the protection does not matter: a span the allocator did not unprotect is protected,
// and its writes are reported; a span it did unprotect is flagged, and re-scanned.
//
// Protection between cycles. Lifting the protection from the whole heap at each cycle's end and setting it again at
// the next start change every page-table entry twice per cycle (~20 and ~17 ms per GiB populated here; on a slower
// VM the two were half of a concurrent cycle's CPU at 256 MiB live), while most of a heap is neither written nor
// refilled between two cycles, and a re-protecting scan of pages still protected only reads their entries (~1.6 ms
// per GiB: bench/dirty_bench.cc, docs/BENCHMARKS.md). So the protection outlives the cycle:
//   - g_protect_gen names the last cycle that protected; Span::writable_gen says in which generation a span's pages
//     were last made writable. BeforeFilling costs a system call only when the two differ.
//   - EndTracking unprotects, one call per run of neighbouring spans, what allocators will fill next: spans with
//     free slots no cache owns, and free runs that hold pages of a span freed while protected (maybe_protected, kept
//     by the page heap across merges and splits). Full spans the program did not write keep their protection.
//   - The program's writes between cycles fault once per page (resolved by the kernel: ~1 us each here, 15 us and
//     more on some VMs), like writes during a cycle; the pages it writes are writable from then on, and re-protected
//     by the next BeginTracking, whose scan changes only those.
//   - That scan, pre-cleaning and the final pause flag the spans they find written (Span::written_gen), and
//     EndTracking leaves such hot spans writable for kHotCycles cycles (concurrent.cc). A span made writable reads
//     as written whether or not the program wrote it, so the start's scan counts only spans that were protected
//     when the last cycle ended; a span still hot after kHotCycles is probed: for one interval only its last OS
//     page stays protected, and the next start's scan counts that page (LiftEnd). A span written all over in every
//     interval then faults once in kHotCycles + 1 intervals instead of once per page in each (a burst of faults
//     stalls the machine's other CPU here: bench/wp_fault_stalls), and a span that cooled down is protected for
//     good after kHotCycles + 1 cycles.
//   - A runway cycle, through which the program writes on, does not protect at its start the large spans the
//     program writes (hot ones, and those its scan finds written, lifted again at once): they are flagged, as
//     filled spans are, and pre-cleaning tracks them (RangeBatch in concurrent.cc). Their writes during the
//     marking then take no fault (bench/wp_fault_stalls: a burst of faults stalls the machine's other CPU).
//   - A cycle's spans it leaves unprotected (owned, sparse, pointer-free, untouched) stay writable for the new
//     generation if they were for the last.
// Writability is a matter of cost only: correctness needs, at the final pause, every tracked span protected since
// BeginTracking, or flagged with the epoch, or protected by pre-cleaning (PrecleanFilled) and its marked objects
// scanned again after that; the flag-first order above (with UnprotectForFilling's retry when a cycle starts
// meanwhile), BeginTracking's scan and PrecleanFilled's class lock ensure it.
//
// Marks on slots that are freed meanwhile: pgc_free may release an object the marker already marked, and a cache
// may claim the slot again. The sweep keeps alloc & mark (a freed slot stays free); a reused slot keeps its mark,
// so the new object lives one cycle longer (floating garbage), and it is re-scanned (its span was filled).
//
// Untouched spans (gc/untouched.h) are refreshed when tracking begins (before the epoch: those found written are
// then protected) and in the final pause (a span found written since is flagged and re-scanned whole). They are
// never protected: protecting an empty page installs a marker that pagemap reports as swapped, which would make
// every untouched span look populated. The marker's decisions between the two refreshes may use a stale flag (an
// object marked without being read); the final refresh corrects them.
//
// Fallback: Init decides once. PACEGC_CONCURRENT=on with no usable tracker (dirty::Detect says why), a heap arena the
// kernel will not register, or a protection the kernel refuses at a cycle's start: collections are stop-the-world,
// with one line saying why under GODEBUG=gctrace=1 (or always, for a failure after start-up).
#ifndef PACEGC_GC_CONCURRENT_H_
#define PACEGC_GC_CONCURRENT_H_

#include <atomic>
#include <cstdint>

#include "base/check.h"
#include "gc/heap.h"

namespace pacegc::internal {
class Marker;
}

namespace pacegc::internal::concurrent {

// At initialisation, before the first arena: PACEGC_CONCURRENT and the tracker decide the mode.
void Init();
// The collector may run concurrent cycles (PACEGC_CONCURRENT is on or always, and the tracker works).
bool Enabled();
// Whether the next cycle marks concurrently, given what it is expected to mark (what the last one did; before the
// first, what is in use) and the CPUs the program may use (pacing::CpuCapacity: the affinity mask lowered by a
// cgroup quota). With `on`, only when it is expected to mark at least kMinLiveBytes and may use kMinCpus or more.
// Below kMinLiveBytes a stop-the-world cycle is cheaper and short anyway (~2 ms of marking here), where a concurrent
// one costs a fixed few hundred microseconds of protection and scanning system calls (each with a TLB shootdown) and
// two pauses. Below kMinCpus there is no core for the program to run on while the collector marks: the marking takes
// the CPU the program would have had, and what concurrency costs on top (first writes to protected pages,
// pre-cleaning, the final re-scan) is paid from the same share; under a CFS quota of 10% of one core the step
// scenario's concurrent cycles charged the CPU limiter enough to turn it on (0.1-0.3 s), where stop-the-world
// cycles never did (docs/BENCHMARKS.md, "Concurrent by default"). `always` marks every cycle concurrently (tests,
// experiments).
constexpr uint64_t kMinLiveBytes = uint64_t{16} << 20;
constexpr double kMinCpus = 2.0;
bool WantedFor(uint64_t expected_marked_bytes, double cpus);
// "concurrent", or "stop-the-world" (for stats and traces); Reason() says why when it is not what was asked.
const char *ModeName();
const char *Reason();

// The child of fork() (heap lock held): concurrent marking is off for good there (base/dirty.h, "fork").
void OnForkChild();
// Heap lock held: a new arena's reservation [lo, hi) is registered for tracking; true if it was (Arena::tracked).
// If the kernel refuses, concurrent mode ends for good (one message); a cycle in progress leaves that arena alone
// (its spans are all new, so flagged and re-scanned whole).
bool OnNewArena(uintptr_t lo, uintptr_t hi);

// Nonzero while a cycle tracks writes: the cycle's epoch.
extern std::atomic<uint32_t> g_tracking_epoch;
// The epoch of the last cycle whose write protection may still be in place (it outlives the cycle: "Protection
// between cycles"), 0 if there is none.
extern std::atomic<uint32_t> g_protect_gen;
void UnprotectForFilling(Span *s, uint32_t gen);
// The allocator is about to write into s (claim slots, or hand out a large span): see "Allocation without faults".
// The owner of s calls it (inside an allocation critical section or with the heap lock).
inline void BeforeFilling(Span *s) {
  const uint32_t gen = g_protect_gen.load(std::memory_order_relaxed);
  if (PACEGC_LIKELY(s->WritableGen() == gen)) return;
  UnprotectForFilling(s, gen);
}
// Heap lock held: whether some page of in-use span s may carry write protection (it is being freed: the page heap
// keeps the answer with the free run, Span::maybe_protected).
inline bool MayBeProtected(const Span *s) {
  const uint32_t gen = g_protect_gen.load(std::memory_order_relaxed);
  return gen != 0 && s->WritableGen() != gen;
}

// Heap lock held (released around the kernel's page-table walks, retaken before returning). Begins a cycle's
// tracking; false if the kernel refused (the cycle then runs stop-the-world, and concurrent mode ends).
// allocators_run: the program's threads allocate on while the cycle marks (a runway cycle), so the partial lists'
// sparse spans are left unprotected for them to fill; otherwise (a cycle started at the goal, whose other threads
// wait for it) they are protected with the rest.
bool BeginTracking(bool allocators_run);
// Heap lock held (released around the walks, retaken): ends it. The pages the allocators will fill next (free runs
// that may be protected, spans with free slots) and the spans the program wrote are made writable; the rest stays
// protected.
void EndTracking();

// Heap lock held, or the world stopped (final: true). Pushes onto `marker` every marked object the program may
// have written since it was scanned: those on pages reported written (which are protected again), and, when final,
// every marked object of the spans filled during the cycle. Returns the pages reported.
struct RescanStats {
  uint64_t pages = 0;         // pages the tracker reported
  uint64_t objects = 0;       // marked objects pushed again
  uint64_t filled_spans = 0;  // spans filled during the cycle (final only)
  uint64_t precleaned_spans = 0;  // filled spans protected and re-scanned, tracked from then on (not final)
};
RescanStats RescanWritten(Marker &marker, bool final);

}  // namespace pacegc::internal::concurrent

#endif  // PACEGC_GC_CONCURRENT_H_
