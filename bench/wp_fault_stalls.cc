// bench/wp_fault_stalls.cc — does a burst of write-protection faults on one CPU delay a thread on the other?
//
// The wake-up benchmark's sleeper (bench/wakeup_latency.c) is 13-30 ms late every ~50 ms in some phases of a
// concurrent run, outside any pause, and in none of a stop-the-world run (docs/BENCHMARKS.md, "Write-protection
// faults stall the other CPU"). Those phases are the ones in which the churning thread writes pages the collector
// has protected (base/dirty.h): the live structure's pointer arrays, after the build, in a runway cycle, and when
// their hot period runs out. This program isolates that with no collector: a 1 GiB region of populated 4 KiB pages
// registered with the tracker; a writer thread stores one byte into each page in a pseudo-random order, round after
// round; a sleeper thread does wakeup_latency's loop (intended = now + 1 ms; clock_nanosleep to it; lateness = now -
// intended). Mode `protected` write-protects the whole region (dirty::Protect) before each round, so every store of
// the round is a write-protection fault resolved by the kernel (WP-async); mode `writable` does not, so no store
// faults; mode `lifting` protects the region and lifts the protection again (dirty::Unprotect, as a cycle's end
// does) before each round, so the changes are the system calls' and no store faults.
//
// Output: the first wake-ups more than 10 ms late (lateness and time), then
//   RESULT mode=M seconds=S wakeups=N late_max_ms=X late_over_10ms=K writer_rounds=R first_write_us=W
// where first_write_us is the writer's stores' time per page in its rounds (protected: the fault's cost; the
// system calls of `lifting` are outside it).
// Usage: wp_fault_stalls protected|writable|lifting [seconds, default 8]. Bad arguments: one line on stderr, exit 2; no
// tracker on this kernel: one line saying why, exit 1.
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/dirty.h"
#include "bench/sleeper.h"

using namespace pacegc::internal;

namespace {

constexpr size_t kBytes = size_t{1} << 30;
constexpr size_t kPage = 4096;

std::atomic<bool> g_stop{false};
bool g_protect = false;
bool g_lift = false;
char *g_region = nullptr;
uint64_t g_rounds = 0;      // writer only, read after join
double g_write_ns = 0;      // writer only: total time of its complete rounds
double g_pages_written = 0;

double NowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

void *Writer(void *) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(g_region);
  const size_t pages = kBytes / kPage;
  uint64_t x = 88172645463325252ull;  // xorshift64
  while (!g_stop.load(std::memory_order_relaxed)) {
    if ((g_protect || g_lift) && dirty::Protect(lo, lo + kBytes) != 0) {
      fprintf(stderr, "wp_fault_stalls: the kernel refused to write-protect the region\n");
      exit(1);
    }
    if (g_lift && dirty::Unprotect(lo, lo + kBytes) != 0) {
      fprintf(stderr, "wp_fault_stalls: the kernel refused to lift the region's protection\n");
      exit(1);
    }
    const double t0 = NowNs();
    size_t i = 0;
    for (; i < pages && !g_stop.load(std::memory_order_relaxed); ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      g_region[(x % pages) * kPage] = static_cast<char>(i);
    }
    if (i == pages) {
      ++g_rounds;
      g_write_ns += NowNs() - t0;
      g_pages_written += static_cast<double>(pages);
    }
  }
  return nullptr;
}

}  // namespace

int main(int argc, char **argv) {
  double seconds = 8;
  if (argc < 2 || argc > 3 ||
      (strcmp(argv[1], "protected") != 0 && strcmp(argv[1], "writable") != 0 && strcmp(argv[1], "lifting") != 0)) {
    fprintf(stderr, "usage: wp_fault_stalls protected|writable|lifting [seconds]\n");
    return 2;
  }
  if (argc == 3) {
    char *end = nullptr;
    seconds = strtod(argv[2], &end);
    if (end == argv[2] || *end != '\0' || !(seconds > 0) || seconds > 3600) {
      fprintf(stderr, "wp_fault_stalls: seconds must be a positive number up to 3600, not '%s'\n", argv[2]);
      return 2;
    }
  }
  g_protect = strcmp(argv[1], "protected") == 0;
  g_lift = strcmp(argv[1], "lifting") == 0;
  const dirty::Status &status = dirty::Detect();
  if (!status.available) {
    fprintf(stderr, "wp_fault_stalls: no write tracker here (%s)\n", status.reason);
    return 1;
  }
  void *p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("wp_fault_stalls: mmap");
    return 1;
  }
  g_region = static_cast<char *>(p);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(g_region);
  if (int err = dirty::Register(lo, lo + kBytes); err != 0) {
    fprintf(stderr, "wp_fault_stalls: cannot register the region (%s)\n", strerror(err));
    return 1;
  }
  for (size_t off = 0; off < kBytes; off += kPage) g_region[off] = 1;  // populated: no first-touch faults below

  pthread_t writer;
  if (pthread_create(&writer, nullptr, Writer, nullptr) != 0) {
    fprintf(stderr, "wp_fault_stalls: pthread_create failed\n");
    return 1;
  }
  const BenchSleeperResult r = BenchRunSleeper(seconds, 10);
  g_stop.store(true);
  pthread_join(writer, nullptr);
  dirty::Unregister(lo, lo + kBytes);
  munmap(p, kBytes);
  printf("RESULT mode=%s seconds=%.1f wakeups=%ld late_max_ms=%.1f late_over_10ms=%ld writer_rounds=%llu "
         "first_write_us=%.2f\n",
         argv[1], seconds, r.wakeups, r.late_max_ms, r.over_10ms, static_cast<unsigned long long>(g_rounds),
         g_pages_written > 0 ? g_write_ns / g_pages_written / 1e3 : 0.0);
  return 0;
}
