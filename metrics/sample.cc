// metrics/sample.cc — see sample.h.
#include "metrics/sample.h"

#include <algorithm>
#include <cmath>

#include "base/meta.h"

namespace pacegc::metrics {

double Percentile(const int64_t *sorted, size_t n, double p) {
  double pos = p * static_cast<double>(n + 1);
  if (pos < 1.0) return static_cast<double>(sorted[0]);
  if (pos >= static_cast<double>(n)) return static_cast<double>(sorted[n - 1]);
  auto i = static_cast<size_t>(pos);  // 1 ≤ i < n
  double lower = static_cast<double>(sorted[i - 1]);
  double upper = static_cast<double>(sorted[i]);
  return lower + (pos - std::floor(pos)) * (upper - lower);
}

SampleSummary Summarize(int64_t *values, size_t n, int64_t count) {
  SampleSummary s;
  s.count = count;
  s.sample_size = n;
  if (n == 0) return s;
  std::sort(values, values + n);
  s.min = values[0];
  s.max = values[n - 1];
  double sum = 0;  // in double: an int64 sum of 1028 large values could overflow
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(values[i]);
  s.mean = sum / static_cast<double>(n);
  double squares = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>(values[i]) - s.mean;
    squares += d * d;
  }
  s.stddev = std::sqrt(squares / static_cast<double>(n));
  s.p50 = Percentile(values, n, 0.5);
  s.p75 = Percentile(values, n, 0.75);
  s.p95 = Percentile(values, n, 0.95);
  s.p99 = Percentile(values, n, 0.99);
  s.p999 = Percentile(values, n, 0.999);
  return s;
}

namespace {
// Orders a std heap as a min-heap on priority.
struct GreaterPriority {
  template <typename E>
  bool operator()(const E &a, const E &b) const {
    return a.priority > b.priority;
  }
};
}  // namespace

ExpDecaySample::ExpDecaySample(const Clock *clock, Rng *rng, size_t reservoir_size, double alpha_per_second)
    : clock_(clock),
      rng_(rng),
      reservoir_size_(reservoir_size == 0 ? 1 : reservoir_size),
      alpha_per_second_(alpha_per_second),
      t0_ns_(clock->NowNs()),
      next_rescale_ns_(t0_ns_ + kRescaleNs) {
  internal::meta::Init();  // idempotent; a sample may be used without a registry (which would initialise it)
}

void ExpDecaySample::UpdateAt(int64_t now_ns, int64_t value) {
  ++count_;
  if (now_ns >= next_rescale_ns_) Rescale(now_ns);
  double age_s = static_cast<double>(now_ns - t0_ns_) / 1e9;
  Entry e{std::exp(alpha_per_second_ * age_s) / rng_->NextUnit(), value};
  if (heap_.size() < reservoir_size_) {
    if (heap_.capacity() == 0) heap_.reserve(std::min<size_t>(reservoir_size_, 64));
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), GreaterPriority{});
  } else if (e.priority > heap_.front().priority) {
    std::pop_heap(heap_.begin(), heap_.end(), GreaterPriority{});
    heap_.back() = e;
    std::push_heap(heap_.begin(), heap_.end(), GreaterPriority{});
  }
}

void ExpDecaySample::Rescale(int64_t now_ns) {
  double factor = std::exp(-alpha_per_second_ * static_cast<double>(now_ns - t0_ns_) / 1e9);
  for (Entry &e : heap_) e.priority *= factor;  // one positive factor: the heap order holds
  t0_ns_ = now_ns;
  next_rescale_ns_ = now_ns + kRescaleNs;
}

void ExpDecaySample::Clear() {
  heap_.clear();
  count_ = 0;
  t0_ns_ = clock_->NowNs();
  next_rescale_ns_ = t0_ns_ + kRescaleNs;
}

void ExpDecaySample::CopyValues(MetaVector<int64_t> *out) const {
  out->reserve(out->size() + heap_.size());
  for (const Entry &e : heap_) out->push_back(e.value);
}

bool ExpDecaySample::IsValid() const {
  return heap_.size() <= reservoir_size_ && std::is_heap(heap_.begin(), heap_.end(), GreaterPriority{});
}

}  // namespace pacegc::metrics
