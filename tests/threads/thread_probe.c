/* tests/threads/thread_probe.c — issue 14's reproducers as a program meets them: plain pthread_create, poll,
 * epoll_wait, read, and only the public API. Built twice, against the shared and the static library
 * (thread_probe_shared, thread_probe_static); tests/threads/thread_test.cc runs each mode in a child process.
 * Each mode prints "ok: ..." lines and exits 0, or prints "FAIL: ..." and exits 1.
 *   scan      a thread that never calls pacegc (made by a constructor, before main) holds the only pointer to a
 *             finalizable object on its stack while two other threads allocate and collect: it must survive
 *   exit      threads leave the registry when they return, call pthread_exit or are cancelled (joinable and
 *             detached), and a plain thread is registered before its start routine runs
 *   blocking  poll and epoll_wait (5 ms timeouts) inside pgc_do_blocking see no EINTR over many collections, and
 *             an object held by the blocked thread's frame survives
 *   restart   read() on a pipe outside a region, across collections: restarted (SA_RESTART), never EINTR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <pacegc/pacegc.h>

#include "probe_util.h"

static void SleepMs(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static uint64_t NumGc(void) { return Stats().num_gc; }

static uint64_t NumThreads(void) { return Stats().num_threads; }

/* Finalizer flags: small integers as data, never heap addresses. */
static atomic_int g_finalized[4];
static void SetFlag(void *obj, void *data) {
  (void)obj;
  atomic_store(&g_finalized[(intptr_t)data], 1);
}

#define kObjectWords 16
static uintptr_t Pattern(int i) { return (uintptr_t)0x5a5a000000000000ull + (uintptr_t)i * 7919u; }

/* A finalizable object holding a pattern; its address is written to fd and kept nowhere else. */
static NOINLINE void SendNewObject(int fd, int flag) {
  uintptr_t *obj = pgc_malloc(kObjectWords * sizeof(uintptr_t));
  for (int i = 0; i < kObjectWords; ++i) obj[i] = Pattern(i);
  pgc_register_finalizer(obj, SetFlag, (void *)(intptr_t)flag);
  ssize_t n = write(fd, &obj, sizeof(obj));
  if (n != (ssize_t)sizeof(obj)) abort();
  obj = NULL;
}

static NOINLINE void MakeGarbage(int flag) {
  void *p = pgc_malloc(64);
  pgc_register_finalizer(p, SetFlag, (void *)(intptr_t)flag);
}

static void Churn(int rounds) {
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < 2000; ++i) {
      volatile char *p = pgc_malloc(48 + (i % 7) * 32);
      p[0] = (char)i;
    }
  }
}

/* ---- scan -------------------------------------------------------------------------------------------------- */

static int g_scan_pipe[2];
static atomic_int g_scan_done;   /* main: collections are over */
static atomic_int g_scan_holding;
static pthread_t g_scan_thread;

/* Never calls pacegc. Reads the object's address from the pipe into its own frame and holds it there. */
static void *ScanWorker(void *unused) {
  (void)unused;
  uintptr_t *volatile held = NULL;
  uintptr_t *tmp = NULL;
  ssize_t n;
  do {
    n = read(g_scan_pipe[0], &tmp, sizeof(tmp));
  } while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof(tmp)) return (void *)1;
  if (tmp == NULL) return NULL; /* another mode: not needed */
  held = tmp;
  tmp = NULL;
  atomic_store(&g_scan_holding, 1);
  while (!atomic_load(&g_scan_done)) SleepMs(1);
  intptr_t bad = 0;
  for (int i = 0; i < kObjectWords; ++i) bad += held[i] != Pattern(i);
  return (void *)bad;
}

/* Before main and (in the static build, with this priority) before pacegc's own constructor: the thread is
 * created before pacegc is initialised. */
__attribute__((constructor(101))) static void StartScanWorker(void) {
  if (pipe(g_scan_pipe) != 0) abort();
  if (pthread_create(&g_scan_thread, NULL, ScanWorker, NULL) != 0) abort();
}

static void *Collector(void *arg) {
  int rounds = *(int *)arg;
  for (int i = 0; i < rounds; ++i) {
    Churn(1);
    pgc_collect();
  }
  return NULL;
}

static NOINLINE void SendAndForget(void) {
  SendNewObject(g_scan_pipe[1], 0);
  MakeGarbage(1); /* control: nothing holds it, so collections must finalize it */
}

static void ModeScan(void) {
  SendAndForget();
  ScrubStack();
  while (!atomic_load(&g_scan_holding)) SleepMs(1);
  int rounds = 30;
  pthread_t other;
  CHECK(pthread_create(&other, NULL, Collector, &rounds) == 0, "pthread_create");
  Collector(&rounds);
  pthread_join(other, NULL);
  CHECK(atomic_load(&g_finalized[1]) == 1, "the control object was never collected: the test proves nothing");
  CHECK(atomic_load(&g_finalized[0]) == 0, "the object held only by a plain thread's stack was collected");
  atomic_store(&g_scan_done, 1);
  void *bad = NULL;
  pthread_join(g_scan_thread, &bad);
  CHECK(bad == NULL, "the held object's contents were overwritten");
  if (!g_failed) printf("ok: scan (object on a plain thread's stack survived %d+%d collections)\n", rounds, rounds);
}

