/*
 * bench/sleeper.h — one step of the 1 ms sleeper that the stall benchmarks share (machine_stalls.c,
 * wp_fault_stalls.cc; wakeup_latency.c keeps its own, which also records every wake-up): intended = now + 1 ms,
 * clock_nanosleep to it (absolute, CLOCK_MONOTONIC, retried on EINTR), and the lateness, now - intended, is
 * returned in milliseconds; and a run of such steps. C and C++.
 */
#ifndef PACEGC_BENCH_SLEEPER_H_
#define PACEGC_BENCH_SLEEPER_H_

#include <stdio.h>
#include <time.h>

static inline double BenchMonotonicMs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static inline double BenchSleepOneMsLate(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const double intended = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6 + 1;
  ts.tv_nsec += 1000 * 1000;
  if (ts.tv_nsec >= 1000 * 1000 * 1000) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000 * 1000 * 1000;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
  }
  return BenchMonotonicMs() - intended;
}

/* What a run of the sleeper saw. */
struct BenchSleeperResult {
  long wakeups;
  long over_10ms;
  double late_max_ms;
};

/* Sleeps 1 ms at a time for `seconds`, printing "late X ms at T s" for the first `print_max` wake-ups more than
 * 10 ms late (all of them when print_max is negative). */
static inline struct BenchSleeperResult BenchRunSleeper(double seconds, long print_max) {
  struct BenchSleeperResult r = {0, 0, 0};
  const double start = BenchMonotonicMs();
  while (BenchMonotonicMs() - start < seconds * 1e3) {
    const double late = BenchSleepOneMsLate();
    ++r.wakeups;
    if (late > r.late_max_ms) r.late_max_ms = late;
    if (late > 10 && (++r.over_10ms <= print_max || print_max < 0)) {
      printf("late %.1f ms at %.3f s\n", late, (BenchMonotonicMs() - start) / 1e3);
    }
  }
  return r;
}

#endif /* PACEGC_BENCH_SLEEPER_H_ */
