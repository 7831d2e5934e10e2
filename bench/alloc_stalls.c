/*
 * alloc_stalls — how long allocating threads are held up while collections run: with stop-the-world cycles every
 * thread waits for the whole pause; with concurrent ones (PACEGC_CONCURRENT=on) the thread that starts a cycle marks
 * it, and every other allocating thread waits at its next refill until the cycle ends (docs/ARCHITECTURE.md,
 * "Concurrent cycles"), unless the Pacer found that a runway below the goal fits (a program that allocates slowly
 * enough: pacer/trigger.h), when the background thread marks from Go's trigger and the threads allocate on,
 * assisting. This benchmark measures both (docs/BENCHMARKS.md).
 *
 * Phases:
 *   build   the main thread allocates `live` MiB of 64-byte objects in arrays of 16,384 pointers (held in the
 *           root array g_arrays), each object's first word its pattern (odd, never a pointer).
 *   churn   T threads each allocate churn/T MiB of 64-byte objects: every 64th replaces a pseudo-random slot of
 *           the live arrays (xorshift64, a seed per thread; the slot's pattern carried over), the others go into
 *           the thread's ring of 256 (a root) and die 256 allocations later. Each thread reads the clock every
 *           256 allocations and keeps the longest interval between two readings: its longest stall (a
 *           collection's pause, a wait at the goal, being descheduled). --spin N adds a CPU loop of N iterations
 *           after each allocation: a program that computes between allocations, at a lower allocation rate.
 *   verify  every slot points to an object carrying its pattern, else exit 1.
 * --drop-mib D builds D MiB more of the same arrays before the churn, then drops them and collects: free pages for
 * the scavenger to return while the churn runs (released_mib: the change in the heap's released pages over the churn,
 * what the scavenger returned less what the churn took back).
 *
 * Output: RESULT threads=T live_mib=L churn_mib=C spin=N churn_ms=W stall_max_ms=X stall_median_ms=Y (the median
 * over threads of each thread's longest stall) gcs=N concurrent_gcs=K pause_max_ms=P (the longest cycle's pauses
 * together, a concurrent cycle's two, over the churn's last 256 cycles at most) late_stall_max_ms=Z (the longest
 * stall of any thread over the second half of its churn, when the pacer's estimates have settled) runway_gcs=R
 * released_mib=M (the change in heap pages released to the OS over the churn) verified=1, then a human line.
 * Usage: alloc_stalls [--threads T] [--live-mib L] [--churn-mib C] [--spin N] [--drop-mib D]   (defaults 2, 512,
 * 4096, 0, 0). Bad options: one line on stderr, exit 2.
 */
#define _GNU_SOURCE
#include <pacegc/pacegc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  kPointersPerArray = 16384,
  kObjectBytes = 64,
  kReplaceEvery = 64,
  kRingSlots = 256,
  kClockEvery = 256,
  kMaxThreads = 64,
};

static void **g_arrays[1 << 16]; /* the live structure: a root (data/bss) */
static size_t g_narrays;
static void *g_rings[kMaxThreads][kRingSlots]; /* each thread's short-lived objects: roots */

struct Worker {
  int index;
  uint64_t objects;
  long spin;  /* iterations of a CPU loop between two allocations: a program that computes as well */
  double stall_ms;
  double late_stall_ms;  /* the longest over the second half of its churn (the pacer's estimates have settled) */
};

static double NowMs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static uint64_t Pattern(size_t array, size_t slot) { return ((uint64_t)array << 32 | (uint64_t)slot) << 1 | 1; }

static void *NewObject(uint64_t first_word) {
  uint64_t *o = pgc_malloc(kObjectBytes);
  if (o == NULL) {
    fprintf(stderr, "alloc_stalls: out of memory\n");
    exit(1);
  }
  o[0] = first_word;
  return o;
}

static void *Churn(void *arg) {
  struct Worker *w = arg;
  uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(w->index + 1);
  double last = NowMs(), longest = 0, late = 0;
  for (uint64_t n = 0; n < w->objects; ++n) {
    if (n % kReplaceEvery == 0) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      const size_t array = (size_t)(rng % g_narrays), slot = (size_t)((rng >> 20) % kPointersPerArray);
      __atomic_store_n(&g_arrays[array][slot], NewObject(Pattern(array, slot)), __ATOMIC_RELAXED);  /* shared */
    } else {
      __atomic_store_n(&g_rings[w->index][n % kRingSlots], NewObject(n << 1 | 1), __ATOMIC_RELAXED);
    }
    for (volatile long i = 0; i < w->spin; ++i) {
    }
    if (n % kClockEvery == 0) {
      const double now = NowMs();
      if (now - last > longest) longest = now - last;
      if (n >= w->objects / 2 && now - last > late) late = now - last;
      last = now;
    }
  }
  w->stall_ms = longest;
  w->late_stall_ms = late;
  return NULL;
}

static void ReadStats(pgc_stats *s) {
  s->size = sizeof *s;
  s->version = PGC_STATS_VERSION;
  pgc_read_stats(s);
}

static int CompareDoubles(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int ParseCount(const char *text, long min, long max, long *out) {
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > max) return 0;
  *out = v;
  return 1;
}