/* ---- exit -------------------------------------------------------------------------------------------------- */

static atomic_int g_seen_threads;
static void *ReturnRoutine(void *arg) {
  (void)arg;
  atomic_store(&g_seen_threads, (int)NumThreads());
  return NULL;
}
static void *ExitRoutine(void *arg) {
  (void)arg;
  pthread_exit(NULL);
}
#if !defined(__SANITIZE_ADDRESS__) /* see ModeExit */
static void *CancelRoutine(void *arg) {
  int *fds = arg;
  char c;
  for (;;) {
    ssize_t n = read(fds[0], &c, 1); /* a cancellation point; never gets data */
    (void)n;
  }
  return NULL;
}
#endif

static void WaitForThreads(uint64_t want, const char *what) {
  for (int i = 0; i < 10000 && NumThreads() != want; ++i) SleepMs(1); /* a bound, not a timing assertion */
  CHECK(NumThreads() == want, "%s: %llu registered threads, want %llu", what, (unsigned long long)NumThreads(),
        (unsigned long long)want);
}

static void ModeExit(void) {
  uint64_t base = NumThreads();
  pthread_t t;
  /* Registered before the start routine runs: the routine itself sees one more thread. */
  pthread_create(&t, NULL, ReturnRoutine, NULL);
  pthread_join(t, NULL);
  CHECK((uint64_t)atomic_load(&g_seen_threads) == base + 1, "the new thread was not registered at its start");
  WaitForThreads(base, "after return");
  pthread_create(&t, NULL, ExitRoutine, NULL);
  pthread_join(t, NULL);
  WaitForThreads(base, "after pthread_exit");
#if !defined(__SANITIZE_ADDRESS__)
  /* Not under ASan: a thread cancelled inside pacegc's start trampoline makes ASan's own thread teardown fail
   * (stack-buffer-underflow in its sigaltstack interceptor, AsanThread::Destroy); without ASan, and under TSan
   * and UBSan, the case passes. Open in docs/ARCHITECTURE.md, "Known issues". */
  int fds[2];
  if (pipe(fds) != 0) abort();
  pthread_create(&t, NULL, CancelRoutine, fds);
  pthread_cancel(t);
  pthread_join(t, NULL);
  WaitForThreads(base, "after pthread_cancel");
#endif
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (int i = 0; i < 8; ++i) pthread_create(&t, &attr, i % 2 ? ExitRoutine : ReturnRoutine, NULL);
  WaitForThreads(base, "after detached threads exited");
  pthread_attr_destroy(&attr);
#if defined(__SANITIZE_ADDRESS__)
  if (!g_failed) printf("ok: exit (return, pthread_exit, detached; cancel skipped under ASan)\n");
#else
  if (!g_failed) printf("ok: exit (return, pthread_exit, cancel, detached)\n");
#endif
}

/* ---- blocking ---------------------------------------------------------------------------------------------- */

struct BlockingCall {
  int fd;      /* poll: the read end of an empty pipe; epoll_wait: an epoll instance watching it */
  int epoll;
  int result;
  int error;
};

static void *PollFor5ms(void *arg) {
  struct BlockingCall *c = arg;
  struct pollfd p = {c->fd, POLLIN, 0};
  c->result = poll(&p, 1, 5);
  c->error = errno;
  return NULL;
}

static void *EpollFor5ms(void *arg) {
  struct BlockingCall *c = arg;
  struct epoll_event ev;
  c->result = epoll_wait(c->epoll, &ev, 1, 5);
  c->error = errno;
  return NULL;
}

static atomic_int g_blocking_done;
static atomic_int g_eintr;
static atomic_int g_blocking_calls;
static atomic_int g_held_finalized;

static NOINLINE void *BlockingWorkerBody(uintptr_t *obj) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  struct BlockingCall c = {fds[0], epoll_create1(0), 0, 0};
  struct epoll_event ev = {.events = EPOLLIN};
  ev.data.fd = fds[0];
  epoll_ctl(c.epoll, EPOLL_CTL_ADD, fds[0], &ev);
  uint64_t start_gc = NumGc();
  int calls = 0;
  /* Until main has run 60 collections while this thread was in its loop (and at least 64 calls). */
  while (calls < 64 || NumGc() < start_gc + 60) {
    pgc_do_blocking(calls % 2 ? EpollFor5ms : PollFor5ms, &c);
    ++calls;
    if (c.result < 0 && c.error == EINTR) atomic_fetch_add(&g_eintr, 1);
  }
  atomic_store(&g_blocking_calls, calls);
  close(fds[0]);
  close(fds[1]);
  close(c.epoll);
  intptr_t bad = 0;
  for (int i = 0; i < kObjectWords; ++i) bad += obj[i] != Pattern(i);
  return (void *)bad;
}

