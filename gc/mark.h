// gc/mark.h — marking: the mark stack, conservative scanning, overflow recovery, and the heap verifier.
//
// Algorithm: every root word that resolves (page map → span → object index) to an allocated object sets the
// object's mark bit; a newly marked object of a scanned span is pushed on the mark stack as the range of its
// bytes; the stack is drained by scanning each range the same way. No recursion. An object of an untouched span
// (gc/untouched.h: none of its pages has ever been populated, so it is all zeros) is marked but never pushed or read.
//
// Work queue: entries are byte ranges, so a large object is scanned in chunks of kScanChunk bytes (the rest is
// pushed back), which bounds the work per entry — the unit markers share (below). Mark bits are set with an atomic
// fetch-or, so markers on several threads share the heap.
//
// Overflow: the stack has a fixed capacity (metadata, allocated once). When it is full a newly marked object is not
// pushed; instead its span is flagged `rescan` and the marker remembers that it overflowed. After the stack drains,
// every flagged span's marked objects are scanned again (which marks and pushes what they reach), until no span is
// flagged. Memory stays bounded; the cost of overflow is time, proportional to the flagged spans.
//
// Helpers (marking in parallel in the pause): a thread the stop parked, and that spins for the resume because a
// core would be idle otherwise (gc/threads.h, StopTheWorld's spare_cpus), marks from its own stack with a marker of
// its own, then from any other stack nobody has claimed, while the collector scans the globals. With more threads
// than spare cores nothing spins; the collector then wakes sleeping parked threads to do the same, one per spare
// core, if the stopped threads' stacks are large enough to pay for the wake-up (collector.cc). Each stack is scanned
// once: whoever first stores the round's token into the thread's `scan_claim` scans it; the collector's own is
// claimed before the round opens. The collector claims every stack before it waits for the helpers, and a helper
// counts itself active before it claims, so once the count is zero every claimed stack has been scanned and
// drained. A helper's mark stack is smaller than the collector's; its overflows flag spans as usual and the
// collector recovers them after the join (overflow recovery walks the heap: one thread). A stack scanned on the
// core that ran the thread is in that core's cache, and so is much of what it points to.
//
// Shared draining (issue 12, item 5): the roots' drain is the whole mark of a stop-the-world cycle, and the
// collector used to do all of it while a helper that had finished its stacks spun for the resume on the other
// core. Now the collector and every helper done with its stacks drain together through a work pool (one per
// round, under a spinlock): every kShareCheckEvery entries, a marker that sees an idle one waiting on an empty pool
// gives it up to half of its stack (kShareEntries at most) from the bottom — the oldest entries, nearest the roots:
// the rests of large objects and the siblings of what it is scanning, the largest pieces of work it holds — or, if
// it holds one entry, the upper half of that object; an idle marker takes from the pool. The mark stack is a deque
// for that ([bottom_, top_): the owner pushes and pops at the top, gives from the bottom, and a push onto a full
// stack moves the held entries down before it overflows).
//   A marker gives only while its entries cover kShareMinBytes (256 KiB) or more. Below that its stack holds the
// small objects it has just pushed, whose lines its own marking prefetched: a taker pays a miss from the other core
// for each, more than it saves. Structures whose stack never holds that much (a linked list of small chunks, say)
// are marked by one thread, as before; wide ones (arrays of pointers, large objects, many subtrees) are shared.
//   Termination: the pool's lock also guards the count of markers holding work ("busy"); a marker whose stack is
// empty takes from the pool or, finding it empty, stops being busy; the one that leaves no marker busy with the
// pool empty ends the drain (no marker can become busy again: only the busy give). A helper still scanning a stack
// when the drain ends drains what it holds alone, as before. Sharing costs the collector a load every
// kShareCheckEvery entries when nobody waits, so it needs no threshold of its own: helpers exist only where a core
// would otherwise be idle (above). An idle marker spins (with a sched_yield every 1024 polls) until the drain ends:
// it holds a core the stopped program was not using.
//
// The mark thread ("pacegc-mark"): a program whose other threads do not spin in the pause (it has none, or they
// sleep in a blocking region, or they are more than the spare cores) gets no helper, and its pauses were marked by
// one thread with a core idle. So a pause that is expected to mark at least kMarkThreadMinBytes (collector.cc), on a
// machine with a spare core and with no parked thread spinning, wakes a thread of the library's own to join the
// shared drain, as a helper done with its stacks does. It is started on demand, with every signal blocked, is not
// registered (never stopped), and sleeps on a futex between pauses; it joins a round exactly as a helper does
// (counted in the round's active helpers before it looks at the round), so the join waits for it, or it stays out.
//
// Background sharing (issue 12, item 5): a concurrent cycle (gc/concurrent.h) marks in slices on the thread that
// started it, which holds the heap lock for each slice (page-map reads need it) and releases it between slices; one
// thread marked, at best, while a core idled. When the cycle may use the mark thread (the same conditions as a
// pause: a spare core, kMarkThreadMinBytes expected), the collector shares its slices with it. The thread marks only
// inside a slice the collector has opened, so everything it reads is read under the collector's heap lock; the
// collector closes the slice, and waits until the thread has left it (the thread scans 4 KiB at a time, kSliceChunk,
// and checks after each: waiting for it to finish a whole kScanChunk was 22% of the collector's marking), before it
// releases the lock. Between slices neither marks, and the collector moves
// work between the two stacks itself, with no pool and no lock: an empty stack gets the bottom half of the other
// (a single large entry is split; the collector takes even a small last entry, the thread only what is worth
// sharing, as above). Within a slice the collector stops early if the thread has run dry in it and its own stack is
// worth sharing, to give again. The drain ends when, between slices, both stacks are empty; overflow is recovered by
// the collector after (the thread's overflow flags spans as a helper's does). Joining mirrors a helper's: the thread
// marks itself inside, then looks at the slice again (sequentially consistent), so a collector that closed the slice
// either sees it inside and waits, or the thread sees the slice closed and stays out. Since slices wake the thread
// too, a wake can be left over when a pause opens its round: the thread joins each slice and each round once (a
// second join of a round would reset its marker before the collector absorbed it). While a background drain is
// under way the thread spins (kBackgroundSpins polls) for the next slice before it sleeps on its futex: slices open
// every few hundred microseconds. The thread runs at normal priority: on two cores, a program thread that wakes
// preempts it (the scheduler's wake-up preemption; measured: a 1 ms sleeper beside two spinning threads is late by
// 0.09 ms at p99). Its CPU from the first slice to the last is reported as the cycle's background thread CPU: GC CPU
// for pgc_stats.gc_cpu_ns and gctrace (Go counts its mark workers so), and for the CPU limiter the share of its core
// the program would have used (pacer/limiter.h, "Background marking").
//
// Verification (PACEGC_VERIFY_HEAP, or testing::CollectAndVerify): after marking, the verifier walks the object
// graph again from the same roots with its own visited set and reports every reachable object whose mark bit is
// clear, and checks that the bytes in marked objects equal the marker's count.
#ifndef PACEGC_GC_MARK_H_
#define PACEGC_GC_MARK_H_

