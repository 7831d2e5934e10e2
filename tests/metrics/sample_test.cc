// metrics/sample: statistics against hand-computed values, and the exponentially decaying reservoir driven by a
// manual clock and a seeded RNG.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "metrics/clock.h"
#include "metrics/sample.h"

using namespace pacegc::metrics;

namespace {
constexpr int64_t kSecond = 1'000'000'000;

SampleSummary SummarizeCopy(std::vector<int64_t> v, int64_t count = -1) {
  return Summarize(v.data(), v.size(), count < 0 ? static_cast<int64_t>(v.size()) : count);
}

std::vector<int64_t> Kept(const ExpDecaySample &s) {
  MetaVector<int64_t> kept;
  s.CopyValues(&kept);
  return std::vector<int64_t>(kept.begin(), kept.end());
}
}  // namespace

TEST_CASE("percentiles, mean and stddev of 1..100", "[metrics][sample]") {
  std::vector<int64_t> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  SampleSummary s = SummarizeCopy(v);
  CHECK(s.count == 100);
  CHECK(s.sample_size == 100);
  CHECK(s.min == 1);
  CHECK(s.max == 100);
  CHECK(s.mean == Approx(50.5));
  CHECK(s.stddev == Approx(std::sqrt(833.25)));  // population variance (n² − 1) / 12
  // pos = p × 101, linear between the neighbours v[⌊pos⌋ − 1] and v[⌊pos⌋]
  CHECK(s.p50 == Approx(50.5));
  CHECK(s.p75 == Approx(75.75));
  CHECK(s.p95 == Approx(95.95));
  CHECK(s.p99 == Approx(99.99));
  CHECK(s.p999 == Approx(100.0));  // pos = 100.899 ≥ n → the largest
}

TEST_CASE("percentiles of a small set: clamped at both ends, interpolated inside", "[metrics][sample]") {
  std::vector<int64_t> v = {5, 1, 3};
  std::sort(v.begin(), v.end());
  CHECK(Percentile(v.data(), 3, 0.1) == 1.0);          // pos 0.4 < 1 → smallest
  CHECK(Percentile(v.data(), 3, 0.25) == 1.0);         // pos 1 → v[0]
  CHECK(Percentile(v.data(), 3, 0.5) == 3.0);          // pos 2 → v[1]
  CHECK(Percentile(v.data(), 3, 0.6) == Approx(3.8));  // pos 2.4 → 3 + 0.4 × (5 − 3)
  CHECK(Percentile(v.data(), 3, 0.75) == 5.0);         // pos 3 ≥ n → largest
  SampleSummary s = SummarizeCopy({5, 1, 3});
  CHECK(s.mean == Approx(3.0));
  CHECK(s.stddev == Approx(std::sqrt(8.0 / 3.0)));
  CHECK(s.p95 == 5.0);
}

TEST_CASE("mean and population stddev of a textbook set", "[metrics][sample]") {
  SampleSummary s = SummarizeCopy({2, 4, 4, 4, 5, 5, 7, 9});
  CHECK(s.mean == Approx(5.0));
  CHECK(s.stddev == Approx(2.0));
  CHECK(s.p50 == Approx(4.5));  // pos 4.5 → 4 + 0.5 × (5 − 4)
}

TEST_CASE("an empty sample is all zeros; one value is every statistic", "[metrics][sample]") {
  SampleSummary empty = SummarizeCopy({}, 7);
  CHECK(empty.count == 7);
  CHECK(empty.sample_size == 0);
  CHECK(empty.min == 0);
  CHECK(empty.max == 0);
  CHECK(empty.mean == 0.0);
  CHECK(empty.p99 == 0.0);
  SampleSummary one = SummarizeCopy({-7});
  CHECK(one.min == -7);
  CHECK(one.max == -7);
  CHECK(one.p50 == -7.0);
  CHECK(one.p999 == -7.0);
  CHECK(one.stddev == 0.0);
}

