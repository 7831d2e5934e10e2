// stw_threads — what stopping and restarting the world costs with 0..32 other registered threads.
//
// For each thread count N, N threads register (pgc_register_thread) and then either sleep in pthread_cond_wait
// ("idle": the common case of a service's worker pool) or spin on a counter without calling pacegc ("busy": the
// signal interrupts running code). The main thread then runs 200 pgc_collect() calls on an almost empty heap and
// reports the median and 99th-percentile pause (pgc_stats.pause_last_ns: stop, mark, sweep, restart). With nothing
// to mark, the growth over N = 0 is the handshake: one signal and one acknowledgement per thread to stop, one
// futex wake for all to restart, plus each thread's (small) stack.
//
// Usage: stw_threads [max_threads]   (default 32). Prints one line per (mode, N).
#include <pacegc/pacegc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kCollections = 200 };

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_release = 0;        // guarded by g_mu: idle threads leave
static atomic_int g_stop_busy;   // busy threads leave
static atomic_int g_ready;

static void *Idle(void *arg) {
  (void)arg;
  pgc_register_thread();
  atomic_fetch_add(&g_ready, 1);
  pthread_mutex_lock(&g_mu);
  while (!g_release) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  pgc_unregister_thread();
  return NULL;
}

static void *Busy(void *arg) {
  (void)arg;
  pgc_register_thread();
  atomic_fetch_add(&g_ready, 1);
  volatile uint64_t x = 0;
  while (!atomic_load_explicit(&g_stop_busy, memory_order_relaxed)) x = x * 6364136223846793005u + 1;
  pgc_unregister_thread();
  return NULL;
}

static int CompareU64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void Measure(const char *mode, int n) {
  pthread_t threads[64];
  atomic_store(&g_ready, 0);
  atomic_store(&g_stop_busy, 0);
  g_release = 0;
  for (int i = 0; i < n; ++i) {
    if (pthread_create(&threads[i], NULL, strcmp(mode, "idle") == 0 ? Idle : Busy, NULL) != 0) {
      perror("pthread_create");
      exit(1);
    }
  }
  while (atomic_load(&g_ready) < n) sched_yield();
  uint64_t pauses[kCollections];
  for (int i = 0; i < kCollections; ++i) {
    pgc_collect();
    pgc_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    pgc_read_stats(&s);
    pauses[i] = s.pause_last_ns;
  }
  qsort(pauses, kCollections, sizeof pauses[0], CompareU64);
  printf("%-4s threads=%-3d pause_median_us=%.1f pause_p99_us=%.1f\n", mode, n, pauses[kCollections / 2] / 1e3,
         pauses[kCollections * 99 / 100] / 1e3);
  fflush(stdout);
  atomic_store(&g_stop_busy, 1);
  pthread_mutex_lock(&g_mu);
  g_release = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < n; ++i) pthread_join(threads[i], NULL);
}

int main(int argc, char **argv) {
  int max = argc > 1 ? atoi(argv[1]) : 32;
  if (max < 0 || max > 64) {
    fprintf(stderr, "stw_threads: max_threads must be 0..64\n");
    return 2;
  }
  static const int kCounts[] = {0, 1, 2, 4, 8, 16, 32, 64};
  const char *modes[] = {"idle", "busy"};
  for (int m = 0; m < 2; ++m) {
    for (size_t i = 0; i < sizeof kCounts / sizeof kCounts[0] && kCounts[i] <= max; ++i) Measure(modes[m], kCounts[i]);
  }
  return 0;
}
