// gc/roots.h — the root set: where marking starts.
//
//   - data and bss (every writable PT_LOAD segment) of the executable and of every loaded shared object, found
//     with dl_iterate_phdr before the world stops (the loader's lock may be held by a thread we would suspend),
//     less the pages the loader made read-only after relocation (PT_GNU_RELRO), and less the segments of the
//     sanitizer runtimes and of the manual API's private mimalloc (their own state, never a reference of ours);
//   - ranges registered with pgc_add_roots;
//   - uncollectable blocks (pgc_malloc_uncollectable): see below;
//   - every registered thread's stack, from the stack pointer of the frame where it parked (threads.h: below the
//     signal frame and the interrupted code's red zone) to the stack's top, and the registers it saved there; the
//     collecting thread's own stack from the frame of the
//     collection, with its registers spilled there by getcontext.
//   - under the drop-in allocator only (libpacegc-malloc, malloc/; EnableProcessMappings): every other readable,
//     writable, private mapping of the process, read from /proc/self/maps with the world stopped, less what pacegc
//     owns (the heap's arenas, the page map, the metadata region) and less the pages that hold nothing (never
//     touched or dropped, from /proc/self/pagemap). That covers the malloc'd blocks (mimalloc's segments), thread-local
//     storage, every stack, and the mappings runtimes make themselves. Shared mappings and /dev/ mappings are left
//     out (a shared file can be truncated under the scan: SIGBUS).
// All are scanned conservatively: every aligned word that points into an allocated object keeps it.
// Not roots (without the drop-in): thread-local storage, memory from the system malloc, and memory from mmap —
// documented limits.
#ifndef PACEGC_GC_ROOTS_H_
#define PACEGC_GC_ROOTS_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace pacegc::internal {

struct ThreadRecord;

enum class RootKind : uint8_t { kGlobals, kStack };

struct RootRange {
  uintptr_t lo;
  uintptr_t hi;
  RootKind kind;
};

namespace roots {

// Heap lock held. Returns false (after reporting misuse) for an empty or inverted range.
void Add(uintptr_t lo, uintptr_t hi);
void Remove(uintptr_t lo, uintptr_t hi);

// Uncollectable blocks (pgc_malloc_uncollectable): scanned like a root, never collected, freed with pgc_free.
// The simplest design that is correct: such a block is manual memory (the private mimalloc, so it is counted in
// pgc_stats.manual_bytes and under the soft limit) registered here as a root range of its usable size. Nothing in
// the collected heap changes (no third span kind, no always-marked bit for the sweeper and the verifier to know
// about), and a block reachable only from collected objects is still kept: it is a root. The cost is one table
// entry per block (a hash map from start to its index in a vector the marker walks), which suits what bdwgc's
// GC_MALLOC_UNCOLLECTABLE is used for: long-lived tables that hold collected pointers, not per-request objects.
// Heap lock held for all four; AddUncollectable returns false when the table cannot grow (out of memory).
bool AddUncollectable(uintptr_t start, size_t bytes);
bool RemoveUncollectable(uintptr_t start);  // false: not the start of a registered block
bool IsUncollectable(uintptr_t start);
// Lock-free and cheap: whether any block is registered now (a relaxed read: a hint for the manual entry points,
// which check pointers against the table only when it is not empty).
bool AnyUncollectable();

// The drop-in allocator's roots (above): opens /proc/self/maps and /proc/self/pagemap for the collector (a fork
// child opens its own at its first collection) and turns the scan on for every later collection. false (errno
// set) when /proc/self/maps cannot be opened: the caller must not collect with the roots it promised. Without
// pagemap, whole mappings are scanned (correct, slower: untouched pages are read). Idempotent.
bool EnableProcessMappings();
bool ProcessMappingsEnabled();
// World stopped: calls visit(range, arg) for each range of the process's mappings to scan (above). Exits the
// process with a message if /proc/self/maps cannot be read then: collecting without those roots would free memory
// the program uses.
void ForEachProcessMapping(void (*visit)(const RootRange &range, void *arg), void *arg);

// Heap lock held, world running: re-reads the loaded objects' writable segments. false when out of metadata
// memory: the snapshot is incomplete and no collection may run on it.
bool SnapshotSegments();

// Heap lock held, world stopped. Calls visit(range) for every root range; `self_sp` is the lowest address of the
// collecting thread's live stack (its registers already spilled above it).
template <typename Visit>
void ForEach(uintptr_t self_sp, Visit &&visit);
// The same in parts: every range that is not a thread's (data and bss, registered ranges, uncollectable blocks, the
// drop-in's mappings), and one registered thread's (its stack from where it stopped, and its saved registers; for
// `collector`, the collecting thread, its stack from `collector_sp`). Any thread may call ForThread.
template <typename Visit>
void ForEachGlobal(Visit &&visit);
template <typename Visit>
void ForThread(const ThreadRecord *t, const ThreadRecord *collector, uintptr_t collector_sp, Visit &&visit);

// Implementation detail of ForEach, exposed for the template.
size_t NumSegments();
const RootRange &Segment(size_t i);
size_t NumRegistered();
const RootRange &Registered(size_t i);
size_t NumUncollectable();
const RootRange &Uncollectable(size_t i);

}  // namespace roots
}  // namespace pacegc::internal

#include "gc/threads.h"

namespace pacegc::internal::roots {

template <typename Visit>
void ForEachGlobal(Visit &&visit) {
  for (size_t i = 0; i < NumSegments(); ++i) visit(Segment(i));
  for (size_t i = 0; i < NumRegistered(); ++i) visit(Registered(i));
  for (size_t i = 0; i < NumUncollectable(); ++i) visit(Uncollectable(i));
  if (ProcessMappingsEnabled()) {
    using V = std::remove_reference_t<Visit>;
    ForEachProcessMapping([](const RootRange &r, void *v) { (*static_cast<V *>(v))(r); }, &visit);
  }
}

template <typename Visit>
void ForThread(const ThreadRecord *t, const ThreadRecord *collector, uintptr_t collector_sp, Visit &&visit) {
  const bool self = t == collector;
  uintptr_t lo = self ? collector_sp : t->suspended_sp;
  if (lo < t->stack_lo) lo = t->stack_lo;
  if (lo < t->stack_hi) visit(RootRange{lo, t->stack_hi, RootKind::kStack});
  if (!self) {
    auto regs = reinterpret_cast<uintptr_t>(t->saved_registers);
    visit(RootRange{regs, regs + sizeof(t->saved_registers), RootKind::kStack});
  }
}

template <typename Visit>
void ForEach(uintptr_t self_sp, Visit &&visit) {
  ForEachGlobal(visit);
  // The collecting thread: always registered (entry points register it), except pacegc's background thread.
  for (ThreadRecord *t = threads::First(); t != nullptr; t = t->next) ForThread(t, t_current, self_sp, visit);
}

}  // namespace pacegc::internal::roots

#endif  // PACEGC_GC_ROOTS_H_
