// gc/size_classes.cc — see size_classes.h.
#include "gc/size_classes.h"

#include <array>

namespace pacegc::internal {
namespace {

constexpr uint32_t kSizes[kNumClasses] = {
    0,     16,    32,    48,    64,    80,    96,    112,   128,   160,   192,   224,   256,   320,
    384,   448,   512,   640,   768,   896,   1024,  1280,  1536,  1792,  2048,  2560,  3072,  3584,
    4096,  5120,  6144,  7168,  8192,  10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768,
};

constexpr uint32_t PagesFor(uint32_t size) {
  for (uint32_t pages = 1; pages <= kMaxSmallSpanPages; ++pages) {
    size_t bytes = pages * kPageSize;
    if (bytes < size) continue;
    // Tail waste at most 1/8, and at least 8 objects per span so mid-size classes do not take the lock for
    // every other allocation.
    if ((bytes % size) * 8 <= bytes && bytes / size >= 8) return pages;
  }
  return kMaxSmallSpanPages;
}

constexpr std::array<SizeClassInfo, kNumClasses> BuildTable() {
  std::array<SizeClassInfo, kNumClasses> t{};
  for (size_t i = 1; i < kNumClasses; ++i) {
    uint32_t size = kSizes[i];
    uint32_t pages = PagesFor(size);
    t[i].size = size;
    t[i].span_pages = pages;
    t[i].objects = static_cast<uint32_t>(pages * kPageSize / size);
    t[i].div_magic = static_cast<uint32_t>(((uint64_t{1} << 32) + size - 1) / size);
  }
  return t;
}

constexpr std::array<SizeClassInfo, kNumClasses> kTable = BuildTable();

// Class by (size + 15) / 16 for every size up to kMaxSmallSize: 2049 bytes of table, one load per lookup.
constexpr std::array<uint8_t, kMaxSmallSize / 16 + 1> BuildLookup() {
  std::array<uint8_t, kMaxSmallSize / 16 + 1> t{};
  size_t cls = 1;
  t[0] = 1;  // size 0 is served as the smallest class (a unique object)
  for (size_t slot = 1; slot < t.size(); ++slot) {
    size_t size = slot * 16;
    while (kSizes[cls] < size) ++cls;
    t[slot] = static_cast<uint8_t>(cls);
  }
  return t;
}

constexpr std::array<uint8_t, kMaxSmallSize / 16 + 1> kLookup = BuildLookup();

static_assert(kSizes[kNumClasses - 1] == kMaxSmallSize);
static_assert(kTable[1].objects <= 1024, "alloc bitmaps are sized for at most 1024 objects per span");

}  // namespace

const std::array<SizeClassInfo, kNumClasses> kSizeClasses = kTable;
const std::array<uint8_t, kMaxSmallSize / 16 + 1> kClassBySize16 = kLookup;

}  // namespace pacegc::internal
