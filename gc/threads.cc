// gc/threads.cc — see threads.h for the protocol.
#include "gc/threads.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include <cstdlib>

#include "gc/alloc.h"
#include "gc/check.h"
#include "gc/collector.h"
#include "gc/meta.h"
#include "gc/os.h"
#include "pacer/config.h"

namespace pacegc::internal {

thread_local ThreadRecord *t_current __attribute__((tls_model("initial-exec"))) = nullptr;

namespace threads {
namespace {

pthread_mutex_t g_registry_lock = PTHREAD_MUTEX_INITIALIZER;
ThreadRecord *g_threads = nullptr;  // registry list (g_registry_lock)
size_t g_count = 0;
pthread_key_t g_exit_key;           // its destructor unregisters a thread that exits while registered
int g_suspend_signal = 0;

// Odd while the world is stopped. Written by the collector, read by suspended threads.
std::atomic<uint32_t> g_stop_epoch{0};
// Incremented by each acknowledgement; the collector futex-waits on it.
std::atomic<uint32_t> g_acks{0};

constexpr uint64_t kAckPollNs = 10 * 1000 * 1000;     // re-check for vanished threads every 10 ms
constexpr uint64_t kSlowAckWarnNs = 5000ull * 1000 * 1000;

// Records where the collector finds this thread's state, acknowledges `epoch` and waits until the world resumes.
// Called by the suspend handler and by a SafePointMutex waiter. Never inlined: getcontext spills the registers into
// this frame and records its stack pointer, and everything the thread holds is at or above that frame (threads.h).
__attribute__((noinline)) void ParkUntilResumed(ThreadRecord *self, uint32_t epoch) {
  ucontext_t here;
  getcontext(&here);
  __builtin_unwind_init();  // the callers' callee-saved registers are saved in this frame's prologue too
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
  self->ack_epoch.store(epoch, std::memory_order_release);
  g_acks.fetch_add(1, std::memory_order_acq_rel);
  os::FutexWakeAll(&g_acks);
  while (g_stop_epoch.load(std::memory_order_acquire) == epoch) os::FutexWait(&g_stop_epoch, epoch, 0);
}

// True if the calling thread must acknowledge a stop that is in progress: it is registered, the epoch is odd, and
// it has not acknowledged this epoch yet (a heap-lock waiter may have parked itself further up its stack).
bool StopPendingFor(ThreadRecord *self, uint32_t epoch) {
  return self != nullptr && (epoch & 1) != 0 && self->ack_epoch.load(std::memory_order_relaxed) != epoch;
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
  rec->registrations = 1;
  Unregister();
}

// PACEGC_SUSPEND_SIGNAL: a signal with no meaning of its own (README, "Limits you must know"): a real-time signal
// SIGRTMIN..SIGRTMAX, or SIGUSR1/SIGUSR2. Everything else is refused: SIGINT, SIGTERM, SIGCHLD, SIGPIPE, SIGALRM
// ... have meanings a program (or its terminal, or the kernel) relies on, and SIGKILL, SIGSTOP, SIGSEGV and SIGBUS
// cannot or must not be taken over. glibc's own 32 and 33 lie below SIGRTMIN and are refused here too.
int ParseSignalEnv() {
  const char *env = getenv("PACEGC_SUSPEND_SIGNAL");
  int def = SIGRTMIN + 5;
  if (env == nullptr || *env == '\0') return def;
  char *end = nullptr;
  errno = 0;
  long v = strtol(env, &end, 10);
  bool number = errno == 0 && end != env && *end == '\0';
  if (!number || !((v >= SIGRTMIN && v <= SIGRTMAX) || v == SIGUSR1 || v == SIGUSR2)) {
    Message("malformed PACEGC_SUSPEND_SIGNAL=%s: want a signal with no meaning of its own, a real-time signal "
            "from %d to %d (SIGRTMIN..SIGRTMAX) or SIGUSR1 (%d) or SIGUSR2 (%d); default %d (SIGRTMIN+5)",
            pacer::QuoteSetting(env).c_str(), SIGRTMIN, SIGRTMAX, SIGUSR1, SIGUSR2, def);
    return -1;
  }
  return static_cast<int>(v);
}

void Link(ThreadRecord *rec) {
  rec->prev = nullptr;
  rec->next = g_threads;
  if (g_threads != nullptr) g_threads->prev = rec;
  g_threads = rec;
  ++g_count;
}

void Unlink(ThreadRecord *rec) {
  if (rec->prev != nullptr) {
    rec->prev->next = rec->next;
  } else {
    g_threads = rec->next;
  }
  if (rec->next != nullptr) rec->next->prev = rec->prev;
  --g_count;
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

}  // namespace

bool Init() {
  g_suspend_signal = ParseSignalEnv();
  if (g_suspend_signal < 0) return false;
  if (pthread_key_create(&g_exit_key, ExitDestructor) != 0) {
    Message("pthread_key_create failed: %s", strerror(errno));
    return false;
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

int Register() {
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
  rec->registrations = 1;
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

int StopTheWorld(SafePointMutex *held) {
  uint32_t epoch = g_stop_epoch.load(std::memory_order_relaxed) + 1;
  PACEGC_CHECK((epoch & 1) == 1);
  g_stop_epoch.store(epoch, std::memory_order_release);
  held->WakeWaiters(true);  // after the epoch is odd: a waiter that wakes sees the stop and parks itself
  ThreadRecord *self = t_current;
  int stopped = 0;
  for (ThreadRecord *t = g_threads; t != nullptr;) {
    ThreadRecord *next = t->next;
    if (t != self && t->ack_epoch.load(std::memory_order_acquire) == epoch) {
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
  uint64_t start = os::MonotonicNs();
  for (;;) {
    uint32_t seen = g_acks.load(std::memory_order_acquire);
    bool all = true;
    for (ThreadRecord *t = g_threads; t != nullptr; t = t->next) {
      if (t != self && t->ack_epoch.load(std::memory_order_acquire) != epoch) {
        all = false;
        break;
      }
    }
    if (all) break;
    os::FutexWait(&g_acks, seen, kAckPollNs);
    uint64_t waited = os::MonotonicNs() - start;
    for (ThreadRecord *t = g_threads; t != nullptr;) {
      ThreadRecord *next = t->next;
      if (t != self && t->ack_epoch.load(std::memory_order_acquire) != epoch) {
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
  return stopped;
}

void StartTheWorld() {
  uint32_t epoch = g_stop_epoch.load(std::memory_order_relaxed) + 1;
  g_stop_epoch.store(epoch, std::memory_order_release);
  os::FutexWakeAll(&g_stop_epoch);
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
