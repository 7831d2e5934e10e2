// pacer/limit.cc — see limit.h.
#include "pacer/limit.h"

namespace pacegc::pacer {

uint64_t MemoryLimitGoal(const MemoryState &s, uint64_t heap_marked_bytes, int64_t limit_bytes) {
  if (limit_bytes < 0 || limit_bytes == kNoLimit) return UINT64_MAX;
  const uint64_t limit = static_cast<uint64_t>(limit_bytes);
  // Term 1: memory that is not heap objects and not free heap pages.
  uint64_t heap = s.heap_free_bytes + s.heap_alloc_bytes;
  uint64_t non_heap = s.total_bytes > heap ? s.total_bytes - heap : 0;
  // Term 2: how far over the limit we already are.
  uint64_t overage = s.total_bytes > limit ? s.total_bytes - limit : 0;
  if (non_heap + overage >= limit) return heap_marked_bytes;
  uint64_t goal = limit - (non_heap + overage);
  // Term 3: headroom, so small errors in the estimate do not push memory over the limit.
  uint64_t headroom = goal / 100 * 3;
  if (headroom < (uint64_t{1} << 20)) headroom = uint64_t{1} << 20;
  goal = goal - headroom < headroom ? headroom : goal - headroom;
  return goal > heap_marked_bytes ? goal : heap_marked_bytes;
}

Goal CombineGoals(uint64_t gc_percent_goal, uint64_t memory_limit_goal) {
  if (memory_limit_goal < gc_percent_goal) return Goal{memory_limit_goal, Regime::kMemoryLimit};
  return Goal{gc_percent_goal, Regime::kGcPercent};
}

}  // namespace pacegc::pacer
