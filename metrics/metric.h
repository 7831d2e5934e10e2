// metrics/metric.h — the kinds of metric a registry holds, in the style of go-metrics (rcrowley/go-metrics):
//
//   Counter     int64 that goes up and down (Inc/Dec/Count/Clear). Lock-free: one relaxed atomic.
//   Gauge       the last int64 set (Update/Value). Lock-free.
//   GaugeFloat  the last double set. Lock-free.
//   Meter       events: Mark(n), Count, 1/5/15-minute EWMA rates (ewma.h) and the mean rate (count / seconds
//               since the meter started or was reset). Mutex.
//   Histogram   int64 values in an exponentially decaying reservoir (sample.h): count, min, max, mean, stddev,
//               p50/p75/p95/p99/p99.9. Mutex.
//   Timer       durations in nanoseconds: a Histogram of them plus a Meter of how many. Each half has its own
//               lock, so a snapshot taken during an update may see the update in one half only.
//
// Meter ticking. go-metrics ticks every meter from one goroutine every 5 s. pacegc ticks lazily instead: every
// Mark and Snapshot first applies the ticks whose 5 s boundaries (counted from the meter's start) have passed
// since the last one (Ewma::TickN), and only then adds the new events. Events are therefore attributed to the
// interval in which they were marked, exactly as with a ticker thread, without a thread and with an injected
// clock. A Meter nobody marks or reads costs nothing.
//
// Lifetime: metrics are created by a Registry in metadata memory (NewMetric/DeleteMetric) and live as long as it
// does; Unregister never frees one (registry.h), so a handle stays valid.
#ifndef PACEGC_METRICS_METRIC_H_
#define PACEGC_METRICS_METRIC_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <utility>

#include "base/meta.h"
#include "metrics/clock.h"
#include "metrics/ewma.h"
#include "metrics/sample.h"

namespace pacegc::metrics {

// Values match pgc_metric_kind in include/pacegc/pacegc.h.
enum class Kind : int { kCounter = 1, kGauge = 2, kGaugeFloat = 3, kMeter = 4, kHistogram = 5, kTimer = 6 };

// "counter", "gauge", "gauge_float", "meter", "histogram", "timer".
const char *KindName(Kind kind);

class Metric {
 public:
  explicit Metric(Kind kind) : kind_(kind) {}
  virtual ~Metric() = default;
  Metric(const Metric &) = delete;
  Metric &operator=(const Metric &) = delete;

  Kind kind() const { return kind_; }
  // Back to the state of a newly registered metric (used when a name is registered again after Unregister).
  virtual void Reset() = 0;

 private:
  const Kind kind_;
};

class Counter final : public Metric {
 public:
  static constexpr Kind kKind = Kind::kCounter;
  Counter() : Metric(kKind) {}
  void Inc(int64_t n = 1) { count_.fetch_add(n, std::memory_order_relaxed); }
  void Dec(int64_t n = 1) { count_.fetch_sub(n, std::memory_order_relaxed); }
  int64_t Count() const { return count_.load(std::memory_order_relaxed); }
  void Clear() { count_.store(0, std::memory_order_relaxed); }
  void Reset() override { Clear(); }

 private:
  std::atomic<int64_t> count_{0};  // wraps on overflow (atomic arithmetic is two's complement)
};

class Gauge final : public Metric {
 public:
  static constexpr Kind kKind = Kind::kGauge;
  Gauge() : Metric(kKind) {}
  void Update(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }
  void Reset() override { Update(0); }

 private:
  std::atomic<int64_t> value_{0};
};

class GaugeFloat final : public Metric {
 public:
  static constexpr Kind kKind = Kind::kGaugeFloat;
  GaugeFloat() : Metric(kKind) {}
  void Update(double v) { value_.store(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }
  void Reset() override { Update(0); }

 private:
  std::atomic<double> value_{0};
};

struct MeterSnapshot {
  int64_t count = 0;
  double rate1_per_s = 0;
  double rate5_per_s = 0;
  double rate15_per_s = 0;
  double rate_mean_per_s = 0;  // count / seconds since start; 0 when no time has passed
};

class Meter final : public Metric {
 public:
  static constexpr Kind kKind = Kind::kMeter;
  explicit Meter(const Clock *clock);  // clock must outlive the meter
  void Mark(int64_t n = 1);
  int64_t Count() const;
  MeterSnapshot Snapshot();
  void Reset() override;

 private:
  void TickIfNeededLocked(int64_t now_ns);

  const Clock *clock_;
  mutable std::mutex mu_;  // guards everything below
  int64_t count_ = 0;      // events marked since start
  int64_t start_ns_;       // start (or last Reset); tick boundaries are start + k × kTickNs
  int64_t last_tick_ns_;   // the latest boundary already applied; start_ns_ ≤ last_tick_ns_ ≤ now
  Ewma m1_;
  Ewma m5_;
  Ewma m15_;
};

class Histogram final : public Metric {
 public:
  static constexpr Kind kKind = Kind::kHistogram;
  // Owns a FastRng seeded with `seed`.
  Histogram(const Clock *clock, uint64_t seed);
  // Draws from an injected rng (which must outlive the histogram), with a reservoir of the given size.
  Histogram(const Clock *clock, Rng *rng, size_t reservoir_size = ExpDecaySample::kReservoirSize);

  void Update(int64_t v);
  int64_t Count() const;
  // false only if the copy of the reservoir could not be allocated.
  bool Snapshot(SampleSummary *out) const;
  void Clear();
  void Reset() override { Clear(); }
  // Expensive invariant check of the reservoir (tests).
  bool IsValid() const;
  size_t SampleSize() const;

 private:
  mutable std::mutex mu_;  // guards sample_ and own_rng_
  FastRng own_rng_;        // declared before sample_, which may point at it
  ExpDecaySample sample_;
};

class Timer final : public Metric {
 public:
  static constexpr Kind kKind = Kind::kTimer;
  Timer(const Clock *clock, uint64_t seed) : Metric(kKind), histogram_(clock, seed), meter_(clock) {}
  void UpdateNs(int64_t duration_ns) {
    histogram_.Update(duration_ns);
    meter_.Mark(1);
  }
  Histogram &histogram() { return histogram_; }
  Meter &meter() { return meter_; }
  const Histogram &histogram() const { return histogram_; }
  void Reset() override {
    histogram_.Reset();
    meter_.Reset();
  }

 private:
  Histogram histogram_;  // durations, nanoseconds
  Meter meter_;          // one mark per duration
};

// Allocation of metrics in collector metadata memory. nullptr when out of memory.
template <typename T, typename... Args>
T *NewMetric(Args &&...args) {
  void *mem = internal::meta::Malloc(sizeof(T));
  if (mem == nullptr) return nullptr;
  return new (mem) T(std::forward<Args>(args)...);
}
void DeleteMetric(Metric *m);

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_METRIC_H_
