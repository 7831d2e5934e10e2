/* tests/malloc/leaker.c — a service that leaks: it allocates 2 GiB in 16 KiB blocks, touches every page, keeps
 * the newest 1,024 (16 MiB) in use and drops the rest without free. Under plain glibc its footprint grows until a
 * memory cap kills it; under libpacegc-malloc with PACEGC_MALLOC=collect the dropped blocks are reclaimed.
 * Prints a checksum of the live blocks and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kBlock = 16384, kLive = 1024 };

int main(void) {
  static char *live[kLive];
  const uint64_t total = (uint64_t)2 << 30;
  uint64_t checksum = 0;
  for (uint64_t i = 0; i < total / kBlock; ++i) {
    char *b = malloc(kBlock);
    if (b == NULL) {
      fprintf(stderr, "leaker: malloc failed after %llu MiB\n", (unsigned long long)(i * kBlock >> 20));
      return 1;
    }
    memset(b, (int)(i & 0xff), kBlock);
    live[i % kLive] = b; /* the block it replaces is leaked */
  }
  for (int i = 0; i < kLive; ++i) checksum += (unsigned char)live[i][kBlock - 1];
  printf("leaker: allocated 2048 MiB, checksum %llu\n", (unsigned long long)checksum);
  return 0;
}
