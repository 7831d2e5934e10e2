// Unit tests for pacer/scavenge: Go's background retain goals, synchronous scavenging and background pacing.
#include <catch2/catch.hpp>

#include "pacer/goal.h"
#include "pacer/limit.h"
#include "pacer/scavenge.h"

using namespace pacegc::pacer;

namespace {
constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t kMs = 1'000'000;
}  // namespace

TEST_CASE("memory-limit retain goal is 95% of the limit, disabled without a limit", "[pacer][scavenge]") {
  CHECK(MemoryLimitRetainGoal(int64_t{100} * MiB) == 95 * MiB);
  CHECK(MemoryLimitRetainGoal(int64_t{460} * MiB) == 437 * MiB);
  CHECK(MemoryLimitRetainGoal(0) == 0);
  CHECK(MemoryLimitRetainGoal(1) == 0);     // rounds down: never retain more than 95%
  CHECK(MemoryLimitRetainGoal(100) == 95);
  CHECK(MemoryLimitRetainGoal(kNoLimit) == UINT64_MAX);
  CHECK(MemoryLimitRetainGoal(-1) == UINT64_MAX);
  CHECK(MemoryLimitRetainGoal(INT64_MIN) == UINT64_MAX);
  CHECK(MemoryLimitRetainGoal(INT64_MAX - 1) == 8762203435012037015u);  // × 95 does not overflow
}

TEST_CASE("GOGC retain goal: last peak scaled by the goal's change, plus 10%, rounded up to a page",
          "[pacer][scavenge]") {
  CHECK(GcPercentRetainGoal(100 * MiB, 200 * MiB, 200 * MiB) == 110 * MiB);  // steady goal
  CHECK(GcPercentRetainGoal(100 * MiB, 300 * MiB, 200 * MiB) == 165 * MiB);  // goal grew by half
  CHECK(GcPercentRetainGoal(100 * MiB, 100 * MiB, 200 * MiB) == 55 * MiB);   // goal halved
  CHECK(GcPercentRetainGoal(0, 200 * MiB, 200 * MiB) == 0);
  CHECK(GcPercentRetainGoal(100 * MiB, 0, 200 * MiB) == 0);  // GOGC=0 on an empty heap: release everything free
  // 10 pages + 1 byte, + 8192 (10%, rounded down) = 11 pages + 1 byte, rounded up to 12 pages.
  CHECK(GcPercentRetainGoal(10 * kPageBytes + 1, 1, 1) == 12 * kPageBytes);
  CHECK(GcPercentRetainGoal(10 * kPageBytes, 1, 1) == 11 * kPageBytes);  // already a page multiple
  CHECK(GcPercentRetainGoal(1, 1, 1) == kPageBytes);
}

TEST_CASE("GOGC retain goal is disabled before the first cycle and without a GOGC goal", "[pacer][scavenge]") {
  CHECK(GcPercentRetainGoal(100 * MiB, 200 * MiB, 0) == UINT64_MAX);
  CHECK(GcPercentRetainGoal(100 * MiB, kNoGoal, 200 * MiB) == UINT64_MAX);
  CHECK(GcPercentRetainGoal(100 * MiB, 200 * MiB, kNoGoal) == UINT64_MAX);
  CHECK(GcPercentRetainGoal(0, 0, 0) == UINT64_MAX);
}

TEST_CASE("GOGC retain goal saturates instead of wrapping", "[pacer][scavenge]") {
  const uint64_t big = uint64_t{1} << 62;
  CHECK(GcPercentRetainGoal(UINT64_MAX / 2, UINT64_MAX - 1, 1) == UINT64_MAX);  // the product overflows 64 bits
  CHECK(GcPercentRetainGoal(uint64_t{1} << 63, 15, 8) == UINT64_MAX);  // 1.875 × 2^63 fits, + 10% does not
  CHECK(GcPercentRetainGoal(uint64_t{1} << 63, 3, 2) == 0xd333333333334000u);  // 1.65 × 2^63 fits
  // Large but representable: the 128-bit product keeps it exact (a 64-bit product would wrap to a tiny goal).
  const uint64_t x = uint64_t{1} << 60;
  CHECK(GcPercentRetainGoal(x, big, big) == x + x / 10 / kPageBytes * kPageBytes + kPageBytes);
  CHECK(GcPercentRetainGoal(x, 3 * big, big) == 3 * x + 3 * x / 10 / kPageBytes * kPageBytes + kPageBytes);
}

