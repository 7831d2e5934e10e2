// metrics/clock.h — the time and randomness the metrics read, injected so their math is deterministic in tests
// (STYLE.md point 8: policy objects with injected inputs).
//
//   Clock   NowNs(): nanoseconds on a monotonic time line. Only differences are meaningful. The default,
//           MonotonicClock, reads CLOCK_MONOTONIC through gc/os.h (the one file that talks to the OS).
//   Rng     NextUnit(): a uniform double in (0, 1] — never 0, because the exponentially decaying reservoir
//           divides by it. The default, FastRng, is xoshiro256** seeded through SplitMix64 (Blackman & Vigna):
//           a few nanoseconds per draw, 2^256 − 1 period, deterministic for a given seed.
//
// Thread safety: MonotonicClock is stateless and may be shared. An Rng has state and is NOT thread-safe: each
// histogram owns one and draws from it under the histogram's mutex. Test clocks (ManualClock) use an atomic so a
// test may advance time while other threads read it.
#ifndef PACEGC_METRICS_CLOCK_H_
#define PACEGC_METRICS_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace pacegc::metrics {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNs() const = 0;
};

// CLOCK_MONOTONIC. One shared instance, never destroyed (usable from detached threads during process exit).
class MonotonicClock final : public Clock {
 public:
  int64_t NowNs() const override;
  static MonotonicClock *Instance();
};

// A clock that moves only when told to: for tests and simulations.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 0) : now_ns_(start_ns) {}
  int64_t NowNs() const override { return now_ns_.load(std::memory_order_acquire); }
  void Set(int64_t now_ns) { now_ns_.store(now_ns, std::memory_order_release); }
  void Advance(int64_t delta_ns) { now_ns_.fetch_add(delta_ns, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> now_ns_;
};

class Rng {
 public:
  virtual ~Rng() = default;
  // Uniform in (0, 1].
  virtual double NextUnit() = 0;
};

// xoshiro256**; the 256-bit state is expanded from the seed with SplitMix64 (never all zero).
class FastRng final : public Rng {
 public:
  explicit FastRng(uint64_t seed = 0x9E3779B97F4A7C15ull) { Seed(seed); }
  void Seed(uint64_t seed);
  uint64_t Next64();
  double NextUnit() override;

 private:
  uint64_t s_[4];
};

// One step of SplitMix64: advances *state and returns a well-mixed 64-bit value (also used to derive seeds).
uint64_t SplitMix64(uint64_t *state);

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_CLOCK_H_
