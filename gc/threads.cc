// gc/threads.cc — see threads.h for the protocol.
#include "gc/threads.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdlib>

#include "base/check.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/alloc.h"
#include "gc/collector.h"
#include "gc/spinlock.h"
#include "gc/thread_start.h"
#include "pacegc/pacegc.h"
#include "settings/settings.h"

namespace pacegc::internal {

thread_local ThreadRecord *t_current __attribute__((tls_model("initial-exec"))) = nullptr;

namespace threads {
namespace {

pthread_mutex_t g_registry_lock = PTHREAD_MUTEX_INITIALIZER;
ThreadRecord *g_threads = nullptr;  // registry list (g_registry_lock)
size_t g_count = 0;                 // registered threads that are not internal
pthread_key_t g_exit_key;           // its destructor unregisters a thread that exits while registered
int g_suspend_signal = 0;

// Odd while the world is stopped. Written by the collector, read by suspended threads.
std::atomic<uint32_t> g_stop_epoch{0};
// Incremented by each acknowledgement; the collector futex-waits on it.
std::atomic<uint32_t> g_acks{0};

constexpr uint64_t kAckPollNs = 10 * 1000 * 1000;     // re-check for vanished threads every 10 ms
constexpr uint64_t kSlowAckWarnNs = 5000ull * 1000 * 1000;

// Spinning instead of sleeping, where a core would be idle anyway (StopTheWorld's `spare_cpus`).
// A futex wait costs its wake-up: on these VMs an idle vCPU takes 30-50 us to run the woken thread, and a stop with
// two threads took 85 us to be acknowledged and 65 us more to sweep and resume them (gctrace, 2 threads allocating
// with a 4 MiB heap: a cycle every 0.6 ms, half the wall time in pauses). So, when there are spare cores:
//   - the collector polls for the acknowledgements for up to kAckSpinNs before sleeping, and an acknowledging thread
//     makes the futex wake only if the collector sleeps (g_ack_sleeping: a Dekker pair with its fetch_add);
//   - a parked thread polls for the resume for up to kParkSpinNs before sleeping, if one of g_spin_slots is free.
// Never more spinners than spare cores (a spinner would take the CPU from the collector or from a thread it waits
// for), so with a CPU capacity below two cores nothing spins. kParkSpinNs bounds what a long pause wastes: one
// millisecond of a core that would be idle, per parked thread and cycle.
constexpr uint64_t kAckSpinNs = 100 * 1000;
constexpr uint64_t kParkSpinNs = 1000 * 1000;
std::atomic<uint32_t> g_ack_sleeping{0};  // the collector waits on g_acks with a futex
std::atomic<int> g_spin_slots{0};         // parked threads that may spin in this stop (set before the epoch)
int g_spin_budget = 0;                     // what g_spin_slots was set to at this stop (registry lock)
std::atomic<void (*)(ThreadRecord *)> g_park_work{nullptr};  // SetParkWork
std::atomic<int> g_work_tickets{0};  // sleeping parked threads woken to do their park work once (WakeToWork)

bool TakeWorkTicket() {
  int n = g_work_tickets.load(std::memory_order_relaxed);
  while (n > 0) {
    if (g_work_tickets.compare_exchange_weak(n, n - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

// Calls done() until it returns true or `budget_ns` has passed; true if it did. The clock is read every 64 polls.
template <typename Done>
bool SpinUntil(uint64_t budget_ns, Done done) {
  const uint64_t start = os::MonotonicNs();
  for (uint32_t i = 1;; ++i) {
    if (done()) return true;
    CpuRelax();
    if ((i & 63) == 0 && os::MonotonicNs() - start >= budget_ns) return false;
  }
}

// Records where the collector finds this thread's state, acknowledges `epoch` and waits until the world resumes.
// Called by the suspend handler and by a SafePointMutex waiter. Never inlined: getcontext spills the registers into
// this frame and records its stack pointer, and everything the thread holds is at or above that frame (threads.h).
// Copies the registers and stack pointer of `here` (a getcontext of the caller's frame) into the record.
void RecordContext(ThreadRecord *self, const ucontext_t &here) {
#if defined(__x86_64__)
  static_assert(NGREG <= kSavedRegisters);
  for (int i = 0; i < NGREG; ++i) self->saved_registers[i] = static_cast<uintptr_t>(here.uc_mcontext.gregs[i]);
  self->suspended_sp = static_cast<uintptr_t>(here.uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  for (int i = 0; i < 31 && i < kSavedRegisters; ++i) self->saved_registers[i] = here.uc_mcontext.regs[i];
  self->suspended_sp = static_cast<uintptr_t>(here.uc_mcontext.sp);
#else
#error "pacegc: saving the registers is implemented for x86-64 and AArch64 only"
#endif
}

// After the record: acknowledges `epoch` and waits until the world resumes, doing the park work meanwhile. Its frame
// is below the stack pointer the record holds, so nothing the thread writes from its acknowledgement on lands in
// the range the collector scans. (Written there after the marker read it, a word would be one the verifier reads
// differently: a four-byte epoch stored beside four stale bytes, 0x00007fxx'000002fb, read as a pointer into the
// heap's first span. That failed verify builds' mark_helper_tests under load.)
__attribute__((noinline)) void AcknowledgeAndWait(ThreadRecord *self, uint32_t epoch) {
  self->ack_epoch.store(epoch, std::memory_order_release);
  g_acks.fetch_add(1, std::memory_order_seq_cst);
  if (g_ack_sleeping.load(std::memory_order_seq_cst) != 0) os::FutexWakeAll(&g_acks);
  auto resumed = [epoch] { return g_stop_epoch.load(std::memory_order_acquire) != epoch; };
  void (*const park_work)(ThreadRecord *) = g_park_work.load(std::memory_order_acquire);
  // The park work (marking, mark.h "Helpers") counts itself in and out of the collector's round. A thread parked
  // outside the suspend handler (a heap-lock waiter, the end of a critical section) takes the suspend signal at any
  // instruction: one preempted in the work until the world resumed and stopped again must not park for the new
  // stop while it is counted in (that stop's collector would wait for it forever). Inside a critical section the
  // handler does not park it; it parks when the work is done (LeaveCritical), counted out.
  auto work = [self, park_work] {
    EnterCritical(self);
    park_work(self);
    LeaveCritical(self);
  };
  if (g_spin_slots.fetch_sub(1, std::memory_order_relaxed) > 0) {
    bool done = SpinUntil(kParkSpinNs, [&] {
      if (resumed()) return true;
      if (park_work != nullptr) work();
      return false;
    });
    if (done) return;  // resumed: the slot is not given back (the next stop sets the slots afresh)
    g_spin_slots.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_spin_slots.fetch_add(1, std::memory_order_relaxed);
  }
  while (!resumed()) {
    os::FutexWait(&g_stop_epoch, epoch, 0);
    if (!resumed() && park_work != nullptr && TakeWorkTicket()) work();
  }
}

__attribute__((noinline)) void ParkUntilResumed(ThreadRecord *self, uint32_t epoch) {
  ucontext_t here;
  // getcontext fills only some of the general registers (not RAX, R10, R11, the flags ...): the rest would be
  // leftover stack bytes, scanned as roots (stale pointers keeping garbage alive).
  memset(&here.uc_mcontext, 0, sizeof here.uc_mcontext);
  getcontext(&here);
  __builtin_unwind_init();  // the callers' callee-saved registers are saved in this frame's prologue too
  RecordContext(self, here);
  // This frame's top (above the saved frame pointer, the return address): what a verified pause checks word by word.
  self->park_frame_hi = reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) + 2 * sizeof(void *);
  AcknowledgeAndWait(self, epoch);
  // (Not a tail call: the callee's frame must stay below this one, whose words the collector scans.)
  __asm__ __volatile__("" ::: "memory");
}

void RemoveDead(ThreadRecord *rec);

// True if the calling thread must acknowledge a stop that is in progress: it is registered, the epoch is odd, and
// it has not acknowledged this epoch yet (a heap-lock waiter may have parked itself further up its stack).
// A thread in a blocking region never parks here: if the collector holds it, its record is being read; if not,
// pgc_enter_blocking sees the stop itself and parks after taking the region back (a signal from an earlier epoch that
// TSan delivers late, inside a region, must not overwrite the record a later collection is scanning).
bool StopPendingFor(ThreadRecord *self, uint32_t epoch) {
  return self != nullptr && (epoch & 1) != 0 && self->ack_epoch.load(std::memory_order_relaxed) != epoch &&
         self->blocking.load(std::memory_order_relaxed) == kRunning;
}

// The interrupted context the kernel passes is not used: see "Where a stopped thread's state is recorded".
void SuspendHandler(int, siginfo_t *, void *) {
  int saved_errno = errno;
  ThreadRecord *self = t_current;
  // Inside an allocation critical section: the thread parks itself when it leaves it (LeaveCritical).
  if (self != nullptr && self->in_critical != 0) return;
  uint32_t epoch = g_stop_epoch.load(std::memory_order_acquire);
  if (StopPendingFor(self, epoch)) ParkUntilResumed(self, epoch);
  errno = saved_errno;
}

void ExitDestructor(void *value) {
  // Runs at thread exit if the thread is still registered. Drop every registration.
  auto *rec = static_cast<ThreadRecord *>(value);
  if (rec == nullptr || t_current != rec) return;
  if (rec->blocking_depth > 0) {
    // Exited inside a blocking region without unwinding through it (no unwind tables): leave it first, since
    // unregistering takes the heap lock, which a stop holds.
    rec->blocking_depth = 1;
    LeaveBlocking();
  }
  rec->registrations = 1;
  Unregister();
}

// In the child of fork() only the forking thread exists. Every other record is dropped: a thread that was in a
// blocking region would otherwise count as stopped forever, its dead stack scanned at every collection. Child
// handlers run in registration order, so this one (registered by threads::Init) runs before pacing's, while the
// forking thread still holds the heap lock and the registry lock that pacing's prepare handler took.
// fork() also waits for the partial lists' class locks (heap.h), held briefly by threads refilling their caches
// without the heap lock. These handlers are registered before pacing's (InitOnce), so the prepare step runs after
// pacing's has taken the heap and registry locks, and the child's step runs first: it releases the class locks
// before it drops the records of the threads the child does not have (which gives their spans back).
void PrepareForkClasses() { g_heap.LockPartialLists(); }
void ParentAfterForkClasses() { g_heap.UnlockPartialLists(); }

void ChildAfterFork() {
  g_heap.UnlockPartialLists();
  ThreadRecord *self = t_current;
  for (ThreadRecord *t = g_threads; t != nullptr;) {
    ThreadRecord *next = t->next;
    if (t != self) RemoveDead(t);
    t = next;
  }
  AdoptOrphanSpans(self);  // spans a vanished thread was taking or giving up when fork() ran
  if (self != nullptr) self->tid = os::CurrentTid();
}

void Link(ThreadRecord *rec) {
  rec->prev = nullptr;
  rec->next = g_threads;
  if (g_threads != nullptr) g_threads->prev = rec;
  g_threads = rec;
  if (!rec->internal) ++g_count;
}

void Unlink(ThreadRecord *rec) {
  if (rec->prev != nullptr) {
    rec->prev->next = rec->next;
  } else {
    g_threads = rec->next;
  }
  if (rec->next != nullptr) rec->next->prev = rec->prev;
  if (!rec->internal) --g_count;
}

// Heap lock and registry lock held. The thread is gone or leaving: its cache goes back to the heap.
void Remove(ThreadRecord *rec) {
  ReleaseCache(rec);
  Unlink(rec);
}

// A thread that no longer exists but never unregistered (it bypassed its thread-specific-data destructor, which
// would have unregistered it): nothing can touch its record any more.
void RemoveDead(ThreadRecord *rec) {
  Remove(rec);
  rec->~ThreadRecord();
  meta::Free(rec);
}

// The metadata region's lock is held inside an allocation critical section (base/meta.h, SetLockHooks), so a
// registered thread is never suspended holding it. None is needed on an unregistered thread (never signalled) or
// with the heap lock held: no collection interrupts that code, and the collector itself, which allocates metadata
// with the world stopped, must not park itself on the way out. Inside another section it nests.
bool EnterMetaSection() {
  ThreadRecord *self = t_current;
  if (self == nullptr || HeapLockHeldHere()) return false;
  EnterCritical(self);
  return true;
}
void LeaveMetaSection() {
  if (ThreadRecord *self = t_current; self != nullptr) LeaveCritical(self);
}

}  // namespace

bool Init() {
  meta::SetLockHooks(&EnterMetaSection, &LeaveMetaSection);
  g_suspend_signal = settings::Get().suspend_signal;  // PACEGC_SUSPEND_SIGNAL, validated by the settings table
  if (pthread_key_create(&g_exit_key, ExitDestructor) != 0) {
    Message("pthread_key_create failed: %s", strerror(errno));
    return false;
  }
  pthread_atfork(PrepareForkClasses, ParentAfterForkClasses, ChildAfterFork);
  // Resolve the system's pthread_create now rather than at the first thread (and so the static library always
  // links gc/thread_start.cc, whose pthread_create must be in the executable: thread_start.h).
  if (thread_start::Real() == nullptr) {
    Message("cannot find the system's pthread_create (dlsym); pacegc cannot start its own threads "
            "(a fully static executable is not supported)");
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = SuspendHandler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(g_suspend_signal, &sa, nullptr) != 0) {
    Message("cannot install the suspend handler for signal %d (PACEGC_SUSPEND_SIGNAL chooses it): %s",
            g_suspend_signal, strerror(errno));
    return false;
  }
  return true;
}

int SuspendSignal() { return g_suspend_signal; }

void ParkIfStopPending(ThreadRecord *self) {
  uint32_t epoch = g_stop_epoch.load(std::memory_order_acquire);
  if (__builtin_expect(StopPendingFor(self, epoch), 0)) ParkUntilResumed(self, epoch);
}

void LockRegistry() { pthread_mutex_lock(&g_registry_lock); }
void UnlockRegistry() { pthread_mutex_unlock(&g_registry_lock); }
ThreadRecord *First() { return g_threads; }
size_t Count() { return g_count; }

int Register(bool internal) {
  if (t_current != nullptr) {
    ++t_current->registrations;
    return 0;
  }
  uintptr_t lo = 0, hi = 0;
  if (!os::CurrentThreadStack(&lo, &hi)) return EINVAL;
  void *mem = meta::Calloc(1, sizeof(ThreadRecord));
  if (mem == nullptr) return ENOMEM;
  auto *rec = new (mem) ThreadRecord();
  rec->tid = os::CurrentTid();
  rec->stack_lo = lo;
  rec->stack_hi = hi;
  if (rec->tid == getpid()) rec->frames_hi = hi;  // the main thread: its TLS is not on its stack
  rec->registrations = 1;
  rec->internal = internal;
  for (auto &slot : rec->cache.slots) slot = CacheSlot{};
  if (pthread_setspecific(g_exit_key, rec) != 0) {
    meta::Free(rec);
    return ENOMEM;
  }
  LockRegistry();
  // Publish t_current before the collector can see the record: a suspend signal finding t_current unset would
  // never be acknowledged.
  t_current = rec;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  Link(rec);
  UnlockRegistry();
  return 0;
}

bool Unregister() {
  ThreadRecord *rec = t_current;
  if (rec == nullptr) return false;
  if (--rec->registrations > 0) return true;
  LockHeap();
  LockRegistry();
  Remove(rec);
  t_current = nullptr;
  UnlockRegistry();
  UnlockHeap();
  pthread_setspecific(g_exit_key, nullptr);
  rec->~ThreadRecord();
  meta::Free(rec);
  return true;
}

int StopTheWorld(SafePointMutex *held, int spare_cpus, bool *spinning) {
  uint32_t epoch = g_stop_epoch.load(std::memory_order_relaxed) + 1;
  PACEGC_CHECK((epoch & 1) == 1);
  // Spinning only if every thread to stop can have a core of its own: with more, a thread that parked and spins
  // takes the core another still needs to run its handler (8 threads on 2 cores ran at half the rate).
  int others = 0;
  for (ThreadRecord *t = g_threads; t != nullptr; t = t->next) others += t != t_current ? 1 : 0;
  if (others > spare_cpus) spare_cpus = 0;
  *spinning = spare_cpus > 0;
  // Before the epoch: a thread that sees the stop sees the slots of this stop.
  g_spin_slots.store(spare_cpus, std::memory_order_relaxed);
  g_spin_budget = spare_cpus;
  // seq_cst: the first half of the Dekker pair with pgc_enter_blocking (threads.h, "Blocking regions").
  g_stop_epoch.store(epoch, std::memory_order_seq_cst);
  held->WakeWaiters(true);  // after the epoch is odd: a waiter that wakes sees the stop and parks itself
  ThreadRecord *self = t_current;
  int stopped = 0;
  for (ThreadRecord *t = g_threads; t != nullptr;) {
    ThreadRecord *next = t->next;
    uint32_t blocked = kBlocked;
    if (t != self && t->blocking.compare_exchange_strong(blocked, kHeld, std::memory_order_seq_cst)) {
      ++stopped;  // in a blocking region: held there, never signalled; scanned from where it entered
    } else if (t != self && t->ack_epoch.load(std::memory_order_acquire) == epoch) {
      ++stopped;  // a waiter for `held` that parked itself already: no signal needed
    } else if (t != self) {
      int rc = os::SignalThread(t->tid, g_suspend_signal);
      if (rc == ESRCH) {
        RemoveDead(t);
      } else {
        PACEGC_CHECK(rc == 0);
        ++stopped;
      }
    }
    t = next;
  }
  auto all_stopped = [self, epoch] {
    for (ThreadRecord *t = g_threads; t != nullptr; t = t->next) {
      if (t != self && t->ack_epoch.load(std::memory_order_acquire) != epoch &&
          t->blocking.load(std::memory_order_acquire) != kHeld) {
        return false;
      }
    }
    return true;
  };
  if (stopped > 0 && spare_cpus > 0 && SpinUntil(kAckSpinNs, all_stopped)) return stopped;
  uint64_t start = os::MonotonicNs();
  for (;;) {
    // seq_cst, with the acknowledgement's fetch_add and load: either it sees the flag and wakes us, or this load
    // (and the futex's own comparison) sees its increment.
    g_ack_sleeping.store(1, std::memory_order_seq_cst);
    uint32_t seen = g_acks.load(std::memory_order_seq_cst);
    if (all_stopped()) break;
    os::FutexWait(&g_acks, seen, kAckPollNs);
    uint64_t waited = os::MonotonicNs() - start;
    for (ThreadRecord *t = g_threads; t != nullptr;) {
      ThreadRecord *next = t->next;
      if (t != self && t->ack_epoch.load(std::memory_order_acquire) != epoch &&
          t->blocking.load(std::memory_order_acquire) != kHeld) {
        if (os::ThreadAlive(t->tid) == ESRCH) {
          RemoveDead(t);
          --stopped;
        } else if (waited > kSlowAckWarnNs && !t->warned) {
          t->warned = true;
          Message("thread %d has not acknowledged the suspend signal %d for %.1f s; is the signal blocked? "
                  "(the collection waits for it)",
                  static_cast<int>(t->tid), g_suspend_signal, static_cast<double>(waited) / 1e9);
        }
      }
      t = next;
    }
  }
  g_ack_sleeping.store(0, std::memory_order_relaxed);
  return stopped;
}

void SetParkWork(void (*work)(ThreadRecord *self)) { g_park_work.store(work, std::memory_order_release); }

int SpinningNow() {
  const int n = g_spin_budget - g_spin_slots.load(std::memory_order_relaxed);
  return n > 0 ? n : 0;
}

void WakeToWork(int count) {
  g_work_tickets.store(count, std::memory_order_release);
  for (int i = 0; i < count; ++i) os::FutexWakeOne(&g_stop_epoch);
}

void StartTheWorld() {
  g_work_tickets.store(0, std::memory_order_relaxed);  // unused tickets: no parked thread wakes to work now
  uint32_t epoch = g_stop_epoch.load(std::memory_order_relaxed) + 1;
  g_stop_epoch.store(epoch, std::memory_order_release);
  os::FutexWakeAll(&g_stop_epoch);
  // Threads held in a blocking region may leave it again.
  for (ThreadRecord *t = g_threads; t != nullptr; t = t->next) {
    uint32_t held_state = kHeld;
    if (t->blocking.compare_exchange_strong(held_state, kBlocked, std::memory_order_seq_cst)) {
      os::FutexWakeAll(&t->blocking);
    }
  }
}

}  // namespace threads
}  // namespace pacegc::internal

// pgc_enter_blocking is written in assembly: it must record the caller's callee-saved registers exactly as they are
// at the call. A C++ function's prologue may move them (pushing the originals into its own frame, which is
// overwritten as soon as it returns and the region's code calls poll), so a getcontext in C++ would record values
// the caller no longer relies on — and lose a pointer the caller keeps only in, say, rbx. The stub pushes them,
// hands their address and the caller's stack pointer (as it will be after the return) to EnterBlockingFrom, and
// returns with every register intact. While the thread is held, its stack is scanned from that stack pointer up:
// the caller's frame and everything above it.
extern "C" void pacegc_EnterBlockingFrom(const uintptr_t *registers, uintptr_t caller_sp);
#if defined(__x86_64__)
// Pushed: rbp rbx r12 r13 r14 r15 (r15 lowest), then 8 bytes of padding for the call's 16-byte alignment.
asm(R"(
  .text
  .globl pgc_enter_blocking
  .type pgc_enter_blocking, @function
  .p2align 4
pgc_enter_blocking:
  .cfi_startproc
  pushq %rbp
  .cfi_adjust_cfa_offset 8
  pushq %rbx
  .cfi_adjust_cfa_offset 8
  pushq %r12
  .cfi_adjust_cfa_offset 8
  pushq %r13
  .cfi_adjust_cfa_offset 8
  pushq %r14
  .cfi_adjust_cfa_offset 8
  pushq %r15
  .cfi_adjust_cfa_offset 8
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  leaq 8(%rsp), %rdi
  leaq 64(%rsp), %rsi
  call pacegc_EnterBlockingFrom
  addq $8, %rsp
  .cfi_adjust_cfa_offset -8
  popq %r15
  .cfi_adjust_cfa_offset -8
  popq %r14
  .cfi_adjust_cfa_offset -8
  popq %r13
  .cfi_adjust_cfa_offset -8
  popq %r12
  .cfi_adjust_cfa_offset -8
  popq %rbx
  .cfi_adjust_cfa_offset -8
  popq %rbp
  .cfi_adjust_cfa_offset -8
  ret
  .cfi_endproc
  .size pgc_enter_blocking, .-pgc_enter_blocking
  .section .note.GNU-stack,"",@progbits
  .text
)");
constexpr int kCalleeSavedRegisters = 6;
#elif defined(__aarch64__)
// Pushed: x29 x30 x19 ... x28 (12 words, x29 lowest).
asm(R"(
  .text
  .globl pgc_enter_blocking
  .type pgc_enter_blocking, %function
  .p2align 2
pgc_enter_blocking:
  stp x29, x30, [sp, #-96]!
  mov x29, sp
  stp x19, x20, [sp, #16]
  stp x21, x22, [sp, #32]
  stp x23, x24, [sp, #48]
  stp x25, x26, [sp, #64]
  stp x27, x28, [sp, #80]
  mov x0, sp
  add x1, sp, #96
  bl pacegc_EnterBlockingFrom
  ldp x19, x20, [sp, #16]
  ldp x21, x22, [sp, #32]
  ldp x23, x24, [sp, #48]
  ldp x25, x26, [sp, #64]
  ldp x27, x28, [sp, #80]
  ldp x29, x30, [sp], #96
  ret
  .size pgc_enter_blocking, .-pgc_enter_blocking
  .section .note.GNU-stack,"",@progbits
  .text
)");
constexpr int kCalleeSavedRegisters = 12;
#else
#error "pacegc: pgc_enter_blocking is implemented for x86-64 and AArch64 only"
#endif

extern "C" __attribute__((visibility("hidden"))) void pacegc_EnterBlockingFrom(const uintptr_t *registers,
                                                                               uintptr_t caller_sp) {
  using namespace pacegc::internal;
  using namespace pacegc::internal::threads;
  ThreadRecord *self = t_current;
  if (self == nullptr) return;
  if (self->blocking_depth++ > 0) return;
  for (;;) {
    // The record and the state are published together: a suspend signal between them would find the thread still
    // running and park it, overwriting the record with the handler's frame (dead once it returns), which the
    // region would then be scanned by. Inside a critical section the handler leaves the record alone; the epoch
    // check below acknowledges the stop instead (LeaveCritical parks nothing: the state is kBlocked by then).
    EnterCritical(self);
    for (int i = 0; i < kSavedRegisters; ++i) self->saved_registers[i] = i < kCalleeSavedRegisters ? registers[i] : 0;
    self->suspended_sp = caller_sp;
    // Second half of the Dekker pair with StopTheWorld: store the state, then look at the epoch.
    self->blocking.store(kBlocked, std::memory_order_seq_cst);
    LeaveCritical(self);
    uint32_t epoch = g_stop_epoch.load(std::memory_order_seq_cst);
    if ((epoch & 1) == 0) return;  // any later stop sees kBlocked and holds us
    uint32_t blocked = kBlocked;
    if (!self->blocking.compare_exchange_strong(blocked, kRunning, std::memory_order_seq_cst)) {
      return;  // the collector held us first: we count as stopped, and the region's code touches nothing collected
    }
    // A stop began before the collector could see us blocked: it signals us (or has). Acknowledge it here, as a
    // heap-lock waiter does, so the region starts with the world running.
    if (StopPendingFor(self, epoch)) ParkUntilResumed(self, epoch);
    while (g_stop_epoch.load(std::memory_order_acquire) == epoch) os::FutexWait(&g_stop_epoch, epoch, 0);
  }
}

namespace pacegc::internal {
namespace threads {

void LeaveBlocking() {
  ThreadRecord *self = t_current;
  if (self == nullptr || self->blocking_depth == 0) return;
  if (--self->blocking_depth > 0) return;
  for (;;) {
    uint32_t blocked = kBlocked;
    if (self->blocking.compare_exchange_strong(blocked, kRunning, std::memory_order_seq_cst)) return;
    // kHeld: a collection counts us as stopped; wait until it restarts the world.
    os::FutexWait(&self->blocking, kHeld, 0);
  }
}

void *DoBlocking(void *(*fn)(void *), void *arg) {
  // Entered from this frame, which lives until fn returns: the region is scanned from here, and fn's frames are all
  // below it. (Entered from a helper's frame, a constructor's where it is not inlined, the scan would start in a
  // frame that is dead once it returns, inside fn's frames, which change while the region is held.)
  pgc_enter_blocking();
  struct Leave {
    ~Leave() { LeaveBlocking(); }
  } leave;
  return fn(arg);
}

void WaitUntilSet(std::atomic<uint32_t> *word) {
  auto wait = [](void *w) -> void * {
    auto *flag = static_cast<std::atomic<uint32_t> *>(w);
    while (flag->load(std::memory_order_acquire) == 0) os::FutexWait(flag, 0, 0);
    return nullptr;
  };
  DoBlocking(wait, word);
}

}  // namespace threads

void SafePointMutex::LockSlow() {
  for (;;) {
    // Read the wake sequence before looking at the lock and the epoch: a wake-up after this read (an Unlock, or a
    // stop being made) changes it, so the futex wait below returns at once instead of sleeping through it.
    uint32_t seq = wake_seq_.load(std::memory_order_acquire);
    if (state_.exchange(2, std::memory_order_acquire) == 0) return;
    ThreadRecord *self = t_current;
    uint32_t epoch = threads::g_stop_epoch.load(std::memory_order_acquire);
    if (threads::StopPendingFor(self, epoch)) {
      threads::ParkUntilResumed(self, epoch);
      continue;
    }
    os::FutexWait(&wake_seq_, seq, 0);
  }
}

void SafePointMutex::WakeWaiters(bool all) {
  wake_seq_.fetch_add(1, std::memory_order_release);
  if (all) {
    os::FutexWakeAll(&wake_seq_);
  } else {
    os::FutexWakeOne(&wake_seq_);
  }
}

}  // namespace pacegc::internal
