// gc/thread_start.h — every thread is registered from its first instruction: pthread_create is interposed.
//
// A thread that holds collected pointers must be registered, or its stack is not scanned and the objects it holds
// can be collected while in use (issue 14: a worker that receives objects from a queue and never allocates was
// invisible, because threads used to be registered on their first allocation only). So pacegc defines
// pthread_create itself, as bdwgc does with GC_THREADS (and its GC_USE_DLOPEN_WRAP variant):
//
//   creator (pthread_create, ours)                        new thread (StartRegistered)
//     decide: register the new thread?  (below)
//     real pthread_create(StartRegistered, &start)  --->    copy fn and arg from `start` (on the creator's stack)
//     wait until start.registered != 0, inside a            threads::Register()  (stack bounds, record, TSD key)
//       blocking region (never delays a stop)        <---   start.registered = 1; futex wake
//     return 0                                              return fn(arg)
//
// Why the creator waits (bdwgc waits the same way): until the new thread is registered, `arg` — often a collected
// object made for the thread — may be held by nobody the collector scans but the creator's stack. The creator's
// stack stays a root while it waits, because it waits in a blocking region; once the new thread is registered, its
// own copy is scanned. Thread creation thus costs one extra wake-up of the creator.
//
// Exit: a registered thread is unregistered by the thread-specific-data destructor of threads.cc, which runs when
// the start routine returns, on pthread_exit and on cancellation (after cleanup handlers and C++ thread_local
// destructors, which therefore still run registered). Detached and joinable threads are the same.
//
// How the real pthread_create is found: dlsym(RTLD_NEXT, "pthread_create") from this object, the next definition
// in the lookup order after ours: glibc's, or a sanitizer's interceptor, which then calls glibc's. If there is none
// (libc itself preloaded before us: then the program does not even call ours), the first definition that is not
// ours, so pacegc can still start its own threads.
//   - Shared library: libpacegc.so exports pthread_create; it is found before libc's for the executable and every
//     shared object loaded after libpacegc.so (a dependency of the executable always is). A library preloaded or
//     linked before libpacegc.so that defines pthread_create itself comes first and calls ours as its "real" one.
//     For a sanitizer runtime (TSan, ASan) that does NOT work: our trampoline then runs in the new thread before
//     the sanitizer's own thread start has set the thread up, and TSan crashes. Under sanitizers, link the static
//     library (its definition comes before the sanitizer's, which becomes our "real" one: tested).
//   - Static library: this object is linked into the executable (threads.cc refers to it, so it is pulled in with
//     the rest of pacegc) and the executable's definition comes first for everyone: the program's own calls and,
//     through the dynamic symbol table, shared libraries' calls (libstdc++'s std::thread). No -Wl,--wrap is needed,
//     and none is exported by the CMake package: --wrap would redirect only the calls of objects in that link,
//     missing threads made inside shared libraries.
//   - A fully static executable (-static) is not supported: there is no RTLD_NEXT, and libc.a's definition
//     clashes with ours.
//
// Which new threads are registered: every one, except
//   - threads created while pacegc is initialising on the creating thread (its pthread_once would deadlock);
//   - threads created with the suspend signal blocked in the creator's signal mask (inherited by the new thread).
//     Such a thread could never acknowledge a stop and would stall every collection. pacegc's own threads (the
//     background scavenger, the metrics logger) are created with every signal blocked for that reason, and are not
//     registered; the finalizer thread registers itself after unblocking the signal.
// Threads not made through pthread_create (clone, a runtime with its own threads), and threads that existed
// before libpacegc.so was loaded with dlopen, still call pgc_register_thread. Before the library's initialisation
// has run (a constructor that starts a thread), the new thread initialises it.
#ifndef PACEGC_GC_THREAD_START_H_
#define PACEGC_GC_THREAD_START_H_

#include <pthread.h>

namespace pacegc::internal::thread_start {

using CreateFn = int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

// The next pthread_create after pacegc's (glibc's, or a sanitizer's); nullptr if none can be found.
CreateFn Real();

// Creates a thread that pacegc does not register (its own threads), with every signal blocked in it.
int CreateUnregistered(pthread_t *thread, void *(*fn)(void *), void *arg);

}  // namespace pacegc::internal::thread_start

#endif  // PACEGC_GC_THREAD_START_H_
