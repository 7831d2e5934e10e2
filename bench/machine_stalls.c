/*
 * machine_stalls — how late a thread sleeping 1 ms wakes up on this machine with NO collector at all: the baseline
 * that tells the collector's delays (bench/wakeup_latency.c) from the machine's own.
 *
 * The program touches a resident set of R GiB (one anonymous mapping, one write per 4 KiB page), then runs two
 * threads for S seconds: a sleeper with the same loop as wakeup_latency's (intended = now + 1 ms; clock_nanosleep
 * to it; lateness = now - intended), and a second thread that does one of
 *   idle    sleeps 10 ms in a loop
 *   spin    a CPU loop that touches no memory
 *   touch   writes one byte per page of the resident set, over and over (no page faults after the first pass)
 *   fault   maps 256 MiB of fresh anonymous memory, writes one byte per page (a page fault each), unmaps it, and
 *           again: what a heap growing into new memory does
 * The second thread stands for a program's busy thread: with it running, a core the machine takes for itself
 * (a kernel thread, the hypervisor) leaves the sleeper no core to wake up on.
 *
 * With `fault` (docs/BENCHMARKS.md, "The end walk on the background thread ..."): the sleeper is 10-22 ms late once
 * per round on these VMs, and never when the memory is kept instead of unmapped: returning populated memory stalls
 * the other CPU.
 * Found with it (docs/BENCHMARKS.md, "Write-protection in chunks, and the machine's own stalls"): on these VMs the
 * kernel's DAMON thread kdamond.0 samples every 500 ms and takes a core for 15-30 ms each time, longer the more
 * memory is resident; with `spin` and 3 GiB resident the sleeper wakes 15-23 ms late every 500 ms, and at most
 * ~3 ms late once kdamond is stopped.
 *
 * Output: one line per wake-up more than 10 ms late (its lateness and time), then
 *   RESULT mode=M resident_gib=R seconds=S wakeups=N late_max_ms=X late_over_10ms=K
 * Usage: machine_stalls idle|spin|touch|fault [resident GiB, default 3] [seconds, default 5]. Bad arguments: one line on
 * stderr, exit 2.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sleeper.h"

enum Mode { kIdle, kSpin, kTouch, kFault };

static atomic_int g_stop;
static enum Mode g_mode;
static char *g_resident;
static size_t g_resident_bytes;

static void *Busy(void *arg) {
  (void)arg;
  volatile uint64_t sink = 0;
  while (!atomic_load(&g_stop)) {
    switch (g_mode) {
      case kIdle: {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        break;
      }
      case kSpin:
        for (uint64_t i = 0; i < 1000000; ++i) sink += i;
        break;
      case kTouch:
        for (size_t off = 0; off < g_resident_bytes && !atomic_load(&g_stop); off += 4096) ++g_resident[off];
        break;
      case kFault: {
        const size_t bytes = (size_t)256 << 20;
        char *fresh = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (fresh == MAP_FAILED) {
          perror("machine_stalls: mmap");
          exit(1);
        }
        for (size_t off = 0; off < bytes && !atomic_load(&g_stop); off += 4096) fresh[off] = 1;
        munmap(fresh, bytes);
        break;
      }
    }
  }
  return NULL;
}

static int ParsePositive(const char *text, double *out) {
  char *end = NULL;
  double v = strtod(text, &end);
  if (end == text || *end != '\0' || !(v > 0) || v > 1e6) return 0;
  *out = v;
  return 1;
}

int main(int argc, char **argv) {
  double resident_gib = 3, seconds = 5;
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: machine_stalls idle|spin|touch|fault [resident GiB] [seconds]\n");
    return 2;
  }
  if (strcmp(argv[1], "idle") == 0) {
    g_mode = kIdle;
  } else if (strcmp(argv[1], "spin") == 0) {
    g_mode = kSpin;
  } else if (strcmp(argv[1], "touch") == 0) {
    g_mode = kTouch;
  } else if (strcmp(argv[1], "fault") == 0) {
    g_mode = kFault;
  } else {
    fprintf(stderr, "machine_stalls: unknown mode '%s' (idle, spin, touch or fault)\n", argv[1]);
    return 2;
  }
  if ((argc > 2 && !ParsePositive(argv[2], &resident_gib)) || (argc > 3 && !ParsePositive(argv[3], &seconds))) {
    fprintf(stderr, "machine_stalls: resident GiB and seconds must be positive numbers\n");
    return 2;
  }
  g_resident_bytes = (size_t)(resident_gib * 1073741824.0) & ~(size_t)4095;
  if (g_resident_bytes == 0) g_resident_bytes = 4096;
  g_resident = mmap(NULL, g_resident_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_resident == MAP_FAILED) {
    perror("machine_stalls: mmap");
    return 1;
  }
  for (size_t off = 0; off < g_resident_bytes; off += 4096) g_resident[off] = 1;

  pthread_t busy;
  if (pthread_create(&busy, NULL, Busy, NULL) != 0) {
    fprintf(stderr, "machine_stalls: pthread_create failed\n");
    return 1;
  }
  const struct BenchSleeperResult r = BenchRunSleeper(seconds, -1);
  atomic_store(&g_stop, 1);
  pthread_join(busy, NULL);
  printf("RESULT mode=%s resident_gib=%.2f seconds=%.1f wakeups=%ld late_max_ms=%.1f late_over_10ms=%ld\n", argv[1],
         resident_gib, seconds, r.wakeups, r.late_max_ms, r.over_10ms);
  return 0;
}
