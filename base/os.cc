// base/os.cc — see os.h. Linux only (x86-64 and AArch64 are the tested targets).
#include "base/os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>

#include "base/check.h"

namespace pacegc::internal::os {
namespace {

std::atomic<int> g_fail_next{0};          // injected failures still to deliver
std::atomic<uint64_t> g_map_failures{0};  // refusals seen, injected or real
std::atomic<int> g_fail_next_release{0};  // injected madvise failures still to deliver

bool Take(std::atomic<int> &counter) {
  int n = counter.load(std::memory_order_relaxed);
  while (n > 0) {
    if (counter.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

bool InjectedFailure() {
  if (!Take(g_fail_next)) return false;
  g_map_failures.fetch_add(1, std::memory_order_relaxed);
  errno = ENOMEM;
  return true;
}

}  // namespace

void FailNextMaps(int count) { g_fail_next.store(count < 0 ? 0 : count, std::memory_order_relaxed); }
void FailNextReleases(int count) { g_fail_next_release.store(count < 0 ? 0 : count, std::memory_order_relaxed); }
uint64_t MapFailures() { return g_map_failures.load(std::memory_order_relaxed); }

void *Reserve(size_t bytes, size_t alignment) {
  if (InjectedFailure()) return nullptr;
  // Over-reserve by the alignment and trim both ends: mmap only guarantees OS-page alignment.
  size_t span = bytes + alignment;
  if (span < bytes) return nullptr;
  void *raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    g_map_failures.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t end = start + span;
  if (end > aligned + bytes) munmap(reinterpret_cast<void *>(aligned + bytes), end - (aligned + bytes));
  return reinterpret_cast<void *>(aligned);
}

void Unreserve(void *p, size_t bytes) { munmap(p, bytes); }

bool Commit(void *p, size_t bytes) {
  if (InjectedFailure()) return false;
  if (mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) {
    g_map_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool Release(void *p, size_t bytes) {
  if (Take(g_fail_next_release)) {
    errno = EAGAIN;
    return false;
  }
  // On a valid committed range this fails only if the kernel cannot (EAGAIN, ENOMEM splitting a mapping).
  return madvise(p, bytes, MADV_DONTNEED) == 0;
}

void *ReserveRegion(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

bool CommitRegion(void *p, size_t bytes) { return mprotect(p, bytes, PROT_READ | PROT_WRITE) == 0; }

void DropPages(void *p, size_t bytes) { madvise(p, bytes, MADV_DONTNEED); }

void *MapSparse(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

namespace {

// Parses a hexadecimal number at *p, advancing it.
uintptr_t ParseHex(const char **p, const char *end) {
  uintptr_t v = 0;
  for (; *p < end; ++*p) {
    char c = **p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) break;
    v = v * 16 + static_cast<uintptr_t>(d);
  }
  return v;
}

}  // namespace

int OpenProcSelf(const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/%s", name);
  return open(path, O_RDONLY | O_CLOEXEC);
}

int SelfPagemap() {
  static int fd = -1;
  static pid_t opened_by = 0;
  const pid_t pid = getpid();
  if (fd < 0 || opened_by != pid) {
    if (fd >= 0) close(fd);
    fd = OpenProcSelf("pagemap");
    opened_by = pid;
  }
  return fd;
}

bool ForEachMapping(int fd, void (*visit)(const Mapping &mapping, void *arg), void *arg) {
  off_t offset = 0;
  // Lines are "start-end perms offset dev inode path".
  char buf[8192];  // more than one line: a path is at most PATH_MAX (4096) bytes
  size_t have = 0;
  bool eof = false, ok = true;
  for (;;) {
    char *nl = static_cast<char *>(memchr(buf, '\n', have));
    if (nl == nullptr) {
      if (have == sizeof(buf)) {  // a line longer than any the kernel writes
        errno = EOVERFLOW;
        ok = false;
        break;
      }
      if (eof) break;
      ssize_t n = pread(fd, buf + have, sizeof(buf) - have, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ok = false;
        break;
      }
      if (n == 0) {
        eof = true;
      } else {
        have += static_cast<size_t>(n);
        offset += n;
      }
      continue;
    }
    *nl = '\0';
    const char *p = buf;
    Mapping m;
    m.lo = ParseHex(&p, nl);
    ++p;  // '-'
    m.hi = ParseHex(&p, nl);
    ++p;  // ' '
    m.readable = p + 3 < nl && p[0] == 'r';
    m.writable = p + 3 < nl && p[1] == 'w';
    m.shared = p + 3 < nl && p[3] == 's';
    // The path starts after the fifth field (offset, dev, inode follow the perms).
    const char *q = p;
    for (int field = 0; field < 4 && q < nl; ++field) {
      while (q < nl && *q != ' ') ++q;
      while (q < nl && *q == ' ') ++q;
    }
    m.path = q;
    visit(m, arg);
    size_t used = static_cast<size_t>(nl + 1 - buf);
    memmove(buf, nl + 1, have - used);
    have -= used;
  }
  return ok;
}

int RangeReadable(uintptr_t lo, uintptr_t hi) {
  int fd = OpenProcSelf("maps");
  if (fd < 0) return -1;
  // Mappings come in address order; covered = the end of the readable prefix of [lo, hi) seen so far, until a gap
  // or an unreadable mapping stops it.
  struct Cover {
    uintptr_t covered;
    bool stopped;
  } cover{lo, false};
  const bool ok = ForEachMapping(fd, [](const Mapping &m, void *arg) {
    auto *c = static_cast<Cover *>(arg);
    if (c->stopped || m.hi <= c->covered) return;
    if (m.lo > c->covered || !m.readable) {
      c->stopped = true;  // a gap, or an unreadable mapping covering the next byte
      return;
    }
    c->covered = m.hi;
  }, &cover);
  const int saved = errno;
  close(fd);
  if (cover.covered >= hi) return 1;
  return !ok && saved == EOVERFLOW ? -1 : 0;  // a line longer than any the kernel writes: cannot tell
}

void ForEachPopulatedRun(int fd, uintptr_t lo, uintptr_t hi, void (*visit)(uintptr_t lo, uintptr_t hi, void *arg),
                         void *arg) {
  const size_t page = OsPageSize();
  constexpr uint64_t kPresent = uint64_t{1} << 63, kSwapped = uint64_t{1} << 62;
  uint64_t entries[512];
  uintptr_t run_lo = 0;  // start of the current run of populated pages; 0 = none
  for (uintptr_t at = lo; at < hi;) {
    const size_t want = static_cast<size_t>((hi - at) / page) < 512 ? static_cast<size_t>((hi - at) / page) : 512;
    const off_t offset = static_cast<off_t>((at / page) * sizeof(uint64_t));
    ssize_t n = pread(fd, entries, want * sizeof(uint64_t), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || n % static_cast<ssize_t>(sizeof(uint64_t)) != 0) {
      if (run_lo == 0) run_lo = at;  // cannot tell: the rest counts as populated rather than be lost
      break;
    }
    const size_t got = static_cast<size_t>(n) / sizeof(uint64_t);
    for (size_t i = 0; i < got; ++i, at += page) {
      const bool populated = (entries[i] & (kPresent | kSwapped)) != 0;
      if (populated && run_lo == 0) {
        run_lo = at;
      } else if (!populated && run_lo != 0) {
        visit(run_lo, at, arg);
        run_lo = 0;
      }
    }
  }
  if (run_lo != 0) visit(run_lo, hi, arg);
}

size_t OsPageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

int NumCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

static uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t MonotonicNs() { return ClockNs(CLOCK_MONOTONIC); }
uint64_t ThreadCpuNs() { return ClockNs(CLOCK_THREAD_CPUTIME_ID); }
uint64_t ProcessCpuNs() { return ClockNs(CLOCK_PROCESS_CPUTIME_ID); }

pid_t CurrentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

int SignalThread(pid_t tid, int sig) {
  if (syscall(SYS_tgkill, getpid(), tid, sig) == 0) return 0;
  return errno;
}

int ThreadAlive(pid_t tid) { return SignalThread(tid, 0) == ESRCH ? ESRCH : 0; }

void FutexWait(std::atomic<uint32_t> *word, uint32_t expected, uint64_t timeout_ns) {
  struct timespec ts;
  struct timespec *tsp = nullptr;
  if (timeout_ns != 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000ull);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000ull);
    tsp = &ts;
  }
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

void FutexWakeOne(std::atomic<uint32_t> *word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

bool CurrentThreadStack(uintptr_t *lo, uintptr_t *hi) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
  void *addr = nullptr;
  size_t size = 0;
  int rc = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  if (rc != 0 || addr == nullptr) return false;
  *lo = reinterpret_cast<uintptr_t>(addr);
  *hi = *lo + size;
  return true;
}

}  // namespace pacegc::internal::os
