// bench/dirty_bench.cc — what the dirty-page tracker (base/dirty.h) costs, against the classic alternative.
//
// For a region of committed (populated) 4 KiB pages, 64 MiB and 1 GiB, and a fraction of its pages written
// (0%, 1%, 10%, 100%, spread evenly), each repetition measures:
//   protect   dirty::Protect over the region (UFFDIO_WRITEPROTECT)
//   write     one store into each chosen page; divided by the pages written it is the cost of the first write to a
//             protected page (a minor fault the kernel resolves itself), minus nothing: a store to a populated
//             writable page costs nanoseconds
//   scan      dirty::CollectDirty over the region (PAGEMAP_SCAN, report + re-protect); checked to report exactly
//             the pages written
// and the same with mprotect(PROT_READ) + a SIGSEGV handler that records the page in a bitmap and makes it
// writable again (bdwgc's MPROTECT_VDB): protect = one mprotect over the region, write = a signal and an mprotect
// per page, scan = reading the bitmap. Every mprotect of a single page splits the mapping, so a spread-out write
// set costs up to two mappings per page; past vm.max_map_count the kernel refuses (those rows say so).
//
// A second table gives what a concurrent cycle's start and end cost per region with nothing written between them
// (gc/concurrent.h, "Protection between cycles"): protecting writable pages, lifting the protection from protected
// pages, lifting it from pages already writable, and a re-protecting scan of protected pages nobody wrote.
//
// Prints two markdown tables: medians and [min–max] over the repetitions, in ms (per page in µs).
// Usage: dirty_bench [repetitions for 64 MiB (default 7)] [repetitions for 1 GiB (default 3)]
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/dirty.h"
#include "base/os.h"

using namespace pacegc::internal;

