/* tests/unit/cpu_probe.c — cgroup_test's child: a program started inside a cgroup, reporting the CPU capacity
 * the library read at start-up from pgc_stats, as any program would see it.
 *   cpu_probe              prints "start capacity=C quota=Q source=S" and exits 0
 *   cpu_probe wait-change  then collects once (which starts the background thread that re-reads the quota every
 *                          second) and waits up to 20 s for a different capacity: prints "changed capacity=C
 *                          quota=Q source=S" and exits 0, or "unchanged" and exits 1. */
#include <pacegc/pacegc.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static pgc_stats read_stats(void) {
  pgc_stats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  pgc_read_stats(&st);
  return st;
}

int main(int argc, char **argv) {
  pgc_stats st = read_stats();
  printf("start capacity=%.3f quota=%.3f source=%u affinity=%u\n", st.cpu_capacity, st.cpu_quota,
         st.cpu_capacity_source, st.cpu_affinity);
  fflush(stdout);
  if (argc < 2 || strcmp(argv[1], "wait-change") != 0) return 0;
  double first = st.cpu_capacity;
  pgc_collect();
  for (int i = 0; i < 400; i++) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    st = read_stats();
    if (st.cpu_capacity != first) {
      printf("changed capacity=%.3f quota=%.3f source=%u\n", st.cpu_capacity, st.cpu_quota, st.cpu_capacity_source);
      return 0;
    }
  }
  printf("unchanged\n");
  return 1;
}
