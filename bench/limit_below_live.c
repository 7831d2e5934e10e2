/* bench/limit_below_live.c — allocation throughput with a soft memory limit below the live heap, against the same
 * program with no limit: what the GC CPU limiter buys (issue 10, item 3).
 *
 * One process per measurement, so nothing carries over between the two:
 *   limit_below_live [--live MiB] [--seconds S] [--limit BYTES|off]
 * builds a live linked structure of --live MiB (64-byte nodes), calls pgc_set_memory_limit(--limit) (0 by
 * default: every trigger check finds the heap over its goal), then allocates 64-byte garbage for --seconds
 * seconds and prints one line of key=value pairs:
 *   rate_mps       allocations per second over the timed phase, in millions
 *   gc_cpu         GC CPU / (wall × cores) over the timed phase, from pgc_stats.gc_cpu_ns (Go's definition)
 *   cycles         collections in the timed phase
 *   limiter_on_ms  wall time the limiter was on in the timed phase
 *   first_on_ms    time from the start of the phase until the limiter first turned on (-1: never)
 * scripts/bench-limit.sh runs it with and without the limit, alternating, and prints the ratio.
 *
 * The live structure stays reachable through a global, so the limit cannot be met: the collector would run
 * back to back without the limiter. With it, collection is held near 50% of the CPU the program uses, so the
 * rate should stay near half of the unlimited one (target ≥ 40%). */
#include <pacegc/pacegc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Node {
  struct Node *next;
  uint64_t payload[7];
} Node;

static Node *g_live; /* a root: the live structure */
static volatile uintptr_t g_sink;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void read_stats(pgc_stats *st) {
  memset(st, 0, sizeof *st);
  st->size = sizeof *st;
  pgc_read_stats(st);
}

static void usage(const char *why) {
  fprintf(stderr, "limit_below_live: %s\nusage: limit_below_live [--live MiB] [--seconds S] [--limit BYTES|off]\n",
          why);
  exit(2);
}

int main(int argc, char **argv) {
  long live_mib = 64;
  double seconds = 3.0;
  int64_t limit = 0;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage("every option takes a value");
    char *end = NULL;
    if (strcmp(argv[i], "--live") == 0) {
      live_mib = strtol(argv[++i], &end, 10);
      if (*end != '\0' || live_mib < 1 || live_mib > 16384) usage("--live: a whole number of MiB in [1, 16384]");
    } else if (strcmp(argv[i], "--seconds") == 0) {
      seconds = strtod(argv[++i], &end);
      if (*end != '\0' || !(seconds > 0 && seconds <= 3600)) usage("--seconds: a number in (0, 3600]");
    } else if (strcmp(argv[i], "--limit") == 0) {
      const char *v = argv[++i];
      if (strcmp(v, "off") == 0) {
        limit = INT64_MAX;
      } else {
        long long n = strtoll(v, &end, 10);
        if (*end != '\0' || n < 0) usage("--limit: a whole number of bytes, or off");
        limit = n;
      }
    } else {
      usage("unknown option");
    }
  }

  size_t nodes = (size_t)live_mib * 1024 * 1024 / sizeof(Node);
  for (size_t i = 0; i < nodes; i++) {
    Node *n = pgc_malloc(sizeof *n);
    if (n == NULL) usage("out of memory building the live heap");
    n->next = g_live;
    g_live = n;
  }
  pgc_collect();
  pgc_set_memory_limit(limit);

  pgc_stats before, after;
  read_stats(&before);
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
  uint64_t count = 0, first_on = 0, last_cycle = before.num_gc;
  int seen_on = 0;
  for (;;) {
    for (int k = 0; k < 4096; k++) {
      Node *g = pgc_malloc(sizeof *g);
      if (g == NULL) usage("out of memory");
      g_sink = (uintptr_t)g;
    }
    count += 4096;
    uint64_t t = now_ns();
    if (!seen_on) {
      pgc_stats st;
      read_stats(&st);
      if (st.limiter_enabled || st.limiter_last_enabled_cycle > last_cycle) {
        seen_on = 1;
        first_on = t - t0;
      }
    }
    if (t >= deadline) break;
  }
  uint64_t wall = now_ns() - t0;
  read_stats(&after);
  double cores = (after.cpu_capacity > 0 ? after.cpu_capacity : 1.0);
  printf("live_mib=%ld limit=%s rate_mps=%.3f gc_cpu=%.3f cycles=%llu limiter_on_ms=%.1f first_on_ms=%.1f "
         "cpus=%.2f\n",
         live_mib, limit == INT64_MAX ? "off" : "set", (double)count / ((double)wall / 1e9) / 1e6,
         (double)(after.gc_cpu_ns - before.gc_cpu_ns) / ((double)wall * cores),
         (unsigned long long)(after.num_gc - before.num_gc),
         (double)(after.limiter_enabled_ns - before.limiter_enabled_ns) / 1e6,
         seen_on ? (double)first_on / 1e6 : -1.0, cores);
  return g_live != NULL ? 0 : 1;
}
