// pacer/scavenge.h — how much memory to return to the OS, and how fast. Pure policy: no memory, no clocks, no
// globals; gc/ measures the heap, asks these functions, and releases (madvise DONTNEED) what they say.
// Tested in tests/unit/pacer_scavenge_test.cc and by simulation in pacer_sim_test.cc.
//
// Go's scavenger (mgcscavenge.go, mheap.go; Go 1.19+) has two background goals, recomputed after every cycle and
// whenever GOGC or the limit changes, and releases memory while either is unmet:
//   memory-limit goal  retain at most 95% of the limit:            limit × 95 / 100
//   GOGC goal          retain what the heap needed at its last peak, scaled to the new goal, plus 10%:
//                        last_heap_in_use × heap_goal / last_heap_goal, + 10%, rounded up to a page
//   need = max(total − limit_goal, retained − gc_percent_goal, 0) bytes, taken from free resident pages only.
// (The background scavenger's budget is 1% of the total CPU, cores × wall time.)
// The memory-limit goal is compared with everything the limit counts (heap + metadata + manual allocations), the
// GOGC goal with the heap's own retained pages, as in Go (mappedReady vs heapRetained). The background scavenger
// spends about 1% of the CPU: work in batches of at least 1 ms, then sleep 99× the batch.
// Synchronously, an allocation that would push the total over the limit first releases the excess (unless the CPU
// limiter is on: then the collector is already over budget and the heap is allowed past the limit). Go also releases
// on heap growth to keep retained memory under the GOGC goal (mheap.grow); pacegc does not (it never did: the
// background scavenger and the retain goal's floor, pacer.h, handle it), so there is no such function here.
//
// Where pacegc differs: Go computes the ratios in floating point; pacegc uses 128-bit integers and saturates, so
// results are exact and a goal can never wrap around to a small number. "Pages" are pacegc's 8 KiB heap pages
// (Go rounds to the physical page). Every "bytes to release" result is rounded up to whole pages and then capped at
// the free resident bytes, so it never asks for more than can be released.
#ifndef PACEGC_PACER_SCAVENGE_H_
#define PACEGC_PACER_SCAVENGE_H_

#include <cstdint>

#include "pacer/limit.h"
#include "pacer/page.h"

namespace pacegc::pacer {

constexpr uint64_t kMemoryLimitRetainPercent = 95;
constexpr uint64_t kRetainExtraPercent = 10;
constexpr double kBackgroundCpuPercent = 1.0;
constexpr uint64_t kBackgroundMinBatchWorkNs = 1'000'000;  // a batch is at least 1 ms of work
constexpr uint64_t kScavengeQuantumBytes = 64 << 10;       // Go releases in 64 KiB quanta between checks

// Background goal from the limit: 95% of the limit; UINT64_MAX (disabled) when limit is kNoLimit/negative.
uint64_t MemoryLimitRetainGoal(int64_t limit_bytes);

// Background goal from GOGC: last_heap_in_use × (heap_goal / last_heap_goal) + 10%, rounded up to a page;
// UINT64_MAX (disabled) before the first cycle (last_heap_goal == 0) or when either goal is kNoGoal/UINT64_MAX.
// last_heap_in_use is the heap's in-use pages when the last cycle finished marking (before sweeping), i.e. what
// the heap needed at its peak. Saturating arithmetic (a result that saturates is UINT64_MAX: disabled).
uint64_t GcPercentRetainGoal(uint64_t last_heap_in_use, uint64_t heap_goal, uint64_t last_heap_goal);

// Memory inputs: MemoryState (limit.h) — total_bytes (what the limit counts), heap_retained_bytes, heap_free_bytes.

// Bytes the background scavenger should release now to meet both goals: max(total − limit goal,
// retained − gogc goal, 0), rounded up to pages, never more than heap_free_bytes.
uint64_t BackgroundScavengeBytes(const MemoryState &s, uint64_t limit_goal, uint64_t gc_percent_goal);

// The drop-in allocator's blocks (libpacegc-malloc, docs/MALLOC.md) come with free pages only their allocator
// (mimalloc) can return. Asking it to (a forced mimalloc collection) is due when what the limit counts is above the
// limit goal by more than pacegc's own free pages cover (ManualExcessBytes), and at most once per interval_ns since
// the previous request (last_release_ns, 0 for none). The interval starts at kManualReleaseIntervalNs and doubles,
// up to kMaxManualReleaseIntervalNs, after each request that returned less than an eighth of the excess (live
// memory over the limit: asking again every second would only burn CPU the limiter counts as GC); a request that
// did return that much sets it back (NextManualReleaseIntervalNs).
constexpr uint64_t kManualReleaseIntervalNs = 1'000'000'000;
constexpr uint64_t kMaxManualReleaseIntervalNs = 64'000'000'000;
uint64_t ManualExcessBytes(const MemoryState &s, uint64_t limit_goal);
bool ManualReleaseDue(const MemoryState &s, uint64_t limit_goal, uint64_t now_ns, uint64_t last_release_ns,
                      uint64_t interval_ns);
uint64_t NextManualReleaseIntervalNs(uint64_t interval_ns, uint64_t released_bytes, uint64_t excess_bytes);

// Synchronous scavenging on span allocation: new_bytes are the bytes the allocation adds to the total (fresh or
// released pages it makes resident; pages reused while still resident add nothing). If total + new_bytes > limit,
// release (total + new_bytes − limit), rounded up to pages and capped at heap_free; 0 when the limiter is on or
// there is no limit.
uint64_t SyncScavengeBytes(const MemoryState &s, uint64_t new_bytes, int64_t limit_bytes, bool limiter_on);

// Background pacing at kBackgroundCpuPercent of the total CPU (cpus × wall time, as Go paces its scavenger
// against GOMAXPROCS): after a batch that took work_ns, sleep work_ns × 100 / (percent × cpus) − work_ns, so work
// is 1% of cpus × (work + sleep). A batch shorter than kBackgroundMinBatchWorkNs (the scavenger ran out of work) is
// paced as if it had taken the minimum. cpus is the CPU capacity (fractional under a CPU quota, to a thousandth);
// below 1 it counts as 1, so a throttled program still returns memory at 1% of a core; from 100 cpus on there is no
// sleep. Saturating.
uint64_t BackgroundSleepNs(uint64_t work_ns, double cpus);

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_SCAVENGE_H_
