// base/hardcap.h — the optional hard memory limit's gate (PACEGC_HARD_MEMLIMIT, pgc_set_hard_memory_limit).
//
// The soft limit (pacer/) is a pacing signal: collections come earlier as memory nears it, and the heap may pass
// it. The hard cap is a promise: what the soft limit counts (pgc_stats.total_bytes: heap pages mapped and not
// released + collector metadata + manual allocations, usable sizes) never passes it. This file keeps that promise
// with one counter of everything counted, charged BEFORE the memory is taken:
//
//   counted  = heap retained bytes + metadata bytes + manual bytes (the same sum as pacing::TotalBytes), kept by
//              every place that makes one of them grow or shrink:
//                Heap::TakeFresh (fresh pages), Heap::InitInUse (released pages taken back) charge; Heap::Release
//                uncharges (gc/heap.cc, heap lock);
//                meta::Malloc/Calloc charge the block's exact size (its class in the metadata region) and
//                meta::Manual* an upper bound of mimalloc's usable size (mi_good_size) before allocating, settling
//                to the usable size after; frees uncharge (base/meta.cc, no lock). The drop-in allocator's blocks
//                (libpacegc-malloc) are not charged: the hard cap does not cover them yet (docs/MALLOC.md).
//   TryCharge(n) adds n only if counted + n ≤ cap, with one compare-and-swap loop: threads racing for the last
//              bytes cannot both pass, so the promise holds with any number of threads, with or without the heap
//              lock. With no cap (kNone) it is one atomic add.
//
// Why this, not a check of pacing::TotalBytes() under the heap lock: manual and metadata allocations do not take the
// heap lock (and should not), so a check-then-allocate under that lock would race with them. Why a charge rather
// than a check after the fact: an allocation already made cannot be undone cheaply (a span carved, an arena
// committed). Per-thread allocation credit (gc/alloc.cc, g_granted) needs nothing here: claiming slots in spans
// already carved does not change the counted total; only carving a span that takes pages from outside the
// resident heap does, and that happens in the two Heap functions above, under the heap lock, through TryCharge.
//
// What a refusal does is the caller's (gc/alloc.cc, gc/api.cc): a forced collection, free pages back to the OS,
// one retry, then the OOM handler (collected memory only) and NULL with ENOMEM. Metadata the collector needs is
// refused like any other (its callers already handle an allocation that fails); gc/ takes the mark stack when the
// cap is set, so a collection at the cap does not need new metadata to run.
#ifndef PACEGC_BASE_HARDCAP_H_
#define PACEGC_BASE_HARDCAP_H_

#include <cstdint>

namespace pacegc::internal::hardcap {

constexpr int64_t kNone = INT64_MAX;

// The cap in bytes (kNone = none). Set returns the previous value; a negative value only queries.
int64_t Limit();
int64_t SetLimit(int64_t bytes);

// Charges n bytes if the counted total stays at or under the cap: true, or false (nothing charged; the calling
// thread's refusal count goes up).
bool TryCharge(uint64_t n);
// Charges n bytes whatever the cap (memory taken that cannot be refused any more: a settlement above the bound).
void ForceCharge(uint64_t n);
void Uncharge(uint64_t n);

// The counted total as charged (≥ what pacing::TotalBytes reads while allocations are in flight, equal at rest).
uint64_t Counted();

// Refusals seen by the calling thread since it started (a caller compares before and after to know whether a
// failure was the cap's).
uint64_t ThreadRefusals();

}  // namespace pacegc::internal::hardcap

#endif  // PACEGC_BASE_HARDCAP_H_
