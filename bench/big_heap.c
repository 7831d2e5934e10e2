/*
 * big_heap — full-collection pauses with a large live heap of small objects, and the page faults each one takes.
 *
 * Issue 12 item 6: with 1 GiB live in 64-byte objects, pacegc's first collections over freshly allocated memory
 * took seconds (a fault storm), against ~0.2 s once warm. This program builds that heap and measures every
 * collection it can see. One source, two executables (exactly one macro):
 *
 *   BIG_HEAP_PACEGC   pgc_malloc for the objects and for the pointer arrays
 *   BIG_HEAP_BDWGC    GC_MALLOC for both (GC_INIT first; the peer)
 *
 * Workload: `arrays` arrays of 16,384 pointers (128 KiB each: large objects in both collectors), each filled with
 * pointers to fresh 64-byte objects; the arrays are held in one root array. 1,024 arrays = 16.8 M objects = 1 GiB
 * live. Each object's first word is written (its index, not a pointer), as a program initialises what it allocates,
 * unless --untouched is given (then the program never writes the objects, and a collector's first read of them is
 * the first touch of their pages).
 *
 * Phases and what is printed (one line each, machine-readable key=value):
 *   build    the heap is built; automatic collections happen as the collector's policy decides (set GOGC=off for
 *            none: the first explicit collection is then the first cycle over freshly allocated memory). Printed:
 *            wall time, collections during the build, their summed and largest pause, minor faults of the phase.
 *   collect  `collections` explicit full collections (pgc_collect / GC_gcollect), each one line: its wall time,
 *            its pause (pacegc: pgc_stats.pause_last_ns; bdwgc: GC_get_full_gc_total_time difference, whole ms),
 *            and the minor page faults (getrusage ru_minflt) the process took during it.
 *   RESULT   first and steady (median of the rest) collection wall time and faults, and peak RSS.
 * For pacegc, the automatic cycles' individual pauses are in GODEBUG=gctrace=1's lines.
 *
 * Usage: big_heap [--arrays N] [--collections N] [--untouched]   (defaults 1024, 5)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if (defined(BIG_HEAP_PACEGC) + defined(BIG_HEAP_BDWGC)) != 1
#error "define exactly one of BIG_HEAP_PACEGC, BIG_HEAP_BDWGC"
#endif

#if defined(BIG_HEAP_PACEGC)
#include <pacegc/pacegc.h>
#define ALLOCATOR_NAME "pacegc"
#define ALLOC(bytes) pgc_malloc(bytes)
#define COLLECT() pgc_collect()
#else
#include <gc/gc.h>
#define ALLOCATOR_NAME "bdwgc"
#define ALLOC(bytes) GC_MALLOC(bytes)
#define COLLECT() GC_gcollect()
#endif

enum { kPointersPerArray = 16384, kObjectBytes = 64, kMaxCollections = 64 };

static uint64_t NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t MinorFaults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)ru.ru_minflt;
}

/* Collections completed so far, summed pause and largest pause (ns). bdwgc has only whole milliseconds. */
static void GcCounters(uint64_t *num_gc, uint64_t *pause_total_ns, uint64_t *pause_max_ns) {
#if defined(BIG_HEAP_PACEGC)
  static pgc_stats st; /* large (pause ring, histograms): not on the stack */
  st.size = sizeof(st);
  st.version = PGC_STATS_VERSION;
  pgc_read_stats(&st);
  *num_gc = st.num_gc;
  *pause_total_ns = st.pause_total_ns;
  *pause_max_ns = st.pause_max_ns;
#else
  *num_gc = (uint64_t)GC_get_gc_no();
  *pause_total_ns = (uint64_t)GC_get_full_gc_total_time() * 1000000u;
  *pause_max_ns = 0; /* not exposed */
#endif
}

static int CompareU64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void Usage(void) {
  fprintf(stderr, "usage: big_heap [--arrays N] [--collections N] [--untouched]\n");
  exit(2);
}

/* The root array lives in bss (a root for both collectors), sized for 4 GiB live so that its never-used tail, which
 * every collection reads as a root, is small. */
void **g_arrays[4096]; /* not static: its stores must not be optimised away (it is never read back) */