int main(int argc, char **argv) {
  long threads = 2, live_mib = 512, churn_mib = 4096, spin = 0, drop_mib = 0;
  for (int i = 1; i < argc; ++i) {
    long *target = strcmp(argv[i], "--threads") == 0    ? &threads
                   : strcmp(argv[i], "--live-mib") == 0  ? &live_mib
                   : strcmp(argv[i], "--churn-mib") == 0 ? &churn_mib
                   : strcmp(argv[i], "--spin") == 0      ? &spin
                   : strcmp(argv[i], "--drop-mib") == 0  ? &drop_mib
                                                         : NULL;
    const long min = target == &spin || target == &drop_mib ? 0 : 1;  /* no CPU loop, nothing dropped: valid */
    const long max = target == &threads                              ? kMaxThreads
                     : target == &live_mib || target == &drop_mib ? 1L << 16
                                                                    : 1L << 24;
    if (target == NULL || i + 1 >= argc || !ParseCount(argv[++i], min, max, target)) {
      fprintf(stderr,
              "alloc_stalls: usage: alloc_stalls [--threads 1-%d] [--live-mib N] [--churn-mib N] [--spin N] "
              "[--drop-mib N]\n",
              kMaxThreads);
      return 2;
    }
  }
  /* build */
  g_narrays = (size_t)((live_mib << 20) / kObjectBytes / kPointersPerArray);
  if (g_narrays == 0) g_narrays = 1;
  const size_t dropped = (size_t)((drop_mib << 20) / kObjectBytes / kPointersPerArray);
  if (g_narrays + dropped > sizeof g_arrays / sizeof g_arrays[0]) {
    fprintf(stderr, "alloc_stalls: --live-mib and --drop-mib together may not exceed %zu MiB\n",
            sizeof g_arrays / sizeof g_arrays[0] * kPointersPerArray * kObjectBytes >> 20);
    return 2;
  }
  for (size_t a = 0; a < g_narrays + dropped; ++a) {
    g_arrays[a] = pgc_malloc(kPointersPerArray * sizeof(void *));
    if (g_arrays[a] == NULL) {
      fprintf(stderr, "alloc_stalls: out of memory\n");
      return 1;
    }
    for (size_t s = 0; s < kPointersPerArray; ++s) g_arrays[a][s] = NewObject(Pattern(a, s));
  }
  /* the dropped part: garbage once its arrays are forgotten; collected, its pages free */
  for (size_t a = g_narrays; a < g_narrays + dropped; ++a) g_arrays[a] = NULL;
  if (dropped != 0) pgc_collect();
  /* churn */
  static pgc_stats before, after;
  ReadStats(&before);
  struct Worker workers[kMaxThreads];
  pthread_t ids[kMaxThreads];
  const double start = NowMs();
  for (long t = 0; t < threads; ++t) {
    workers[t] = (struct Worker){(int)t, (uint64_t)(churn_mib << 20) / kObjectBytes / (uint64_t)threads, spin, 0, 0};
    if (pthread_create(&ids[t], NULL, Churn, &workers[t]) != 0) {
      fprintf(stderr, "alloc_stalls: pthread_create failed\n");
      return 1;
    }
  }
  for (long t = 0; t < threads; ++t) pthread_join(ids[t], NULL);
  const double churn_ms = NowMs() - start;
  ReadStats(&after);
  /* verify */
  for (size_t a = 0; a < g_narrays; ++a) {
    for (size_t s = 0; s < kPointersPerArray; ++s) {
      if (*(const uint64_t *)g_arrays[a][s] != Pattern(a, s)) {
        fprintf(stderr, "alloc_stalls: array %zu slot %zu lost its object\n", a, s);
        return 1;
      }
    }
  }
  double stalls[kMaxThreads], late = 0;
  for (long t = 0; t < threads; ++t) {
    stalls[t] = workers[t].stall_ms;
    if (workers[t].late_stall_ms > late) late = workers[t].late_stall_ms;
  }
  qsort(stalls, (size_t)threads, sizeof stalls[0], CompareDoubles);
  const double median = threads % 2 ? stalls[threads / 2] : (stalls[threads / 2 - 1] + stalls[threads / 2]) / 2;
  uint64_t pause_max_ns = 0;
  const uint64_t cycles = after.num_gc - before.num_gc;
  /* Cycle n's pauses are pause_ns[(n + 255) % 256]; the ring holds the last 256 cycles. */
  const uint64_t first = cycles > 256 ? after.num_gc - 255 : before.num_gc + 1;
  for (uint64_t n = first; n <= after.num_gc; ++n) {
    const uint64_t p = after.pause_ns[(n + 255) % 256];
    if (p > pause_max_ns) pause_max_ns = p;
  }
  printf("RESULT threads=%ld live_mib=%ld churn_mib=%ld spin=%ld churn_ms=%.1f stall_max_ms=%.1f "
         "stall_median_ms=%.1f gcs=%llu concurrent_gcs=%llu pause_max_ms=%.1f late_stall_max_ms=%.1f runway_gcs=%llu "
         "released_mib=%.1f verified=1\n",
         threads, live_mib, churn_mib, spin, churn_ms, stalls[threads - 1], median, (unsigned long long)cycles,
         (unsigned long long)(after.num_concurrent_gc - before.num_concurrent_gc), (double)pause_max_ns / 1e6, late,
         (unsigned long long)(after.num_runway_gc - before.num_runway_gc),
         ((double)after.heap_released_bytes - (double)before.heap_released_bytes) / (1 << 20));
  printf("alloc_stalls: %ld threads churned %ld MiB over %ld MiB live in %.0f ms with %llu collections; longest "
         "stall %.1f ms (median thread %.1f ms)\n",
         threads, churn_mib, live_mib, churn_ms, (unsigned long long)cycles, stalls[threads - 1], median);
  return 0;
}
