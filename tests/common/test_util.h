// tests/common/test_util.h — helpers shared by the API, stress and OOM tests. Uses only the public headers.
//
// Testing a conservative collector
//   "X survived" is checked by content: every surviving object carries a pattern derived from its key, so a
//   reclaimed-and-reused object (pgc_malloc zeroes) or an overwritten one fails the check.
//   "X died" is observed through a finalizer, never by looking at X's memory. To keep stale copies of X's address
//   out of the roots, X is created in a noinline helper that returns only an id, the stack below the caller is
//   scrubbed (ScrubStack), and the test runs a few collections before requiring the finalizer to have run.
#ifndef PACEGC_TESTS_COMMON_TEST_UTIL_H_
#define PACEGC_TESTS_COMMON_TEST_UTIL_H_

#include <pacegc/pacegc.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pgc_test {

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;

#define PGC_TEST_NOINLINE __attribute__((noinline))

// A full snapshot of the statistics.
inline pgc_stats Stats() {
  pgc_stats s;
  std::memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  pgc_read_stats(&s);
  return s;
}

// Collections that came due between two snapshots: run, or held back by the GC CPU limiter (each postponement
// is a trigger check that found a collection due and was refused; on a loaded machine, or in the concurrent run
// of a sanitizer build, the limiter can hold back every one). What a test of the trigger counts.
inline uint64_t CollectionsDue(const pgc_stats &before, const pgc_stats &after) {
  return (after.num_gc - before.num_gc) + (after.limiter_postponed - before.limiter_postponed);
}

// splitmix64: a small deterministic PRNG (fixed seed per test / thread).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Log-uniform in [lo, hi]: as many 16..31 byte objects as 32 KiB..64 KiB ones.
  size_t LogUniform(size_t lo, size_t hi) {
    int lo_bits = 63 - __builtin_clzll(lo);
    int hi_bits = 63 - __builtin_clzll(hi);
    int bits = lo_bits + static_cast<int>(Below(static_cast<uint64_t>(hi_bits - lo_bits + 1)));
    size_t base = size_t{1} << bits;
    size_t v = base + static_cast<size_t>(Below(base));
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return v;
  }

 private:
  uint64_t state_;
};

inline uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

// Byte i of the pattern for key.
inline uint8_t PatternByte(uint64_t key, size_t i) {
  return static_cast<uint8_t>((key >> ((i & 7) * 8)) ^ (i * 131) ^ 0x5A);
}
inline void FillPattern(void *p, size_t n, uint64_t key) {
  auto *b = static_cast<uint8_t *>(p);
  for (size_t i = 0; i < n; ++i) b[i] = PatternByte(key, i);
}
inline bool CheckPattern(const void *p, size_t n, uint64_t key) {
  const auto *b = static_cast<const uint8_t *>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != PatternByte(key, i)) return false;
  }
  return true;
}

// Overwrites a large part of the stack below the caller, so stale copies of pointers in dead frames do not act as
// roots. Also clobbers the caller-saved registers by calling memset.
PGC_TEST_NOINLINE inline void ScrubStack() {
  char buf[128 * 1024];
  std::memset(buf, 0, sizeof(buf));
  __asm__ __volatile__("" : : "r"(buf) : "memory");
}

// Scrubs the stack and runs n forced collections (each followed by a scrub).
PGC_TEST_NOINLINE inline void CollectN(int n) {
  for (int i = 0; i < n; ++i) {
    ScrubStack();
    pgc_collect();
  }
  ScrubStack();
}

