/* A pacegc program for trace_test: known work, then its statistics on stdout.
 *   trace_probe FORCED MIB FREE_OS SLEEP_MS
 * FORCED pgc_collect calls; MIB MiB of garbage from two threads (64-byte objects, some with finalizers, and
 * 256 KiB blocks), which the collector reclaims in automatic cycles; a 16 MiB peak of live blocks, dropped and
 * collected twice (so free pages exceed what the scavenger retains); FREE_OS pgc_free_os_memory calls; then
 * SLEEP_MS ms of sleep (the background scavenger's time). Prints "num_gc=... num_forced_gc=... finalizers_run=... num_concurrent_gc=...". */
#include <pacegc/pacegc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *volatile sink;
static void *volatile peak[64];
static volatile int finalized;

static void on_finalize(void *obj, void *data) {
  (void)obj;
  (void)data;
  __atomic_fetch_add(&finalized, 1, __ATOMIC_RELAXED); /* finalizers may run on both threads at once */
}

static void *churn(void *arg) {
  long mib = *(const long *)arg;
  for (long i = 0; i < mib * 1024 * 1024 / 2 / 64; ++i) {
    void *p = pgc_malloc(64);
    if (i % 4096 == 0) pgc_register_finalizer(p, on_finalize, NULL);
    if (i % 2048 == 0) p = pgc_malloc(256 * 1024);
    __atomic_store_n(&sink, p, __ATOMIC_RELAXED); /* both threads store here: atomically, or it is a data race */
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: trace_probe FORCED MIB FREE_OS SLEEP_MS\n");
    return 64;
  }
  int forced = atoi(argv[1]);
  long mib = atol(argv[2]);
  int free_os = atoi(argv[3]);
  long sleep_ms = atol(argv[4]);
  for (int i = 0; i < forced; ++i) pgc_collect();
  pthread_t t;
  if (pthread_create(&t, NULL, churn, &mib) != 0) return 1;
  churn(&mib);
  pthread_join(t, NULL);
  sink = NULL;
  for (int i = 0; i < 64; ++i) peak[i] = pgc_malloc(256 * 1024);
  pgc_collect();
  for (int i = 0; i < 64; ++i) peak[i] = NULL;
  /* Enough cycles after the drop for the peak to leave the scavenger's retain window (gc/pacing.cc keeps what the
   * heap needed at the mark of the last 4 cycles). */
  for (int i = 0; i < 6; ++i) pgc_collect();
  for (int i = 0; i < free_os; ++i) pgc_free_os_memory();
  struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
  pgc_stats s = {.size = sizeof(pgc_stats)};
  pgc_read_stats(&s);
  printf("num_gc=%llu num_forced_gc=%llu num_periodic_gc=%llu finalizers_run=%llu num_concurrent_gc=%llu\n",
         (unsigned long long)s.num_gc, (unsigned long long)s.num_forced_gc, (unsigned long long)s.num_periodic_gc,
         (unsigned long long)s.finalizers_run, (unsigned long long)s.num_concurrent_gc);
  return 0;
}
