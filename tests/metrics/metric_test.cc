// metrics/metric: counters and gauges, histograms and timers, and their thread safety ("not a benchmark": exact
// totals after concurrent updates, no timing).
#include <catch2/catch.hpp>

#include <cmath>
#include <thread>
#include <vector>

#include "metrics/clock.h"
#include "metrics/metric.h"

using namespace pacegc::metrics;

TEST_CASE("counter inc, dec, clear", "[metrics][counter]") {
  Counter c;
  c.Inc();
  c.Inc(41);
  c.Dec(50);
  CHECK(c.Count() == -8);
  c.Clear();
  CHECK(c.Count() == 0);
}

TEST_CASE("counter is exact under concurrent inc and dec", "[metrics][counter]") {
  Counter c;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&c, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (t % 4 == 3) {
          c.Dec(1);
        } else {
          c.Inc(2);
        }
      }
    });
  }
  for (auto &th : threads) th.join();
  // 6 threads add 2, 2 threads subtract 1
  CHECK(c.Count() == int64_t{6} * kPerThread * 2 - int64_t{2} * kPerThread);
}

TEST_CASE("gauges keep the last value", "[metrics][gauge]") {
  Gauge g;
  g.Update(7);
  g.Update(-3);
  CHECK(g.Value() == -3);
  GaugeFloat f;
  f.Update(0.25);
  CHECK(f.Value() == 0.25);
  f.Reset();
  CHECK(f.Value() == 0.0);
}

TEST_CASE("histogram summarises its sample; clear empties it", "[metrics][histogram]") {
  ManualClock clock;
  Histogram h(&clock, uint64_t{3});
  for (int i = 1; i <= 100; ++i) h.Update(i);
  SampleSummary s;
  REQUIRE(h.Snapshot(&s));
  CHECK(s.count == 100);
  CHECK(s.min == 1);
  CHECK(s.max == 100);
  CHECK(s.mean == Approx(50.5));
  CHECK(s.p75 == Approx(75.75));
  h.Clear();
  REQUIRE(h.Snapshot(&s));
  CHECK(s.count == 0);
  CHECK(s.sample_size == 0);
}

TEST_CASE("histogram keeps its bound under concurrent updates", "[metrics][histogram]") {
  Histogram h(MonotonicClock::Instance(), uint64_t{11});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < kPerThread; ++i) h.Update(t * kPerThread + i);
    });
  }
  for (auto &th : threads) th.join();
  CHECK(h.Count() == kThreads * kPerThread);
  CHECK(h.SampleSize() == ExpDecaySample::kReservoirSize);
  CHECK(h.IsValid());
}

TEST_CASE("timer records durations in its histogram and counts them in its meter", "[metrics][timer]") {
  ManualClock clock;
  Timer t(&clock, 5);
  t.UpdateNs(1000);
  t.UpdateNs(2000);
  t.UpdateNs(6000);
  SampleSummary s;
  REQUIRE(t.histogram().Snapshot(&s));
  CHECK(s.count == 3);
  CHECK(s.min == 1000);
  CHECK(s.max == 6000);
  CHECK(s.mean == Approx(3000));
  CHECK(s.stddev == Approx(std::sqrt((4e6 + 1e6 + 9e6) / 3)));
  clock.Advance(5'000'000'000);
  MeterSnapshot m = t.meter().Snapshot();
  CHECK(m.count == 3);
  CHECK(m.rate1_per_s == Approx(0.6));
  t.Reset();
  CHECK(t.meter().Count() == 0);
  CHECK(t.histogram().Count() == 0);
}