static void *BlockingWorker(void *arg) {
  (void)arg;
  uintptr_t *obj = pgc_malloc(kObjectWords * sizeof(uintptr_t));
  for (int i = 0; i < kObjectWords; ++i) obj[i] = Pattern(i);
  pgc_register_finalizer(obj, SetFlag, (void *)(intptr_t)2);
  void *bad = BlockingWorkerBody(obj);
  /* Checked while obj is still held: once this thread lets go, a collection may finalize it legitimately. */
  atomic_store(&g_held_finalized, atomic_load(&g_finalized[2]));
  pgc_keep_alive(obj);
  atomic_store(&g_blocking_done, 1);
  return bad;
}

static void ModeBlocking(void) {
  pthread_t t;
  pthread_create(&t, NULL, BlockingWorker, NULL);
  uint64_t gcs = 0;
  while (!atomic_load(&g_blocking_done)) {
    Churn(1);
    pgc_collect();
    ++gcs;
  }
  void *bad = NULL;
  pthread_join(t, &bad);
  CHECK(atomic_load(&g_eintr) == 0, "%d of %d poll/epoll_wait calls in pgc_do_blocking returned EINTR",
        atomic_load(&g_eintr), atomic_load(&g_blocking_calls));
  CHECK(bad == NULL, "the object in the blocked thread's frame was overwritten");
  CHECK(atomic_load(&g_held_finalized) == 0, "the object in the blocked thread's frame was finalized");
  if (!g_failed) {
    printf("ok: blocking (%d poll/epoll_wait calls in pgc_do_blocking, %llu collections, 0 EINTR)\n",
           atomic_load(&g_blocking_calls), (unsigned long long)gcs);
  }
}

/* ---- restart ----------------------------------------------------------------------------------------------- */

static int g_restart_pipe[2];
static atomic_int g_restart_done;
static atomic_int g_reading;

static void *Reader(void *arg) {
  (void)arg;
  volatile char *p = pgc_malloc(16); /* registered and holding an object, like any worker */
  p[0] = 1;
  char c = 0;
  atomic_store(&g_reading, 1);
  ssize_t n = read(g_restart_pipe[0], &c, 1);
  int err = errno;
  atomic_store(&g_restart_done, 1);
  if (n != 1) {
    fprintf(stderr, "read returned %zd (%s)\n", n, strerror(err));
    return (void *)1;
  }
  return NULL;
}

static void *RestartCollector(void *arg) {
  (void)arg;
  while (!atomic_load(&g_restart_done)) {
    Churn(1);
    pgc_collect();
  }
  return NULL;
}

static void *SleepThenWrite(void *unused) {
  (void)unused;
  SleepMs(300); /* collections (each signals the reader) while it waits in read(); not an assertion */
  char c = 'x';
  if (write(g_restart_pipe[1], &c, 1) != 1) abort();
  return NULL;
}

static void ModeRestart(void) {
  if (pipe(g_restart_pipe) != 0) abort();
  pthread_t reader, collector;
  pthread_create(&reader, NULL, Reader, NULL);
  while (!atomic_load(&g_reading)) SleepMs(1);
  uint64_t start_gc = NumGc();
  pthread_create(&collector, NULL, RestartCollector, NULL);
  /* In a blocking region: under ThreadSanitizer the reader acknowledges a stop only when read() returns, so a
   * collection waits for this write; stopped, this thread could never make it. */
  pgc_do_blocking(SleepThenWrite, NULL);
  void *bad = NULL;
  pthread_join(reader, &bad);
  pthread_join(collector, NULL);
  CHECK(bad == NULL, "read() outside a region failed instead of being restarted");
  if (!g_failed) {
    printf("ok: restart (read() restarted across %llu collections)\n", (unsigned long long)(NumGc() - start_gc));
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "scan") == 0) {
    ModeScan();
  } else {
    uintptr_t *none = NULL; /* the constructor's worker is not needed */
    if (write(g_scan_pipe[1], &none, sizeof(none)) != (ssize_t)sizeof(none)) abort();
    atomic_store(&g_scan_done, 1);
    pthread_join(g_scan_thread, NULL);
    if (strcmp(mode, "exit") == 0) {
      ModeExit();
    } else if (strcmp(mode, "blocking") == 0) {
      ModeBlocking();
    } else if (strcmp(mode, "restart") == 0) {
      ModeRestart();
    } else {
      fprintf(stderr, "usage: %s scan|exit|blocking|restart\n", argv[0]);
      return 2;
    }
  }
  return g_failed ? 1 : 0;
}
