// base/check.cc — see check.h.
#include "base/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

namespace pacegc::internal {
namespace {

void VMessage(const char *fmt, va_list ap) {
  char buf[1024];
  int n = snprintf(buf, sizeof(buf), "pacegc: ");
  int m = vsnprintf(buf + n, sizeof(buf) - static_cast<size_t>(n) - 1, fmt, ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof(buf) - 2) len = sizeof(buf) - 2;
  buf[len++] = '\n';
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(STDERR_FILENO, p, len);
    if (w <= 0) break;
    p += w;
    len -= static_cast<size_t>(w);
  }
}

}  // namespace

void Message(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VMessage(fmt, ap);
  va_end(ap);
}

void Fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VMessage(fmt, ap);
  va_end(ap);
  abort();
}

void ExitMalformedSetting(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VMessage(fmt, ap);
  va_end(ap);
  _exit(2);
}

}  // namespace pacegc::internal
