/*
 * wakeup_latency — how late a sleeping registered thread wakes up while a large live heap is collected: the target
 * benchmark of issue 12 (mostly-concurrent marking), run first on the stop-the-world collector as the baseline.
 *
 * The target, as the issue states it: a registered thread that sleeps 1 ms in a loop, while the heap holds 1 GiB
 * live and another thread allocates 8 GiB of short-lived objects (replacing 1 old pointer per 64 allocations with a
 * new object), is never stopped longer than 25 ms, its wake-up lateness has p99 <= 2 ms (both better than Go 1.19 on
 * the same machine), the live structure is intact, and the churn takes <= 1.5x the wall time of the same binary with
 * PACEGC_CONCURRENT=off. One source, two executables (exactly one macro):
 *
 *   WAKEUP_LATENCY_PACEGC   pgc_malloc; threads made with pthread_create are registered by pacegc's interposed
 *                           pthread_create (gc/thread_start.h), so the sleeper and the churn thread are scanned
 *                           and stopped like any registered thread
 *   WAKEUP_LATENCY_BDWGC    GC_MALLOC; GC_THREADS before gc.h redirects pthread_create to GC_pthread_create, which
 *                           registers the new thread the same way (GC_INIT first)
 * The Go 1.19 peer is bench/peers/go/wakeup/main.go: the same shape and the same output lines.
 *
 * Phases:
 *   build    the main thread allocates `arrays` arrays of 16,384 pointers (128 KiB each), held in the root array
 *            g_arrays, and fills each with fresh 64-byte objects whose first word is Pattern(array, slot) (odd, so
 *            never a pointer). 1,024 arrays = 16.8 M objects = 1 GiB live (+ 128 MiB of arrays), as bench/big_heap.c.
 *            Collections happen as the collector's policy decides.
 *   churn    two threads start. The sleeper loops: intended = now + 1 ms; clock_nanosleep(TIMER_ABSTIME, intended)
 *            (re-issued on EINTR: a stop signal interrupts it); lateness = now - intended, one sample per wake-up,
 *            kept in a system-malloc array (not scanned, never touched by the collector). The intended time is
 *            taken from the clock before each sleep, not from a fixed grid, so one long stop is one late sample,
 *            not a run of them. The churn thread allocates churn_bytes / 64 objects of 64 bytes; every 64th
 *            replaces a pseudo-random slot of the live arrays (xorshift64, fixed seed: the same slots in every
 *            run and in the Go peer) and carries that slot's pattern, so the old object there dies and the new one
 *            must be kept; the others get an odd counter in their first word and go into a 256-slot ring
 *            (g_ring, a root), dying 256 allocations later. The churn wall time is measured in the churn thread.
 *            When the churn ends, the sleeper is told to stop and both are joined.
 *   verify   every slot of every array must point to an object whose first word is its pattern; a mismatch is
 *            printed and the program exits 1 (the live structure was not kept intact).
 *
 * Output (key=value, one line each): `build` (wall, collections), `latency` (the sleeper's histogram in powers of
 * two of microseconds), and `RESULT`: wake-ups, lateness max / p50 / p99 / p99.9 (nearest rank over all
 * samples), churn wall time, collections during the churn and the longest pause among them (pacegc: pgc_stats'
 * pause ring; bdwgc: GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_START_WORLD wall time, both only for cycles that
 * ended during the churn), slots replaced, verified=1, peak RSS (getrusage). Then a human summary.
 * Lateness measures everything that delays the sleeper: being stopped by the collector, and being runnable while
 * the two cores run other threads (the churn thread, a collector's helpers, other processes on a shared machine).
 *
 * Not handled: GOGC and bdwgc's settings come from the environment as usual (GOGC=100 by default for pacegc;
 * bdwgc's default free-space divisor 3). PACEGC_CONCURRENT does not exist before issue 12; until then the variable
 * is ignored and both runs of the 1.5x target are the same stop-the-world collector.
 *
 * Usage: wakeup_latency [--live-gib G] [--churn-gib G] [--log-late-ms X]   (defaults 1 and 8; G may be fractional,
 * e.g. 0.25). --log-late-ms prints, before the summary, one line per wake-up more than X ms late with its time in
 * seconds since main started ("late 3.2 ms at 14.5 s"), to set beside GODEBUG=gctrace=1's cycle times.
 * Bad options: one line on stderr, exit 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if (defined(WAKEUP_LATENCY_PACEGC) + defined(WAKEUP_LATENCY_BDWGC)) != 1
#error "define exactly one of WAKEUP_LATENCY_PACEGC, WAKEUP_LATENCY_BDWGC"
#endif

#if defined(WAKEUP_LATENCY_PACEGC)
#include <pacegc/pacegc.h>
#define ALLOCATOR_NAME "pacegc"
#define ALLOC(bytes) pgc_malloc(bytes)
#else
#define GC_THREADS /* pthread_create -> GC_pthread_create: the sleeper and the churn thread are registered */
#include <gc/gc.h>
#define ALLOCATOR_NAME "bdwgc"
#define ALLOC(bytes) GC_MALLOC(bytes)
#endif

