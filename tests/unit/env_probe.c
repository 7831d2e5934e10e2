/* A minimal pacegc program for env_test: allocates, collects, says so. It calls nothing else of the library (no
 * metrics function): settings must take effect in such a program too. ENV_PROBE_SLEEP_MS=n: sleep n ms before
 * exiting (to give a periodic logger time to write). */
#include <pacegc/pacegc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
  void *p = pgc_malloc(100);
  pgc_collect();
  const char *sleep_ms = getenv("ENV_PROBE_SLEEP_MS");
  if (sleep_ms != NULL) usleep((useconds_t)atoi(sleep_ms) * 1000);
  pgc_stats s = {0};
  s.size = sizeof(s);
  pgc_read_stats(&s);
  fprintf(stderr, "probe ok %d gc_percent=%lld\n", p != NULL, (long long)s.gc_percent);
  return p != NULL ? 0 : 1;
}