// Allocates about `bytes` of unreachable objects of sizes log-uniform in [min_size, max_size], half of them
// atomic, the scanned ones linked in short chains (at most 8 objects, so little is reachable at any moment).
// Writes the first and last byte of each. Returns the object count.
PGC_TEST_NOINLINE inline size_t MakeGarbage(Rng &rng, size_t bytes, size_t min_size = 16,
                                            size_t max_size = 64 * kKiB) {
  size_t done = 0, count = 0;
  void *prev = nullptr;
  while (done < bytes) {
    size_t n = rng.LogUniform(min_size, max_size);
    bool atomic = (rng.Next() & 1) != 0;
    void *p = atomic ? pgc_malloc_atomic(n) : pgc_malloc(n);
    if (p == nullptr) return count;  // the caller's checks will notice the heap is unusable
    auto *b = static_cast<unsigned char *>(p);
    b[n - 1] = 0xEE;
    if (!atomic && n >= sizeof(void *)) {
      // Short chains of garbage (the chain being built is reachable from `prev` until it is cut, so keep it short).
      std::memcpy(b, &prev, sizeof(prev));
      prev = (count % 8 == 7) ? nullptr : p;
    } else {
      b[0] = 0xEE;
    }
    done += n;
    ++count;
  }
  return count;
}

// PACEGC_STRESS_SCALE (a positive number, default 1) scales the amount of work of the long tests.
inline double StressScale() {
  const char *v = std::getenv("PACEGC_STRESS_SCALE");
  if (v == nullptr || *v == '\0') return 1.0;
  char *end = nullptr;
  double d = std::strtod(v, &end);
  if (end == v || !(d > 0.0)) return 1.0;
  return d;
}
inline uint64_t Scaled(uint64_t n, uint64_t minimum = 1) {
  double d = static_cast<double>(n) * StressScale();
  uint64_t r = static_cast<uint64_t>(d);
  return r < minimum ? minimum : r;
}

// GOGC as the library should have read it at start: 100 if unset, -1 for "off".
// Returns false when the variable holds something this helper does not parse (the caller then skips the check).
inline bool ExpectedGcPercentFromEnv(int64_t *out) {
  const char *v = std::getenv("GOGC");
  if (v == nullptr || *v == '\0') {
    *out = 100;
    return true;
  }
  if (std::string(v) == "off") {
    *out = -1;
    return true;
  }
  char *end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end != '\0') return false;
  *out = n < 0 ? -1 : n;
  return true;
}

// Whether the library was started with PACEGC_ABORT_ON_MISUSE on (README: on, yes, true or 1), so that a test of
// misuse being reported and ignored must skip. (A malformed value would have stopped the process at start-up.)
inline bool AbortOnMisuseFromEnv() {
  const char *v = std::getenv("PACEGC_ABORT_ON_MISUSE");
  if (v == nullptr) return false;
  std::string s = v;
  return s == "on" || s == "yes" || s == "true" || s == "1";
}

inline bool EnvIsSet(const char *name) {
  const char *v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// Per-id finalizer observation. Finalizers receive the id as their data pointer (a small integer, never a heap
// address), so the finalizer table cannot act as a root through it.
class FinalizerLog {
 public:
  static constexpr size_t kMaxIds = 4096;
  void Reset() {
    for (auto &c : counts_) c.store(0, std::memory_order_relaxed);
  }
  void Hit(size_t id) { counts_[id].fetch_add(1, std::memory_order_relaxed); }
  int Count(size_t id) const { return counts_[id].load(std::memory_order_relaxed); }
  // Number of ids in [0, n) whose finalizer ran at least once; *max_count gets the largest count.
  size_t Ran(size_t n, int *max_count = nullptr) const {
    size_t ran = 0;
    int mx = 0;
    for (size_t i = 0; i < n; ++i) {
      int c = Count(i);
      if (c > 0) ++ran;
      if (c > mx) mx = c;
    }
    if (max_count != nullptr) *max_count = mx;
    return ran;
  }
  static void *Data(size_t id) { return reinterpret_cast<void *>(static_cast<uintptr_t>(id)); }
  static size_t Id(void *data) { return static_cast<size_t>(reinterpret_cast<uintptr_t>(data)); }

 private:
  std::atomic<int> counts_[kMaxIds]{};
};

// Collects until `done()` is true or `max_rounds` collections ran. Returns true if done() became true.
template <typename Pred>
PGC_TEST_NOINLINE bool CollectUntil(Pred done, int max_rounds = 12) {
  for (int i = 0; i < max_rounds; ++i) {
    if (done()) return true;
    ScrubStack();
    pgc_collect();
  }
  return done();
}

}  // namespace pgc_test

#endif  // PACEGC_TESTS_COMMON_TEST_UTIL_H_