enum {
  kPointersPerArray = 16384, /* 128 KiB arrays: large objects in both collectors */
  kObjectBytes = 64,
  kReplaceEvery = 64,        /* one live slot replaced per 64 churn allocations */
  kRingSlots = 256,          /* short-lived objects die 256 allocations after their birth */
  kMaxArrays = 4096,         /* 4 GiB live at most */
  kSleepNs = 1000000,        /* the sleeper's period: 1 ms */
  kHistBuckets = 32,         /* lateness histogram: bucket i counts samples < 2^i us (the last: all longer) */
};

/* Roots (bss, scanned by both collectors). Not static: their stores must not be optimised away. */
void **g_arrays[kMaxArrays]; /* the live structure: written by main (build) and the churn thread (replacements) */
void *g_ring[kRingSlots];    /* the churn's short-lived objects, written by the churn thread only */

static long g_num_arrays;          /* set before the threads start, then read-only */
static uint64_t g_churn_allocs;    /* likewise */
static uint64_t g_churn_ns;        /* written by the churn thread, read by main after joining it */
static uint64_t g_replaced;        /* likewise */
static atomic_int g_stop_sleeper;  /* set by main when the churn has ended */
static uint64_t *g_late_ns;        /* the sleeper's samples (system malloc); written by the sleeper only */
static uint64_t *g_wake_ns;        /* when each sample's wake-up happened (NowNs), likewise */
static size_t g_late_count, g_late_cap;
static double g_log_late_ms = -1;  /* --log-late-ms: list the wake-ups later than this, with their times */
static uint64_t g_start_ns;        /* NowNs() when main starts: the origin of those times */

static uint64_t NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Odd (never a pointer), unique per slot, the same in the C and Go programs. */
static uint64_t Pattern(uint64_t array, uint64_t slot) { return (array << 20 | slot) << 1 | 1; }