int main(int argc, char **argv) {
  long arrays = 1024, collections = 5;
  int untouched = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--arrays") == 0 && i + 1 < argc) {
      arrays = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--collections") == 0 && i + 1 < argc) {
      collections = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--untouched") == 0) {
      untouched = 1;
    } else {
      Usage();
    }
  }
  if (arrays < 1 || arrays > (long)(sizeof(g_arrays) / sizeof(g_arrays[0])) || collections < 2 ||
      collections > kMaxCollections) {
    Usage();
  }
#if defined(BIG_HEAP_BDWGC)
  GC_INIT();
#endif

  uint64_t gc0, pause0, max0;
  GcCounters(&gc0, &pause0, &max0);
  uint64_t faults0 = MinorFaults();
  uint64_t t0 = NowNs();
  for (long a = 0; a < arrays; ++a) {
    void **array = (void **)ALLOC(kPointersPerArray * sizeof(void *));
    if (array == NULL) {
      fprintf(stderr, "big_heap: out of memory at array %ld\n", a);
      return 1;
    }
    g_arrays[a] = array;
    for (long i = 0; i < kPointersPerArray; ++i) {
      uint64_t *obj = (uint64_t *)ALLOC(kObjectBytes);
      if (obj == NULL) {
        fprintf(stderr, "big_heap: out of memory at array %ld\n", a);
        return 1;
      }
      if (!untouched) obj[0] = ((uint64_t)a << 20 | (uint64_t)i) << 1 | 1; /* odd: never a pointer */
      array[i] = obj;
    }
  }
  uint64_t t1 = NowNs();
  uint64_t gc1, pause1, max1;
  GcCounters(&gc1, &pause1, &max1);
  uint64_t faults1 = MinorFaults();
  printf("build allocator=%s arrays=%ld objects=%ld live_mib=%.0f untouched=%d wall_ms=%.1f gcs=%llu "
         "gc_pause_total_ms=%.1f gc_pause_max_ms=%.1f minflt=%llu\n",
         ALLOCATOR_NAME, arrays, arrays * kPointersPerArray,
         (double)arrays * kPointersPerArray * (kObjectBytes + sizeof(void *)) / (1 << 20), untouched,
         (t1 - t0) / 1e6, (unsigned long long)(gc1 - gc0), (pause1 - pause0) / 1e6, max1 / 1e6,
         (unsigned long long)(faults1 - faults0));

  uint64_t wall_ns[kMaxCollections], faults[kMaxCollections];
  for (long c = 0; c < collections; ++c) {
    uint64_t gca, pa, ma, gcb, pb, mb;
    GcCounters(&gca, &pa, &ma);
    uint64_t fa = MinorFaults();
    uint64_t ta = NowNs();
    COLLECT();
    uint64_t tb = NowNs();
    uint64_t fb = MinorFaults();
    GcCounters(&gcb, &pb, &mb);
    wall_ns[c] = tb - ta;
    faults[c] = fb - fa;
    printf("collect allocator=%s n=%ld wall_ms=%.1f pause_ms=%.1f minflt=%llu gcs=%llu\n", ALLOCATOR_NAME, c + 1,
           (tb - ta) / 1e6, (pb - pa) / 1e6, (unsigned long long)faults[c], (unsigned long long)(gcb - gca));
    fflush(stdout);
  }

  uint64_t rest_wall[kMaxCollections], rest_faults[kMaxCollections];
  for (long c = 1; c < collections; ++c) {
    rest_wall[c - 1] = wall_ns[c];
    rest_faults[c - 1] = faults[c];
  }
  qsort(rest_wall, (size_t)(collections - 1), sizeof(uint64_t), CompareU64);
  qsort(rest_faults, (size_t)(collections - 1), sizeof(uint64_t), CompareU64);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("RESULT allocator=%s untouched=%d first_ms=%.1f first_minflt=%llu steady_ms=%.1f steady_minflt=%llu "
         "build_ms=%.1f build_gcs=%llu build_pause_max_ms=%.1f maxrss_mib=%ld\n",
         ALLOCATOR_NAME, untouched, wall_ns[0] / 1e6, (unsigned long long)faults[0],
         rest_wall[(collections - 1) / 2] / 1e6, (unsigned long long)rest_faults[(collections - 1) / 2],
         (t1 - t0) / 1e6, (unsigned long long)(gc1 - gc0), max1 / 1e6, ru.ru_maxrss / 1024);
  return 0;
}
