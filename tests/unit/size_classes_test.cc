// Unit tests for gc/size_classes: the table's properties and the exactness of division by reciprocal.
#include <catch2/catch.hpp>

#include "gc/heap.h"
#include "gc/size_classes.h"

using namespace pacegc::internal;

TEST_CASE("size classes are 16-byte multiples, increasing, and fill their spans", "[size_classes]") {
  for (size_t c = 1; c < kNumClasses; ++c) {
    const SizeClassInfo &info = kSizeClasses[c];
    INFO("class " << c << " size " << info.size);
    CHECK(info.size % 16 == 0);
    if (c > 1) CHECK(info.size > kSizeClasses[c - 1].size);
    if (c > 1) CHECK(info.size <= kSizeClasses[c - 1].size + kSizeClasses[c - 1].size / 4 + 16);
    CHECK(info.span_pages >= 1);
    CHECK(info.span_pages <= kMaxSmallSpanPages);
    size_t span_bytes = info.span_pages * kPageSize;
    CHECK(info.objects == span_bytes / info.size);
    CHECK(info.objects >= 1);
    // Tail waste at most 1/8 of the span, unless the span is already as large as allowed.
    if (info.span_pages < kMaxSmallSpanPages) CHECK((span_bytes % info.size) * 8 <= span_bytes);
  }
  CHECK(kSizeClasses[kNumClasses - 1].size == kMaxSmallSize);
}

TEST_CASE("SizeToClass returns the smallest class that fits", "[size_classes]") {
  for (size_t n = 0; n <= kMaxSmallSize; ++n) {
    uint32_t c = SizeToClass(n);
    REQUIRE(c >= 1);
    REQUIRE(c < kNumClasses);
    REQUIRE(kSizeClasses[c].size >= n);
    if (c > 1) REQUIRE(kSizeClasses[c - 1].size < n);
  }
}

TEST_CASE("object index by reciprocal equals division for every offset in a span", "[size_classes]") {
  for (size_t c = 1; c < kNumClasses; ++c) {
    const SizeClassInfo &info = kSizeClasses[c];
    size_t span_bytes = info.span_pages * kPageSize;
    for (size_t off = 0; off < span_bytes; ++off) {
      if (ObjectIndex(info, off) != off / info.size) {
        FAIL("class " << c << " size " << info.size << " offset " << off << ": " << ObjectIndex(info, off)
                      << " != " << off / info.size);
      }
    }
  }
  SUCCEED();
}