static uint64_t XorShift64(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

/* ---- Collector counters: completed collections and the longest pause among cycles (from, to] ------------------ */

#if defined(WAKEUP_LATENCY_PACEGC)
static pgc_stats g_stats; /* large (pause ring, histograms): not on the stack; read by main only */

static uint64_t NumGc(void) {
  g_stats.size = sizeof(g_stats);
  g_stats.version = PGC_STATS_VERSION;
  pgc_read_stats(&g_stats);
  return g_stats.num_gc;
}

/* Cycle n's pause is pause_ns[(n + 255) % 256]; with more than 256 cycles in the range, the lifetime maximum. */
static uint64_t MaxPauseNs(uint64_t from, uint64_t to) {
  NumGc();
  if (to - from > 256) return g_stats.pause_max_ns;
  uint64_t max = 0;
  for (uint64_t n = from + 1; n <= to; ++n) {
    uint64_t p = g_stats.pause_ns[(n + 255) % 256];
    if (p > max) max = p;
  }
  return max;
}
#else
static atomic_int g_in_churn;         /* 1 while the churn runs: only those cycles count */
static uint64_t g_stop_start_ns;      /* written by the collecting thread with the world stopped */
static atomic_uint_fast64_t g_churn_pause_max_ns;

static void GC_CALLBACK OnGcEvent(GC_EventType e) {
  if (e == GC_EVENT_PRE_STOP_WORLD) {
    g_stop_start_ns = NowNs();
  } else if (e == GC_EVENT_POST_START_WORLD && g_stop_start_ns != 0) {
    uint64_t p = NowNs() - g_stop_start_ns;
    g_stop_start_ns = 0;
    if (atomic_load(&g_in_churn) && p > atomic_load(&g_churn_pause_max_ns)) atomic_store(&g_churn_pause_max_ns, p);
  }
}

static uint64_t NumGc(void) { return (uint64_t)GC_get_gc_no(); }
static uint64_t MaxPauseNs(uint64_t from, uint64_t to) {
  (void)from;
  (void)to;
  return atomic_load(&g_churn_pause_max_ns);
}
#endif

/* ---- The two threads ------------------------------------------------------------------------------------------ */

static void *Sleeper(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&g_stop_sleeper, memory_order_relaxed)) {
    uint64_t intended = NowNs() + kSleepNs;
    struct timespec ts = {(time_t)(intended / 1000000000u), (long)(intended % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    uint64_t now = NowNs();
    if (g_late_count == g_late_cap) {
      size_t cap = g_late_cap ? 2 * g_late_cap : 65536;
      uint64_t *p = realloc(g_late_ns, cap * sizeof(*p));
      if (p == NULL) {
        fprintf(stderr, "wakeup_latency: out of memory for samples\n");
        exit(1);
      }
      g_late_ns = p;
      p = realloc(g_wake_ns, cap * sizeof(*p));
      if (p == NULL) {
        fprintf(stderr, "wakeup_latency: out of memory for samples\n");
        exit(1);
      }
      g_wake_ns = p;
      g_late_cap = cap;
    }
    g_wake_ns[g_late_count] = now;
    g_late_ns[g_late_count++] = now > intended ? now - intended : 0;
  }
  return NULL;
}

static void *Churn(void *arg) {
  (void)arg;
  uint64_t rng = 0x9E3779B97F4A7C15u;
  uint64_t live_objects = (uint64_t)g_num_arrays * kPointersPerArray, replaced = 0;
  uint64_t t0 = NowNs();
  for (uint64_t n = 0; n < g_churn_allocs; ++n) {
    uint64_t *obj = (uint64_t *)ALLOC(kObjectBytes);
    if (obj == NULL) {
      fprintf(stderr, "wakeup_latency: out of memory in the churn\n");
      exit(1);
    }
    if (n % kReplaceEvery == kReplaceEvery - 1) {
      uint64_t slot = XorShift64(&rng) % live_objects;
      uint64_t a = slot / kPointersPerArray, i = slot % kPointersPerArray;
      obj[0] = Pattern(a, i);
      g_arrays[a][i] = obj;
      ++replaced;
    } else {
      obj[0] = n << 1 | 1;
      g_ring[n % kRingSlots] = obj;
    }
  }
  g_churn_ns = NowNs() - t0;
  g_replaced = replaced;
  return NULL;
}

/* ---- Reporting ------------------------------------------------------------------------------------------------ */

static int CompareU64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least q of all samples at or below it. `sorted` ascending, n > 0. */
static uint64_t Quantile(const uint64_t *sorted, size_t n, double q) {
  size_t rank = (size_t)(q * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static void BadOption(const char *what) {
  fprintf(stderr, "wakeup_latency: %s (usage: wakeup_latency [--live-gib G] [--churn-gib G] [--log-late-ms X], G, X > 0, live <= 4)\n",
          what);
  exit(2);
}

static double ParsePositive(const char *name, const char *unit, const char *text) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v > 0) || v > 1024) {
    static char msg[256];
    snprintf(msg, sizeof(msg), "%s needs a positive number of %s, not '%s'", name, unit, text);
    BadOption(msg);
  }
  return v;
}

