// tests/malloc/leak_probe.cc — a program with known leaks, run with libpacegc-malloc.so preloaded and
// PACEGC_MALLOC=find-leak; tests/malloc/leak_report.sh reads what pacegc says on stderr. Like drop_in_probe it
// links nothing of pacegc and finds it by dlsym (to force a collection, as a long-running service's periodic or
// paced collections would).
//
//   leak_probe sites    (run with PACEGC_LEAK_SAMPLE=1: every block sampled) leaks at four known sites —
//                       LeakSomeBlocks (malloc), LeakNodes (operator new), LeakInThread (another thread),
//                       LeakStrings (strdup: libc allocates on its behalf) — keeps blocks (KeepBlocks, in a global
//                       array) and frees blocks (FreeBlocks). It hides one block's pointer (XOR), lets a collection
//                       report it, shows its contents intact (find-leak never frees), and frees it.
//                       Prints "probe: collected" on stderr after the collection returns.
//   leak_probe sampled  (default sampling) leaks 64 MiB in 4 KiB blocks in LeakBig, then waits until a
//                       collection has run (the collection find-leak requests itself, paced by allocation).
//   leak_probe forks    (every block sampled) leaks 200,000 blocks, collects on another thread and forks 64
//                       children meanwhile, each of which calls exit (so find-leak's exit report runs in it, with
//                       a collection that waits for finalizers): every child must exit within 30 s (a child forked
//                       while the finalizer thread held an entry used to wait for it forever).
// Exit 0 when the program's own checks hold, 1 otherwise, 3 when pacegc is not in the process.
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pacegc/pacegc.h"
#include "check.h"

