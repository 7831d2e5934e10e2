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
// Ready objects are roots until their finalizer has run (the queue is metadata too, first in first out). A ready
// object keeps its table entry, marked queued, until the finalizer is taken off the queue: pgc_free of the object,
// or removing or replacing its finalizer, drops or replaces the entry, and the queued run is then skipped (it
// would run on freed memory, or run a finalizer the program replaced). Discovery skips queued entries.
//
// Where finalizers run (PACEGC_FINALIZERS, read once at start-up):
//   thread     (default; Go's model) on one dedicated thread, "pacegc-fin", started when a collection first finds
//              finalizers ready and woken at the end of every cycle that queued more. Never inside pgc_malloc, never
//              on the thread that collected, never with a pacegc lock held: an allocating thread that holds a mutex
//              every finalizer takes cannot deadlock with them (issue 14). The thread is registered (a finalizer
//              holds its object on that thread's stack) but not counted in pgc_stats.num_threads, and waits for work
//              in a blocking region, so collections do not signal it.
//   on-demand  (bdwgc's GC_set_finalize_on_demand) only when the program calls pgc_run_finalizers, on its thread.
// pgc_collect's promise ("finalizers of objects found unreachable have run when it returns") is kept in thread mode
// by waiting, in a blocking region, until the finalizer thread has run everything queued up to the end of that
// collection: queued and done counts, FIFO order and a single consumer make "done >= queued at the end of my cycle"
// mean "mine have run". A pgc_collect called from a finalizer does not wait (it would wait for itself). In
// on-demand mode pgc_collect does not run them. If the finalizer thread cannot be started, finalizers run on the
// thread that waits for them (pgc_collect, pgc_run_finalizers) with one message.
// A finalizer may allocate, collect and register finalizers. fork: the thread is not copied; the child starts
// its own at its next collection that queues finalizers, as the background thread does (gc/pacing.cc).
#ifndef PACEGC_GC_FINALIZE_H_
#define PACEGC_GC_FINALIZE_H_

#include <cstddef>
#include <cstdint>

namespace pacegc::internal {

class Marker;

using FinalizerFn = void (*)(void *obj, void *data);

// Heap lock held. fn == nullptr removes. Returns false (after reporting misuse) if obj is not an object start.
// Removing or replacing a finalizer already queued to run cancels that run.
void RegisterFinalizer(uintptr_t obj, FinalizerFn fn, void *data);
// Heap lock held. Drops obj's finalizer, if any, without running it (pgc_free), also one already queued: it is
// then skipped, never run on the freed object.
void DropFinalizer(uintptr_t obj);

// Heap lock held. obj's finalizer function, or nullptr (the drop-in's find-leak mode tells its sampled blocks so).
FinalizerFn FinalizerOf(uintptr_t obj);

// World stopped, heap lock held. Marks the objects of the ready queue (roots until they are finalized).
void MarkReadyFinalizers(Marker &marker);
// World stopped, heap lock held, after marking from roots. Steps 1-3 above. Returns objects made ready.
size_t DiscoverFinalizers(Marker &marker);

size_t PendingFinalizers();  // heap lock held
uint64_t FinalizersRun();    // cumulative (relaxed)

// Reads PACEGC_FINALIZERS at start-up: thread (default) or on-demand; anything else exits with status 2.
void InitFinalizers();
// Heap lock held, world running (the end of a cycle): wakes the finalizer thread (starting it the first time) if
// finalizers are queued.
void FinalizersAfterCycle();
// Heap lock held: finalizers queued since start-up, the target for WaitForFinalizers.
uint64_t FinalizersQueued();
// Heap lock NOT held. pgc_collect's promise: returns when every finalizer queued up to `target` has run (thread
// mode), at once in on-demand mode or on the finalizer thread.
void WaitForFinalizers(uint64_t target);
// pgc_run_finalizers. Heap lock NOT held. On-demand mode: runs the queued finalizers on the calling thread and
// returns how many ran (0 when called from a finalizer). Thread mode: waits until those queued have run, returns 0.
size_t RunFinalizersNow();
// Called on the thread that runs finalizers, with no pacegc lock held, after each finalizer that emptied the ready
// queue (before it counts as run, so pgc_collect's wait covers the hook too): the end of a collection's batch (the drop-in's find-leak mode prints what a collection
// found there, malloc/leak.h). Set once, at start-up, before any collection.
void SetQueueDrainedHook(void (*hook)());

}  // namespace pacegc::internal

#endif  // PACEGC_GC_FINALIZE_H_
