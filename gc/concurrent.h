// gc/concurrent.h — mostly-concurrent marking: what the program wrote while the collector marked (issue 12).
//
// The cycle (collector.cc, CollectConcurrent; Boehm, Demers and Shenker's "mostly parallel" collection):
//   1. BeginTracking, world running: a new tracking epoch, then the committed part of every arena is
//      write-protected (base/dirty.h: userfaultfd WP-async). From here on every page the program writes is reported.
//   2. Start pause: the roots (stacks, registers, data/bss, registered ranges, ready finalizers) are scanned and
//      what they reach is marked and pushed. The world restarts.
//   3. Concurrent marking: the collecting thread drains the mark stack in slices, holding the heap lock for each
//      (the page map and the span structures it reads change only under that lock) and releasing it in between, so
//      other threads allocate, free and refill their caches meanwhile.
//   4. Pre-cleaning (RescanWritten, concurrently): pages written since they were protected are reported and
//      protected again, the marked objects on them are scanned again and what they mark drained. Repeated while it
//      finds much (collector.cc; not for a heap that marked less than 64 MiB).
//   5. Final pause: RescanWritten once more, with the roots scanned again and the cached slots kept; the mark stack
//      is drained; finalizers, weak links, verification and the sweep's start run as in a stop-the-world cycle,
//      and the rest of the sweep after the restart (gc/sweep.h), before EndTracking.
//   6. EndTracking, world running: the protection is lifted, so writes between cycles cost nothing.
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
// large span allocated) while tracking is on has its pages unprotected first, once per cycle (BeforeFilling: a
// relaxed load and a compare on the fast refill path, then an ioctl per MiB of the span), and its `wp_epoch`
// records the cycle. The final pause re-scans every marked object of such a span whole, whatever the tracker says
// of its pages.
// The order of the flag and the protection does not matter: a span the allocator did not unprotect is protected,
// and its writes are reported; a span it did unprotect is flagged, and re-scanned.
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
// Whether the next cycle marks concurrently, given what the last one marked and whether the pacer prefers a cheaper
// cycle: with `on`, only when that was at least kMinLiveBytes and the pacer does not prefer stop-the-world (its
// GC CPU limiter's bucket is half full: pacer.h, PreferStopTheWorld). Below kMinLiveBytes a stop-the-world cycle is
// cheaper and short anyway (~2 ms of marking here), where a concurrent one costs a fixed few hundred microseconds
// of protection and scanning system calls (each with a TLB shootdown) and two pauses; `always` marks every cycle
// concurrently (tests, experiments).
constexpr uint64_t kMinLiveBytes = uint64_t{16} << 20;
bool WantedFor(uint64_t last_marked_bytes, bool pacer_prefers_stop_the_world);
// "concurrent", or "stop-the-world" (for stats and traces); Reason() says why when it is not what was asked.
const char *ModeName();
const char *Reason();

// The child of fork() (heap lock held): concurrent marking is off for good there (base/dirty.h, "fork").
void OnForkChild();
// Heap lock held: a new arena's reservation [lo, hi) is registered for tracking; true if it was (Arena::tracked).
// If the kernel refuses, concurrent mode ends for good (one message); a cycle in progress leaves that arena alone
// (its spans are all new, so flagged and re-scanned whole).
bool OnNewArena(uintptr_t lo, uintptr_t hi);

// Nonzero while the heap is write-protected: the cycle's epoch.
extern std::atomic<uint32_t> g_tracking_epoch;
void UnprotectForFilling(Span *s, uint32_t epoch);
// The allocator is about to write into s (claim slots, or hand out a large span): see "Allocation without faults".
// The owner of s calls it (inside an allocation critical section or with the heap lock).
inline void BeforeFilling(Span *s) {
  const uint32_t epoch = g_tracking_epoch.load(std::memory_order_relaxed);
  if (PACEGC_LIKELY(epoch == 0) || s->WpEpoch() == epoch) return;
  UnprotectForFilling(s, epoch);
}

// Heap lock held (released around the kernel's page-table walks, retaken before returning). Begins a cycle's
// tracking; false if the kernel refused (the cycle then runs stop-the-world, and concurrent mode ends).
bool BeginTracking();
// Heap lock held (released around the walks, retaken): ends it.
void EndTracking();

// Heap lock held, or the world stopped (final: true). Pushes onto `marker` every marked object the program may
// have written since it was scanned: those on pages reported written (which are protected again), and, when final,
// every marked object of the spans filled during the cycle. Returns the pages reported.
struct RescanStats {
  uint64_t pages = 0;         // pages the tracker reported
  uint64_t objects = 0;       // marked objects pushed again
  uint64_t filled_spans = 0;  // spans filled during the cycle (final only)
};
RescanStats RescanWritten(Marker &marker, bool final);

}  // namespace pacegc::internal::concurrent

#endif  // PACEGC_GC_CONCURRENT_H_