int main(int argc, char **argv) {
  g_start_ns = NowNs();
  double live_gib = 1, churn_gib = 8;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--live-gib") == 0 && i + 1 < argc) {
      live_gib = ParsePositive("--live-gib", "GiB", argv[++i]);
    } else if (strcmp(argv[i], "--churn-gib") == 0 && i + 1 < argc) {
      churn_gib = ParsePositive("--churn-gib", "GiB", argv[++i]);
    } else if (strcmp(argv[i], "--log-late-ms") == 0 && i + 1 < argc) {
      g_log_late_ms = ParsePositive("--log-late-ms", "ms", argv[++i]);
    } else {
      static char msg[256];
      snprintf(msg, sizeof(msg), "unknown or incomplete option '%s'", argv[i]);
      BadOption(msg);
    }
  }
  /* 1 GiB of 64-byte objects = 1,024 arrays of 16,384. */
  g_num_arrays = (long)(live_gib * 1024 + 0.5);
  if (g_num_arrays < 1 || g_num_arrays > kMaxArrays) BadOption("--live-gib must be between 1/1024 and 4");
  g_churn_allocs = (uint64_t)(churn_gib * (double)(1u << 30)) / kObjectBytes;
  if (g_churn_allocs < kReplaceEvery) BadOption("--churn-gib is too small");
#if defined(WAKEUP_LATENCY_BDWGC)
  GC_INIT();
  GC_set_on_collection_event(OnGcEvent);
#endif

  /* build */
  uint64_t gc0 = NumGc(), t0 = NowNs();
  for (long a = 0; a < g_num_arrays; ++a) {
    void **array = (void **)ALLOC(kPointersPerArray * sizeof(void *));
    if (array == NULL) {
      fprintf(stderr, "wakeup_latency: out of memory at array %ld\n", a);
      return 1;
    }
    g_arrays[a] = array;
    for (long i = 0; i < kPointersPerArray; ++i) {
      uint64_t *obj = (uint64_t *)ALLOC(kObjectBytes);
      if (obj == NULL) {
        fprintf(stderr, "wakeup_latency: out of memory at array %ld\n", a);
        return 1;
      }
      obj[0] = Pattern((uint64_t)a, (uint64_t)i);
      array[i] = obj;
    }
  }
  uint64_t build_ns = NowNs() - t0, gc1 = NumGc();
  printf("build allocator=%s arrays=%ld objects=%ld wall_ms=%.1f gcs=%llu\n", ALLOCATOR_NAME, g_num_arrays,
         g_num_arrays * (long)kPointersPerArray, build_ns / 1e6, (unsigned long long)(gc1 - gc0));
  fflush(stdout);

  /* churn */
#if defined(WAKEUP_LATENCY_BDWGC)
  atomic_store(&g_in_churn, 1);
#endif
  pthread_t sleeper, churn;
  if (pthread_create(&sleeper, NULL, Sleeper, NULL) != 0 || pthread_create(&churn, NULL, Churn, NULL) != 0) {
    fprintf(stderr, "wakeup_latency: pthread_create failed\n");
    return 1;
  }
  pthread_join(churn, NULL);
  atomic_store(&g_stop_sleeper, 1);
  pthread_join(sleeper, NULL);
#if defined(WAKEUP_LATENCY_BDWGC)
  atomic_store(&g_in_churn, 0);