TEST_CASE("reservoir keeps its bound and counts every update", "[metrics][sample]") {
  ManualClock clock;
  FastRng rng(42);
  ExpDecaySample sample(&clock, &rng, 100);
  for (int i = 0; i < 10'000; ++i) {
    sample.Update(i);
    clock.Advance(kSecond);  // 10 000 s: crosses two hourly rescales
    if (i % 997 == 0) REQUIRE(sample.IsValid());
  }
  CHECK(sample.count() == 10'000);
  CHECK(sample.size() == 100);
  CHECK(sample.IsValid());
  // Weight grows as e^(0.015 t): values from 1000 s before the end are e^15 ≈ 3·10^6 times less likely to stay.
  std::vector<int64_t> kept = Kept(sample);
  CHECK(*std::min_element(kept.begin(), kept.end()) > 9'000);
}

TEST_CASE("reservoir favours recent values", "[metrics][sample]") {
  ManualClock clock;
  FastRng rng(7);
  ExpDecaySample sample(&clock, &rng, 100);
  for (int i = 0; i < 1000; ++i) sample.Update(0);
  clock.Advance(600 * kSecond);  // ten minutes later: weight ratio e^9 ≈ 8100
  for (int i = 0; i < 1000; ++i) sample.Update(1);
  std::vector<int64_t> kept = Kept(sample);
  REQUIRE(kept.size() == 100);
  CHECK(std::count(kept.begin(), kept.end(), 1) >= 98);

  // Control: the same updates at one instant are sampled uniformly, so both halves are well represented.
  ManualClock still;
  FastRng rng2(7);
  ExpDecaySample uniform(&still, &rng2, 100);
  for (int i = 0; i < 1000; ++i) uniform.Update(0);
  for (int i = 0; i < 1000; ++i) uniform.Update(1);
  std::vector<int64_t> kept2 = Kept(uniform);
  auto ones = std::count(kept2.begin(), kept2.end(), 1);
  CHECK(ones > 25);
  CHECK(ones < 75);
}

TEST_CASE("rescale moves the landmark and a long silence lets new values replace stale ones",
          "[metrics][sample]") {
  ManualClock clock(5 * kSecond);
  FastRng rng(1);
  ExpDecaySample sample(&clock, &rng, 50);
  CHECK(sample.landmark_ns() == 5 * kSecond);
  for (int i = 0; i < 50; ++i) sample.Update(0);
  clock.Advance(25 * 3600 * kSecond);  // a day: old priorities scale by e^(−1350), i.e. to 0
  for (int i = 0; i < 50; ++i) sample.Update(1);
  CHECK(sample.landmark_ns() == 5 * kSecond + 25 * 3600 * kSecond);
  CHECK(sample.IsValid());
  std::vector<int64_t> kept = Kept(sample);
  CHECK(std::count(kept.begin(), kept.end(), 1) == 50);
  CHECK(sample.count() == 100);
}

TEST_CASE("the same seed gives the same sample", "[metrics][sample]") {
  ManualClock clock;
  FastRng a(99), b(99);
  ExpDecaySample sa(&clock, &a, 20), sb(&clock, &b, 20);
  for (int i = 0; i < 500; ++i) {
    sa.Update(i);
    sb.Update(i);
  }
  std::vector<int64_t> ka = Kept(sa), kb = Kept(sb);
  std::sort(ka.begin(), ka.end());
  std::sort(kb.begin(), kb.end());
  CHECK(ka == kb);
}

TEST_CASE("FastRng draws lie in (0, 1]", "[metrics][rng]") {
  FastRng rng(0);
  double lo = 1, hi = 0, sum = 0;
  for (int i = 0; i < 100'000; ++i) {
    double u = rng.NextUnit();
    REQUIRE(u > 0.0);
    REQUIRE(u <= 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  CHECK(lo < 0.001);
  CHECK(hi > 0.999);
  CHECK(sum / 100'000 == Approx(0.5).margin(0.01));
}