#include <cstddef>
#include <cstdint>

#include "gc/heap.h"
#include "gc/roots.h"

namespace pacegc::internal {

class Marker {
 public:
  static constexpr size_t kDefaultStackEntries = 64 * 1024;  // 1 MiB of metadata
  static constexpr size_t kScanChunk = 64 * 1024;

  // Allocates the mark stack once. false if metadata is exhausted.
  bool Init(size_t stack_entries = kDefaultStackEntries);
  void Reset();  // before a cycle: counters to zero (the stack is empty between cycles)
  // A concurrent cycle's final pause scans the roots again: they are counted once, as of then.
  void ForgetRootBytes() { stack_scan_bytes_ = globals_scan_bytes_ = 0; }

  // Marks, without scanning, the slots thread caches have claimed but not handed out.
  void KeepCachedSlots();
  // Marks one allocated slot without scanning it (kept, not live: counted with the cached slots).
  void KeepSlot(Span *s, uint32_t index) {
    if (s->TryMark(index)) cached_bytes_ += s->elem_size;
  }
  // Scans [lo, hi) conservatively (word-aligned).
  void ScanRoot(const RootRange &range);
  // Marks the object containing addr (if any) as a root would.
  void MarkAddress(uintptr_t addr);
  // Finalization step 2: marks what the object's contents point to, without marking the object itself; words
  // that point into the object itself are ignored (so an object holding a pointer to one of its own fields, such
  // as a std::string in its small-string form, can still be finalized).
  void ScanContentsOf(uintptr_t obj);
  // Drains the stack, then recovers from overflow until nothing is left.
  void Drain();
  // Drains the stack only (a helper: overflow recovery is the collector's, after the join).
  void DrainPushed() { DrainStack(); }
  // Within a helpers round (world stopped): drains the stack sharing work with the other markers of the round
  // (above, "Shared draining") until no marker holds any. `busy`: this marker counts as holding work (the
  // collector, from the round's opening); a helper joins idle. Without a work pool, the same as DrainPushed.
  void DrainShared(bool busy);
  // Concurrent marking (gc/concurrent.h), heap lock held: scans about `budget` bytes from the stack, then, once it
  // is empty, recovers from overflow. True when nothing is left to do.
  bool DrainSome(uint64_t budget);
  // Background sharing (below): the collector, in a slice: scans until heap_scan_bytes() reaches stop_at, the stack
  // is empty, or the mark thread left `slice` (0: not joined) with nothing and this stack is worth sharing.
  void DrainSlice(uint64_t stop_at, uint32_t slice);
  // Background sharing: the mark thread, in a slice: scans until the collector closes it or the stack is empty.
  void DrainWhileSliceOpen();
  // Neither marker running: gives `to`, whose stack is empty, the bottom half of this one (or the upper half of a
  // single large entry; with `even_small` a single small one whole), if this one holds kShareMinBytes or more or
  // `even_small`.
  void MoveWorkTo(Marker &to, bool even_small);
  bool Empty() const { return top_ == bottom_; }
  bool WorthSharing() const;  // holds kShareMinBytes or more (mark.cc)
  // The part [lo, hi) of a marked object is scanned again, and what it marks drained (overflow recovery, and
  // concurrent marking's re-scans).
  void Rescan(uintptr_t lo, uintptr_t hi);
  // Adds another marker's counts (a helper's, after the join) and takes over its overflow.
  void Absorb(const Marker &helper);
  // Threads' stacks a helper scanned (Absorb adds them up; the collector's marker counts only the helpers').
  void NoteStackScanned() { ++stacks_scanned_; }
  uint64_t stacks_scanned() const { return stacks_scanned_; }