namespace {

size_t g_page;

struct Stat {
  std::vector<double> v;
  void Add(double x) { v.push_back(x); }
  double Median() {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  double Min() { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
  double Max() { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
  void Print(double scale, const char *fmt) {
    char buf[96];
    snprintf(buf, sizeof buf, fmt, Median() * scale, Min() * scale, Max() * scale);
    printf(" %s |", buf);
  }
};

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// The pages to write: `permille` per thousand, spread evenly.
std::vector<size_t> Chosen(size_t pages, int permille) {
  std::vector<size_t> out;
  if (permille == 0) return out;
  size_t count = pages * static_cast<size_t>(permille) / 1000;
  for (size_t i = 0; i < count; ++i) out.push_back(i * pages / count);
  return out;
}

void Populate(char *base, size_t bytes) {
  for (size_t off = 0; off < bytes; off += g_page) base[off] = 1;
}

// ---- userfaultfd WP-async + PAGEMAP_SCAN ----

struct Counter {
  size_t pages = 0;
};
void Count(uintptr_t lo, uintptr_t hi, void *arg) { static_cast<Counter *>(arg)->pages += (hi - lo) / g_page; }

// A populated region of `bytes` registered with the tracker; nullptr (after a message) if either step failed.
char *MapRegistered(size_t bytes) {
  char *base = static_cast<char *>(os::MapSparse(bytes));
  if (base == nullptr) return nullptr;
  Populate(base, bytes);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(base);
  int err = dirty::Register(lo, lo + bytes);
  if (err != 0) {
    fprintf(stderr, "dirty_bench: Register: %s\n", strerror(err));
    os::Unreserve(base, bytes);
    return nullptr;
  }
  return base;
}

bool RunUffd(size_t bytes, int permille, int reps, Stat *protect, Stat *write, Stat *scan) {
  char *base = MapRegistered(bytes);
  if (base == nullptr) return false;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(base), hi = lo + bytes;
  int err = 0;
  std::vector<size_t> chosen = Chosen(bytes / g_page, permille);
  Counter warm;
  dirty::CollectDirty(lo, hi, Count, &warm);  // marks every page once, so repetitions start alike
  bool ok = true;
  for (int r = 0; r < reps && ok; ++r) {
    uint64_t t0 = os::MonotonicNs();
    err = dirty::Protect(lo, hi);
    uint64_t t1 = os::MonotonicNs();
    for (size_t p : chosen) reinterpret_cast<volatile char *>(base)[p * g_page] = static_cast<char>(r);
    uint64_t t2 = os::MonotonicNs();
    Counter c;
    int scan_err = dirty::CollectDirty(lo, hi, Count, &c);
    uint64_t t3 = os::MonotonicNs();
    if (err != 0 || scan_err != 0 || c.pages != chosen.size()) {
      fprintf(stderr, "dirty_bench: protect %d, scan %d, %zu pages reported for %zu written\n", err, scan_err,
              c.pages, chosen.size());
      ok = false;
    }
    protect->Add(Ms(t1 - t0));
    write->Add(chosen.empty() ? 0 : static_cast<double>(t2 - t1) / 1e3 / static_cast<double>(chosen.size()));
    scan->Add(Ms(t3 - t2));
  }
  dirty::Unregister(lo, hi);
  os::Unreserve(base, bytes);
  return ok;
}

// A cycle's end and start with nothing written: the four calls on the whole populated region, in that order.
// Then one store into each page, twice: the first after the protection was lifted (a page-table entry the
// kernel changed twice since the last store), the second with nothing changed in between. The difference is what
// a changed entry costs the program's next access besides the system calls (on a VM with shadow page tables, the
// hypervisor's own fault on the first access: invisible to the guest as a page fault).
bool RunLift(size_t bytes, int reps, Stat *protect, Stat *unprotect, Stat *unprotect_again, Stat *scan_none,
             Stat *write_lifted, Stat *write_again) {
  char *base = MapRegistered(bytes);
  if (base == nullptr) return false;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(base), hi = lo + bytes;
  int err = 0;
  bool ok = true;
  for (int r = 0; r < reps && ok; ++r) {
    err = dirty::Unprotect(lo, hi);  // every page writable (and not written since: the scan reports what was)
    Counter c;
    uint64_t t0 = os::MonotonicNs();
    int e1 = dirty::Protect(lo, hi);
    uint64_t t1 = os::MonotonicNs();
    int e2 = dirty::CollectDirty(lo, hi, Count, &c);
    uint64_t t2 = os::MonotonicNs();
    int e3 = dirty::Unprotect(lo, hi);
    uint64_t t3 = os::MonotonicNs();
    int e4 = dirty::Unprotect(lo, hi);
    uint64_t t4 = os::MonotonicNs();
    for (size_t off = 0; off < bytes; off += g_page) reinterpret_cast<volatile char *>(base)[off] = static_cast<char>(r);
    uint64_t t5 = os::MonotonicNs();
    for (size_t off = 0; off < bytes; off += g_page) reinterpret_cast<volatile char *>(base)[off] = static_cast<char>(r + 1);
    uint64_t t6 = os::MonotonicNs();
    const double pages = static_cast<double>(bytes / g_page);
    write_lifted->Add(static_cast<double>(t5 - t4) / 1e3 / pages);
    write_again->Add(static_cast<double>(t6 - t5) / 1e3 / pages);
    if (err != 0 || e1 != 0 || e2 != 0 || e3 != 0 || e4 != 0 || c.pages != 0) {
      fprintf(stderr, "dirty_bench: lift: errors %d %d %d %d %d, %zu pages reported for none written\n", err, e1, e2,
              e3, e4, c.pages);
      ok = false;
    }
    protect->Add(Ms(t1 - t0));
    scan_none->Add(Ms(t2 - t1));
    unprotect->Add(Ms(t3 - t2));
    unprotect_again->Add(Ms(t4 - t3));
  }
  dirty::Unregister(lo, hi);
  os::Unreserve(base, bytes);
  return ok;
}

// ---- mprotect + SIGSEGV ----

uintptr_t g_lo, g_hi;
uint8_t *g_bitmap;  // one byte per page: written since protection

void SegvHandler(int sig, siginfo_t *info, void *) {
  uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  if (a < g_lo || a >= g_hi) {
    signal(sig, SIG_DFL);
    return;  // not ours: the fault repeats with the default action
  }
  uintptr_t page = a & ~(g_page - 1);
  g_bitmap[(page - g_lo) / g_page] = 1;
  if (mprotect(reinterpret_cast<void *>(page), g_page, PROT_READ | PROT_WRITE) != 0) {
    const char msg[] = "dirty_bench: mprotect in the SIGSEGV handler failed (vm.max_map_count?)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
  }
}

bool RunMprotect(size_t bytes, int permille, int reps, Stat *protect, Stat *write_cost, Stat *scan) {
  char *base = static_cast<char *>(os::MapSparse(bytes));
  if (base == nullptr) return false;
  Populate(base, bytes);
  const size_t pages = bytes / g_page;
  g_bitmap = static_cast<uint8_t *>(os::MapSparse(pages));
  if (g_bitmap == nullptr) {
    os::Unreserve(base, bytes);
    return false;
  }
  g_lo = reinterpret_cast<uintptr_t>(base);
  g_hi = g_lo + bytes;
  struct sigaction sa{}, old{};
  sa.sa_sigaction = SegvHandler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old);
  std::vector<size_t> chosen = Chosen(pages, permille);
  bool ok = true;
  for (int r = 0; r < reps && ok; ++r) {
    uint64_t t0 = os::MonotonicNs();
    std::memset(g_bitmap, 0, pages);
    ok = mprotect(base, bytes, PROT_READ) == 0;
    uint64_t t1 = os::MonotonicNs();
    for (size_t p : chosen) reinterpret_cast<volatile char *>(base)[p * g_page] = static_cast<char>(r);
    uint64_t t2 = os::MonotonicNs();
    size_t found = 0;
    for (size_t i = 0; i < pages; ++i) found += g_bitmap[i];
    uint64_t t3 = os::MonotonicNs();
    if (found != chosen.size()) ok = false;
    protect->Add(Ms(t1 - t0));
    write_cost->Add(chosen.empty() ? 0 : static_cast<double>(t2 - t1) / 1e3 / static_cast<double>(chosen.size()));
    scan->Add(Ms(t3 - t2));
  }
  sigaction(SIGSEGV, &old, nullptr);
  os::Unreserve(g_bitmap, pages);
  os::Unreserve(base, bytes);
  return ok;
}

}  // namespace

int main(int argc, char **argv) {
  g_page = os::OsPageSize();
  const int reps_small = argc > 1 ? atoi(argv[1]) : 7;
  const int reps_large = argc > 2 ? atoi(argv[2]) : 3;
  const dirty::Status &status = dirty::Detect();
  printf("dirty-page tracking: %s (%s); page %zu B\n\n", status.available ? "available" : "UNAVAILABLE",
         status.reason, g_page);
  long max_maps = 65530;
  if (FILE *f = fopen("/proc/sys/vm/max_map_count", "r")) {
    if (fscanf(f, "%ld", &max_maps) != 1) max_maps = 65530;
    fclose(f);
  }
  printf("| region | written | mechanism | protect ms | first write µs/page | scan ms | protect + scan ms |\n");
  printf("|---|---|---|---|---|---|---|\n");
  const size_t sizes[] = {64u << 20, 1u << 30};
  const int permilles[] = {0, 10, 100, 1000};
  for (size_t bytes : sizes) {
    const int reps = bytes <= (64u << 20) ? reps_small : reps_large;
    for (int permille : permilles) {
      for (int mech = 0; mech < 2; ++mech) {
        Stat protect, write, scan;
        bool ok;
        const char *name = mech == 0 ? "uffd WP-async + PAGEMAP_SCAN" : "mprotect + SIGSEGV";
        size_t written = bytes / g_page * static_cast<size_t>(permille) / 1000;
        if (mech == 0 && !status.available) {
          printf("| %zu MiB | %d%% | %s | unavailable | | | |\n", bytes >> 20, permille / 10, name);
          continue;
        }
        // Each isolated written page becomes its own mapping between two read-only ones.
        if (mech == 1 && permille < 1000 && static_cast<long>(2 * written) > max_maps - 1000) {
          printf("| %zu MiB | %d%% | %s | refused: ~%zu mappings > vm.max_map_count %ld | | | |\n", bytes >> 20,
                 permille / 10, name, 2 * written, max_maps);
          continue;
        }
        ok = mech == 0 ? RunUffd(bytes, permille, reps, &protect, &write, &scan)
                       : RunMprotect(bytes, permille, reps, &protect, &write, &scan);
        Stat total;  // before printing: Print sorts
        for (size_t i = 0; i < protect.v.size(); ++i) total.Add(protect.v[i] + scan.v[i]);
        printf("| %zu MiB | %d%% | %s |", bytes >> 20, permille / 10, name);
        protect.Print(1, "%.2f [%.2f–%.2f]");
        if (permille == 0) {
          printf(" — |");
        } else {
          write.Print(1, "%.2f [%.2f–%.2f]");
        }
        scan.Print(1, "%.2f [%.2f–%.2f]");
        total.Print(1, "%.2f [%.2f–%.2f]");
        printf("%s\n", ok ? "" : " (FAILED: wrong page count)");
        fflush(stdout);
      }
    }
  }
  if (!status.available) return 0;
  printf("\n| region | protect writable pages ms | re-protecting scan, none written ms | unprotect protected pages ms "
         "| unprotect writable pages ms | first store after, µs/page | next store, µs/page |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (size_t bytes : sizes) {
    Stat protect, unprotect, unprotect_again, scan_none, write_lifted, write_again;
    const bool ok = RunLift(bytes, bytes <= (64u << 20) ? reps_small : reps_large, &protect, &unprotect,
                            &unprotect_again, &scan_none, &write_lifted, &write_again);
    printf("| %zu MiB |", bytes >> 20);
    protect.Print(1, "%.2f [%.2f–%.2f]");
    scan_none.Print(1, "%.2f [%.2f–%.2f]");
    unprotect.Print(1, "%.2f [%.2f–%.2f]");
    unprotect_again.Print(1, "%.2f [%.2f–%.2f]");
    write_lifted.Print(1, "%.3f [%.3f–%.3f]");
    write_again.Print(1, "%.3f [%.3f–%.3f]");
    printf("%s\n", ok ? "" : " (FAILED)");
    fflush(stdout);
  }
  return 0;
}
