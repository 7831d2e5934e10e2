// metrics/clock.cc — see clock.h. The default clock and the default random number generator.
#include "metrics/clock.h"

#include <new>

#include "base/os.h"

namespace pacegc::metrics {

int64_t MonotonicClock::NowNs() const { return static_cast<int64_t>(internal::os::MonotonicNs()); }

MonotonicClock *MonotonicClock::Instance() {
  // Constructed in static storage and never destroyed: the periodic logger thread may read it during exit.
  alignas(MonotonicClock) static unsigned char storage[sizeof(MonotonicClock)];
  static MonotonicClock *instance = new (storage) MonotonicClock();
  return instance;
}

uint64_t SplitMix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void FastRng::Seed(uint64_t seed) {
  uint64_t st = seed;
  for (uint64_t &word : s_) word = SplitMix64(&st);
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the one state xoshiro cannot leave
}

namespace {
inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

uint64_t FastRng::Next64() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double FastRng::NextUnit() {
  // The top 53 bits give k in [0, 2^53); (k + 1) / 2^53 is uniform on (0, 1].
  return static_cast<double>((Next64() >> 11) + 1) * 0x1.0p-53;
}

}  // namespace pacegc::metrics