  // Results of the cycle.
  uint64_t marked_bytes() const { return marked_bytes_; }  // live objects (not counting cached_bytes)
  uint64_t cached_bytes() const { return cached_bytes_; }  // slots kept for thread caches, not yet objects
  uint64_t marked_objects() const { return marked_objects_; }
  uint64_t stack_scan_bytes() const { return stack_scan_bytes_; }
  uint64_t globals_scan_bytes() const { return globals_scan_bytes_; }
  uint64_t heap_scan_bytes() const { return heap_scan_bytes_; }
  uint64_t overflows() const { return overflows_; }
  // Shared draining (a collector's, after Absorb: its helpers' included): stack entries taken from the pool (all
  // that was given: the pool is empty when the drain ends).
  uint64_t taken_entries() const { return taken_; }

  // Resolves addr to the start of an allocated object, or 0. Page map reads: world stopped or heap lock.
  static uintptr_t ObjectContaining(uintptr_t addr, Span **span_out, uint32_t *index_out);

 private:
  struct Entry {
    uintptr_t lo;
    uintptr_t hi;
  };
  size_t Held() const { return top_ - bottom_; }
  void MarkWord(uintptr_t word);
  void ScanRange(uintptr_t lo, uintptr_t hi);
  void Push(uintptr_t lo, uintptr_t hi, Span *span);
  void DrainStack();
  template <bool kShare>
  void DrainStackUntil(uint64_t stop_at);
  template <uint32_t kEvery, uintptr_t kChunk = kScanChunk, typename Check>
  void DrainWith(uint64_t stop_at, Check &&check);
  void RecoverOverflow();
  // Shared draining: gives up to half the stack to the pool; takes from the pool into an empty stack.
  void Give();
  bool Take();

