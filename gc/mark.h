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

  // Marks, without scanning, the slots thread caches have claimed but not handed out.
  void KeepCachedSlots();
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
};

// World stopped, heap lock held, after marking. Returns the number of problems found (each printed).
size_t VerifyMarks(const Marker &marker, uintptr_t self_sp);

}  // namespace pacegc::internal

#endif  // PACEGC_GC_MARK_H_
