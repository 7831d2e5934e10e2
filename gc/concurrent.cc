// gc/concurrent.cc — see concurrent.h.
#include "gc/concurrent.h"

#include <sched.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "base/dirty.h"
#include "base/os.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/trace.h"
#include "gc/testing.h"
#include "gc/untouched.h"
#include "settings/settings.h"

namespace pacegc::internal::concurrent {

std::atomic<uint32_t> g_tracking_epoch{0};
std::atomic<uint32_t> g_protect_gen{0};

namespace {

bool g_enabled = false;       // heap lock (written at Init and when a failure ends the mode)
bool g_always = false;        // PACEGC_CONCURRENT=always: every cycle, whatever the heap's size
uint32_t g_last_epoch = 0;    // heap lock
char g_reason[192] = "PACEGC_CONCURRENT=off";

// Concurrent mode ends for good: every later cycle is stop-the-world. Heap lock held (or initialising).
void Disable(bool loud, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void Disable(bool loud, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_reason, sizeof g_reason, fmt, ap);
  va_end(ap);
  const bool was = g_enabled;
  g_enabled = false;
  if (loud || (was && trace::g_gctrace)) {
    Message("concurrent marking off: %s; collections are stop-the-world", g_reason);
  }
}

// Calls fn(lo, hi) for the committed part of every arena registered with the tracker (heap lock held, or the world
// stopped). fn may release and retake the heap lock: arenas are never unmapped and the list only grows at its head,
// so the walk from a head read under the lock is stable. Returns the first error fn returned, after every arena.
template <typename Fn>
int ForEachTrackedArena(Fn fn) {
  int first_err = 0;
  for (Arena *a = g_heap.FirstArena(); a != nullptr; a = a->next) {
    const uintptr_t lo = a->base, hi = a->base + a->committed_pages * kPageSize;
    if (lo == hi || !a->tracked) continue;
    int err = fn(lo, hi);
    if (err != 0 && first_err == 0) first_err = err;
  }
  return first_err;
}

// Whether the tracker watches a span's pages in this cycle: an in-use span whose objects are scanned, that holds
// data (an untouched span is not protected: protecting its empty pages would install markers that make
// gc/untouched.h's pagemap read see them as populated; its writes are caught by the final pause's refresh), and that
// no allocator filled this cycle (re-scanned whole instead).
bool Tracked(const Span *s, uint32_t epoch) {
  return s->state != SpanState::kFree && !s->noscan && !s->untouched && s->WpEpoch() != epoch;
}

// Calls fn(lo, hi) for each maximal run of neighbouring tracked spans (heap lock held, or the world stopped), or, with
// max_bytes, for runs cut at the first span boundary past max_bytes. fn may release and retake the heap lock: the
// walk reads the page map again after each call.
template <typename Fn>
int ForEachTrackedRun(uint32_t epoch, Fn fn, uintptr_t max_bytes = UINTPTR_MAX) {
  int first_err = 0;
  for (Arena *a = g_heap.FirstArena(); a != nullptr; a = a->next) {
    if (!a->tracked) continue;  // registration refused: its spans are all new this cycle (flagged)
    size_t page = 0;
    while (page < a->fresh_page) {
      // Skip what is not tracked, then take the run of tracked spans that starts here.
      Span *s = a->page_spans[page];
      if (s == nullptr || !Tracked(s, epoch)) {
        page = s != nullptr && s->state != SpanState::kFree ? (s->end() - a->base) >> kPageShift : page + 1;
        continue;
      }
      const uintptr_t lo = s->start;
      uintptr_t hi = s->end();
      page = (hi - a->base) >> kPageShift;
      while (page < a->fresh_page && hi - lo < max_bytes && (s = a->page_spans[page]) != nullptr && Tracked(s, epoch)) {
        hi = s->end();
        page = (hi - a->base) >> kPageShift;
      }
      int err = fn(lo, hi);
      if (err != 0 && first_err == 0) first_err = err;
    }
  }
  return first_err;
}

// Pre-cleaning's pieces (RescanWritten): runs of tracked spans cut at the first span boundary past this.
constexpr uintptr_t kPrecleanPieceBytes = uintptr_t{4} << 20;

struct RescanContext {
  Marker *marker;
  uint32_t epoch;
  bool final;
  RescanStats stats;
};

// Pushes the marked objects of span s that overlap [lo, hi) (large: the overlapping part only).
void RescanSpanPart(RescanContext &c, Span *s, uintptr_t lo, uintptr_t hi) {
  if (lo < s->start) lo = s->start;
  if (hi > s->end()) hi = s->end();
  if (s->state == SpanState::kLarge) {
    if (s->IsMarked(0)) {
      c.marker->Rescan(lo, hi);
      ++c.stats.objects;
    }
    return;
  }
  uint32_t first = s->ObjectIndexOf(lo);
  uint32_t last = s->ObjectIndexOf(hi - 1);
  if (last >= s->nelems) last = s->nelems - 1;
  for (uint32_t i = first; i <= last && i < s->nelems; ++i) {
    if (!s->IsMarked(i) || !s->IsAllocated(i)) continue;
    uintptr_t obj = s->ObjectStart(i);
    c.marker->Rescan(obj, obj + s->elem_size);
    ++c.stats.objects;
  }
}

// Heap lock held, or the world stopped: calls fn(s) for each in-use span that [lo, hi) overlaps, in address order.
template <typename Fn>
void ForEachInUseSpanIn(uintptr_t lo, uintptr_t hi, Fn fn) {
  for (uintptr_t addr = lo & ~(kPageSize - 1); addr < hi;) {
    Span *s = g_heap.SpanOf(addr);
    if (s == nullptr || s->state == SpanState::kFree) {
      addr += kPageSize;
      continue;
    }
    fn(s);
    addr = s->end();
  }
}

// dirty::CollectDirty's and ReportDirty's visitor: a run of written pages (counted where they are tracked).
void VisitWritten(uintptr_t run_lo, uintptr_t run_hi, void *arg) {
  auto &c = *static_cast<RescanContext *>(arg);
  ForEachInUseSpanIn(run_lo, run_hi, [&](Span *s) {
    // Only tracked spans: pointer-free and untouched ones hold nothing to re-scan (an untouched span the program
    // wrote was flagged by the refresh), and a flagged one is re-scanned whole in the final pause.
    if (!Tracked(s, c.epoch)) return;
    const uintptr_t lo = run_lo > s->start ? run_lo : s->start, hi = run_hi < s->end() ? run_hi : s->end();
    c.stats.pages += (hi - lo) / os::OsPageSize();
    s->written_gen = c.epoch;  // protected since the start, so the program wrote it: it is hot (LiftEnd)
    RescanSpanPart(c, s, lo, hi);
  });
}

// Heap lock held (released around the walk), concurrent marking ended: every tracked arena's committed pages become
// writable for good, and allocators make no more system calls (g_protect_gen 0).
void DropProtection() {
  g_protect_gen.store(0, std::memory_order_seq_cst);
  (void)ForEachTrackedArena([](uintptr_t lo, uintptr_t hi) {
    UnlockHeap();
    int err = dirty::Unprotect(lo, hi);
    LockHeap();
    return err;
  });
}

// Heap lock held: flags the in-use spans that [lo, hi) overlaps as written in cycle `epoch` (Span::written_gen),
// the pages having been reported writable by the start's scan. That is evidence of the program's writes only for a
// span whose pages were all protected when the last cycle ended: a span made writable since (writable_gen is the
// last generation: EndTracking's fillable or hot spans, spans an allocator filled) reads as written whether or not
// the program wrote it.
// Spans a runway cycle leaves writable and flagged because the program writes them (testing::LiftedWrittenSpans).
std::atomic<uint64_t> g_lifted_written_spans{0};

// A large span of scanned objects, with data, not yet flagged in cycle `epoch`: one a runway cycle may leave
// writable, flagged, when the program writes it (RangeBatch, lift_written).
bool LiftableLarge(const Span *s, uint32_t epoch) {
  return s->state == SpanState::kLarge && !s->noscan && !s->untouched && s->WpEpoch() != epoch;
}

// Calls written(s) for each span flagged.
template <typename Fn>
void FlagWritten(uintptr_t lo, uintptr_t hi, uint32_t epoch, uint32_t prev_gen, Fn written) {
  ForEachInUseSpanIn(lo, hi, [&](Span *s) {
    if (s->WritableGen() == prev_gen) return;
    if (s->probing) {
      // Only its last page was protected (LiftEnd): the rest reads as written whether or not the program wrote it.
      const uintptr_t probe = s->end() - os::OsPageSize();
      if (probe < lo || probe >= hi) return;
    }
    s->written_gen = epoch;
    written(s);
  });
}

// Protects (a re-protecting scan) or unprotects the ranges gathered under the heap lock, in batches without it (the
// kernel's walk takes tens of ms per GiB here, which other threads' slow paths should not wait for). Protecting
// for cycle `epoch`, it flags the spans whose pages the program wrote since the last cycle, `prev_gen` (FlagWritten):
// they are hot, and EndTracking leaves them writable.
//
// With lift_written (a runway cycle's start): a large span found written is also flagged with the epoch and its
// protection lifted again at once, as for a span an allocator fills (re-scanned whole in the final pause unless
// pre-cleaning tracks it first, PrecleanFilled). The program writes on through a runway cycle, and a span it was
// writing would take a write-protection fault per page during the cycle (the wake-up benchmark's pointer arrays:
// 32,787 faults, and such a burst stalls the machine's other CPU, bench/wp_fault_stalls). The flag comes first, so
// every write after the lifting is covered by the later scan. Large spans only: pre-cleaning lets a large span go
// at once, where a small one on a partial list would be left to the final pause.
class RangeBatch {
 public:
  explicit RangeBatch(bool protect, uint32_t epoch = 0, uint32_t prev_gen = 0, bool lift_written = false)
      : protect_(protect), lift_written_(lift_written), epoch_(epoch), prev_gen_(prev_gen) {}
  ~RangeBatch() {
    explicit_bzero(lo_, sizeof lo_);  // heap addresses: not to be found on the stack by a pause
    explicit_bzero(hi_, sizeof hi_);
    explicit_bzero(written_lo_, sizeof written_lo_);
    explicit_bzero(written_hi_, sizeof written_hi_);
    explicit_bzero(lift_lo_, sizeof lift_lo_);
    explicit_bzero(lift_hi_, sizeof lift_hi_);
  }
  void Add(uintptr_t lo, uintptr_t hi) {
    lo_[n_] = lo;
    hi_[n_] = hi;
    if (++n_ == kBatch) Flush();
  }
  // Heap lock held; released during the system calls and retaken.
  void Flush() {
    if (n_ == 0) return;
    UnlockHeap();
    for (int i = 0; i < n_; ++i) {
      // Protecting is a re-protecting scan: the pages still protected since an earlier cycle (those the program has
      // not written) cost a read of their page-table entries, not a change and a TLB flush each.
      int err = protect_ ? dirty::CollectDirty(lo_[i], hi_[i], Written, this) : dirty::Unprotect(lo_[i], hi_[i]);
      if (err != 0 && first_err_ == 0) first_err_ = err;
    }
    LockHeap();
    FlagAllWritten();
    n_ = 0;
    LiftAll();
  }
  int first_err() const { return first_err_; }

