/* The metrics registry's C API used from C (compiled as C11 against pacegc.h only). Each scenario returns 0, or
 * the line of the first failed check with a description in `failure`; metrics/c_api_test.cc runs them. Names are
 * prefixed "c_api/" because the registry is the process-wide one. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <pacegc/pacegc.h>

#define EXPECT(cond)                                                        \
  do {                                                                      \
    if (!(cond)) {                                                          \
      snprintf(failure, failure_size, "%s:%d: %s", __FILE__, __LINE__, #cond); \
      return __LINE__;                                                      \
    }                                                                       \
  } while (0)

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1); }

int c_api_counters_and_gauges(char *failure, size_t failure_size) {
  pgc_counter *c = pgc_counter_get("c_api/requests");
  EXPECT(c != NULL);
  EXPECT(pgc_counter_get("c_api/requests") == c);
  pgc_counter_inc(c, 5);
  pgc_counter_dec(c, 2);
  EXPECT(pgc_counter_count(c) == 3);
  pgc_counter_clear(c);
  EXPECT(pgc_counter_count(c) == 0);

  pgc_gauge *g = pgc_gauge_get("c_api/queue");
  EXPECT(g != NULL);
  pgc_gauge_update(g, -7);
  EXPECT(pgc_gauge_value(g) == -7);
  pgc_gauge_float *f = pgc_gauge_float_get("c_api/load");
  EXPECT(f != NULL);
  pgc_gauge_float_update(f, 0.25);
  EXPECT(pgc_gauge_float_value(f) == 0.25);

  /* NULL handles are ignored. */
  pgc_counter_inc(NULL, 1);
  pgc_gauge_update(NULL, 1);
  pgc_meter_mark(NULL, 1);
  pgc_histogram_update(NULL, 1);
  pgc_timer_update_ns(NULL, 1);
  EXPECT(pgc_counter_count(NULL) == 0);
  return 0;
}

int c_api_misuse(char *failure, size_t failure_size) {
  pgc_counter *c = pgc_counter_get("c_api/kind");
  EXPECT(c != NULL);
  errno = 0;
  EXPECT(pgc_meter_get("c_api/kind") == NULL);
  EXPECT(errno == EEXIST);
  errno = 0;
  EXPECT(pgc_histogram_get(NULL) == NULL);
  EXPECT(errno == EINVAL);
  errno = 0;
  EXPECT(pgc_timer_get("two words") == NULL);
  EXPECT(errno == EINVAL);
  EXPECT(pgc_counter_get("c_api/kind") == c); /* the first registration is untouched */

  pgc_histogram_values hv;
  hv.size = 4; /* too small for the version field */
  pgc_histogram *h = pgc_histogram_get("c_api/misuse_hist");
  EXPECT(h != NULL);
  EXPECT(pgc_histogram_snapshot(h, &hv) == EINVAL);
  EXPECT(pgc_histogram_snapshot(h, NULL) == EINVAL);
  EXPECT(pgc_histogram_snapshot(NULL, &hv) == EINVAL);
  EXPECT(pgc_timer_snapshot(pgc_timer_get("c_api/misuse_timer"), NULL, NULL) == EINVAL);
  EXPECT(pgc_metrics_unregister(NULL) == EINVAL);
  EXPECT(pgc_metrics_unregister("c_api/never-registered") == ENOENT);
  EXPECT(pgc_metrics_each(NULL, NULL) == EINVAL);
  EXPECT(pgc_metrics_log_start(999999, 2) == EINVAL);
  return 0;
}

