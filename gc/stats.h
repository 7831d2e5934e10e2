// gc/stats.h — the collector's statistics, each pgc_stats field declared once (STYLE.md 11; mimalloc's mi_stats_t,
// cppgc's StatsCollector). Every field of pgc_stats is named in exactly one of these lists, by where it comes from:
//
//   PACEGC_STATS_ENVELOPE    size and version of the snapshot itself (ReadStats)
//   PACEGC_COLLECTOR_STATS   counted by the collector at the end of each cycle (CycleStats, collector.cc)
//   PACEGC_COLLECTOR_HISTORY the same, arrays: the last pauses and the pause histogram
//   PACEGC_ALLOC_STATS       counted by allocation, pgc_free and the sweep (AllocCounters, g_alloc); claims and
//                            frees made without the heap lock are folded in at every cycle, and ReadStats adds those
//                            still pending (alloc.h, "Accounting (Credit)")
//   PACEGC_PACER_STATS       kept by the Pacer (pacer/pacer.h: pacer::PacerStats)
//   PACEGC_GAUGE_STATS       read from the mechanisms when asked (heap pages, metadata, threads, CPU capacity, the
//                            cgroup): ReadGauges (collector.cc), from one pacing::CurrentMemory() so they add up
//
// Each list entry is X(type, name, what it counts) (the history's X(type, name, count, what)) where name is the
// pgc_stats field it fills; the records' members (CycleStats, AllocCounters, Gauges, pacer::PacerStats) and
// ReadStats' copy into pgc_stats (CopyStats) are generated from the lists. The static_asserts at the end check the
// lists against the public struct: every field of pgc_stats is in one list, none twice, each with its own type (a
// pacer entry's type must fit the field without loss). A field added to pacegc.h and no list fails to compile.
//
// Everything else reads that one snapshot or that one record: pgc_write_metrics (Prometheus and JSON) reads
// pgc_read_stats and names its metrics in metrics/expose.cc's table (Go's runtime/metrics names; some are sums or
// differences of fields, and not every field is exported); the go-metrics registry's pause timer is fed from the
// record at the end of a cycle (collector.cc); gctrace is given the record by CycleEnd.
//
// Adding a statistic: one line in one list, its pgc_stats field with its doc comment (the public, versioned
// layout: append, bump PGC_STATS_VERSION), the code that counts it, and a line in expose.cc's table if it is
// exported (docs/HACKING.md).
//
// All guarded by the heap lock.
#ifndef PACEGC_GC_STATS_H_
#define PACEGC_GC_STATS_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "pacegc/pacegc.h"
#include "pacer/pacer.h"

