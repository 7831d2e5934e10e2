// gc/thread_start.cc — see thread_start.h.
#include "gc/thread_start.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>

#include <atomic>

#include "base/check.h"
#include "base/os.h"
#include "gc/collector.h"
#include "gc/threads.h"

// Our definition's own address (pthread_create through the GOT may be another object's).
extern "C" int OwnPthreadCreate(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)
    __attribute__((visibility("hidden"), nothrow, nonnull(1, 3)));

namespace pacegc::internal::thread_start {
namespace {

std::atomic<CreateFn> g_real{nullptr};

// What the creator passes to the new thread; lives on the creator's stack until `registered` is set.
struct Start {
  void *(*fn)(void *);
  void *arg;
  std::atomic<uint32_t> registered{0};
};

void *StartRegistered(void *p) {
  auto *start = static_cast<Start *>(p);
  void *(*fn)(void *) = start->fn;
  void *arg = start->arg;  // on this thread's stack (or in a register) from here: scanned once registered
  int rc = threads::Register();
  // (This frame lives while fn runs; above it are the thread library's and the thread's TLS: ThreadRecord::frames_hi.)
  if (rc == 0) t_current->frames_hi = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  start->registered.store(1, std::memory_order_release);
  os::FutexWakeAll(&start->registered);  // the creator may return (and `start` be gone) from here
  if (rc != 0) Message("cannot register a new thread (error %d); its stack is not scanned", rc);
  return fn(arg);
}

// Whether a thread the calling thread creates now is registered (thread_start.h, "Which new threads").
bool RegisterNewThread() {
  if (InitialisingOnThisThread()) return false;
  EnsureInit();
  sigset_t mask;
  if (pthread_sigmask(SIG_SETMASK, nullptr, &mask) != 0) return true;
  return sigismember(&mask, threads::SuspendSignal()) != 1;
}

}  // namespace

CreateFn Real() {
  CreateFn real = g_real.load(std::memory_order_acquire);
  if (real == nullptr) {
    real = reinterpret_cast<CreateFn>(dlsym(RTLD_NEXT, "pthread_create"));
    if (real == nullptr) {
      // Nothing after us: the system's definition comes first (libc preloaded), so ours is not even called by the
      // program. pacegc's own threads still need it.
      auto first = reinterpret_cast<CreateFn>(dlsym(RTLD_DEFAULT, "pthread_create"));
      if (first != &OwnPthreadCreate) real = first;
    }
    g_real.store(real, std::memory_order_release);
  }
  return real;
}

int CreateUnregistered(pthread_t *thread, void *(*fn)(void *), void *arg) {
  CreateFn real = Real();
  if (real == nullptr) return EAGAIN;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = real(thread, nullptr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return rc;
}

}  // namespace pacegc::internal::thread_start

using namespace pacegc::internal;

extern "C" __attribute__((visibility("default"))) int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                                                                     void *(*fn)(void *), void *arg) {
  thread_start::CreateFn real = thread_start::Real();
  if (real == nullptr) {
    Message("pthread_create: cannot find the system's pthread_create (dlsym RTLD_NEXT); a fully static "
            "executable is not supported");
    return EAGAIN;
  }
  if (!thread_start::RegisterNewThread()) return real(thread, attr, fn, arg);
  thread_start::Start start;
  start.fn = fn;
  start.arg = arg;
  int rc = real(thread, attr, thread_start::StartRegistered, &start);
  if (rc != 0) return rc;
  threads::WaitUntilSet(&start.registered);
  return 0;
}

extern "C" int OwnPthreadCreate(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)
    __attribute__((alias("pthread_create"), nothrow, nonnull(1, 3)));
