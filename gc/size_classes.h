// gc/size_classes.h — the small-object size classes.
//
// Objects up to kMaxSmallSize (32 KiB) are rounded up to one of kNumClasses sizes, all multiples of 16 (so every
// object is 16-byte aligned, like malloc's max_align_t), spaced at most 25% apart (4 classes per power of two above
// 128 bytes), so internal fragmentation is at most 20% of an object. Each class is served from spans of a fixed
// page count, chosen as the smallest count (up to 16 pages) whose tail waste is at most 1/8 of the span.
// Larger objects get a span of their own rounded up to whole pages.
//
// Division by the object size (address → object index, on every conservative pointer) is a multiply and shift by
// a precomputed reciprocal, exact for offsets below kMaxSmallSpanBytes (verified exhaustively by the unit test).
#ifndef PACEGC_GC_SIZE_CLASSES_H_
#define PACEGC_GC_SIZE_CLASSES_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "pacer/page.h"

namespace pacegc::internal {

// The heap's page (8 KiB), defined once in pacer/page.h; the names gc/ has always used.
constexpr size_t kPageShift = pacer::kPageShift;
constexpr size_t kPageSize = pacer::kPageBytes;
constexpr size_t kMaxSmallSize = 32 * 1024;
constexpr size_t kMaxSmallSpanPages = 16;
constexpr size_t kMaxSmallSpanBytes = kMaxSmallSpanPages * kPageSize;  // 128 KiB
constexpr size_t kNumClasses = 41;  // class 0 is unused (means "large")

struct SizeClassInfo {
  uint32_t size;           // object size in bytes
  uint32_t span_pages;     // pages per span
  uint32_t objects;        // objects per span
  uint32_t div_magic;      // ceil(2^32 / size): index = (offset * div_magic) >> 32
};

// Built at compile time (constexpr) in size_classes.cc.
extern const std::array<SizeClassInfo, kNumClasses> kSizeClasses;
extern const std::array<uint8_t, kMaxSmallSize / 16 + 1> kClassBySize16;  // class of (size + 15) / 16

// The class for a request of `size` bytes (0 <= size <= kMaxSmallSize). One table load.
inline uint32_t SizeToClass(size_t size) { return kClassBySize16[(size + 15) >> 4]; }

inline uint32_t ObjectIndex(const SizeClassInfo &c, size_t offset) {
  return static_cast<uint32_t>((static_cast<uint64_t>(offset) * c.div_magic) >> 32);
}

}  // namespace pacegc::internal

#endif  // PACEGC_GC_SIZE_CLASSES_H_
