/* tests/unit/cgroup_probe.c — cgroup_test's child: a program started inside a cgroup, reporting what the library
 * read from it at start-up (pgc_stats), as any program would see it.
 *   cgroup_probe              prints "start " and the state (below) and exits 0
 *   cgroup_probe wait-change  then collects once (which starts the background thread that re-reads the cgroup
 *                             every second), prints "waiting", and waits up to 20 s for a different CPU capacity
 *                             or memory limit: prints "changed " and the state and exits 0, or "unchanged" and
 *                             exits 1
 *   cgroup_probe set-limit-wait BYTES  like wait-change, but first sets the limit with pgc_set_memory_limit, and
 *                             waits 3 s (three re-reads) whatever happens, then prints "after " and the state
 * The state: "capacity=C quota=Q source=S affinity=A limit=L limit_source=LS cgroup_limit=CL hierarchy=H
 * ratio=R". */
#include <pacegc/pacegc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pgc_stats read_stats(void) {
  pgc_stats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  pgc_read_stats(&st);
  return st;
}

static void print_state(const char *what, const pgc_stats *st) {
  printf("%s capacity=%.3f quota=%.3f source=%u affinity=%u limit=%lld limit_source=%u cgroup_limit=%llu "
         "hierarchy=%u ratio=%.3f\n",
         what, st->cpu_capacity, st->cpu_quota, st->cpu_capacity_source, st->cpu_affinity,
         (long long)st->memory_limit_bytes, st->memory_limit_source,
         (unsigned long long)st->cgroup_memory_limit_bytes, st->cgroup_memory_hierarchy, st->automemlimit_ratio);
  fflush(stdout);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  pgc_stats st = read_stats();
  print_state("start", &st);
  if (argc < 2) return 0;
  int set_limit = strcmp(argv[1], "set-limit-wait") == 0 && argc > 2;
  if (!set_limit && strcmp(argv[1], "wait-change") != 0) return 0;
  if (set_limit) pgc_set_memory_limit(strtoll(argv[2], NULL, 10));
  pgc_collect();
  st = read_stats();
  double capacity = st.cpu_capacity;
  int64_t limit = st.memory_limit_bytes;
  printf("waiting\n");
  fflush(stdout);
  if (set_limit) {
    sleep_ms(3000);
    st = read_stats();
    print_state("after", &st);
    return 0;
  }
  for (int i = 0; i < 400; i++) {
    sleep_ms(50);
    st = read_stats();
    if (st.cpu_capacity != capacity || st.memory_limit_bytes != limit) {
      print_state("changed", &st);
      return 0;
    }
  }
  printf("unchanged\n");
  return 1;
}
