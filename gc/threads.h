// gc/threads.h — the thread registry and stopping the world.
//
// Every thread that may hold pointers to collected objects is registered: the main thread at initialisation, any
// other on its first allocation or pgc_register_thread. A registered thread owns a ThreadRecord (in metadata) with
// its allocation cache and its stack bounds; a thread-specific-data destructor unregisters it when it exits.
//
// Stopping the world (signals)
//   The collector holds the heap lock and the registry lock, makes the stop epoch odd, and sends every other
//   registered thread the suspend signal (default SIGRTMIN+5; PACEGC_SUSPEND_SIGNAL=N chooses another) with tgkill.
//   The handler (async-signal-safe: atomics and futexes only) saves the interrupted context's registers and stack
//   pointer into the record from the ucontext the kernel gave it, stores the epoch as its acknowledgement, wakes the
//   collector, and waits on a futex until the epoch changes. Resuming is one store and one futex wake: no second
//   signal, and a thread that is slow to leave the handler is harmless (the next epoch's signal stays pending
//   until the handler returns, and is then handled for the new epoch).
//   - Threads blocked in system calls: the handler runs, acknowledges and waits; the call restarts afterwards
//     (SA_RESTART) — except calls Linux never restarts (nanosleep, poll, epoll_wait, select ...), which return EINTR
//     as with any signal. This is the same contract as bdwgc. A thread inside a blocking region (below) is never
//     signalled, so its calls see no EINTR from pacegc at all.
//   - Threads registering or exiting during a collection wait on the registry lock until the world resumes.
//   - A thread that vanished without unregistering (it bypassed thread-specific-data destructors, e.g. a raw
//     SYS_exit) is detected when tgkill reports ESRCH, at signal time or while waiting (checked every 10 ms), and is
//     dropped from the registry: the collector never waits for a thread that no longer exists.
//   - A thread that blocks the suspend signal stalls collections; after 5 s the collector prints a warning naming
//     its tid and keeps waiting (continuing would be unsafe).
//   - Code in the heap lock is never interrupted by a collection (the collector holds the lock), and the fast path
//     is written so a suspension at any instruction is safe (alloc.h).
//
// Allocation critical sections (EnterCritical / LeaveCritical)
//   A thread refills its cache without the heap lock (alloc.h): it claims slots in the span it owns and takes spans
//   from the per-class partial lists. Those steps change several words (a span's bitmap, its count, the cache slot,
//   the thread's counters) that the collector must see consistent, and may hold a class lock the sweep needs. So
//   they run inside a critical section: a one-word flag in the thread's record. The suspend handler, finding it
//   set, returns without acknowledging; the thread, leaving the section, sees the stop pending and parks itself
//   (ParkUntilResumed), as a heap-lock waiter does. The collector therefore never sees a thread inside an
//   allocation's section (a parked thread's park work, marking, runs in one too, so that it parks only after it). A
//   section is short and never waits for the heap lock or the registry lock (the collector holds both while it
//   waits for the thread), only for class locks, whose holders are themselves inside a section or hold the heap
//   lock, and so are running.
//
// Where a stopped thread's state is recorded (ParkUntilResumed)
//   The thread spills its registers into the frame that waits (getcontext) and records that frame's stack pointer:
//   the collector scans the thread's stack from there up, plus the saved registers. When the kernel ran the handler
//   straight away, the kernel's signal frame (every interrupted register) and the interrupted code's red zone lie
//   above that frame, so they are scanned too. The interrupted ucontext is deliberately not trusted: under
//   ThreadSanitizer the handler may run long after the signal arrived (below), with a stale copy of it.
//   Nothing at or above the recorded stack pointer changes while the thread is parked: it acknowledges and waits
//   (and marks, as a helper) in a frame below it (AcknowledgeAndWait). So the marker and the verifier read the
//   same words (a word written between their reads could look like a pointer to either, and the verifier would
//   report an unmarked object). Verified pauses check it for the main thread and the threads pacegc started
//   (ThreadRecord::frames_hi), on the words that could point into the heap. A thread held in a blocking region is
//   different: its region's code runs below the frame that entered it (pgc_do_blocking's fn), but may also write
//   that frame's own variables (pacegc::BlockingRegion's scope), none of them a collected pointer.
//
// Blocking regions (pgc_do_blocking; bdwgc's GC_do_blocking)
//   A thread about to block in a system call (poll, epoll_wait, read on a socket ...) can declare that it will
//   not touch collected objects until it leaves the region. The collector then neither signals it nor waits for
//   it: it counts as stopped, and its stack is scanned from the frame that entered the region, with the registers
//   spilled there. State (ThreadRecord::blocking): kRunning, kBlocked (in a region), kHeld (in a region and counted
//   as stopped by the collection in progress). Entering and the collector's check form a Dekker pair on seq_cst
//   atomics: the thread stores kBlocked, then loads the stop epoch; StopTheWorld stores the odd epoch, then tries
//   to move each thread kBlocked -> kHeld (a CAS). So either the collector holds the thread (and never signals it),
//   or the thread sees the stop: it takes its kBlocked back (CAS kBlocked -> kRunning) and parks itself like a
//   heap-lock waiter before trying again; if that CAS fails, the collector held it first, which is as good as
//   being stopped (the code after the entry is the region's, which touches no collected object). Leaving is a CAS
//   kBlocked -> kRunning; when it finds kHeld, the thread waits (futex on `blocking`) until StartTheWorld turns
//   kHeld back into kBlocked. So a held thread never runs the program's code while the world is stopped, and a
//   thread in a region never gets the suspend signal (except a signal sent before it entered, which is consumed
//   while it parks at the entry). Regions nest (depth count); they are no-ops on unregistered threads.
//
// Waiters for the heap lock are safe points (SafePointMutex)
//   ThreadSanitizer defers an asynchronous signal until the thread leaves the intercepted libc call it is in,
//   unless that call is one it marks as blocking (LLVM before 19, and GCC 12's libtsan, do not mark
//   pthread_mutex_lock so). A thread waiting for the heap lock, which the collector holds for the whole cycle, would
//   never run the handler, and the collector would wait for it forever. So the heap lock is a futex mutex of our
//   own whose waiters check for a pending stop and acknowledge it themselves (ParkUntilResumed) before sleeping
//   again; StopTheWorld wakes the waiters of the lock its caller holds so that none sleeps through a stop. A thread
//   waiting for the lock is at a safe point: it is inside no allocation and holds nothing the collector needs
//   beyond its stack and registers. The same code runs in every build. Without TSan the signal usually reaches a
//   waiter first and it parks in the handler; a signal arriving at a thread that already acknowledged the epoch
//   (it parked itself) returns at once.
//   What this does not cover under TSan: a registered thread inside another intercepted call TSan does not mark as
//   blocking (read/write on a pipe or socket, pthread_mutex_lock on the program's own mutex, ...) acknowledges only
//   when that call returns, so a collection waits until then (and forever if the call waits for the collecting
//   thread). Calls TSan marks blocking (pthread_cond_wait, sem_wait, nanosleep, poll, select, epoll_wait,
//   pthread_join, ...) take the signal at once, as without TSan.
#ifndef PACEGC_GC_THREADS_H_
#define PACEGC_GC_THREADS_H_

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "gc/heap.h"