 private:
  static constexpr int kBatch = 64;
  static constexpr int kWritten = 256;
  static constexpr int kLift = 256;

  // Heap lock held (released around the system calls, retaken). A refusal leaves the span protected (its writes
  // fault and are reported; it is flagged as well, so re-scanned): nothing is lost.
  void LiftAll() {
    if (nlift_ == 0) return;
    UnlockHeap();
    for (int i = 0; i < nlift_; ++i) (void)dirty::Unprotect(lift_lo_[i], lift_hi_[i]);
    LockHeap();
    nlift_ = 0;
  }

  // CollectDirty's visitor, heap lock not held: the runs are kept until the lock is taken.
  static void Written(uintptr_t lo, uintptr_t hi, void *arg) {
    auto *b = static_cast<RangeBatch *>(arg);
    if (b->nwritten_ == kWritten) {
      LockHeap();
      b->FlagAllWritten();
      UnlockHeap();
    }
    b->written_lo_[b->nwritten_] = lo;
    b->written_hi_[b->nwritten_] = hi;
    ++b->nwritten_;
  }
  void FlagAllWritten() {
    for (int i = 0; i < nwritten_; ++i) {
      FlagWritten(written_lo_[i], written_hi_[i], epoch_, prev_gen_, [&](Span *s) {
        if (!lift_written_ || !LiftableLarge(s, epoch_) || nlift_ == kLift) {
          return;  // (past kLift in one batch: left protected, which costs faults only)
        }
        g_heap.FlagWp(s, epoch_);  // first: see the class comment
        s->SetWritableGen(epoch_);
        lift_lo_[nlift_] = s->start;
        lift_hi_[nlift_] = s->end();
        ++nlift_;
        ++g_lifted_written_spans;
      });
    }
    nwritten_ = 0;
  }

