// pacer/goal.cc — see goal.h.
#include "pacer/goal.h"

namespace pacegc::pacer {
namespace {

uint64_t SatAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

// a × b / 100, saturating.
uint64_t SatMulDiv100(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b / 100;
  return r > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(r);
}

}  // namespace

uint64_t HeapMinimum(int gc_percent) {
  if (gc_percent < 0) return kNoGoal;
  return SatMulDiv100(kDefaultHeapMinimumBytes, static_cast<uint64_t>(gc_percent));
}

uint64_t GcPercentGoal(const LastCycle &last, int gc_percent) {
  if (gc_percent < 0) return kNoGoal;
  uint64_t roots = SatAdd(SatAdd(last.heap_marked_bytes, last.stack_scan_bytes), last.globals_scan_bytes);
  uint64_t goal = SatAdd(last.heap_marked_bytes, SatMulDiv100(roots, static_cast<uint64_t>(gc_percent)));
  uint64_t minimum = HeapMinimum(gc_percent);
  return goal > minimum ? goal : minimum;
}

}  // namespace pacegc::pacer
