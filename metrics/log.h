// metrics/log.h — the metrics log: one block of lines describing every registered metric (go-metrics' Log), written
// once on request or periodically by a logger thread enabled with PACEGC_METRICS_LOG=<duration>.
//
// Block format (one header line, then one line per registered metric in name order; every line starts with
// "metrics: " so it can be picked out of a service's stderr; keys carry units where the value has one):
//   metrics: t=12.000s n=3
//   metrics: counter NAME count=42
//   metrics: gauge NAME value=-7
//   metrics: gauge_float NAME value=0.75
//   metrics: meter NAME count=3 rate1=0.6 rate5=0.6 rate15=0.6 rate_mean=0.6
//   metrics: histogram NAME count=100 min=1 max=100 mean=50.5 stddev=28.8660700 p50=50.5 p75=75.75 p95=95.95
//            p99=99.99 p999=100                                                        (one line, wrapped here)
//   metrics: timer NAME count=… min_ns=… max_ns=… mean_ns=… stddev_ns=… p50_ns=… p75_ns=… p95_ns=… p99_ns=…
//            p999_ns=… rate1=… rate5=… rate15=… rate_mean=…                            (one line)
// t is seconds since the registry was created, by its clock. Rates are events per second. Floating-point values
// are printed with %.9g. The block is built in memory and written with as few write(2) calls as the fd takes (one
// for a block that fits in a pipe's PIPE_BUF, so blocks from different writers do not interleave).
//
// Periodic logger. A plain detached pthread, created with every signal blocked, that sleeps on a CLOCK_MONOTONIC
// condition variable and writes a block every interval. It never touches collected memory (only the registry,
// which is metadata) and is never registered with the collector, so stop-the-world neither waits for it nor
// stops it; being detached, it does not keep the process alive. At most one logger runs; starting it again
// replaces its interval and fd. StopLogger returns after the thread has finished its last write, so the caller
// may close the fd afterwards. After fork() the child has no logger (a pthread_atfork handler resets the state).
//
// PACEGC_METRICS_LOG (a subset of Go's time.ParseDuration: 500ms, 10s, 1m30s; at least 1ms; "off") is one entry
// of the settings table (settings/settings.h), parsed by pacer::ParseMetricsLogInterval (pacer/config.h) and,
// like every setting, refused at initialisation with one line and exit status 2 when malformed.
#ifndef PACEGC_METRICS_LOG_H_
#define PACEGC_METRICS_LOG_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "metrics/containers.h"
#include "metrics/registry.h"

namespace pacegc::metrics {

// Appends one block to *out. false if out of metadata memory.
bool FormatLog(const Registry &registry, MetaString *out);
// Writes one block to fd. 0, or an errno value (from write(2), or ENOMEM).
int WriteLog(const Registry &registry, int fd);

// Starts (or restarts with new settings) the periodic logger. 0, EINVAL (registry NULL, fd < 0, interval below
// pacer::kMinMetricsLogIntervalNs) or the error of pthread_create. registry must outlive the logger.
int StartLogger(Registry *registry, int64_t interval_ns, int fd);
// Stops the logger, if running, and waits for its thread to finish. Must not be called from the logger itself.
void StopLogger();
// The running logger's interval, 0 if none.
int64_t LoggerIntervalNs();

// The one call for library initialisation (metrics/registry.cc's load-time constructor). Reads the settings
// (settings::Get(), which exits 2 on any malformed setting): PACEGC_METRICS_LOG off → nothing; an interval →
// StartLogger(Registry::Default(), interval, stderr). Later calls do nothing.
void StartLoggerFromSettings();

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_LOG_H_