TEST_CASE("background scavenging releases the larger of the two excesses", "[pacer][scavenge]") {
  MemoryState s{500 * MiB, 400 * MiB, 100 * MiB};
  CHECK(BackgroundScavengeBytes(s, 450 * MiB, 380 * MiB) == 50 * MiB);  // the limit's excess is larger
  CHECK(BackgroundScavengeBytes(s, 480 * MiB, 330 * MiB) == 70 * MiB);  // the GOGC excess is larger
  CHECK(BackgroundScavengeBytes(s, 500 * MiB, 400 * MiB) == 0);         // both goals met exactly
  CHECK(BackgroundScavengeBytes(s, 600 * MiB, 450 * MiB) == 0);         // under both
  CHECK(BackgroundScavengeBytes(s, UINT64_MAX, UINT64_MAX) == 0);       // both disabled
  // The limit goal compares the total (with metadata), the GOGC goal only the heap's retained pages.
  CHECK(BackgroundScavengeBytes(s, 420 * MiB, UINT64_MAX) == 80 * MiB);
  CHECK(BackgroundScavengeBytes(s, UINT64_MAX, 420 * MiB) == 0);
}

TEST_CASE("background scavenging rounds up to pages and never asks for more than is free", "[pacer][scavenge]") {
  MemoryState s{500 * MiB, 400 * MiB, 100 * MiB};
  CHECK(BackgroundScavengeBytes(s, 500 * MiB - 1, UINT64_MAX) == kPageBytes);
  CHECK(BackgroundScavengeBytes(s, 500 * MiB - kPageBytes - 1, UINT64_MAX) == 2 * kPageBytes);
  CHECK(BackgroundScavengeBytes(s, 300 * MiB, UINT64_MAX) == 100 * MiB);  // 200 MiB over, 100 MiB free
  CHECK(BackgroundScavengeBytes(s, 0, 0) == 100 * MiB);
  MemoryState odd{500 * MiB, 400 * MiB, 5000};  // free not a page multiple: the cap wins over the rounding
  CHECK(BackgroundScavengeBytes(odd, 500 * MiB - 1, UINT64_MAX) == 5000);
  MemoryState none{500 * MiB, 400 * MiB, 0};
  CHECK(BackgroundScavengeBytes(none, 0, 0) == 0);
}

TEST_CASE("synchronous scavenging releases what an allocation would put over the limit", "[pacer][scavenge]") {
  MemoryState s{100 * MiB, 90 * MiB, 20 * MiB};
  const int64_t limit = int64_t{104} * MiB;
  CHECK(SyncScavengeBytes(s, 8 * MiB, limit, false) == 4 * MiB);
  CHECK(SyncScavengeBytes(s, 4 * MiB, limit, false) == 0);  // lands exactly on the limit
  CHECK(SyncScavengeBytes(s, 0, int64_t{100} * MiB - 1, false) == kPageBytes);  // already 1 byte over
  CHECK(SyncScavengeBytes(s, 64 * MiB, limit, false) == 20 * MiB);  // capped at the free pages
  CHECK(SyncScavengeBytes(s, 8 * MiB, 0, false) == 20 * MiB);       // GOMEMLIMIT=0
  // Off while the CPU limiter is on, and without a limit.
  CHECK(SyncScavengeBytes(s, 8 * MiB, limit, true) == 0);
  CHECK(SyncScavengeBytes(s, 8 * MiB, kNoLimit, false) == 0);
  CHECK(SyncScavengeBytes(s, 8 * MiB, -1, false) == 0);
  // total + new saturates rather than wrapping below the limit.
  MemoryState huge{UINT64_MAX - 1, 90 * MiB, 20 * MiB};
  CHECK(SyncScavengeBytes(huge, 10, INT64_MAX - 1, false) == 20 * MiB);
}