  Entry *stack_ = nullptr;
  size_t capacity_ = 0;
  size_t bottom_ = 0;  // entries [bottom_, top_) are held; below bottom_ was given away (shared draining)
  size_t top_ = 0;
  uint64_t held_bytes_ = 0;  // bytes the held entries cover (shared draining: worth giving?)
  bool overflowed_ = false;
  uint64_t marked_bytes_ = 0;
  uint64_t marked_objects_ = 0;
  uint64_t cached_bytes_ = 0;
  uint64_t stack_scan_bytes_ = 0;
  uint64_t globals_scan_bytes_ = 0;
  uint64_t heap_scan_bytes_ = 0;
  uint64_t overflows_ = 0;
  uint64_t stacks_scanned_ = 0;
  uint64_t taken_ = 0;
};

// World stopped, heap lock held, after marking. Returns the number of problems found (each printed). `concurrent`:
// the cycle marked while the world ran (marks on slots freed since are then expected). Also checks that nothing
// the collector scans of a parked thread changed since NoteParkedStates (threads.h, "Where a stopped thread's state
// is recorded": the marker and the verifier must read the same words).
size_t VerifyMarks(const Marker &marker, uintptr_t self_sp, bool concurrent);
// Registry lock held, the world just stopped, in a pause that will be verified: records a hash of every parked
// thread's scanned stack and registers (ThreadRecord::parked_state_hash; threads held in a blocking region run on
// below theirs and are not recorded).
void NoteParkedStates();
// Testing (testing::DisturbNextParkedFrame): changes one word of the first recorded parked thread's park frame, as a
// parked thread writing its own frame during the pause would, so that the check above can be seen to fail. Returns
// the word (nullptr if no parked thread was recorded); RestoreParkedFrame puts it back before the world restarts.
uintptr_t *DisturbParkedFrame();
void RestoreParkedFrame(uintptr_t *word);

// ---- Helpers (above) ----
namespace helpers {
// Heap lock held, world running: makes up to `count` helper markers ready, with mark stacks of 16 Ki entries, or
// `max_entries` if fewer (allocated once, then kept). Returns how many are ready (fewer if metadata is refused:
// then fewer parked threads spin, and the collector scans the other stacks).
int Prepare(int count, size_t max_entries);
// World stopped, after the collector's marks that precede the roots (cached slots, ready finalizers): opens a
// round in which parked threads may claim their own stacks, and the work pool of its shared drain.
void Open();
// Bytes of the stopped threads' stacks (not the collector's): whether waking a sleeping helper pays.
size_t OtherStackBytes();
// Heap lock held, world running: starts the mark thread once (above, "The mark thread"), or readies its marker
// (mark stack of `max_entries`) again. False if it is not running (it could not start: said once).
bool StartMarkThread(size_t max_entries);
// World stopped, after Open: wakes the mark thread to join this round's shared drain.
void WakeMarkThread();
// World stopped, after Open (testing::SetHelperWaitNs): yields the core until a helper or the mark thread has
// joined this round, or budget_ns has passed, so that a test on a loaded machine sees helpers take part.
void WaitForJoin(uint64_t budget_ns);
// In the child of fork(), where the mark thread does not exist: the next pause that wants it starts it again.
void OnForkChild();
// Background sharing (above), heap lock held, world running, no round open. BackgroundBegin: readies the mark
// thread for a concurrent drain; false if it is not running (StartMarkThread). BackgroundStep: drains `marker` and
// the mark thread's marker together until `marker` has scanned `budget` bytes more (true: both are empty, overflow
// aside), the thread marking only within the slices the collector opens and closes here; the caller may release
// the heap lock between two calls. BackgroundEnd: adds the thread's counts and overflow to `marker`, and returns
// what it scanned and the CPU it used since BackgroundBegin (spinning between slices included).
bool BackgroundBegin();
bool BackgroundStep(Marker &marker, uint64_t budget);
void BackgroundEnd(Marker &marker, uint64_t *thread_scan_bytes, uint64_t *thread_cpu_ns);
// The collector: scans its own stack from `self_sp`, claims every stack no helper has claimed and scans it with
// `marker`; then closes the round, waits for the helpers, and adds their counts and overflows to `marker`.
// Returns the number of stacks helpers scanned.
int ScanOthersAndJoin(Marker &marker, uintptr_t self_sp);
// A parked thread spinning for the resume, or woken to help (threads::SetParkWork, WakeToWork): if a round is
// open, scans its own stack and then every other nobody has claimed, once per round. Async-signal-safe.
void Help(ThreadRecord *self);
}  // namespace helpers

}  // namespace pacegc::internal

#endif  // PACEGC_GC_MARK_H_
