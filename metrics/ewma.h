// metrics/ewma.h — exponentially weighted moving averages of an event rate, ticked every 5 seconds: the 1-, 5- and
// 15-minute load-average style rates of a meter (go-metrics' StandardEWMA, itself Unix's load average).
//
// Algorithm. Events are added to `uncounted`. Every tick (5 s) the instant rate of the interval is
//     instant = uncounted / 5 s                     (events per second)
// and the average moves toward it:
//     rate    = instant                              on the first tick (initialisation, as go-metrics does)
//     rate   += alpha × (instant − rate)             on every later tick
// with alpha = 1 − exp(−5 s / (60 s × minutes)), so with no new events a rate decays by exp(−5/60/minutes) per
// tick: after one minute of silence the 1-minute rate is e^−1 of what it was.
//
// TickN(n) applies n ticks at once: the first with the uncounted events, the other n − 1 with none, in closed form
// (rate × (1 − alpha)^(n−1)), so a meter that was idle for a day catches up in O(1).
//
// Not thread-safe: the owning Meter serialises Update/Tick/Rate under its mutex.
#ifndef PACEGC_METRICS_EWMA_H_
#define PACEGC_METRICS_EWMA_H_

#include <cstdint>

namespace pacegc::metrics {

inline constexpr int64_t kTickNs = 5'000'000'000;  // the EWMA tick interval, as go-metrics

// alpha for a moving average over `minutes` minutes ticked every 5 s: 1 − exp(−5/60/minutes).
double EwmaAlpha(double minutes);

class Ewma {
 public:
  explicit Ewma(double alpha) : alpha_(alpha) {}

  void Update(int64_t events) { uncounted_ += events; }
  void Tick() { TickN(1); }
  void TickN(int64_t ticks);
  // Events per second; 0 before the first tick.
  double RatePerSecond() const { return rate_per_s_; }
  void Clear();

  double alpha() const { return alpha_; }

 private:
  double alpha_;
  int64_t uncounted_ = 0;     // events since the last tick
  double rate_per_s_ = 0;     // the moving average, events per second
  bool initialised_ = false;  // false until the first tick
};

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_EWMA_H_
