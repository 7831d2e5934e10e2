// metrics/ewma.cc — see ewma.h.
#include "metrics/ewma.h"

#include <cmath>

namespace pacegc::metrics {

double EwmaAlpha(double minutes) {
  constexpr double kTickSeconds = static_cast<double>(kTickNs) / 1e9;
  return 1.0 - std::exp(-kTickSeconds / 60.0 / minutes);
}

void Ewma::TickN(int64_t ticks) {
  if (ticks <= 0) return;
  constexpr double kTickSeconds = static_cast<double>(kTickNs) / 1e9;
  // Term 1: the tick that closes the interval holding the uncounted events.
  double instant_per_s = static_cast<double>(uncounted_) / kTickSeconds;
  uncounted_ = 0;
  if (initialised_) {
    rate_per_s_ += alpha_ * (instant_per_s - rate_per_s_);
  } else {
    rate_per_s_ = instant_per_s;
    initialised_ = true;
  }
  // Term 2: ticks - 1 empty intervals, each multiplying the rate by (1 - alpha).
  if (ticks > 1) rate_per_s_ *= std::pow(1.0 - alpha_, static_cast<double>(ticks - 1));
}

void Ewma::Clear() {
  uncounted_ = 0;
  rate_per_s_ = 0;
  initialised_ = false;
}

}  // namespace pacegc::metrics