TEST_CASE("background pacing keeps the scavenger at 1% of the total CPU", "[pacer][scavenge]") {
  CHECK(BackgroundSleepNs(1 * kMs, 1) == 99 * kMs);
  CHECK(BackgroundSleepNs(5 * kMs, 1) == 495 * kMs);
  CHECK(BackgroundSleepNs(1 * kMs, 2) == 49 * kMs);  // 1% of 2 cores: 1 ms of work per 50 ms
  CHECK(BackgroundSleepNs(1 * kMs, 4) == 24 * kMs);
  for (int cpus : {1, 2, 4, 5}) {
    for (uint64_t work : {1 * kMs, 3 * kMs + 7, 250 * kMs}) {
      uint64_t sleep = BackgroundSleepNs(work, cpus);
      CHECK(work * 100 / static_cast<uint64_t>(cpus) == work + sleep);  // 1% of cpus x wall, to the nanosecond
    }
  }
  // Short batches are paced as a whole millisecond: no more than ~10 wake-ups a second per core.
  CHECK(BackgroundSleepNs(0, 1) == 99 * kMs);
  CHECK(BackgroundSleepNs(1, 1) == 99 * kMs);
  CHECK(BackgroundSleepNs(kMs - 1, 1) == 99 * kMs);
  CHECK(BackgroundSleepNs(1 * kMs, 0) == 99 * kMs);   // fewer than one cpu counts as one
  CHECK(BackgroundSleepNs(1 * kMs, 100) == 0);        // 1% of 100 cores is a whole core
  CHECK(BackgroundSleepNs(1 * kMs, 1000) == 0);
  CHECK(BackgroundSleepNs(UINT64_MAX, 1) == UINT64_MAX);
  CHECK(BackgroundSleepNs(UINT64_MAX / 99 + 1, 1) == UINT64_MAX);
}

TEST_CASE("the drop-in allocator's free pages are asked for above the limit goal, backing off when it gives none",
          "[pacer][scavenge]") {
  constexpr uint64_t kMiB = 1 << 20;
  constexpr uint64_t kSec = 1'000'000'000;
  const uint64_t goal = MemoryLimitRetainGoal(int64_t{100} * static_cast<int64_t>(kMiB));  // 95 MiB
  const uint64_t every = kManualReleaseIntervalNs;
  MemoryState s;
  s.total_bytes = 90 * kMiB;
  CHECK(ManualExcessBytes(s, goal) == 0);
  CHECK_FALSE(ManualReleaseDue(s, goal, 5 * kSec, 0, every));  // under the goal
  s.total_bytes = 200 * kMiB;
  CHECK(ManualExcessBytes(s, goal) == 105 * kMiB);
  CHECK(ManualReleaseDue(s, goal, 5 * kSec, 0, every));  // over it, never asked before
  CHECK_FALSE(ManualReleaseDue(s, UINT64_MAX, 5 * kSec, 0, every));  // no limit: never
  s.heap_free_bytes = 110 * kMiB;
  CHECK_FALSE(ManualReleaseDue(s, goal, 5 * kSec, 0, every));  // pacegc's own free pages cover the excess
  s.heap_free_bytes = 100 * kMiB;
  CHECK(ManualExcessBytes(s, goal) == 5 * kMiB);
  CHECK(ManualReleaseDue(s, goal, 5 * kSec, 0, every));                  // they do not (200 > 95 + 100)
  CHECK_FALSE(ManualReleaseDue(s, goal, 5 * kSec, 4 * kSec + 1, every));  // asked less than a second ago
  CHECK(ManualReleaseDue(s, goal, 5 * kSec, 4 * kSec, every));            // a second ago
  CHECK_FALSE(ManualReleaseDue(s, goal, 5 * kSec, 4 * kSec, 2 * every));  // backed off to two seconds
  s.heap_free_bytes = UINT64_MAX;
  CHECK_FALSE(ManualReleaseDue(s, goal, 5 * kSec, 0, every));  // saturating: no wrap-around

  // The interval: doubles after a request that returned less than an eighth of the excess, up to 64 s; back to
  // 1 s after one that returned more.
  CHECK(NextManualReleaseIntervalNs(every, 0, 100 * kMiB) == 2 * every);
  CHECK(NextManualReleaseIntervalNs(2 * every, 12 * kMiB, 100 * kMiB) == 4 * every);
  CHECK(NextManualReleaseIntervalNs(32 * every, 0, 100 * kMiB) == kMaxManualReleaseIntervalNs);
  CHECK(NextManualReleaseIntervalNs(kMaxManualReleaseIntervalNs, 0, 100 * kMiB) == kMaxManualReleaseIntervalNs);
  CHECK(NextManualReleaseIntervalNs(16 * every, 13 * kMiB, 100 * kMiB) == every);
  CHECK(NextManualReleaseIntervalNs(16 * every, 0, 0) == 32 * every);  // nothing over, nothing returned: no reset
}
