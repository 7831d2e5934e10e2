// pacer/scavenge.cc — see scavenge.h.
#include "pacer/scavenge.h"

#include "pacer/goal.h"
#include "pacer/limit.h"

namespace pacegc::pacer {
namespace {

// Sleep per unit of work: 100 / 1% − 1 = 99. Kept integral so the pacing is exact.
constexpr uint64_t kSleepPerWork = static_cast<uint64_t>(100.0 / kBackgroundCpuPercent) - 1;
static_assert(100.0 / kBackgroundCpuPercent == static_cast<double>(kSleepPerWork + 1),
              "kBackgroundCpuPercent must divide 100");

uint64_t SatAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t RoundUpToPage(uint64_t bytes) {
  if (bytes > UINT64_MAX - (kPageBytes - 1)) return UINT64_MAX / kPageBytes * kPageBytes;
  return (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
}

// What to release for a need of `bytes`: whole pages, no more than is free and resident.
uint64_t Release(uint64_t bytes, uint64_t heap_free_bytes) {
  if (bytes == 0) return 0;
  uint64_t pages = RoundUpToPage(bytes);
  return pages < heap_free_bytes ? pages : heap_free_bytes;
}

bool NoLimit(int64_t limit_bytes) { return limit_bytes < 0 || limit_bytes == kNoLimit; }

}  // namespace

uint64_t MemoryLimitRetainGoal(int64_t limit_bytes) {
  if (NoLimit(limit_bytes)) return UINT64_MAX;
  return static_cast<uint64_t>(static_cast<unsigned __int128>(limit_bytes) * kMemoryLimitRetainPercent / 100);
}

uint64_t GcPercentRetainGoal(uint64_t last_heap_in_use, uint64_t heap_goal, uint64_t last_heap_goal) {
  if (last_heap_goal == 0 || last_heap_goal == kNoGoal || heap_goal == kNoGoal) return UINT64_MAX;
  // Term 1: the last peak, scaled by how much the goal moved.
  unsigned __int128 scaled = static_cast<unsigned __int128>(last_heap_in_use) * heap_goal / last_heap_goal;
  if (scaled > UINT64_MAX) return UINT64_MAX;
  uint64_t goal = static_cast<uint64_t>(scaled);
  // Term 2: 10% extra, so the scavenger does not release what the heap will need again at its next peak.
  goal = SatAdd(goal, goal / (100 / kRetainExtraPercent));
  if (goal > UINT64_MAX - (kPageBytes - 1)) return UINT64_MAX;
  return RoundUpToPage(goal);
}

uint64_t BackgroundScavengeBytes(const MemoryState &s, uint64_t limit_goal, uint64_t gc_percent_goal) {
  uint64_t over_limit = s.total_bytes > limit_goal ? s.total_bytes - limit_goal : 0;
  uint64_t over_gc_percent = s.heap_retained_bytes > gc_percent_goal ? s.heap_retained_bytes - gc_percent_goal : 0;
  return Release(over_limit > over_gc_percent ? over_limit : over_gc_percent, s.heap_free_bytes);
}

uint64_t ManualExcessBytes(const MemoryState &s, uint64_t limit_goal) {
  if (limit_goal == UINT64_MAX) return 0;
  const uint64_t covered = SatAdd(limit_goal, s.heap_free_bytes);
  return s.total_bytes > covered ? s.total_bytes - covered : 0;
}

bool ManualReleaseDue(const MemoryState &s, uint64_t limit_goal, uint64_t now_ns, uint64_t last_release_ns,
                      uint64_t interval_ns) {
  if (ManualExcessBytes(s, limit_goal) == 0) return false;
  return last_release_ns == 0 || now_ns - last_release_ns >= interval_ns;
}

uint64_t NextManualReleaseIntervalNs(uint64_t interval_ns, uint64_t released_bytes, uint64_t excess_bytes) {
  if (released_bytes >= excess_bytes / 8 && released_bytes != 0) return kManualReleaseIntervalNs;
  const uint64_t next = interval_ns < kManualReleaseIntervalNs ? kManualReleaseIntervalNs : interval_ns * 2;
  return next > kMaxManualReleaseIntervalNs ? kMaxManualReleaseIntervalNs : next;
}

uint64_t SyncScavengeBytes(const MemoryState &s, uint64_t new_bytes, int64_t limit_bytes, bool limiter_on) {
  if (limiter_on || NoLimit(limit_bytes)) return 0;
  const uint64_t after = SatAdd(s.total_bytes, new_bytes);
  const uint64_t limit = static_cast<uint64_t>(limit_bytes);
  return after > limit ? Release(after - limit, s.heap_free_bytes) : 0;
}

uint64_t BackgroundSleepNs(uint64_t work_ns, double cpus) {
  // In thousandths of a CPU, so a fractional capacity (a CPU quota) paces exactly; NaN and < 1 count as 1.
  const uint64_t milli = !(cpus >= 1.0) ? 1000 : cpus >= 1e12 ? uint64_t{1} << 52 : static_cast<uint64_t>(cpus * 1000.0 + 0.5);
  const uint64_t work = work_ns < kBackgroundMinBatchWorkNs ? kBackgroundMinBatchWorkNs : work_ns;
  // work × (kSleepPerWork + 1) / cpus − work, exact in 128 bits.
  const unsigned __int128 period = static_cast<unsigned __int128>(work) * (kSleepPerWork + 1) * 1000 / milli;
  if (period <= work) return 0;
  const unsigned __int128 sleep = period - work;
  return sleep > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(sleep);
}

}  // namespace pacegc::pacer
