// gc/finalize.h — finalizers: registration, discovery during a collection, and running them afterwards.
//
// The table maps an object's address to (fn, data). It lives in metadata, which is never scanned, so registering
// a finalizer does not keep the object alive.
//
// During a collection, after the roots have been marked (world stopped, heap lock held):
//   1. candidates = registered objects that are not marked (unreachable from the roots);
//   2. everything reachable from each candidate's contents is marked (the candidate itself is not), ignoring words
//      of a candidate that point into that same candidate (bdwgc's GC_REGISTER_FINALIZER_IGNORE_SELF: an object
//      holding a pointer to its own field, like a std::string in small-string form, is not its own referrer);
//   3. a candidate still unmarked is ready: it is marked (it must survive until its finalizer has run) and its
//      entry moves to the ready queue. A candidate that became marked is reachable from another finalizable
//      object (or from itself through other objects): it waits for a later cycle. So when A points to B and both
//      have finalizers, A is finalized first and B in a later cycle — the order bdwgc and Go use. Finalizable
//      objects in a cycle are never finalized (as in Go); the cycle stays alive.
// Ready objects are roots until their finalizer has run (the queue is metadata too). Finalizers run after the heap
// lock is released, on the collecting thread, one at a time, never nested; a finalizer may allocate, collect and
// register finalizers.
#ifndef PACEGC_GC_FINALIZE_H_
#define PACEGC_GC_FINALIZE_H_

#include <cstddef>
#include <cstdint>

namespace pacegc::internal {

class Marker;

using FinalizerFn = void (*)(void *obj, void *data);

// Heap lock held. fn == nullptr removes. Returns false (after reporting misuse) if obj is not an object start.
void RegisterFinalizer(uintptr_t obj, FinalizerFn fn, void *data);
// Heap lock held. Drops obj's finalizer, if any, without running it (pgc_free).
void DropFinalizer(uintptr_t obj);

// World stopped, heap lock held. Marks the objects of the ready queue (roots until they are finalized).
void MarkReadyFinalizers(Marker &marker);
// World stopped, heap lock held, after marking from roots. Steps 1-3 above. Returns objects made ready.
size_t DiscoverFinalizers(Marker &marker);

size_t PendingFinalizers();  // heap lock held
uint64_t FinalizersRun();    // cumulative (relaxed)

}  // namespace pacegc::internal

#endif  // PACEGC_GC_FINALIZE_H_
