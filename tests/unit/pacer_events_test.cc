// tests/unit/pacer_events_test.cc — the limit events' policy (pacer/pacer.h, "Limit events"): edges, hysteresis,
// no storms. Drives the shipped Pacer directly (OVER/UNDER, HARD_LIMIT with injected time and memory) and through
// the simulator (pacer_sim.h) under a spiral: live heap above the soft limit, where the CPU limiter flips on and off
// every few milliseconds.
#include <catch2/catch.hpp>

#include <vector>

#include "pacer/pacer.h"
#include "pacer_sim.h"

using namespace pacegc::pacer;
using namespace pacegc::pacer::sim;

namespace {


constexpr uint64_t kMiBytes = uint64_t{1} << 20;

std::vector<EventKind> Kinds(const EventBatch &b) { return std::vector<EventKind>(b.kinds, b.kinds + b.n); }

MemoryState Total(uint64_t bytes) {
  MemoryState m;
  m.total_bytes = bytes;
  return m;
}

Pacer LimitedPacer(int64_t limit_bytes) {
  Settings s;
  s.memory_limit_bytes = limit_bytes;
  s.limit_source = LimitSource::kEnv;
  return MakePacer(s, 0, 0);
}

}  // namespace

TEST_CASE("OVER_LIMIT fires on the upward crossing only; UNDER_LIMIT after a second at or below 95%", "[pacer][events]") {
  Pacer p = LimitedPacer(100 * kMiBytes);
  CHECK(p.PollEvents(1 * kMs, Total(90 * kMiBytes)).n == 0);  // under, and nothing told: no event
  CHECK(Kinds(p.PollEvents(2 * kMs, Total(101 * kMiBytes))) == std::vector<EventKind>{EventKind::kOverLimit});
  // Staying over, or hovering just under the limit (above 95%), says nothing more.
  for (uint64_t t = 3; t < 3000; ++t) {
    const uint64_t total = (t % 2 == 0 ? 101 : 97) * kMiBytes;
    CHECK(p.PollEvents(t * kMs, Total(total)).n == 0);
  }
  // Under 95% for less than the hold: nothing; then a crossing back over resets the hold.
  CHECK(p.PollEvents(3000 * kMs, Total(90 * kMiBytes)).n == 0);
  CHECK(p.PollEvents(3500 * kMs, Total(90 * kMiBytes)).n == 0);
  CHECK(p.PollEvents(3600 * kMs, Total(96 * kMiBytes)).n == 0);  // above the UNDER line: the hold restarts
  CHECK(p.PollEvents(3700 * kMs, Total(90 * kMiBytes)).n == 0);
  CHECK(p.PollEvents(4600 * kMs, Total(90 * kMiBytes)).n == 0);
  CHECK(Kinds(p.PollEvents(4700 * kMs, Total(90 * kMiBytes))) == std::vector<EventKind>{EventKind::kUnderLimit});
  CHECK(p.PollEvents(4800 * kMs, Total(10 * kMiBytes)).n == 0);
  // Removing the limit while over counts as under (after the hold).
  CHECK(Kinds(p.PollEvents(5000 * kMs, Total(200 * kMiBytes))) == std::vector<EventKind>{EventKind::kOverLimit});
  p.SetMemoryLimit(kNoLimit);
  CHECK(p.PollEvents(5001 * kMs, Total(200 * kMiBytes)).n == 0);
  CHECK(Kinds(p.PollEvents(6001 * kMs, Total(200 * kMiBytes))) == std::vector<EventKind>{EventKind::kUnderLimit});
}

