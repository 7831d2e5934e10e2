// tests/malloc/check.h — the drop-in tests' one check: a failed condition prints "<file>:<line>: check failed: ..."
// and is counted; main returns Failures() == 0 ? 0 : 1. The programs run without Catch2 (one of them must not link
// anything of pacegc, and all are run preloaded or in a mode set by the environment).
#ifndef PACEGC_TESTS_MALLOC_CHECK_H_
#define PACEGC_TESTS_MALLOC_CHECK_H_

#include <stdio.h>

inline int &Failures() {
  static int failures = 0;
  return failures;
}

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++Failures();                                                            \
    }                                                                          \
  } while (0)

#endif  // PACEGC_TESTS_MALLOC_CHECK_H_
