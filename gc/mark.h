// gc/mark.h — marking: the mark stack, conservative scanning, overflow recovery, and the heap verifier.
//
// Algorithm: every root word that resolves (page map → span → object index) to an allocated object sets the
// object's mark bit; a newly marked object of a scanned span is pushed on the mark stack as the range of its
// bytes; the stack is drained by scanning each range the same way. No recursion. An object of an untouched span
// (gc/untouched.h: none of its pages has ever been populated, so it is all zeros) is marked but never pushed or read.
//
// Work queue: entries are byte ranges, so a large object is scanned in chunks of kScanChunk bytes (the rest is
// pushed back), which bounds the work per entry — the unit several markers would steal. Mark bits are set with an
// atomic fetch-or so markers on several threads can share the heap (parallel marking is a later step; see
// docs/ARCHITECTURE.md).
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
  // Concurrent marking (gc/concurrent.h), heap lock held: scans about `budget` bytes from the stack, then, once it
  // is empty, recovers from overflow. True when nothing is left to do.
  bool DrainSome(uint64_t budget);
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

  // Resolves addr to the start of an allocated object, or 0. Page map reads: world stopped or heap lock.
  static uintptr_t ObjectContaining(uintptr_t addr, Span **span_out, uint32_t *index_out);

 private:
  struct Entry {
    uintptr_t lo;
    uintptr_t hi;
  };
  void MarkWord(uintptr_t word);
  void ScanRange(uintptr_t lo, uintptr_t hi);
  void Push(uintptr_t lo, uintptr_t hi, Span *span);
  void DrainStack();
  void DrainStackUntil(uint64_t stop_at);
  void RecoverOverflow();

  Entry *stack_ = nullptr;
  size_t capacity_ = 0;
  size_t top_ = 0;
  bool overflowed_ = false;
  uint64_t marked_bytes_ = 0;
  uint64_t marked_objects_ = 0;
  uint64_t cached_bytes_ = 0;
  uint64_t stack_scan_bytes_ = 0;
  uint64_t globals_scan_bytes_ = 0;
  uint64_t heap_scan_bytes_ = 0;
  uint64_t overflows_ = 0;
  uint64_t stacks_scanned_ = 0;
};

// World stopped, heap lock held, after marking. Returns the number of problems found (each printed). `concurrent`:
// the cycle marked while the world ran (marks on slots freed since are then expected).
size_t VerifyMarks(const Marker &marker, uintptr_t self_sp, bool concurrent);

// ---- Helpers (above) ----
namespace helpers {
// Heap lock held, world running: makes up to `count` helper markers ready, with mark stacks of 16 Ki entries, or
// `max_entries` if fewer (allocated once, then kept). Returns how many are ready (fewer if metadata is refused:
// then fewer parked threads spin, and the collector scans the other stacks).
int Prepare(int count, size_t max_entries);
// World stopped, after the collector's marks that precede the roots (cached slots, ready finalizers): opens a
// round in which parked threads may claim their own stacks.
void Open();
// Bytes of the stopped threads' stacks (not the collector's): whether waking a sleeping helper pays.
size_t OtherStackBytes();
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
