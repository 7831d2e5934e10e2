/* tests/threads/finalizer_probe.c — where finalizers run (issue 14), as a program meets it: only the public API,
 * built against the shared and the static library; tests/threads/thread_test.cc runs each mode in a child.
 *   deadlock   the allocating thread holds a mutex every finalizer takes while it allocates through many
 *              collections: must complete (finalizers used to run inside pgc_malloc, on that thread: deadlock)
 *   promise    pgc_collect returns after the finalizers of what it found unreachable have run (on another
 *              thread), also when a finalizer itself calls pgc_collect
 *   on-demand  (PACEGC_FINALIZERS=on-demand) nothing runs until pgc_run_finalizers, which runs them here
 * Prints "ok: <mode> ..." and exits 0, or "FAIL: ..." and exits 1. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pacegc/pacegc.h>

#include "probe_util.h"

static pthread_t g_main;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long g_ran;
static atomic_long g_ran_on_main;
static atomic_int g_collect_in_finalizer;

static void Finalizer(void *obj, void *data) {
  (void)obj;
  pthread_mutex_lock(&g_lock); /* every finalizer takes the program's lock */
  atomic_fetch_add(&g_ran, 1);
  if (pthread_equal(pthread_self(), g_main)) atomic_fetch_add(&g_ran_on_main, 1);
  pthread_mutex_unlock(&g_lock);
  if (data != NULL && atomic_exchange(&g_collect_in_finalizer, 0)) pgc_collect(); /* must not wait for itself */
}

/* n unreachable finalizable objects of `size` bytes; returns nothing that points to them. */
static NOINLINE void MakeFinalizable(int n, size_t size, int collect_in_one) {
  for (int i = 0; i < n; ++i) {
    void *p = pgc_malloc(size);
    pgc_register_finalizer(p, Finalizer, collect_in_one && i == 0 ? (void *)1 : NULL);
  }
}

static void ModeDeadlock(void) {
  uint64_t gc_before = Stats().num_gc;
  pthread_mutex_lock(&g_lock);
  /* 32 MiB of finalizable 1 KiB objects: several automatic collections (the minimum goal is 4 MiB). */
  for (int round = 0; round < 32; ++round) {
    MakeFinalizable(1024, 1024, 0);
  }
  uint64_t gc_during = Stats().num_gc - gc_before;
  pthread_mutex_unlock(&g_lock);
  ScrubStack();
  pgc_collect();
  CHECK(gc_during > 0, "no automatic collection while the lock was held: the test proves nothing");
  CHECK(atomic_load(&g_ran) > 0, "no finalizer ran");
  CHECK(atomic_load(&g_ran_on_main) == 0, "%ld finalizers ran on the allocating thread", atomic_load(&g_ran_on_main));
  if (!g_failed) {
    printf("ok: deadlock (%llu collections with the lock held, %ld finalizers ran on the finalizer thread)\n",
           (unsigned long long)gc_during, atomic_load(&g_ran));
  }
}

static void ModePromise(void) {
  MakeFinalizable(100, 64, 0);
  ScrubStack();
  pgc_collect();
  long ran = atomic_load(&g_ran);
  /* Single-threaded program, no collection since: everything pgc_collect queued has run, nothing is left over. */
  CHECK(ran > 0, "pgc_collect returned before any finalizer ran");
  CHECK((uint64_t)ran == Stats().finalizers_run, "%ld finalizers ran, pgc_stats says %llu", ran,
        (unsigned long long)Stats().finalizers_run);
  CHECK(atomic_load(&g_ran_on_main) == 0, "finalizers ran on the collecting thread");
  /* A finalizer that calls pgc_collect: neither it nor the outer pgc_collect deadlocks. */
  atomic_store(&g_collect_in_finalizer, 1);
  MakeFinalizable(10, 64, 1);
  ScrubStack();
  for (int i = 0; i < 5 && atomic_load(&g_collect_in_finalizer); ++i) pgc_collect();
  CHECK(atomic_load(&g_collect_in_finalizer) == 0, "the finalizer that collects never ran");
  if (!g_failed) printf("ok: promise (%ld finalizers had run when pgc_collect returned)\n", ran);
}

static void ModeOnDemand(void) {
  MakeFinalizable(100, 64, 0);
  ScrubStack();
  pgc_collect();
  pgc_collect();
  CHECK(atomic_load(&g_ran) == 0, "%ld finalizers ran without pgc_run_finalizers", atomic_load(&g_ran));
  size_t n = pgc_run_finalizers();
  CHECK(n > 0 && (long)n == atomic_load(&g_ran), "pgc_run_finalizers returned %zu, %ld ran", n,
        atomic_load(&g_ran));
  CHECK(atomic_load(&g_ran_on_main) == atomic_load(&g_ran), "finalizers ran on another thread");
  CHECK(pgc_run_finalizers() == 0, "finalizers ran twice");
  if (!g_failed) printf("ok: on-demand (%zu finalizers ran in pgc_run_finalizers)\n", n);
}

int main(int argc, char **argv) {
  g_main = pthread_self();
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "deadlock") == 0) {
    ModeDeadlock();
  } else if (strcmp(mode, "promise") == 0) {
    ModePromise();
  } else if (strcmp(mode, "on-demand") == 0) {
    ModeOnDemand();
  } else {
    fprintf(stderr, "usage: %s deadlock|promise|on-demand\n", argv[0]);
    return 2;
  }
  return g_failed ? 1 : 0;
}
