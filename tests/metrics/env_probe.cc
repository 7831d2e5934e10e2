// A minimal program for metrics/env_test.cc: starts the library as any program does (PACEGC_METRICS_LOG is read at
// load time, before main; the probe calls no initialiser itself), registers a metric, says which logger interval
// is running, and exits while the logger thread (if any) is still alive, which must not keep the process from
// exiting with status 0.
#include <pacegc/pacegc.h>

#include <cinttypes>
#include <cstdio>

#include "metrics/log.h"

int main() {
  pgc_counter *c = pgc_counter_get("probe/started");
  pgc_counter_inc(c, 1);
  fprintf(stderr, "probe ok interval_ns=%" PRId64 "\n", pacegc::metrics::LoggerIntervalNs());
  return c != nullptr ? 0 : 1;
}
