/* tests/threads/probe_util.h — what the thread and finalizer probes share: a failure-recording CHECK, a statistics
 * snapshot, and a stack scrubber. Public API only (the probes are programs linked against the shipped libraries). */
#ifndef PACEGC_TESTS_THREADS_PROBE_UTIL_H_
#define PACEGC_TESTS_THREADS_PROBE_UTIL_H_

#include <stdio.h>
#include <string.h>

#include <pacegc/pacegc.h>

#define NOINLINE __attribute__((noinline))

/* Set by CHECK; the probe's exit status. */
static int g_failed = 0;
#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) {                           \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fprintf(stderr, " (%s)\n", #cond);     \
      g_failed = 1;                          \
    }                                        \
  } while (0)

static inline pgc_stats Stats(void) {
  pgc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  pgc_read_stats(&s);
  return s;
}

/* Overwrites the dead part of the stack below the caller, so no stale copy of an address survives there. */
static NOINLINE void ScrubStack(void) {
  volatile char buf[16384];
  memset((char *)buf, 0, sizeof(buf));
}

#endif /* PACEGC_TESTS_THREADS_PROBE_UTIL_H_ */
