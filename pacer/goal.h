// pacer/goal.h — the heap goal from GOGC. Pure policy: no memory, no clocks, no globals; every input is an
// argument, so it is tested by simulation (tests/unit/pacer_goal_test.cc).
//
// Go 1.18+ (mgcpacer.go, the GC guide):
//   goal = heap_marked + (heap_marked + stack_scan + globals_scan) × GOGC / 100,   at least 4 MiB × GOGC / 100
// where heap_marked is the bytes the last cycle marked, stack_scan the stack bytes it actually scanned, and
// globals_scan the global (data/bss and registered-range) bytes it scanned. GOGC < 0 means off: no GOGC goal.
// Multiply before divide, as Go does; unlike Go, saturate instead of overflowing (GOGC up to 2^31-1 times a heap
// of terabytes does not fit in 64 bits).
//
// The trigger of a stop-the-world cycle is the goal itself; a concurrent cycle may start below it (pacer/trigger.h).
#ifndef PACEGC_PACER_GOAL_H_
#define PACEGC_PACER_GOAL_H_

#include <cstdint>

namespace pacegc::pacer {

constexpr uint64_t kDefaultHeapMinimumBytes = uint64_t{4} << 20;
constexpr uint64_t kNoGoal = UINT64_MAX;  // GOGC off

struct LastCycle {
  uint64_t heap_marked_bytes = 0;
  uint64_t stack_scan_bytes = 0;
  uint64_t globals_scan_bytes = 0;
};

// 4 MiB × GOGC / 100 (0 for GOGC=0; kNoGoal for GOGC off).
uint64_t HeapMinimum(int gc_percent);

// The GOGC goal in bytes of heap, or kNoGoal when gc_percent < 0.
uint64_t GcPercentGoal(const LastCycle &last, int gc_percent);

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_GOAL_H_
