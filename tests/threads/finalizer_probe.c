/* tests/threads/finalizer_probe.c — where finalizers run (issue 14), as a program meets it: only the public API,
 * built against the shared and the static library; tests/threads/thread_test.cc runs each mode in a child.
 *   deadlock   the allocating thread holds a mutex every finalizer takes while it allocates through many
 *              collections: must complete (finalizers used to run inside pgc_malloc, on that thread: deadlock)
 *   promise    pgc_collect returns after the finalizers of what it found unreachable have run (on another
 *              thread), also when a finalizer itself calls pgc_collect
 *   on-demand  (PACEGC_FINALIZERS=on-demand) nothing runs until pgc_run_finalizers, which runs them here; a run
 *              already queued is cancelled by pgc_free of the object or by replacing its finalizer
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

/* A queued finalizer is cancelled by pgc_free of its object and by replacing the finalizer (it used to run on the
 * freed object, and the replaced function ran). Two objects are found unreachable (their pointers kept XOR-ed, out
 * of the scan's sight), queued, and then one is freed and the other's finalizer replaced before they run. */
#define HIDE_MASK ((uintptr_t)0x5a5a5a5a5a5a5a5aULL)
static uintptr_t g_hidden[2];
static atomic_long g_cancelled_ran, g_replacement_ran;
static void MustNotRun(void *obj, void *data) {
  (void)obj;
  (void)data;
  atomic_fetch_add(&g_cancelled_ran, 1);
}
static void Replacement(void *obj, void *data) {
  (void)obj;
  (void)data;
  atomic_fetch_add(&g_replacement_ran, 1);
}
static NOINLINE void MakeHidden(void) {
  for (int i = 0; i < 2; ++i) {
    void *p = pgc_malloc(64);
    pgc_register_finalizer(p, MustNotRun, NULL);
    g_hidden[i] = (uintptr_t)p ^ HIDE_MASK;
  }
}

/* Frees the first hidden object and replaces the second's finalizer; no copy of either pointer outlives it (below
 * the caller's frame, which ScrubStack clears). */
static NOINLINE void FreeAndReplace(void) {
  pgc_free((void *)(g_hidden[0] ^ HIDE_MASK));
  pgc_register_finalizer((void *)(g_hidden[1] ^ HIDE_MASK), Replacement, NULL);
}

static void CheckCancelled(void) {
  MakeHidden();
  ScrubStack();
  pgc_collect(); /* both queued, none run (on-demand) */
  FreeAndReplace();
  ScrubStack();
  pgc_run_finalizers(); /* (it may also run a finalizer of ModeOnDemand's objects that a stale word kept then) */
  CHECK(atomic_load(&g_cancelled_ran) == 0, "%ld cancelled finalizers ran (after pgc_free or a replacement)",
        atomic_load(&g_cancelled_ran));
  CHECK(atomic_load(&g_replacement_ran) == 0, "the replacement ran in the run queued for the replaced finalizer");
  /* The second object is still unreachable, with its replacement registered: a following collection queues that
   * one (a conservative scan may keep the object longer: a stale copy of its address in a dead frame; in the static
   * build it stayed for five cycles, so only "never twice, never the cancelled one" is checked). */
  for (int i = 0; i < 3; ++i) {
    ScrubStack();
    pgc_collect();
    pgc_run_finalizers();
  }
  CHECK(atomic_load(&g_replacement_ran) <= 1, "the replacement finalizer ran %ld times",
        atomic_load(&g_replacement_ran));
  CHECK(atomic_load(&g_cancelled_ran) == 0, "a cancelled finalizer ran later");
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
  CheckCancelled();
  if (!g_failed) printf("ok: on-demand (%zu finalizers ran in pgc_run_finalizers; queued runs cancelled)\n", n);
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
