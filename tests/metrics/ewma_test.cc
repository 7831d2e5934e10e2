// metrics/ewma and the Meter's lazy ticking, against hand-computed values.
//   alpha(m) = 1 − exp(−5/60/m); first tick: rate = events / 5 s; later: rate += alpha × (instant − rate);
//   an empty tick multiplies the rate by (1 − alpha) = exp(−5/60/m).
#include <catch2/catch.hpp>

#include <cmath>

#include "metrics/clock.h"
#include "metrics/ewma.h"
#include "metrics/metric.h"

using namespace pacegc::metrics;

namespace {
constexpr int64_t kSecond = 1'000'000'000;
}

TEST_CASE("EWMA alphas are Unix load-average constants for a 5 s tick", "[metrics][ewma]") {
  CHECK(EwmaAlpha(1) == Approx(0.07995558537067671));   // 1 − e^(−1/12)
  CHECK(EwmaAlpha(5) == Approx(0.01652854617838251));   // 1 − e^(−1/60)
  CHECK(EwmaAlpha(15) == Approx(0.005540151995103271)); // 1 − e^(−1/180)
}

TEST_CASE("1-minute rate: 3 events in the first 5 s give 0.6/s, then decays by exp(-5/60) per empty tick",
          "[metrics][ewma]") {
  Ewma m1(EwmaAlpha(1));
  CHECK(m1.RatePerSecond() == 0.0);
  m1.Update(3);
  CHECK(m1.RatePerSecond() == 0.0);  // nothing until a tick
  m1.Tick();
  CHECK(m1.RatePerSecond() == Approx(0.6));
  m1.Tick();
  CHECK(m1.RatePerSecond() == Approx(0.6 * std::exp(-5.0 / 60.0)));
  m1.Tick();
  CHECK(m1.RatePerSecond() == Approx(0.6 * std::exp(-10.0 / 60.0)));
  for (int i = 0; i < 10; ++i) m1.Tick();  // one minute after the events in all: e^-1 of the first rate
  CHECK(m1.RatePerSecond() == Approx(0.6 * std::exp(-1.0)));
}

TEST_CASE("5- and 15-minute rates initialise the same way and decay more slowly", "[metrics][ewma]") {
  Ewma m5(EwmaAlpha(5));
  Ewma m15(EwmaAlpha(15));
  m5.Update(3);
  m15.Update(3);
  m5.Tick();
  m15.Tick();
  CHECK(m5.RatePerSecond() == Approx(0.6));
  CHECK(m15.RatePerSecond() == Approx(0.6));
  m5.Tick();
  m15.Tick();
  CHECK(m5.RatePerSecond() == Approx(0.6 * std::exp(-5.0 / 300.0)));
  CHECK(m15.RatePerSecond() == Approx(0.6 * std::exp(-5.0 / 900.0)));
}

TEST_CASE("a later tick moves the rate toward the interval's rate by alpha", "[metrics][ewma]") {
  Ewma m1(EwmaAlpha(1));
  m1.Update(3);
  m1.Tick();       // 0.6
  m1.Update(6);    // 1.2/s in the second interval
  m1.Tick();
  double a = 1 - std::exp(-1.0 / 12.0);
  CHECK(m1.RatePerSecond() == Approx(0.6 + a * (1.2 - 0.6)));  // 0.647973...
  CHECK(m1.RatePerSecond() == Approx(0.6479733512));
}

TEST_CASE("TickN(n) equals n single ticks", "[metrics][ewma]") {
  Ewma one_by_one(EwmaAlpha(1));
  Ewma at_once(EwmaAlpha(1));
  one_by_one.Update(7);
  at_once.Update(7);
  for (int i = 0; i < 25; ++i) one_by_one.Tick();
  at_once.TickN(25);
  CHECK(at_once.RatePerSecond() == Approx(one_by_one.RatePerSecond()));
  CHECK(at_once.RatePerSecond() == Approx(1.4 * std::exp(-24.0 * 5.0 / 60.0)));
}

TEST_CASE("meter: count, EWMA ticks at 5 s boundaries, mean rate = count / elapsed", "[metrics][meter]") {
  ManualClock clock(1000 * kSecond);  // any origin: only differences matter
  Meter meter(&clock);
  meter.Mark(3);
  clock.Advance(4 * kSecond);
  MeterSnapshot s = meter.Snapshot();
  CHECK(s.count == 3);
  CHECK(s.rate1_per_s == 0.0);  // no boundary passed yet
  CHECK(s.rate_mean_per_s == Approx(3.0 / 4.0));

  clock.Advance(1 * kSecond);  // t = 5 s: first tick
  s = meter.Snapshot();
  CHECK(s.rate1_per_s == Approx(0.6));
  CHECK(s.rate5_per_s == Approx(0.6));
  CHECK(s.rate15_per_s == Approx(0.6));
  CHECK(s.rate_mean_per_s == Approx(0.6));

  clock.Advance(2 * kSecond);  // t = 7 s: 2 events in the second interval
  meter.Mark(2);
  clock.Advance(3 * kSecond);  // t = 10 s
  s = meter.Snapshot();
  double a1 = EwmaAlpha(1);
  double after_two = 0.6 + a1 * (0.4 - 0.6);
  CHECK(s.count == 5);
  CHECK(s.rate1_per_s == Approx(after_two));
  CHECK(s.rate5_per_s == Approx(0.6 + EwmaAlpha(5) * (0.4 - 0.6)));

  clock.Advance(60 * kSecond);  // a silent minute: 12 empty ticks
  s = meter.Snapshot();
  CHECK(s.rate1_per_s == Approx(after_two * std::exp(-1.0)));
  CHECK(s.rate_mean_per_s == Approx(5.0 / 70.0));
}

TEST_CASE("meter: events are attributed to the interval in which they were marked", "[metrics][meter]") {
  ManualClock clock;
  Meter meter(&clock);
  clock.Set(12 * kSecond);  // boundaries at 5 s (initialises to 0) and 10 s (stays 0) pass unobserved
  meter.Mark(5);            // in the interval [10 s, 15 s)
  clock.Set(15 * kSecond);
  MeterSnapshot s = meter.Snapshot();
  CHECK(s.rate1_per_s == Approx(EwmaAlpha(1) * 1.0));  // 0 + alpha × (5/5 − 0)
}

TEST_CASE("meter reset restarts count, rates and the mean-rate origin", "[metrics][meter]") {
  ManualClock clock;
  Meter meter(&clock);
  meter.Mark(10);
  clock.Advance(5 * kSecond);
  meter.Reset();
  clock.Advance(5 * kSecond);
  meter.Mark(1);
  clock.Advance(5 * kSecond);  // the reset meter's second boundary: 0 (empty), then 1/5
  MeterSnapshot s = meter.Snapshot();
  CHECK(s.count == 1);
  CHECK(s.rate1_per_s == Approx(EwmaAlpha(1) * 0.2));
  CHECK(s.rate_mean_per_s == Approx(1.0 / 10.0));
}