#endif
  uint64_t gc2 = NumGc();
  uint64_t pause_max_ns = MaxPauseNs(gc1, gc2);

  /* verify */
  uint64_t t2 = NowNs();
  for (long a = 0; a < g_num_arrays; ++a) {
    for (long i = 0; i < kPointersPerArray; ++i) {
      const uint64_t *obj = (const uint64_t *)g_arrays[a][i];
      if (obj == NULL || obj[0] != Pattern((uint64_t)a, (uint64_t)i)) {
        fprintf(stderr, "wakeup_latency: live structure broken at array %ld slot %ld: object %p holds %#llx\n", a,
                i, (const void *)obj, obj ? (unsigned long long)obj[0] : 0ull);
        printf("RESULT allocator=%s verified=0\n", ALLOCATOR_NAME);
        return 1;
      }
    }
  }
  uint64_t verify_ns = NowNs() - t2;

  size_t n = g_late_count;
  if (n == 0) {
    fprintf(stderr, "wakeup_latency: the sleeper never woke up\n");
    return 1;
  }
  if (g_log_late_ms >= 0) {
    for (size_t k = 0; k < n; ++k) {
      if (g_late_ns[k] > g_log_late_ms * 1e6) {
        printf("late %.3f ms at %.3f s\n", g_late_ns[k] / 1e6, (g_wake_ns[k] - g_start_ns) / 1e9);
      }
    }
  }
  uint64_t hist[kHistBuckets] = {0};
  for (size_t k = 0; k < n; ++k) {
    uint64_t us = g_late_ns[k] / 1000;
    int b = 0;
    while (b < kHistBuckets - 1 && us >= (1ull << b)) ++b;
    ++hist[b];
  }
  qsort(g_late_ns, n, sizeof(uint64_t), CompareU64);
  uint64_t p50 = Quantile(g_late_ns, n, 0.50), p99 = Quantile(g_late_ns, n, 0.99);
  uint64_t p999 = Quantile(g_late_ns, n, 0.999), max = g_late_ns[n - 1];
  size_t over25 = 0;
  for (size_t k = 0; k < n; ++k) over25 += g_late_ns[k] > 25000000u;

  printf("latency allocator=%s hist_lt_2pow_us=", ALLOCATOR_NAME);
  int last = kHistBuckets - 1;
  while (last > 0 && hist[last] == 0) --last;
  for (int b = 0; b <= last; ++b) printf("%s%llu", b ? "," : "", (unsigned long long)hist[b]);
  printf("\n");

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("RESULT allocator=%s live_gib=%g churn_gib=%g wakeups=%zu late_max_ms=%.3f late_p50_ms=%.3f "
         "late_p99_ms=%.3f late_p999_ms=%.3f late_over_25ms=%zu churn_ms=%.1f gcs=%llu pause_max_ms=%.3f "
         "replaced=%llu verified=1 build_ms=%.1f build_gcs=%llu maxrss_mib=%ld\n",
         ALLOCATOR_NAME, live_gib, churn_gib, n, max / 1e6, p50 / 1e6, p99 / 1e6, p999 / 1e6, over25,
         g_churn_ns / 1e6, (unsigned long long)(gc2 - gc1), pause_max_ns / 1e6, (unsigned long long)g_replaced,
         build_ns / 1e6, (unsigned long long)(gc1 - gc0), ru.ru_maxrss / 1024);
  printf("%s: %ld arrays (%.2f GiB live), %.2f GiB churn in %.2f s with %llu collections (longest pause %.1f ms)\n",
         ALLOCATOR_NAME, g_num_arrays, g_num_arrays / 1024.0, churn_gib, g_churn_ns / 1e9,
         (unsigned long long)(gc2 - gc1), pause_max_ns / 1e6);
  printf("%s: sleeper woke %zu times; late by p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.1f ms "
         "(%zu wake-ups more than 25 ms late)\n",
         ALLOCATOR_NAME, n, p50 / 1e6, p99 / 1e6, p999 / 1e6, max / 1e6, over25);
  printf("%s: live structure intact (%llu slots replaced, verified in %.0f ms); peak RSS %ld MiB\n", ALLOCATOR_NAME,
         (unsigned long long)g_replaced, verify_ns / 1e6, ru.ru_maxrss / 1024);
  free(g_late_ns);
  free(g_wake_ns);
  return 0;
}