namespace {

using CollectFn = void (*)();
using ReadStatsFn = void (*)(pgc_stats *);
CollectFn g_collect = nullptr;
ReadStatsFn g_read_stats = nullptr;

constexpr int kBlocks = 200;
void *g_kept[kBlocks];
uintptr_t g_hidden = 0;  // a block's address XOR-ed: invisible to a conservative scan
constexpr uintptr_t kMask = 0x5a5a5a5a5a5a5a5aull;

struct Node {
  Node *next;
  char payload[40];
};

// The leaking functions write their pointers only to a volatile sink that is overwritten, so no copy survives
// outside the dead part of the stack, which ScrubStack clears.
void *volatile g_sink;

__attribute__((noinline)) void LeakSomeBlocks() {
  for (int i = 0; i < kBlocks; ++i) {
    g_sink = malloc(48);
    memset(g_sink, 0x11, 48);
  }
  g_sink = nullptr;
}

__attribute__((noinline)) void LeakNodes() {
  for (int i = 0; i < kBlocks; ++i) {
    Node *n = new Node;
    n->next = nullptr;
    g_sink = n;
  }
  g_sink = nullptr;
}

__attribute__((noinline)) void LeakStrings() {
  for (int i = 0; i < kBlocks; ++i) g_sink = strdup("a string nobody frees, long enough to matter");
  g_sink = nullptr;
}

__attribute__((noinline)) void *LeakInThread(void *) {
  for (int i = 0; i < kBlocks; ++i) g_sink = calloc(1, 96);
  g_sink = nullptr;
  return nullptr;
}

__attribute__((noinline)) void KeepBlocks() {
  for (int i = 0; i < kBlocks; ++i) g_kept[i] = malloc(64);
}

__attribute__((noinline)) void FreeBlocks() {
  for (int i = 0; i < kBlocks; ++i) {
    void *p = malloc(80);
    g_sink = p;
    free(p);
  }
  g_sink = nullptr;
}

__attribute__((noinline)) void HideBlock() {
  auto *p = static_cast<unsigned char *>(malloc(256));
  for (int i = 0; i < 256; ++i) p[i] = static_cast<unsigned char>(i);
  g_hidden = reinterpret_cast<uintptr_t>(p) ^ kMask;
}

__attribute__((noinline)) void LeakBig() {
  for (int i = 0; i < 64 * 256; ++i) {
    g_sink = malloc(4096);
    memset(g_sink, 0x22, 64);
  }
  g_sink = nullptr;
}

// Clears the stack below the caller's frame, where the leaking functions' frames were.
__attribute__((noinline)) void ScrubStack() {
  char buf[64 * 1024];
  memset(buf, 0, sizeof buf);
  asm volatile("" : : "r"(buf) : "memory");  // the stores happen
}

uint64_t NumGc() {
  pgc_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  g_read_stats(&s);
  return s.num_gc;
}

int Sites() {
  LeakSomeBlocks();
  LeakNodes();
  LeakStrings();
  pthread_t t;
  CHECK(pthread_create(&t, nullptr, LeakInThread, nullptr) == 0);
  CHECK(pthread_join(t, nullptr) == 0);
  KeepBlocks();
  FreeBlocks();
  HideBlock();
  ScrubStack();
  g_collect();  // returns after the finalizers of what it found (and their report) have run
  fprintf(stderr, "probe: collected\n");

  // The hidden block was reported, and it is still there, intact: find-leak reports, it never frees.
  auto *hidden = reinterpret_cast<unsigned char *>(g_hidden ^ kMask);
  bool intact = true;
  for (int i = 0; i < 256; ++i) intact = intact && hidden[i] == static_cast<unsigned char>(i);
  CHECK(intact);
  free(hidden);  // counted as "freed after being reported"
  for (int i = 0; i < kBlocks; ++i) free(g_kept[i]);
  return 0;
}

int Sampled() {
  const uint64_t before = NumGc();
  LeakBig();
  ScrubStack();
  // find-leak asks for a collection once the program has allocated about as much as mimalloc holds (at least
  // 4 MiB); it runs on the background thread. Wait for it (not for a time: for the count to move).
  for (int i = 0; i < 6000 && NumGc() == before; ++i) usleep(10 * 1000);
  CHECK(NumGc() > before);
  return 0;
}

__attribute__((noinline)) void LeakMany() {
  for (int i = 0; i < 200000; ++i) {
    g_sink = malloc(24);
    static_cast<char *>(g_sink)[0] = 1;
  }
  g_sink = nullptr;
}

void *CollectOnce(void *) {
  g_collect();
  return nullptr;
}

int Forks() {
  LeakMany();
  ScrubStack();
  pthread_t t;
  CHECK(pthread_create(&t, nullptr, CollectOnce, nullptr) == 0);
  pid_t kids[64];
  int n = 0;
  for (int i = 0; i < 64; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      g_sink = malloc(24);  // sampled: the child's exit report runs (a child that sampled nothing skips it)
      exit(0);
    }
    if (pid > 0) kids[n++] = pid;
    usleep(2000);
  }
  CHECK(n == 64);
  CHECK(pthread_join(t, nullptr) == 0);
  int hung = 0;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int i = 0; i < n; ++i) {
    int status = 0;
    pid_t got = 0;
    for (;;) {  // 30 s for all of them
      got = waitpid(kids[i], &status, WNOHANG);
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (got != 0 || now.tv_sec - start.tv_sec >= 30) break;
      usleep(50 * 1000);
    }
    if (got == 0) {
      ++hung;
      kill(kids[i], SIGKILL);
      waitpid(kids[i], &status, 0);
    } else {
      CHECK(got == kids[i] && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
  }
  if (hung != 0) fprintf(stderr, "leak_probe forks: %d of %d children had not exited after 30 s\n", hung, n);
  CHECK(hung == 0);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  g_collect = reinterpret_cast<CollectFn>(dlsym(RTLD_DEFAULT, "pgc_collect"));
  g_read_stats = reinterpret_cast<ReadStatsFn>(dlsym(RTLD_DEFAULT, "pgc_read_stats"));
  if (g_collect == nullptr || g_read_stats == nullptr) {
    fprintf(stderr, "leak_probe: pacegc is not in this process (run it with libpacegc-malloc.so preloaded)\n");
    return 3;
  }
  const char *what = argc > 1 ? argv[1] : "";
  if (strcmp(what, "sites") == 0) {
    Sites();
  } else if (strcmp(what, "sampled") == 0) {
    Sampled();
  } else if (strcmp(what, "forks") == 0) {
    Forks();
  } else {
    fprintf(stderr, "usage: leak_probe sites|sampled|forks\n");
    return 2;
  }
  printf("probe: %s\n", Failures() == 0 ? "ok" : "FAILED");
  return Failures() == 0 ? 0 : 1;
}