  bool protect_;
  bool lift_written_;
  uint32_t epoch_;
  uint32_t prev_gen_;
  int n_ = 0;
  int nwritten_ = 0;
  int first_err_ = 0;
  uintptr_t lo_[kBatch], hi_[kBatch];
  uintptr_t written_lo_[kWritten], written_hi_[kWritten];
  int nlift_ = 0;
  uintptr_t lift_lo_[kLift], lift_hi_[kLift];
};

// Cycles a span stays hot (left writable at each end) after the program was last seen writing it. Then it is probed
// for one interval (LiftEnd: only its last page protected), so a span written in every interval between cycles
// takes one fault in kHotCycles + 1 intervals, where left protected it would fault on every page in each (13-20 us a
// page on these VMs, where lifting the protection costs under 1 us a page); a span that cooled down is protected
// whole after the probe.
constexpr uint32_t kHotCycles = 4;

// Whether span s was hot (seen written in the last kHotCycles cycles) when cycle `gen` ended.
bool HotAt(const Span *s, uint32_t gen) { return s->written_gen != 0 && gen - s->written_gen < kHotCycles; }

// Where the end walk's lifting of span s's protection ends (heap lock held; 0: none is lifted). All of s: a free
// run that may be protected; a small span with free slots no cache owns, which an allocator is likely to fill
// before the next cycle (one system call here for a run of them, where BeforeFilling would make one per span); or
// a hot span, one the program was seen writing in the last kHotCycles cycles (by a start's scan, pre-cleaning or
// the final pause: Span::written_gen). Such a span is marked done (writable in generation `gen`).
//
// All of s but its last OS page: a hot span whose hot period has just run out (it cannot be seen written while
// writable, FlagWritten), probed. Protected whole for the next interval, a span the program still writes all over
// would take a write-protection fault per page (32 on a 128 KiB pointer array), and a burst of such faults stalls
// the machine's other CPU 20-37 ms every ~50 ms here (bench/wp_fault_stalls; docs/BENCHMARKS.md). Its last page
// tells as well: the next start's scan reports it written (FlagWritten counts only that page of a probing span) and
// the span is hot again, or not, and it is protected whole from then on (the scan protects the rest again).
uintptr_t LiftEnd(Span *s, uint32_t gen) {
  if (s->state == SpanState::kFree) {
    if (!s->maybe_protected) return 0;
    s->maybe_protected = false;
    return s->released < s->npages ? s->end() : 0;  // a released page carries no protection (os::Release drops it)
  }
  s->probing = false;
  if (s->IsCached() || s->WritableGen() == gen) return 0;
  // Hot for kHotCycles cycles after the program was last seen writing it: a span left writable cannot be seen
  // written (FlagWritten), so it is probed after that many, and a span still written is found again.
  const bool written = HotAt(s, gen);
  const bool fillable = s->state == SpanState::kSmall && !s->untouched && s->Allocated() < s->nelems;
  if (written || fillable) {
    s->SetWritableGen(gen);
    return s->end();
  }
  if (s->written_gen != 0 && gen - s->written_gen == kHotCycles && !s->untouched &&
      s->end() - s->start > os::OsPageSize()) {
    // (Not marked writable: an allocator that fills it lifts the rest, BeforeFilling, and FlagWritten reads it.)
    s->probing = true;
    return s->end() - os::OsPageSize();
  }
  return 0;
}

// Whether span s was filled by an allocator during cycle `epoch` and none will fill it further for now, so that
// PrecleanFilled may track it from here on; if so it is unflagged and its pages counted as not writable (heap lock
// held). A small span qualifies only with no cache owning it and off its class list (WithUnlistedUnowned: under the
// class lock, so no cache takes it between the check and the unflagging); a large one whenever it is flagged (an
// allocator writes a large span only before handing it out).
bool UnflagIfLetGo(Span *s, uint32_t epoch) {
  if (s->WpEpoch() != epoch || s->noscan || s->untouched) return false;
  auto unflag = [](Span *x) {
    // Not writable first: a cache that takes it later must unprotect and flag it again (BeforeFilling), and a free
    // run made of it may be protected (MayBeProtected).
    x->SetWritableGen(0);
    g_heap.FlagWp(x, 0);
  };
  if (s->state == SpanState::kLarge) {
    unflag(s);
    return true;
  }
  return s->state == SpanState::kSmall && g_heap.WithUnlistedUnowned(s, unflag);
}

// Heap lock held (released between batches). The spans filled during the cycle are unprotected and flagged, and
// the final pause re-scans their marked objects whole: with threads allocating through a long mark, thousands of
// spans and a 16-45 ms final pause (docs/BENCHMARKS.md). Once no allocator fills one (UnflagIfLetGo), only the
// program writes it, so it can be tracked like the rest of the heap: unflagged, protected, and its marked objects
// pushed to be scanned again, after the protection. Every write to it is then either before the protection, and
// read by that scan, or after it, and reported by the tracker. A cache that takes it again flags and unprotects it
// again (BeforeFilling: its pages are not writable in this generation), so it is then re-scanned whole as before;
// if the kernel refuses the protection, it is flagged again here. Returns the spans now tracked.
uint64_t PrecleanFilled(RescanContext &c) {
  constexpr int kBatch = 64;
  Span *batch[kBatch];
  int n = 0;
  uint64_t tracked = 0;
  // The batch's system calls run with the heap lock held (its spans must stay in use until each is protected or
  // flagged again); the lock is released between batches, and the walk reads the page map again after that.
  auto flush = [&] {
    for (int i = 0; i < n; ++i) {
      Span *s = batch[i];
      uintptr_t hi = s->end();
      int j = i;
      while (j + 1 < n && batch[j + 1]->start == hi) hi = batch[++j]->end();  // neighbours: one system call
      if (dirty::Protect(s->start, hi) != 0) {
        for (int k = i; k <= j; ++k) g_heap.FlagWp(batch[k], c.epoch);  // re-scanned whole in the final pause
      } else {
        for (int k = i; k <= j; ++k) RescanSpanPart(c, batch[k], batch[k]->start, batch[k]->end());
        tracked += static_cast<uint64_t>(j - i + 1);
      }
      i = j;
    }
    explicit_bzero(batch, sizeof batch);  // span addresses: not to be found on the stack by the final pause
    n = 0;
    YieldHeapLock();  // as between marking slices: a waiter for the heap lock gets it first
  };
  for (Arena *a = g_heap.FirstArena(); a != nullptr; a = a->next) {
    if (!a->tracked) continue;
    size_t page = 0;
    while (page < a->fresh_page) {
      Span *s = a->page_spans[page];
      if (s == nullptr || s->state == SpanState::kFree) {
        ++page;
        continue;
      }
      const uintptr_t lo = a->base + page * kPageSize;
      page = (s->end() - a->base) >> kPageShift;
      if (s->start != lo || !UnflagIfLetGo(s, c.epoch)) continue;  // (from a span's start only, as EndTracking)
      batch[n++] = s;
      if (n == kBatch) flush();
    }
  }
  if (n != 0) flush();
  return tracked;
}

}  // namespace

void Init() {
  const settings::Values::Concurrent asked = settings::Get().concurrent;
  if (asked == settings::Values::Concurrent::kOff) return;  // g_reason says PACEGC_CONCURRENT=off
  g_always = asked == settings::Values::Concurrent::kAlways;
  const dirty::Status &status = dirty::Detect();
  if (!status.available) {
    snprintf(g_reason, sizeof g_reason, "%s", status.reason);
    if (trace::g_gctrace) Message("PACEGC_CONCURRENT: %s; collections are stop-the-world", g_reason);
    return;
  }
  g_enabled = true;
  snprintf(g_reason, sizeof g_reason, "%s", status.reason);
}

bool Enabled() { return g_enabled; }
bool WantedFor(uint64_t expected_marked_bytes, double cpus) {
  return g_enabled && (g_always || (expected_marked_bytes >= kMinLiveBytes && cpus >= kMinCpus));
}
const char *ModeName() { return g_enabled ? "concurrent" : "stop-the-world"; }
const char *Reason() { return g_reason; }

void OnForkChild() {
  g_protect_gen.store(0, std::memory_order_relaxed);  // the kernel does not copy the protection into the child
  if (!g_enabled) return;
  g_enabled = false;  // silently: the child of a program that forks is not a configuration problem
  snprintf(g_reason, sizeof g_reason, "a fork child (the kernel does not carry userfaultfd write tracking into it)");
}

bool OnNewArena(uintptr_t lo, uintptr_t hi) {
  if (!g_enabled) return false;
  int err = dirty::Register(lo, hi);
  if (err == 0) return true;
  Disable(true, "a heap arena could not be registered for write tracking (%s)", strerror(err));
  return false;
}

void UnprotectForFilling(Span *s, uint32_t gen) {
  // BeginTracking may start a cycle meanwhile (a new generation), and this thread's flag for the old one may even
  // overwrite BeginTracking's flag for the new one: the sequentially consistent load after the call then sees the
  // new generation, and the span is flagged and unprotected again for it. So at its final pause a span is flagged
  // with its epoch or was protected after this thread's last write (the loop, not the order of the stores, ensures
  // it).
  while (gen != 0) {
    g_heap.FlagWp(s, gen);  // first: the final pause re-scans the span even if the kernel refuses below
    // A refusal (ENOMEM) leaves the pages protected: writes then fault and are reported, which is correct, only slower.
    (void)dirty::Unprotect(s->start, s->end());
    s->SetWritableGen(gen);
    const uint32_t now = g_protect_gen.load(std::memory_order_seq_cst);
    if (now == gen) return;
    gen = now;
  }
  s->SetWritableGen(0);  // the protection was dropped everywhere (DropProtection, or a fork child)
}

bool BeginTracking(bool allocators_run) {
  if (!g_enabled) return false;
  // Spans the program wrote since the last cycle stop being untouched now, before the epoch begins, so that they
  // are protected below rather than re-scanned whole in the final pause (a refresh with the world running only
  // clears flags, which is always safe; the final pause's refresh catches what is written from here on).
  untouched::Refresh();
  const uint32_t prev_gen = g_protect_gen.load(std::memory_order_relaxed);
  uint32_t epoch = ++g_last_epoch;
  if (epoch == 0) epoch = ++g_last_epoch;  // 0 means "not tracking"
  g_heap.ClearRescanBits();  // before the epoch is published: every flag for it comes after (Heap::FlagWp)
  g_tracking_epoch.store(epoch, std::memory_order_seq_cst);  // before the protection (concurrent.h)
  g_protect_gen.store(epoch, std::memory_order_seq_cst);     // from here an allocator flags what it fills
  // What allocators will fill is left unprotected: the spans thread caches own now and, in a runway cycle, the
  // partial lists' sparse spans (the dense ones are held aside until the cycle ends; a cache taking one later takes
  // it from the list, or new). A span flagged with the epoch is not tracked (Tracked) and is re-scanned whole in the
  // final pause. In a cycle started at the goal the program's other threads wait for it, and sparse spans left
  // unprotected were all re-scanned there for nothing: 61,505 spans after a sweep that left two live objects in
  // each span of the wake-up benchmark's churn, a 61 ms final pause (docs/BENCHMARKS.md). Protected instead, a
  // span a cache takes during the cycle is unprotected and flagged then (BeforeFilling). A span this cycle does not
  // protect keeps its pages as they are: writable ones stay writable for the new generation.
  g_heap.HoldDenseSpans(epoch, /*flag_sparse=*/allocators_run);
  for (Span *s = g_heap.FirstInUse(); s != nullptr; s = s->all_next) {
    if (s->IsCached()) g_heap.FlagWp(s, epoch);  // (an owner's older flag may follow: UnprotectForFilling)
    // A runway cycle leaves the large spans the program writes writable, flagged (see RangeBatch, lift_written):
    // those the last end left writable as hot here; those found written by the scan below, there.
    if (allocators_run && LiftableLarge(s, epoch) && s->WritableGen() == prev_gen && HotAt(s, prev_gen)) {
      g_heap.FlagWp(s, epoch);
      ++g_lifted_written_spans;
    }
    if (!Tracked(s, epoch) && s->WritableGen() == prev_gen) s->SetWritableGen(epoch);
  }
  // The runs are gathered under the heap lock and protected without it. A span that changes between the two is
  // either protected needlessly (writes then fault, and are reported) or new (filled or untouched: not tracked).
  RangeBatch batch(/*protect=*/true, epoch, prev_gen, /*lift_written=*/allocators_run);
  ForEachTrackedRun(epoch, [&](uintptr_t lo, uintptr_t hi) {
    batch.Add(lo, hi);
    return 0;
  });
  batch.Flush();
  if (batch.first_err() != 0) {
    Disable(true, "the kernel refused to write-protect the heap (%s)", strerror(batch.first_err()));
    EndTracking();  // with concurrent marking off: drops the protection everywhere
    return false;
  }
  return true;
}

void EndTracking() {
  const uint32_t epoch = g_tracking_epoch.load(std::memory_order_relaxed);
  g_tracking_epoch.store(0, std::memory_order_seq_cst);
  // Listed again before the walks below release the heap lock, when the cycle ended without a sweep (given up, or
  // the kernel refused the protection; a sweep takes every list apart, held spans included, and lists each span
  // again itself: gc/sweep.h).
  g_heap.ReleaseHeld();
  if (!g_enabled) {
    // Concurrent marking ended during this cycle (an arena the tracker refused): no cycle will protect again.
    if (g_protect_gen.load(std::memory_order_relaxed) != 0) DropProtection();
    return;
  }
  if (epoch == 0 || g_protect_gen.load(std::memory_order_relaxed) != epoch) return;
  // The protection stays where the program did not write ("Protection between cycles"), except on what allocators
  // fill next and on hot spans (LiftEnd): runs of neighbouring such spans, one system call per MiB of each. A
  // refusal leaves pages protected: writes to them fault (and are resolved by the kernel); nothing is lost.
  // A span marked done here is writable for allocators (writable_gen) before its batch is flushed: one a cache
  // takes meanwhile faults on its pages for that while (the kernel resolves them), as any write between cycles does.
  RangeBatch batch(/*protect=*/false);
  for (Arena *a = g_heap.FirstArena(); a != nullptr; a = a->next) {
    if (!a->tracked) continue;
    size_t page = 0;
    uintptr_t run_lo = 0, run_hi = 0;
    while (page < a->fresh_page) {
      Span *s = a->page_spans[page];
      if (s == nullptr) {
        ++page;
        continue;
      }
      const uintptr_t lo = a->base + page * kPageSize;
      const uintptr_t hi = s->end();
      page = (hi - a->base) >> kPageShift;
      // Only from a span's start: after the lock was released the walk may land inside a span or free run formed
      // meanwhile, which it then leaves as it is (BeforeFilling lifts the protection of a span filled later).
      if (s->start != lo) continue;
      const uintptr_t lift_hi = LiftEnd(s, epoch);
      if (lift_hi == 0) continue;
      if (run_hi != lo) {
        // May release the heap lock (s may then change): the walk goes on from `page`, reading the map again.
        if (run_lo != run_hi) batch.Add(run_lo, run_hi);
        run_lo = lo;
      }
      run_hi = lift_hi;  // (short of hi for a probed span: the next span starts a new run)
    }
    if (run_lo != run_hi) batch.Add(run_lo, run_hi);
  }
  batch.Flush();
}

RescanStats RescanWritten(Marker &marker, bool final) {
  RescanContext c{&marker, g_tracking_epoch.load(std::memory_order_relaxed), final, {}};
  if (!final) {
    // Only what BeginTracking protected (less what was filled since): elsewhere every page would be reported, and
    // the scan's re-protection would install markers on pages the refresh of untouched spans must see as empty.
    // In pieces of kPrecleanPieceBytes, with the heap lock released between them as between marking slices: the
    // re-scans of what a round finds written run under the lock (the page map, the spans), and over a GiB heap the
    // program wrote all over, a round took 60-190 ms on this machine.
    ForEachTrackedRun(
        c.epoch,
        [&](uintptr_t lo, uintptr_t hi) {
          // On a refusal some runs may be re-protected without having been visited: the whole range counts as written.
          if (dirty::CollectDirty(lo, hi, VisitWritten, &c) != 0) VisitWritten(lo, hi, &c);
          YieldHeapLock();  // (a waiter takes it first)
          return 0;
        },
        kPrecleanPieceBytes);
    // Then the spans filled since (their pages were just skipped: not tracked), tracked from now on. A span that
    // became in use during the cycle is presumed untouched until a refresh sees one of its pages populated, and
    // PrecleanFilled leaves an untouched span to the final pause: refreshed first, the spans the program has
    // written since they were handed out can be tracked too. Without it, a cycle whose heap grew into new spans
    // left them all to the final pause (33,000 spans, a 46 ms pause in the wake-up benchmark: docs/BENCHMARKS.md).
    // (Clearing the flag with the world running is safe: untouched.h.)
    untouched::Refresh();
    c.stats.precleaned_spans = PrecleanFilled(c);
    return c.stats;
  }
  // The last look: nothing is protected again (EndTracking follows), so one read of each arena's committed page
  // tables, whose reports outside the tracked spans the visitor skips, instead of a scan per run.
  ForEachTrackedArena([&](uintptr_t lo, uintptr_t hi) {
    if (dirty::ReportDirty(lo, hi, VisitWritten, &c) != 0) VisitWritten(lo, hi, &c);
    return 0;
  });
  // The spans flagged with the epoch: only those whose rescan bit is set may be (Heap::FlagWp).
  g_heap.ForEachRescanCandidate([&](Span *s) {
    // (An untouched span has just been seen without a populated page: all zeros, nothing to read.)
    if (s->WpEpoch() != c.epoch || s->noscan || s->untouched) return;
    ++c.stats.filled_spans;
    RescanSpanPart(c, s, s->start, s->end());
  });
#if defined(PACEGC_VERIFY_HEAP)
  // Every flagged span was a candidate: a flag without its bit would be a span this pause does not re-scan.
  for (Span *s = g_heap.FirstInUse(); s != nullptr; s = s->all_next) {
    if (s->WpEpoch() == c.epoch) PACEGC_EXPENSIVE_CHECK(g_heap.HasRescanBit(s));
  }
#endif
  return c.stats;
}

}  // namespace pacegc::internal::concurrent

namespace pacegc::internal::testing {

uint64_t LiftedWrittenSpans() { return concurrent::g_lifted_written_spans.load(std::memory_order_relaxed); }

}  // namespace pacegc::internal::testing
