/* A minimal pacegc program for env_test: allocates, collects, says so. */
#include <pacegc/pacegc.h>
#include <stdio.h>

int main(void) {
  void *p = pgc_malloc(100);
  pgc_collect();
  fprintf(stderr, "probe ok %d\n", p != NULL);
  return p != NULL ? 0 : 1;
}
