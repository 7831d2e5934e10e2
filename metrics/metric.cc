// metrics/metric.cc — see metric.h: the meter's lazy ticking and the histogram's locking.
#include "metrics/metric.h"

#include <new>

namespace pacegc::metrics {

const char *KindName(Kind kind) {
  switch (kind) {
    case Kind::kCounter: return "counter";
    case Kind::kGauge: return "gauge";
    case Kind::kGaugeFloat: return "gauge_float";
    case Kind::kMeter: return "meter";
    case Kind::kHistogram: return "histogram";
    case Kind::kTimer: return "timer";
  }
  return "unknown";
}

// ---- Meter ------------------------------------------------------------------------------------------------------

Meter::Meter(const Clock *clock)
    : Metric(kKind),
      clock_(clock),
      start_ns_(clock->NowNs()),
      last_tick_ns_(start_ns_),
      m1_(EwmaAlpha(1)),
      m5_(EwmaAlpha(5)),
      m15_(EwmaAlpha(15)) {}

void Meter::TickIfNeededLocked(int64_t now_ns) {
  if (now_ns - last_tick_ns_ < kTickNs) return;  // also when the clock went backwards
  int64_t ticks = (now_ns - last_tick_ns_) / kTickNs;
  last_tick_ns_ += ticks * kTickNs;
  m1_.TickN(ticks);
  m5_.TickN(ticks);
  m15_.TickN(ticks);
}

void Meter::Mark(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  TickIfNeededLocked(clock_->NowNs());  // first: the events belong to the interval that is open now
  count_ += n;
  m1_.Update(n);
  m5_.Update(n);
  m15_.Update(n);
}

int64_t Meter::Count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

MeterSnapshot Meter::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now_ns = clock_->NowNs();
  TickIfNeededLocked(now_ns);
  MeterSnapshot s;
  s.count = count_;
  s.rate1_per_s = m1_.RatePerSecond();
  s.rate5_per_s = m5_.RatePerSecond();
  s.rate15_per_s = m15_.RatePerSecond();
  if (now_ns > start_ns_) {
    s.rate_mean_per_s = static_cast<double>(count_) / (static_cast<double>(now_ns - start_ns_) / 1e9);
  }
  return s;
}

void Meter::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  count_ = 0;
  start_ns_ = clock_->NowNs();
  last_tick_ns_ = start_ns_;
  m1_.Clear();
  m5_.Clear();
  m15_.Clear();
}

// ---- Histogram --------------------------------------------------------------------------------------------------

Histogram::Histogram(const Clock *clock, uint64_t seed)
    : Metric(kKind), own_rng_(seed), sample_(clock, &own_rng_) {}

Histogram::Histogram(const Clock *clock, Rng *rng, size_t reservoir_size)
    : Metric(kKind), sample_(clock, rng, reservoir_size) {}

void Histogram::Update(int64_t v) {
  std::lock_guard<std::mutex> lock(mu_);
  try {
    sample_.Update(v);
  } catch (const std::bad_alloc &) {
    // The reservoir grows to its bound in steps; out of metadata memory the value is counted but not kept.
  }
}

int64_t Histogram::Count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sample_.count();
}

size_t Histogram::SampleSize() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sample_.size();
}

bool Histogram::Snapshot(SampleSummary *out) const {
  MetaVector<int64_t> values;
  int64_t count;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    sample_.CopyValues(&values);
    count = sample_.count();
  } catch (const std::bad_alloc &) {
    return false;
  }
  *out = Summarize(values.data(), values.size(), count);  // sorting outside the lock
  return true;
}

void Histogram::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  sample_.Clear();
}

bool Histogram::IsValid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sample_.IsValid();
}

void DeleteMetric(Metric *m) {
  if (m == nullptr) return;
  m->~Metric();
  internal::meta::Free(m);
}

}  // namespace pacegc::metrics
