// gc/stats.h — the collector's statistics, each counter declared once (STYLE.md 11; mimalloc's mi_stats_t, cppgc's
// StatsCollector). Every figure pgc_stats reports comes from one of four places:
//
//   PACEGC_COLLECTOR_STATS  counted by the collector at the end of each cycle (CycleStats, collector.cc)
//   PACEGC_ALLOC_STATS      counted by allocation, pgc_free and the sweep (AllocCounters, g_alloc); claims and
//                           frees made without the heap lock are folded in at every cycle, and ReadStats adds those
//                           still pending (alloc.h, "Accounting (Credit)")
//   PACEGC_PACER_STATS      kept by the Pacer (pacer/pacer.h: pacer::PacerStats)
//   gauges                  read from the mechanisms when asked (heap pages, metadata, threads, CPU capacity, the
//                           cgroup): ReadStats (collector.cc), from one pacing::CurrentMemory() so they add up
//
// Each list entry is X(type, name, what it counts) where name is the pgc_stats field it fills; the record's members
// and ReadStats' copy into pgc_stats are generated from the lists. Everything else reads that one snapshot:
// pgc_write_metrics (Prometheus and JSON, metrics/expose.cc's table), the go-metrics registry's pause timer (fed from
// the record at the end of a cycle), gctrace (given the record by CycleEnd). Adding a counter: one line in a list,
// its pgc_stats field (the public, versioned layout: append, bump PGC_STATS_VERSION), and a line in expose.cc's
// table if it is exported.
//
// All guarded by the heap lock.
#ifndef PACEGC_GC_STATS_H_
#define PACEGC_GC_STATS_H_

#include <cstdint>

#include "pacegc/pacegc.h"
#include "pacer/pacer.h"

namespace pacegc::internal {

#define PACEGC_COLLECTOR_STATS(X)                                                                         \
  X(uint64_t, num_gc, "completed collections, forced ones included")                                    \
  X(uint64_t, num_forced_gc, "completed collections started by pgc_collect / pgc_free_os_memory")        \
  X(uint64_t, pause_total_ns, "wall time the world was stopped, summed")                                \
  X(uint64_t, pause_last_ns, "wall time of the last pause")                                             \
  X(uint64_t, pause_max_ns, "the longest pause")                                                        \
  X(uint64_t, gc_cpu_ns, "GC CPU as Go counts it: each pause × the CPU capacity")                       \
  X(uint64_t, last_heap_scan_bytes, "object bytes the last collection scanned")

#define PACEGC_ALLOC_STATS(X)                                                                             \
  X(uint64_t, heap_alloc_bytes, "objects allocated (slots claimed by thread caches included) not yet freed") \
  X(uint64_t, heap_objects, "objects allocated (claimed) and not yet freed")                            \
  X(uint64_t, total_alloc_bytes, "cumulative bytes allocated (claimed)")                                \
  X(uint64_t, total_alloc_objects, "cumulative objects allocated (claimed)")                            \
  X(uint64_t, total_free_bytes, "cumulative bytes freed: swept, pgc_free'd, unclaimed cache slots")     \
  X(uint64_t, total_free_objects, "cumulative objects freed")

#define PACEGC_STATS_MEMBER(type, name, doc) type name = 0;

// Counted by the collector, once per cycle.
struct CycleStats {
  PACEGC_COLLECTOR_STATS(PACEGC_STATS_MEMBER)
  uint64_t pause_ns[256] = {};                       // pause of cycle n at [(n + 255) % 256], as pgc_stats.pause_ns
  uint64_t pause_hist[PGC_PAUSE_HIST_BUCKETS] = {};  // as pgc_stats.pause_hist
  uint64_t last_overflows = 0;                       // mark-stack overflows of the last cycle (a test hook reads it)
  // The last cycle's report to the pacer: MarkAndSweep fills the marking figures, CollectLocked the rest. The
  // Pacer keeps what it needs (pgc_stats reads marked, stack and globals bytes from the Pacer, not from here).
  pacer::CycleReport report{};
};

// Allocation accounting. "Claimed" slots count as allocated from the moment a cache claims them.
struct AllocCounters {
  PACEGC_ALLOC_STATS(PACEGC_STATS_MEMBER)
  void Alloc(uint64_t objects, uint64_t bytes) {
    heap_alloc_bytes += bytes;
    heap_objects += objects;
    total_alloc_bytes += bytes;
    total_alloc_objects += objects;
  }
  void Free(uint64_t objects, uint64_t bytes) {
    heap_alloc_bytes -= bytes;
    heap_objects -= objects;
    total_free_bytes += bytes;
    total_free_objects += objects;
  }
};

#undef PACEGC_STATS_MEMBER

// Copies every listed counter into *out (the gauges are ReadStats' own).
inline void CopyListedStats(const CycleStats &c, const AllocCounters &a, const pacer::PacerStats &p, pgc_stats *out) {
#define PACEGC_STATS_COPY_C(type, name, doc) out->name = c.name;
#define PACEGC_STATS_COPY_A(type, name, doc) out->name = a.name;
#define PACEGC_STATS_COPY_P(type, name, doc) out->name = p.name;
  PACEGC_COLLECTOR_STATS(PACEGC_STATS_COPY_C)
  PACEGC_ALLOC_STATS(PACEGC_STATS_COPY_A)
  PACEGC_PACER_STATS(PACEGC_STATS_COPY_P)
#undef PACEGC_STATS_COPY_C
#undef PACEGC_STATS_COPY_A
#undef PACEGC_STATS_COPY_P
  static_assert(sizeof(c.pause_ns) == sizeof(out->pause_ns) && sizeof(c.pause_hist) == sizeof(out->pause_hist));
  for (size_t i = 0; i < sizeof(c.pause_ns) / sizeof(c.pause_ns[0]); ++i) out->pause_ns[i] = c.pause_ns[i];
  for (size_t i = 0; i < PGC_PAUSE_HIST_BUCKETS; ++i) out->pause_hist[i] = c.pause_hist[i];
}

}  // namespace pacegc::internal

#endif  // PACEGC_GC_STATS_H_
