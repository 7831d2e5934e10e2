/* The program behind the metrics_exposition test (expose_check.py): known work through the public C API, then
 * pgc_write_metrics in both formats between two pgc_read_stats snapshots. Usage: expose_probe <directory>.
 * Writes there:
 *   prometheus.txt  pgc_write_metrics(PGC_METRICS_PROMETHEUS)
 *   metrics.json    pgc_write_metrics(PGC_METRICS_JSON)
 *   stats.json      {"work": {...}, "errors": {...}, "initial": stats, "before": stats, "after": stats}: the
 *                   snapshots taken before the work, right before the first write and right after the second
 * and exits 0 (1 with a message if a call failed). The checks themselves are in expose_check.py. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pacegc/pacegc.h>

enum { kObjects = 20000, kObjectBytes = 48, kCollections = 3, kManualBytes = 1000 };

static void *volatile g_keep[64]; /* a few objects stay reachable */

static void print_stats(FILE *f, const char *key, const pgc_stats *s) {
  fprintf(f, "\"%s\": {", key);
#define F(name) fprintf(f, "\"" #name "\": %" PRIu64 ", ", (uint64_t)s->name)
  F(num_gc); F(num_forced_gc); F(heap_live_bytes); F(heap_goal_bytes); F(heap_alloc_bytes); F(heap_objects);
  F(total_bytes); F(heap_mapped_bytes); F(heap_released_bytes); F(released_bytes); F(metadata_bytes);
  F(total_alloc_bytes); F(total_alloc_objects); F(total_free_bytes); F(total_free_objects); F(pause_total_ns);
  F(gc_cpu_ns); F(last_stack_scan_bytes); F(last_globals_scan_bytes); F(last_heap_scan_bytes);
  F(limiter_last_enabled_cycle); F(limiter_enabled); F(limiter_enabled_ns); F(manual_bytes); F(scavenge_cpu_ns);
  F(heap_in_use_bytes); F(heap_free_bytes); F(num_periodic_gc); F(limiter_postponed);
  F(memory_limit_source); F(cgroup_memory_limit_bytes); F(hard_limit_gc); F(hard_limit_failures);
  F(num_concurrent_gc); F(num_runway_gc); F(assist_cpu_ns);
#undef F
  fprintf(f, "\"cpu_capacity\": %.6f, \"cpu_quota\": %.6f, ", s->cpu_capacity, s->cpu_quota);
  fprintf(f, "\"gc_percent\": %" PRId64 ", \"memory_limit_bytes\": %" PRId64 ", \"hard_memory_limit_bytes\": %" PRId64
          ", \"pause_hist\": [", s->gc_percent, s->memory_limit_bytes, s->hard_memory_limit_bytes);
  for (int i = 0; i < PGC_PAUSE_HIST_BUCKETS; ++i) fprintf(f, "%s%" PRIu64, i ? ", " : "", s->pause_hist[i]);
  fprintf(f, "]}");
}

static int write_file(const char *dir, const char *name, int format) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    perror(path);
    exit(1);
  }
  int rc = pgc_write_metrics(fd, format);
  close(fd);
  if (rc != 0) {
    fprintf(stderr, "expose_probe: pgc_write_metrics(%s, %d) = %d\n", path, format, rc);
    exit(1);
  }
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: expose_probe <directory>\n");
    return 2;
  }
  const char *dir = argv[1];

  /* Registry metrics, one of each kind, and names that need escaping. */
  pgc_counter_inc(pgc_counter_get("app/requests"), 7);
  pgc_gauge_update(pgc_gauge_get("app/queue-depth"), -3);
  pgc_gauge_float_update(pgc_gauge_float_get("app/load"), 0.25);
  pgc_meter_mark(pgc_meter_get("app/events"), 5);
  pgc_histogram *sizes = pgc_histogram_get("app/sizes");
  for (int i = 1; i <= 100; ++i) pgc_histogram_update(sizes, i);
  pgc_histogram_get("app/empty");
  pgc_timer *latency = pgc_timer_get("app/latency");
  for (int i = 1; i <= 5; ++i) pgc_timer_update_ns(latency, i * 1000);
  pgc_counter_inc(pgc_counter_get("app/\"quoted\"\\back/\xc3\xa9/\xff"), 1);
  pgc_counter_inc(pgc_counter_get("/gc/heap/goal:bytes"), 11); /* an application name equal to a runtime one */

  pgc_stats initial, before, after;
  memset(&initial, 0, sizeof(initial));
  initial.size = sizeof(initial);
  pgc_read_stats(&initial);

  /* Known work: objects, manual bytes, forced collections. */
  for (int i = 0; i < kObjects; ++i) {
    void *p = pgc_malloc(kObjectBytes);
    if (p == NULL) {
      fprintf(stderr, "expose_probe: pgc_malloc failed\n");
      return 1;
    }
    g_keep[i % 64] = p;
  }
  void *manual = pgc_manual_malloc(kManualBytes);
  for (int i = 0; i < kCollections; ++i) pgc_collect();

  /* Bad input. */
  int bad_format = pgc_write_metrics(STDOUT_FILENO, 0);
  int bad_format2 = pgc_write_metrics(STDOUT_FILENO, 3);
  int bad_fd = pgc_write_metrics(-1, PGC_METRICS_PROMETHEUS);
  int fds[2];
  if (pipe(fds) != 0) return 1;
  close(fds[0]);
  close(fds[1]);
  int closed_fd = pgc_write_metrics(fds[1], PGC_METRICS_JSON);

  memset(&before, 0, sizeof(before));
  before.size = sizeof(before);
  pgc_read_stats(&before);
  write_file(dir, "prometheus.txt", PGC_METRICS_PROMETHEUS);
  write_file(dir, "metrics.json", PGC_METRICS_JSON);
  memset(&after, 0, sizeof(after));
  after.size = sizeof(after);
  pgc_read_stats(&after);

  char path[4096];
  snprintf(path, sizeof(path), "%s/stats.json", dir);
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  fprintf(f, "{\"work\": {\"objects\": %d, \"object_bytes\": %d, \"collections\": %d, \"manual_bytes\": %d}, ",
          kObjects, kObjectBytes, kCollections, kManualBytes);
  fprintf(f, "\"errors\": {\"bad_format\": %d, \"bad_format2\": %d, \"bad_fd\": %d, \"closed_fd\": %d, "
             "\"EINVAL\": %d, \"EBADF\": %d}, ",
          bad_format, bad_format2, bad_fd, closed_fd, EINVAL, EBADF);
  print_stats(f, "initial", &initial);
  fprintf(f, ", ");
  print_stats(f, "before", &before);
  fprintf(f, ", ");
  print_stats(f, "after", &after);
  fprintf(f, "}\n");
  fclose(f);
  pgc_manual_free(manual);
  return 0;
}