namespace pacegc::internal {

// One cache slot per span class: the free slots this thread has claimed in one 64-slot word of one span.
struct CacheSlot {
  uint64_t bits;    // claimed, not yet handed out: bit i is the object at base + i * size
  uintptr_t base;   // address of the word's first slot
  uint32_t size;    // object size of the class
  uint32_t word;    // index of the claimed word in the span's alloc_bits
  bool needzero;    // objects must be zeroed when handed out (scanned spans holding old data)
  Span *span;       // the span owned by this cache for the class, or nullptr
};

struct ThreadCache {
  CacheSlot slots[kNumSpanClasses];
};

constexpr int kSavedRegisters = 32;

struct ThreadRecord {
  ThreadCache cache;  // hot: read by the allocation fast path (only by this thread, and the collector when stopped)
  // A sequence lock over the cache's slots for readers on other threads that hold neither the thread stopped nor
  // its critical section (ClaimedByCache, alloc.cc): odd while a refill changes a slot's span, or its word and
  // bits, which such a reader must see as one claim (the old word beside the new claim's bits names slots of the
  // old word the cache handed out long ago). Handing a slot out (the fast path dropping a bit) does not change it.
  std::atomic<uint32_t> cache_seq{0};
  // Allocation critical section (above): set and cleared by this thread, read by its own signal handler.
  uint32_t in_critical = 0;  // allocation critical sections entered and not left (EnterCritical)
  // Spans taken from a class list with the one in the cache slot, for the slot's next refills (alloc.cc, "stash"):
  // owned (cached), chained through Span::next. Changed by this thread (refills: inside critical sections, or with
  // the heap lock), by the collector (world stopped) and by ReleaseCache (heap lock, the thread leaving or gone).
  Span *stash[kNumSpanClasses] = {};
  // Allocation accounting without the heap lock (alloc.cc). The thread counts the slots it claims here; the
  // collector folds the counts into g_alloc with the world stopped (and Unregister when it leaves).
  //   claimed_*  cumulative claims by this thread (its own relaxed stores; others read them for statistics)
  //   folded_*   the part of claimed_* already in g_alloc (heap lock)
  //   credit     bytes the pacer's trigger already counts for this thread (alloc.cc, "Credit") and not yet claimed
  //   freed_*    cumulative pgc_frees by this thread without the heap lock (folded the same way)
  uint64_t claimed_bytes = 0;
  uint64_t claimed_objects = 0;
  uint64_t folded_bytes = 0;
  uint64_t folded_objects = 0;
  uint64_t freed_bytes = 0;
  uint64_t freed_objects = 0;
  uint64_t folded_freed_bytes = 0;
  uint64_t folded_freed_objects = 0;
  int64_t credit = 0;
  pid_t tid = 0;
  uintptr_t stack_lo = 0;  // [stack_lo, stack_hi): the thread's stack
  uintptr_t stack_hi = 0;
  int registrations = 0;   // pgc_register_thread calls minus pgc_unregister_thread calls (auto counts once)
  bool internal = false;   // pacegc's own thread: not counted in num_threads
  // Written by the thread in its suspend handler, read by the collector after the acknowledgement.
  uintptr_t suspended_sp = 0;
  uintptr_t saved_registers[kSavedRegisters] = {};
  // Verified cycles: a hash of what the collector scans of this thread's stack, from suspended_sp to frames_hi, and
  // of its saved registers, taken when the world stopped with the thread parked (NoteParkedStates, gc/mark.h); the
  // verifier checks that none of it changed during the pause. frames_hi: the top of the frames that live while the
  // thread runs, below what the thread's stack range also holds but the kernel and libc may write at any time (a
  // pthread's static TLS, errno among it, and its descriptor with the kernel's rseq area): the frame of pacegc's
  // start routine for a thread it started, the stack's top for the main thread, 0 (nothing checked) otherwise.
  uintptr_t frames_hi = 0;
  // The top of ParkUntilResumed's frame at the last park: every word of it is checked.
  uintptr_t park_frame_hi = 0;
  uint64_t parked_state_hash = 0;
  std::atomic<uint32_t> ack_epoch{0};
  // The marking round (gc/mark.h, "Helpers") whose scan of this thread's stack someone has claimed: the thread
  // itself, parked and spinning, or the collector.
  std::atomic<uint32_t> scan_claim{0};
  uint32_t helped_round = 0;  // the last round this thread helped in (only this thread)
  bool warned = false;  // the collector already warned that this thread is slow to acknowledge
  // Blocking region state (above): written by this thread (enter, leave) and by the collector (hold, release).
  std::atomic<uint32_t> blocking{0};
  int blocking_depth = 0;  // nested regions of this thread (only this thread)
  ThreadRecord *next = nullptr;  // registry list (registry lock)
  ThreadRecord *prev = nullptr;
};

// A mutex whose waiters are safe points for stopping the world (see above): the heap lock. Not recursive. Taking it
// uncontended is one compare-and-swap and releasing it one exchange, as for a glibc mutex.
class SafePointMutex {
 public:
  constexpr SafePointMutex() = default;
  void Lock() {
    uint32_t expected = 0;
    if (__builtin_expect(state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                                        std::memory_order_relaxed), 1)) {
      return;
    }
    LockSlow();
  }
  void Unlock() {
    if (__builtin_expect(state_.exchange(0, std::memory_order_release) == 2, 0)) WakeWaiters(false);
  }
  // Wakes one waiter (an Unlock), or every waiter so that each sees the stop the holder is making and acknowledges
  // it (StopTheWorld).
  void WakeWaiters(bool all);
  // A thread may be waiting for it (held by the caller); it is held by someone (unlocked by the caller: taken since).
  bool Contended() const { return state_.load(std::memory_order_relaxed) == 2; }
  bool Held() const { return state_.load(std::memory_order_relaxed) != 0; }

