/* tests/malloc/release_probe.c — the drop-in's free memory goes back to the OS, as the soft limit needs.
 *
 * A thread mallocs 256 MiB in 4 KiB blocks, writes them, frees them all and exits. mimalloc alone keeps such pages
 * committed until the same thread allocates again, so the total the limit counts (pgc_stats.total_bytes, of which
 * mimalloc's committed bytes are the manual part) would stay 256 MiB above what the program uses, for good.
 *
 *   release_probe limit  (run with GOMEMLIMIT=128MiB) the background scavenger asks mimalloc for its free pages:
 *                        total_bytes falls below 128 MiB within 30 s, with the program doing nothing
 *   release_probe free   (no limit) pgc_free_os_memory returns them: total_bytes falls below 128 MiB at once
 * Links nothing of pacegc (finds it by dlsym). Exit 0 pass, 1 fail, 2 usage, 3 pacegc not in the process. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pacegc/pacegc.h"

#define BLOCKS (64 * 1024)
static void *blocks[BLOCKS];
static void (*read_stats)(pgc_stats *);

static unsigned long long total_mib(void) {
  pgc_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  read_stats(&s);
  return (unsigned long long)(s.total_bytes >> 20);
}

static void *churn(void *arg) {
  (void)arg;
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = malloc(4096);
    if (blocks[i] == NULL) return (void *)1;
    memset(blocks[i], 0x5a, 4096);
  }
  for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
  return NULL;
}

int main(int argc, char **argv) {
  read_stats = (void (*)(pgc_stats *))dlsym(RTLD_DEFAULT, "pgc_read_stats");
  size_t (*free_os_memory)(void) = (size_t(*)(void))dlsym(RTLD_DEFAULT, "pgc_free_os_memory");
  if (read_stats == NULL || free_os_memory == NULL) {
    fprintf(stderr, "release_probe: pacegc is not in this process (preload libpacegc-malloc.so)\n");
    return 3;
  }
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "limit") != 0 && strcmp(mode, "free") != 0) {
    fprintf(stderr, "usage: release_probe limit|free\n");
    return 2;
  }
  pthread_t t;
  void *failed = NULL;
  if (pthread_create(&t, NULL, churn, NULL) != 0 || pthread_join(t, &failed) != 0 || failed != NULL) {
    fprintf(stderr, "release_probe: the allocating thread failed\n");
    return 1;
  }
  const unsigned long long after_free = total_mib();
  printf("total after the thread freed 256 MiB and exited: %llu MiB\n", after_free);
  if (strcmp(mode, "limit") == 0) {
    for (int i = 0; i < 300 && total_mib() >= 128; i++) usleep(100 * 1000);
  } else {
    size_t released = free_os_memory();
    printf("pgc_free_os_memory released %zu MiB\n", released >> 20);
  }
  const unsigned long long now = total_mib();
  printf("total now: %llu MiB\n", now);
  if (now >= 128) {
    fprintf(stderr, "release_probe %s: total_bytes is still %llu MiB (>= 128 MiB) after the program freed 256 MiB\n",
            mode, now);
    return 1;
  }
  return 0;
}