int c_api_histogram_meter_timer(char *failure, size_t failure_size) {
  pgc_histogram *h = pgc_histogram_get("c_api/sizes");
  EXPECT(h != NULL);
  for (int i = 1; i <= 100; ++i) pgc_histogram_update(h, i);
  pgc_histogram_values v;
  memset(&v, 0, sizeof(v));
  v.size = sizeof(v);
  EXPECT(pgc_histogram_snapshot(h, &v) == 0);
  EXPECT(v.version == PGC_METRIC_VALUES_VERSION);
  EXPECT(v.count == 100);
  EXPECT(v.sample_size == 100);
  EXPECT(v.min == 1);
  EXPECT(v.max == 100);
  EXPECT(near(v.mean, 50.5));
  EXPECT(near(v.stddev, sqrt(833.25)));
  EXPECT(near(v.p50, 50.5));
  EXPECT(near(v.p75, 75.75));
  EXPECT(near(v.p95, 95.95));
  EXPECT(near(v.p99, 99.99));
  EXPECT(near(v.p999, 100));

  /* An older caller whose struct ends before `mean`: nothing past its size is written. */
  pgc_histogram_values old;
  memset(&old, 0xAB, sizeof(old));
  old.size = offsetof(pgc_histogram_values, mean);
  EXPECT(pgc_histogram_snapshot(h, &old) == 0);
  EXPECT(old.max == 100);
  {
    unsigned char pattern[sizeof(double)];
    memset(pattern, 0xAB, sizeof(pattern));
    EXPECT(memcmp(&old.mean, pattern, sizeof(pattern)) == 0);
  }

  pgc_histogram_clear(h);
  EXPECT(pgc_histogram_snapshot(h, &v) == 0);
  EXPECT(v.count == 0);

  pgc_meter *m = pgc_meter_get("c_api/allocs");
  EXPECT(m != NULL);
  pgc_meter_mark(m, 3);
  pgc_meter_mark(m, 4);
  pgc_meter_values mv;
  mv.size = sizeof(mv);
  EXPECT(pgc_meter_snapshot(m, &mv) == 0);
  EXPECT(mv.version == PGC_METRIC_VALUES_VERSION);
  EXPECT(mv.count == 7);
  EXPECT(mv.rate_mean > 0);

  pgc_timer *t = pgc_timer_get("c_api/latency");
  EXPECT(t != NULL);
  pgc_timer_update_ns(t, 1000);
  pgc_timer_update_ns(t, 3000);
  pgc_histogram_values d;
  pgc_meter_values r;
  d.size = sizeof(d);
  r.size = sizeof(r);
  EXPECT(pgc_timer_snapshot(t, &d, &r) == 0);
  EXPECT(d.count == 2);
  EXPECT(near(d.mean, 2000));
  EXPECT(d.min == 1000);
  EXPECT(d.max == 3000);
  EXPECT(r.count == 2);
  return 0;
}

struct each_state {
  int seen;
  int in_order;
  int kinds_ok;
  char last[256];
};

static void each_fn(const char *name, pgc_metric_kind kind, void *metric, void *data) {
  struct each_state *s = (struct each_state *)data;
  if (strncmp(name, "c_api/each/", 11) != 0) return;
  if (s->seen > 0 && strcmp(s->last, name) >= 0) s->in_order = 0;
  snprintf(s->last, sizeof(s->last), "%s", name);
  ++s->seen;
  if (strcmp(name, "c_api/each/a") == 0 && (kind != PGC_METRIC_TIMER || metric != pgc_timer_get(name))) {
    s->kinds_ok = 0;
  }
  if (strcmp(name, "c_api/each/b") == 0 && (kind != PGC_METRIC_COUNTER || pgc_counter_count(metric) != 11)) {
    s->kinds_ok = 0;
  }
}

int c_api_each_and_unregister(char *failure, size_t failure_size) {
  pgc_counter_inc(pgc_counter_get("c_api/each/b"), 11);
  pgc_timer_get("c_api/each/a");
  pgc_gauge_get("c_api/each/c");
  struct each_state s = {0, 1, 1, ""};
  EXPECT(pgc_metrics_each(each_fn, &s) == 0);
  EXPECT(s.seen == 3);
  EXPECT(s.in_order);
  EXPECT(s.kinds_ok);

  pgc_counter *b = pgc_counter_get("c_api/each/b");
  EXPECT(pgc_metrics_unregister("c_api/each/b") == 0);
  EXPECT(pgc_metrics_unregister("c_api/each/b") == ENOENT);
  pgc_counter_inc(b, 1); /* the handle stays valid */
  struct each_state s2 = {0, 1, 1, ""};
  EXPECT(pgc_metrics_each(each_fn, &s2) == 0);
  EXPECT(s2.seen == 2);
  /* Registering it as another kind now works. */
  EXPECT(pgc_meter_get("c_api/each/b") != NULL);
  return 0;
}
