// pacer/limit.h — the heap goal from the soft memory limit, and how it combines with the GOGC goal. Pure policy:
// no memory, no clocks, no globals.
//
// Go's memoryLimitHeapGoal (mgcpacer.go, proposal 48409), recomputed at every trigger check so that lowering the
// limit takes effect on the next allocation slow path:
//   non_heap = mapped − heap_free − heap_alloc   (fragmentation, metadata; free-but-mapped pages are excluded:
//                                                 they are a pool the heap grows into)
//   overage  = max(mapped − limit, 0)            (being over the limit pulls the next collection earlier)
//   if non_heap + overage ≥ limit: goal = heap_marked (collect continuously; the CPU limiter reins it in)
//   goal     = limit − (non_heap + overage)
//   headroom = max(goal × 3/100, 1 MiB); goal = goal − headroom, or headroom if that would leave less than headroom
//   goal     = max(goal, heap_marked)
// The final goal is the lower of this and the GOGC goal: the limit regime when the limit goal is lower, the GOGC
// regime otherwise. "mapped" is what the limit counts (MemoryState::total_bytes, pgc_stats.total_bytes): heap pages
// mapped and not released, plus collector metadata and manual allocations.
#ifndef PACEGC_PACER_LIMIT_H_
#define PACEGC_PACER_LIMIT_H_

#include <cstdint>

namespace pacegc::pacer {

constexpr int64_t kNoLimit = INT64_MAX;

// Memory as gc/ measured it at one instant: the inputs of the limit goal (here) and of the scavenger (scavenge.h).
struct MemoryState {
  uint64_t total_bytes = 0;          // everything the limit counts (Go's mappedReady; pgc_stats.total_bytes)
  uint64_t heap_retained_bytes = 0;  // heap pages mapped and not released (in use + free resident)
  uint64_t heap_free_bytes = 0;      // free heap pages still resident (what can be released)
  uint64_t heap_alloc_bytes = 0;     // bytes in allocated objects
};

// The limit-derived goal in heap bytes, or UINT64_MAX when limit_bytes is kNoLimit (or negative).
// heap_marked_bytes: what the last cycle marked (the goal never goes below it).
uint64_t MemoryLimitGoal(const MemoryState &state, uint64_t heap_marked_bytes, int64_t limit_bytes);

enum class Regime { kGcPercent, kMemoryLimit };

struct Goal {
  uint64_t bytes;  // UINT64_MAX: no collection is due
  Regime regime;
};

// The lower of the two goals.
Goal CombineGoals(uint64_t gc_percent_goal, uint64_t memory_limit_goal);

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_LIMIT_H_