namespace pacegc::internal {

#define PACEGC_STATS_ENVELOPE(X)                                                                          \
  X(size_t, size, "set by the caller; fields past it are not written")                                  \
  X(uint32_t, version, "PGC_STATS_VERSION of the library")                                               \
  X(uint32_t, reserved0, "zero")

#define PACEGC_COLLECTOR_STATS(X)                                                                         \
  X(uint64_t, num_gc, "completed collections, forced ones included")                                    \
  X(uint64_t, num_forced_gc, "completed collections started by pgc_collect / pgc_free_os_memory")        \
  X(uint64_t, pause_total_ns, "wall time the world was stopped, summed")                                \
  X(uint64_t, pause_last_ns, "wall time of the last pause")                                             \
  X(uint64_t, pause_max_ns, "the longest pause")                                                        \
  X(uint64_t, gc_cpu_ns, "GC CPU as Go counts it: each pause × the CPU capacity")                       \
  X(uint64_t, last_heap_scan_bytes, "object bytes the last collection scanned")                         \
  X(uint64_t, num_concurrent_gc, "completed collections that marked while the program ran (two pauses each)") \
  X(uint64_t, num_runway_gc, "of those, the ones started below the goal, with mark assists (pacer/trigger.h)") \
  X(uint64_t, assist_cpu_ns, "CPU the program's threads spent on mark assists (in gc_cpu_ns)")

#define PACEGC_COLLECTOR_HISTORY(X)                                                                       \
  X(uint64_t, pause_ns, 256, "the last 256 pauses: cycle n's at [(n + 255) % 256]")                     \
  X(uint64_t, pause_hist, PGC_PAUSE_HIST_BUCKETS, "every pause, by duration: bucket i counts <= 2^i us")

#define PACEGC_ALLOC_STATS(X)                                                                             \
  X(uint64_t, heap_alloc_bytes, "objects allocated (slots claimed by thread caches included) not yet freed") \
  X(uint64_t, heap_objects, "objects allocated (claimed) and not yet freed")                            \
  X(uint64_t, total_alloc_bytes, "cumulative bytes allocated (claimed)")                                \
  X(uint64_t, total_alloc_objects, "cumulative objects allocated (claimed)")                            \
  X(uint64_t, total_free_bytes, "cumulative bytes freed: swept, pgc_free'd, unclaimed cache slots")     \
  X(uint64_t, total_free_objects, "cumulative objects freed")

#define PACEGC_GAUGE_STATS(X)                                                                             \
  X(uint64_t, total_bytes, "what the memory limit counts: heap_mapped + metadata + manual")              \
  X(uint64_t, heap_mapped_bytes, "heap pages committed and not released (as the Pacer was told)")       \
  X(uint64_t, heap_in_use_bytes, "heap pages in spans that hold objects")                               \
  X(uint64_t, heap_free_bytes, "free heap pages still resident (kept spans too)")                       \
  X(uint64_t, heap_released_bytes, "free heap pages returned to the OS")                                \
  X(uint64_t, released_bytes, "heap_released_bytes again, the name the API documents")                  \
  X(uint64_t, metadata_bytes, "collector metadata (the private mimalloc, usable sizes)")                \
  X(uint64_t, manual_bytes, "live manual allocations (usable sizes)")                                   \
  X(double, gc_cpu_fraction, "gc_cpu_ns over the CPU time available since start-up")                    \
  X(uint64_t, finalizers_run, "finalizers run so far")                                                  \
  X(uint64_t, num_threads, "registered threads")                                                        \
  X(double, cpu_capacity, "CPUs the program may use (cgroup.h)")                                        \
  X(double, cpu_quota, "the lowest cgroup CPU quota, in CPUs; 0 = none")                                \
  X(uint32_t, cpu_affinity, "CPUs in the affinity mask")                                                \
  X(uint32_t, cpu_capacity_source, "what set cpu_capacity: a cgroup::CpuSource")                        \
  X(uint32_t, cgroup_memory_hierarchy, "where the cgroup memory limit was found: a cgroup::Hierarchy")   \
  X(uint64_t, cgroup_memory_limit_bytes, "the lowest cgroup memory limit; 0 = none")

#define PACEGC_STATS_MEMBER(type, name, doc) type name = 0;
#define PACEGC_STATS_ARRAY_MEMBER(type, name, count, doc) type name[count] = {};

// Counted by the collector, once per cycle.
struct CycleStats {
  PACEGC_COLLECTOR_STATS(PACEGC_STATS_MEMBER)
  PACEGC_COLLECTOR_HISTORY(PACEGC_STATS_ARRAY_MEMBER)
  uint64_t last_overflows = 0;  // mark-stack overflows of the last cycle (a test hook reads it)
  uint64_t last_helped_stacks = 0;  // stacks parked threads marked from in the last cycle (mark.h, "Helpers")
  uint64_t last_shared_entries = 0;  // mark-stack entries passed between markers in the pause (mark.h, "Shared draining")
  bool last_concurrent = false;  // the last cycle marked concurrently (gc/concurrent.h); then its figures:
  uint64_t last_start_pause_ns = 0, last_final_pause_ns = 0;  // its two pauses
  uint64_t last_start_pause_cpu_ns = 0, last_final_pause_cpu_ns = 0;  // the collecting thread's CPU in them
  uint64_t last_rescan_pages = 0, last_rescan_objects = 0, last_filled_spans = 0;  // the final pause's re-scan
  uint64_t last_precleaned_pages = 0;  // pages pre-cleaning re-scanned while the world ran
  uint64_t last_precleaned_spans = 0;  // spans filled during the cycle that pre-cleaning protected and re-scanned
  // The mark thread's part of concurrent marking (mark.h, "Background sharing"): heap bytes it scanned, and its CPU
  // from the first slice to the last (counted as the collector's, like Go's background mark workers).
  uint64_t last_background_thread_scan_bytes = 0, last_background_thread_cpu_ns = 0;
  // Other threads' CPU in the last cycle's pauses: the mark thread, helpers, spinners (pacer.h, CycleReport).
  uint64_t last_pause_others_cpu_ns = 0;
  // A runway cycle (collector.cc, "Runway cycles"): the heap it began at, the assist ratio then (scan bytes per byte
  // allocated, pacer/trigger.h), and the program's threads' assists: CPU, heap bytes scanned, how many.
  bool last_runway = false;
  uint64_t last_runway_trigger_bytes = 0;
  double last_assist_ratio = 0;
  uint64_t last_assist_cpu_ns = 0, last_assist_scan_bytes = 0, last_assists = 0;
  uint64_t last_runway_alloc_bytes = 0;  // CycleReport::runway_alloc_bytes
  double last_runway_utilization = 0;     // the background marking's share of the CPU it was paced to
  // The last cycle's report to the pacer: FinishPause fills the marking figures, CollectLocked the rest. The
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
  // Claimed slots that were never handed out: taken off the allocation totals (Alloc's inverse), not freed.
  void Unclaim(uint64_t objects, uint64_t bytes) {
    heap_alloc_bytes -= bytes;
    heap_objects -= objects;
    total_alloc_bytes -= bytes;
    total_alloc_objects -= objects;
  }
};

// What the mechanisms report when asked (ReadGauges, collector.cc).
struct Gauges {
  PACEGC_GAUGE_STATS(PACEGC_STATS_MEMBER)
};

#undef PACEGC_STATS_MEMBER
#undef PACEGC_STATS_ARRAY_MEMBER

// Copies every listed figure into *out (the envelope is ReadStats' own).
inline void CopyStats(const CycleStats &c, const AllocCounters &a, const pacer::PacerStats &p, const Gauges &g,
                      pgc_stats *out) {
#define PACEGC_STATS_COPY_C(type, name, doc) out->name = c.name;
#define PACEGC_STATS_COPY_H(type, name, count, doc) \
  for (size_t i = 0; i < (count); ++i) out->name[i] = c.name[i];
#define PACEGC_STATS_COPY_A(type, name, doc) out->name = a.name;
#define PACEGC_STATS_COPY_P(type, name, doc) out->name = p.name;
#define PACEGC_STATS_COPY_G(type, name, doc) out->name = g.name;
  PACEGC_COLLECTOR_STATS(PACEGC_STATS_COPY_C)
  PACEGC_COLLECTOR_HISTORY(PACEGC_STATS_COPY_H)
  PACEGC_ALLOC_STATS(PACEGC_STATS_COPY_A)
  PACEGC_PACER_STATS(PACEGC_STATS_COPY_P)
  PACEGC_GAUGE_STATS(PACEGC_STATS_COPY_G)
#undef PACEGC_STATS_COPY_C
#undef PACEGC_STATS_COPY_H
#undef PACEGC_STATS_COPY_A
#undef PACEGC_STATS_COPY_P
#undef PACEGC_STATS_COPY_G
}

// ---- The lists against the public struct ------------------------------------------------------------------------
namespace stats_layout {

// A list entry's type is the field's own; a pacer entry's may be narrower (the Pacer keeps GOGC as an int) if every
// value it holds fits the field.
template <typename From, typename To>
constexpr bool kFits = std::is_same_v<From, To> ||
                       (std::is_integral_v<From> && std::is_integral_v<To> &&
                        std::is_signed_v<From> == std::is_signed_v<To> && sizeof(From) <= sizeof(To));

#define PACEGC_STATS_SAME(type, name, ...) \
  static_assert(std::is_same_v<decltype(pgc_stats::name), type>, "pgc_stats." #name ": not the listed type");
#define PACEGC_STATS_SAME_ARRAY(type, name, count, doc)                  \
  static_assert(std::is_same_v<decltype(pgc_stats::name), type[count]>, \
                "pgc_stats." #name ": not the listed type and length");
#define PACEGC_STATS_FITS(type, name, doc) \
  static_assert(kFits<type, decltype(pgc_stats::name)>, "pgc_stats." #name ": cannot hold the Pacer's " #type);
PACEGC_STATS_ENVELOPE(PACEGC_STATS_SAME)
PACEGC_COLLECTOR_STATS(PACEGC_STATS_SAME)
PACEGC_COLLECTOR_HISTORY(PACEGC_STATS_SAME_ARRAY)
PACEGC_ALLOC_STATS(PACEGC_STATS_SAME)
PACEGC_GAUGE_STATS(PACEGC_STATS_SAME)
PACEGC_PACER_STATS(PACEGC_STATS_FITS)
#undef PACEGC_STATS_SAME
#undef PACEGC_STATS_SAME_ARRAY
#undef PACEGC_STATS_FITS

struct Field {
  size_t offset;
  size_t size;
};

// Every listed field, by its place in pgc_stats.
inline constexpr Field kListed[] = {
#define PACEGC_STATS_FIELD(type, name, ...) {offsetof(pgc_stats, name), sizeof(pgc_stats::name)},
    PACEGC_STATS_ENVELOPE(PACEGC_STATS_FIELD) PACEGC_COLLECTOR_STATS(PACEGC_STATS_FIELD)
        PACEGC_COLLECTOR_HISTORY(PACEGC_STATS_FIELD) PACEGC_ALLOC_STATS(PACEGC_STATS_FIELD)
            PACEGC_PACER_STATS(PACEGC_STATS_FIELD) PACEGC_GAUGE_STATS(PACEGC_STATS_FIELD)
#undef PACEGC_STATS_FIELD
};

// True if the listed fields, sorted by offset, cover pgc_stats from its first byte to its last exactly: no field
// left out, none listed twice, no two overlapping. (pgc_stats has no padding; a field that added some would show
// as a gap here and need a reserved field, as reserved0 is.)
constexpr bool ListsTilePgcStats() {
  constexpr size_t n = sizeof(kListed) / sizeof(kListed[0]);
  Field f[n] = {};
  for (size_t i = 0; i < n; ++i) f[i] = kListed[i];
  for (size_t i = 1; i < n; ++i) {  // insertion sort by offset
    for (size_t j = i; j > 0 && f[j - 1].offset > f[j].offset; --j) {
      const Field t = f[j];
      f[j] = f[j - 1];
      f[j - 1] = t;
    }
  }
  size_t end = 0;
  for (size_t i = 0; i < n; ++i) {
    if (f[i].offset != end) return false;
    end = f[i].offset + f[i].size;
  }
  return end == sizeof(pgc_stats);
}
static_assert(ListsTilePgcStats(),
              "gc/stats.h's lists and pgc_stats (include/pacegc/pacegc.h) disagree: a field in no list, in two, "
              "or padding between fields");

}  // namespace stats_layout

}  // namespace pacegc::internal

#endif  // PACEGC_GC_STATS_H_
