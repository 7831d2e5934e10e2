// metrics/sample.h — the bounded reservoir behind a histogram, and the statistics of a sample.
//
// ExpDecaySample: forward-decaying priority sampling (Cormode, Shkapenyuk, Srivastava, Xu, "Forward Decay: A
// Practical Time Decay Model for Streaming Systems", ICDE 2009), as in go-metrics' ExpDecaySample and Dropwizard's
// ExponentiallyDecayingReservoir, with their constants: reservoir 1028 values, alpha 0.015 per second (heavily
// biased to the last ~5 minutes), landmark rescaled every hour.
//
//   update(v) at time t:   priority k = exp(alpha × (t − t0)) / u,  u uniform in (0, 1]
//                          reservoir not full → keep (k, v)
//                          full and k > smallest kept priority → replace that one; otherwise drop v
//   rescale (t ≥ t0 + 1 h, checked before computing k, so the exponent stays ≤ alpha × 3600 s = 54):
//                          every k ×= exp(−alpha × (t − t0)); t0 = t
//
// A value recorded s seconds later than another is e^(alpha·s) times more likely to be kept, so the reservoir
// favours recent values while still holding old ones. Rescaling multiplies all priorities by one positive factor,
// which keeps the min-heap order. After a long silence old priorities may underflow to 0: any new value then
// beats them, which is the intended outcome (they are stale).
//
// Deviation from go-metrics: go-metrics pops the smallest priority BEFORE comparing, so every new value enters
// the full reservoir even when its priority is lower than all kept ones; that is a bias toward the very latest
// value that the paper's algorithm does not have. pacegc keeps the paper's (and Dropwizard's) rule.
//
// count is the number of updates ever (not the reservoir size), as in go-metrics; min/max/mean/stddev and the
// percentiles are computed over the values kept in the reservoir, as in go-metrics' sample snapshots.
//
// Not thread-safe: the owning Histogram serialises access under its mutex.
//
// Statistics of a sample (go-metrics' SampleMin/Max/Mean/StdDev/Percentiles):
//   mean = Σv / n; stddev = sqrt(Σ(v − mean)² / n) (population variance);
//   percentile p (0 < p < 1) over the sorted values v[0..n): pos = p × (n + 1);
//     pos < 1 → v[0];  pos ≥ n → v[n−1];  else v[⌊pos⌋−1] + (pos − ⌊pos⌋) × (v[⌊pos⌋] − v[⌊pos⌋−1]).
//   An empty sample reports zeros everywhere.
#ifndef PACEGC_METRICS_SAMPLE_H_
#define PACEGC_METRICS_SAMPLE_H_

#include <cstddef>
#include <cstdint>

#include "metrics/clock.h"
#include "metrics/containers.h"

namespace pacegc::metrics {

struct SampleSummary {
  int64_t count = 0;         // updates ever
  uint64_t sample_size = 0;  // values summarised (≤ the reservoir size)
  int64_t min = 0;
  int64_t max = 0;
  double mean = 0;
  double stddev = 0;
  double p50 = 0;
  double p75 = 0;
  double p95 = 0;
  double p99 = 0;
  double p999 = 0;
};

// p in (0, 1); `sorted` ascending, n > 0.
double Percentile(const int64_t *sorted, size_t n, double p);
// Sorts values[0..n) in place and summarises them; `count` is copied into the result.
SampleSummary Summarize(int64_t *values, size_t n, int64_t count);

class ExpDecaySample {
 public:
  static constexpr size_t kReservoirSize = 1028;
  static constexpr double kAlphaPerSecond = 0.015;
  static constexpr int64_t kRescaleNs = int64_t{3600} * 1'000'000'000;

  // clock and rng must outlive the sample.
  ExpDecaySample(const Clock *clock, Rng *rng, size_t reservoir_size = kReservoirSize,
                 double alpha_per_second = kAlphaPerSecond);

  void Update(int64_t value) { UpdateAt(clock_->NowNs(), value); }
  void UpdateAt(int64_t now_ns, int64_t value);
  // Forgets every value and restarts the landmark at now.
  void Clear();

  int64_t count() const { return count_; }
  size_t size() const { return heap_.size(); }
  size_t reservoir_size() const { return reservoir_size_; }
  int64_t landmark_ns() const { return t0_ns_; }
  // Appends the kept values (unordered) to *out.
  void CopyValues(MetaVector<int64_t> *out) const;

  // Expensive invariant: size ≤ reservoir and the min-heap order holds. For tests.
  bool IsValid() const;

 private:
  struct Entry {
    double priority;
    int64_t value;
  };
  void Rescale(int64_t now_ns);

  const Clock *clock_;
  Rng *rng_;
  size_t reservoir_size_;
  double alpha_per_second_;
  int64_t count_ = 0;     // updates ever
  int64_t t0_ns_;         // landmark of the priorities
  int64_t next_rescale_ns_;
  MetaVector<Entry> heap_;  // min-heap on priority; size ≤ reservoir_size_
};

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_SAMPLE_H_
