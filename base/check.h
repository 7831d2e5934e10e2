// base/check.h — executable invariants and fatal errors, in tiers (mimalloc's mi_assert / mi_assert_internal /
// mi_assert_expensive; snmalloc's CHECK):
//   PACEGC_CHECK(c)            always on: corruption that must never pass silently; aborts with a message.
//   PACEGC_DCHECK(c)           debug and verify builds (NDEBUG unset or PACEGC_VERIFY_HEAP): cheap internal asserts.
//   PACEGC_EXPENSIVE_CHECK(c)  verify builds only: checks that walk whole structures.
// Messages are written with write(2), never stdio, because they may be printed while the world is stopped and a
// suspended thread may hold the stdio lock.
#ifndef PACEGC_BASE_CHECK_H_
#define PACEGC_BASE_CHECK_H_

#include <cstddef>

namespace pacegc::internal {

// Writes "pacegc: <formatted message>\n" to stderr without locking or allocating (snprintf into a stack buffer).
void Message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Message() and abort().
[[noreturn]] void Fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The rule for a malformed setting at start-up (GOGC, GOMEMLIMIT, GODEBUG, PACEGC_*): Message() with the one line
// naming the variable, the value and the accepted forms, then _exit(2). Never a silent default.
[[noreturn]] void ExitMalformedSetting(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace pacegc::internal

#define PACEGC_CHECK(cond)                                                                              \
  do {                                                                                                  \
    if (__builtin_expect(!(cond), 0))                                                                   \
      ::pacegc::internal::Fatal("internal check failed: %s (%s:%d)", #cond, __FILE__, __LINE__);        \
  } while (0)

#if !defined(NDEBUG) || defined(PACEGC_VERIFY_HEAP)
#define PACEGC_DCHECK(cond) PACEGC_CHECK(cond)
#else
#define PACEGC_DCHECK(cond) \
  do {                      \
  } while (0)
#endif

#if defined(PACEGC_VERIFY_HEAP)
#define PACEGC_EXPENSIVE_CHECK(cond) PACEGC_CHECK(cond)
#else
#define PACEGC_EXPENSIVE_CHECK(cond) \
  do {                               \
  } while (0)
#endif

// Scanning functions read memory conservatively: stacks with dead frames, red zones, uninitialised words. Under
// AddressSanitizer they must not be instrumented (bdwgc does the same).
#if defined(__clang__) || defined(__GNUC__)
#define PACEGC_NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
#else
#define PACEGC_NO_SANITIZE_ADDRESS
#endif

// The same functions, and only they, are not instrumented by ThreadSanitizer either: besides the stopped threads'
// stacks and objects (ordered after the collector by the stop handshake, threads.h), a conservative scan reads words
// that other threads may touch during the pause without it mattering to the scan: globals that pacegc's unregistered
// background thread or the handshake's own atomics update (the heap lock, the acknowledgement counter), and the
// static TLS at the top of a parked thread's stack (errno restored as its suspend handler returns). Any value read
// there is fine: an aligned word cannot tear, and at worst it keeps a dead object for one more cycle.
#if defined(__SANITIZE_THREAD__)
#define PACEGC_NO_SANITIZE_THREAD __attribute__((no_sanitize("thread")))
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PACEGC_NO_SANITIZE_THREAD __attribute__((no_sanitize("thread")))
#endif
#endif
#ifndef PACEGC_NO_SANITIZE_THREAD
#define PACEGC_NO_SANITIZE_THREAD
#endif

#define PACEGC_LIKELY(x) __builtin_expect(!!(x), 1)
#define PACEGC_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif  // PACEGC_BASE_CHECK_H_
