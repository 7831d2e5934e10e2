// metrics/expose.h — exposition of pacegc's named metrics: pgc_write_metrics (include/pacegc/pacegc.h).
//
// One pgc_stats snapshot becomes a fixed list of named metrics mirroring Go's runtime/metrics names
// ("/gc/heap/goal:bytes"), declared once in a table in expose.cc, followed by every metric of a registry
// (registry.h). Two formats:
//
//   Prometheus  text exposition format 0.0.4. A Go-style name becomes a Prometheus name by dropping the leading
//               '/', replacing every byte outside [a-zA-Z0-9_] by '_', collapsing runs of '_' and prefixing
//               "pacegc_" (a name in pacegc's own "/pacegc/" namespace is prefixed only once); counters get the
//               "_total" suffix, as Prometheus' client_golang does for Go's runtime/metrics:
//                 /gc/heap/goal:bytes        → pacegc_gc_heap_goal_bytes                  (gauge)
//                 /gc/cycles/total:gc-cycles → pacegc_gc_cycles_total_gc_cycles_total     (counter)
//                 /pacegc/manual:bytes       → pacegc_manual_bytes                        (gauge)
//               Registry metrics are not renamed: they are grouped by kind into the families pacegc_app_*, with
//               the registered name as the label `name` (escaped), so any registered name is representable and no
//               two registry metrics, or a registry metric and a runtime one, can collide.
//   JSON        one object: "<Go-style name>": value for the runtime metrics, then "registry": {"<name>": {...}}.
//
// Exactness: every number written is a pgc_stats field, a sum or difference of fields, or a value the registry
// reports; durations in nanoseconds are written as exact decimal seconds ("1.234567890"). Nothing is estimated:
// the pause histogram's sum is pause_total_ns, not a sum of bucket midpoints, and a registry histogram's
// Prometheus summary has no _sum (its decaying sample does not know the sum of every value ever recorded).
//
// Text is UTF-8: a registry name's bytes that are not valid UTF-8 are written as U+FFFD.
// Memory: the text is built in collector metadata memory (containers.h), never in the collected heap.
#ifndef PACEGC_METRICS_EXPOSE_H_
#define PACEGC_METRICS_EXPOSE_H_

#include <cstddef>

#include "metrics/containers.h"
#include "metrics/registry.h"
#include "pacegc/pacegc.h"

namespace pacegc::metrics {

// The Prometheus name of a runtime metric's Go-style name (rule above); counter adds "_total". Throws
// std::bad_alloc when metadata memory is exhausted.
MetaString PrometheusName(const char *go_name, bool counter);

// Appends the exposition of `stats` (a complete pgc_stats, size == sizeof) and of every metric of `registry`
// (nullptr: none) in `format` (PGC_METRICS_PROMETHEUS or PGC_METRICS_JSON) to *out.
// Returns 0, EINVAL (unknown format) or ENOMEM (metadata memory exhausted; *out then holds a partial text).
int FormatMetrics(const pgc_stats &stats, const Registry *registry, int format, MetaString *out);

// Writes all n bytes to fd, retrying partial writes and EINTR; on a socket it uses send(MSG_NOSIGNAL), so a
// closed peer yields EPIPE instead of SIGPIPE. 0 or the errno of the failed call (EIO if a write returns 0).
int WriteFully(int fd, const char *p, size_t n);

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_EXPOSE_H_