TEST_CASE("HARD_LIMIT: the first hit at once, then at most one event per second, no hit lost", "[pacer][events]") {
  Pacer p = LimitedPacer(kNoLimit);
  p.SetHardLimit(64 * kMiBytes);
  CHECK(p.hard_limit_bytes() == int64_t{64} * static_cast<int64_t>(kMiBytes));
  CHECK(p.PacingLimitBytes() == int64_t{64} * static_cast<int64_t>(kMiBytes));  // no soft limit: pacing uses the cap
  CHECK_FALSE(p.EventsMayBeDue());
  p.OnHardLimitHit(10 * kMs, /*failed=*/true);
  CHECK(p.EventsMayBeDue());
  CHECK(Kinds(p.PollEvents(10 * kMs, Total(64 * kMiBytes))) == std::vector<EventKind>{EventKind::kHardLimit});
  // A hundred hits within the next second: one event, when the second is over.
  for (uint64_t t = 11; t < 111; ++t) {
    p.OnHardLimitHit(t * kMs, t % 2 == 0);
    CHECK(p.PollEvents(t * kMs, Total(64 * kMiBytes)).n == 0);
  }
  CHECK(Kinds(p.PollEvents(1010 * kMs, Total(64 * kMiBytes))) == std::vector<EventKind>{EventKind::kHardLimit});
  CHECK(p.PollEvents(5000 * kMs, Total(64 * kMiBytes)).n == 0);  // nothing pending
  const PacerStats st = p.Stats(5000 * kMs, Total(64 * kMiBytes));
  CHECK(st.hard_limit_failures == 51);
  CHECK(st.hard_limit_gc == 50);
  // A soft limit above the cap is clamped for pacing, and reported as set.
  p.SetMemoryLimit(128 * kMiBytes);
  CHECK(p.PacingLimitBytes() == int64_t{64} * static_cast<int64_t>(kMiBytes));
  CHECK(p.Stats(5000 * kMs, Total(0)).memory_limit_bytes == int64_t{128} * static_cast<int64_t>(kMiBytes));
}

TEST_CASE("spiral: the limiter flips often, LIMITER_ON/OFF fire once per held edge, alternating", "[pacer][events]") {
  Scenario s;
  s.name = "spiral";
  s.cpus = 2;
  s.limit_bytes = static_cast<int64_t>(256 * kMiBytes);
  s.live_bytes = 384 * kMiBytes;  // live above the limit: every trigger check finds a collection due
  s.alloc_bytes_per_ms = 2 * kMiBytes;
  Simulator sim(s);
  std::vector<EventKind> told;
  uint64_t flips = 0;
  bool was_on = false;
  const uint64_t kRunNs = 20'000 * kMs;
  for (uint64_t t = 10 * kMs; t <= kRunNs; t += 10 * kMs) {  // polled every 10 ms (the library: every second or sooner)
    sim.RunUntil(t);
    if (sim.pacer().limiter_on() != was_on) {
      ++flips;
      was_on = !was_on;
    }
    const EventBatch b = sim.PollEvents();
    told.insert(told.end(), b.kinds, b.kinds + b.n);
  }
  int on = 0, off = 0, over = 0;
  bool state = false;
  for (EventKind k : told) {
    if (k == EventKind::kLimiterOn) {
      CHECK_FALSE(state);
      state = true;
      ++on;
    } else if (k == EventKind::kLimiterOff) {
      CHECK(state);
      state = false;
      ++off;
    } else if (k == EventKind::kOverLimit) {
      ++over;
    }
  }
  INFO("limiter flips seen at 10 ms polls: " << flips << ", ON events " << on << ", OFF events " << off);
  CHECK(on >= 1);
  CHECK(over == 1);  // over the limit for the whole run: one edge
  CHECK(flips > static_cast<uint64_t>(4 * on));  // the events do not follow every flip
  CHECK(on <= static_cast<int>(kRunNs / kEventHoldNs) + 1);  // at most one ON per hold

  // The limit goes away: the total is under it from then on, the limiter stops; both edges follow.
  sim.SetMemoryLimit(kNoLimit);
  bool under = false, limiter_off = !state;
  for (uint64_t t = kRunNs + 10 * kMs; t <= kRunNs + 10'000 * kMs && !(under && limiter_off); t += 10 * kMs) {
    sim.RunUntil(t);
    const EventBatch b = sim.PollEvents();
    for (uint32_t i = 0; i < b.n; ++i) {
      under = under || b.kinds[i] == EventKind::kUnderLimit;
      limiter_off = limiter_off || b.kinds[i] == EventKind::kLimiterOff;
    }
  }
  CHECK(under);
  CHECK(limiter_off);
}