 private:
  void LockSlow();

  std::atomic<uint32_t> state_{0};      // 0 free, 1 held, 2 held and a waiter may be asleep
  std::atomic<uint32_t> wake_seq_{0};   // waiters sleep on it; bumped by Unlock (with waiters) and by a stop
};

// The calling thread's record, or nullptr if it is not registered. Initial-exec TLS: one load, and safe to read in
// a signal handler.
extern thread_local ThreadRecord *t_current __attribute__((tls_model("initial-exec")));

namespace threads {

// Installs the suspend handler and the exit hook. Returns false with a message printed on failure. Called once.
bool Init();

// Registers the calling thread (or counts one more registration). Returns 0 or an errno value. An internal thread
// (pacegc's finalizer thread) is stopped and scanned like any other but not counted in Count() (num_threads).
int Register(bool internal = false);
// Counts one registration off; at zero the thread is removed. Returns false if the thread was not registered.
bool Unregister();

// Registry lock: held by the collector for the whole stop-the-world, and by (un)registration.
void LockRegistry();
void UnlockRegistry();

// With the registry lock and `held` (the heap lock) held: stops every registered thread except the caller. Threads
// waiting for `held` acknowledge by themselves. Threads found dead are removed (their caches are released, which
// needs the heap lock). Returns the number of threads stopped. `spare_cpus`: cores the program may use besides the
// collector's (the CPU capacity, less one): up to that many waits spin instead of sleeping (threads.cc), if every
// thread to stop can have a core of its own; *spinning says whether they may.
int StopTheWorld(SafePointMutex *held, int spare_cpus, bool *spinning);
void StartTheWorld();

// Work a parked thread does while it spins for the resume (gc/mark.h: it marks from its own stack). Called
// repeatedly, from the suspend handler: async-signal-safe, cheap when there is nothing to do. Installed once at
// initialisation, before any thread is registered.
void SetParkWork(void (*work)(ThreadRecord *self));
// World stopped: parked threads spinning for the resume now (an estimate: a spinner gives its slot back when it
// stops spinning to sleep).
int SpinningNow();
// World stopped: wakes up to `count` parked threads that sleep, each to do its park work once (then it sleeps again
// until the resume). For a stop in which nothing spins (more threads than spare cores), when there is enough work.
void WakeToWork(int count);

// Iterate registered threads (registry lock held).
ThreadRecord *First();
size_t Count();

int SuspendSignal();

// Allocation critical sections (above). `self` is the calling thread's record. Sections nest (a depth: a metadata
// allocation inside a refill, or a program's signal handler that allocates inside a section): only the outermost
// Leave parks. A signal between the depth's load and store sees the value before it, which describes the code the
// signal interrupted.
inline void EnterCritical(ThreadRecord *self) {
  self->in_critical = self->in_critical + 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
void ParkIfStopPending(ThreadRecord *self);
inline void LeaveCritical(ThreadRecord *self) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  self->in_critical = self->in_critical - 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (self->in_critical == 0) ParkIfStopPending(self);
}

// Blocking regions (above). pgc_enter_blocking records its caller's registers and stack pointer, so it is called
// from the frame that lives through the region (never through a wrapper function, whose frame dies at its return);
// the caller must not touch collected objects until the matching Leave. No-ops on an unregistered thread; nested
// calls count.
constexpr uint32_t kRunning = 0;
constexpr uint32_t kBlocked = 1;
constexpr uint32_t kHeld = 2;
void LeaveBlocking();
// fn(arg) inside a blocking region (left also when fn unwinds: pthread_exit, cancellation, an exception).
void *DoBlocking(void *(*fn)(void *), void *arg);
// Waits until *word != 0 (futex), inside a blocking region when the caller is registered: never delays a stop.
void WaitUntilSet(std::atomic<uint32_t> *word);

}  // namespace threads
}  // namespace pacegc::internal

#endif  // PACEGC_GC_THREADS_H_
