// Unit tests for base/dirty: the dirty-page tracker (userfaultfd WP-async + PAGEMAP_SCAN). On a 64 MiB anonymous
// mapping, a chosen set of pages is written (populated before protection or not, dropped with MADV_DONTNEED after
// it, written by the kernel through read(2), written from other threads) and CollectDirty must report exactly that
// set, then nothing, then the next set. Where the mechanism is unavailable each test checks that detection gives a
// reason and skips with a WARN naming it.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "base/dirty.h"
#include "base/os.h"

using namespace pacegc::internal;

namespace {

constexpr size_t kMappingBytes = 64u << 20;

size_t Page() { return os::OsPageSize(); }

// True (and a loud WARN) when the machine has no tracker; the reason must still be given.
bool Unavailable() {
  const dirty::Status &status = dirty::Detect();
  REQUIRE(status.reason != nullptr);
  REQUIRE(status.reason[0] != '\0');
  if (status.available) return false;
  WARN("SKIPPED: dirty-page tracking is unavailable on this machine: " << status.reason);
  return true;
}

// A 64 MiB private anonymous read-write mapping, registered; unregistered and unmapped at scope exit.
struct Tracked {
  char *base;
  size_t bytes;
  explicit Tracked(size_t n = kMappingBytes) : bytes(n) {
    base = static_cast<char *>(os::MapSparse(bytes));
    REQUIRE(base != nullptr);
    REQUIRE(dirty::Register(lo(), hi()) == 0);
  }
  ~Tracked() {
    CHECK(dirty::Unregister(lo(), hi()) == 0);
    os::Unreserve(base, bytes);
  }
  uintptr_t lo() const { return reinterpret_cast<uintptr_t>(base); }
  uintptr_t hi() const { return lo() + bytes; }
  size_t pages() const { return bytes / Page(); }
  void Write(size_t page, char value = 1) { reinterpret_cast<volatile char *>(base)[page * Page() + 8] = value; }
  char Read(size_t page) const { return reinterpret_cast<volatile char *>(base)[page * Page() + 8]; }
  void Drop(size_t page) { REQUIRE(madvise(base + page * Page(), Page(), MADV_DONTNEED) == 0); }
};

struct Collected {
  uintptr_t base = 0;
  std::set<size_t> pages;
  std::vector<std::pair<size_t, size_t>> runs;  // [first page, end page)
};

void Visit(uintptr_t lo, uintptr_t hi, void *arg) {
  auto *c = static_cast<Collected *>(arg);
  size_t first = (lo - c->base) / Page(), end = (hi - c->base) / Page();
  c->runs.emplace_back(first, end);
  for (size_t p = first; p < end; ++p) c->pages.insert(p);
}

Collected Collect(const Tracked &t, dirty::CollectStats *stats = nullptr) {
  Collected c;
  c.base = t.lo();
  REQUIRE(dirty::CollectDirty(t.lo(), t.hi(), Visit, &c, stats) == 0);
  return c;
}

}  // namespace

TEST_CASE("detection gives a result and a one-line reason", "[dirty]") {
  const dirty::Status &status = dirty::Detect();
  REQUIRE(status.reason != nullptr);
  CHECK(status.reason[0] != '\0');
  CHECK(std::strchr(status.reason, '\n') == nullptr);
  std::fprintf(stderr, "dirty-page tracking (uid %d): %s: %s\n", static_cast<int>(getuid()),
               status.available ? "available" : "UNAVAILABLE", status.reason);
  CHECK(&dirty::Detect() == &status);  // cached
  CHECK(dirty::Available() == status.available);
  if (!status.available) {
    WARN("SKIPPED: dirty-page tracking is unavailable on this machine: " << status.reason);
    CHECK(dirty::Register(0x10000, 0x20000) == ENOTSUP);
  }
}

TEST_CASE("CollectDirty reports exactly the pages written since protection, then none, then the next set",
          "[dirty]") {
  if (Unavailable()) return;
  Tracked t;
  const size_t n = t.pages();
  // Populated before protection: every 7th page of the first 1000, and the run 600..699.
  for (size_t p = 0; p < 1000; p += 7) t.Write(p);
  for (size_t p = 600; p < 700; ++p) t.Write(p);
  REQUIRE(dirty::Protect(t.lo(), t.hi()) == 0);

  std::set<size_t> expected;
  auto write = [&](size_t p) {
    t.Write(p, 2);
    expected.insert(p);
  };
  write(0);                                        // populated before protection
  write(7);                                        // ditto, isolated
  write(1);                                        // never touched before: adjacent to page 0, one run 0..1
  for (size_t p = 2000; p < 2100; ++p) write(p);   // a run of never-touched pages
  for (size_t p = 650; p < 660; ++p) write(p);     // inside a populated run
  write(n - 1);                                    // the last page
  t.Drop(14);                                      // dropped after protection, then written
  write(14);
  // Dropped after protection and not written: MADV_DONTNEED empties the entry and the kernel's mark with it, so
  // the page "may" be reported (its contents did change, to zeros). Linux 6.18 reports it; either is correct.
  const std::set<size_t> dropped = {21, 22, 3000};
  for (size_t p : dropped) t.Drop(p);
  CHECK(t.Read(28) == 1);                          // a protected populated page only read
  CHECK(t.Read(5000) == 0);                        // a never-touched protected page only read
  CHECK(t.Read(21) == 0);

  dirty::CollectStats stats;
  Collected c = Collect(t, &stats);
  std::set<size_t> got = c.pages, dropped_reported;
  for (size_t p : dropped) {
    if (got.erase(p) != 0) dropped_reported.insert(p);
  }
  if (!dirty::Detect().wp_unpopulated) got.erase(5000);  // first touched by a read: reported once without it
  CHECK(got == expected);
  std::fprintf(stderr, "dirty_test: %zu of %zu pages dropped after protection were reported\n",
               dropped_reported.size(), dropped.size());
  CHECK(stats.pages == c.pages.size());
  CHECK(stats.runs == c.runs.size());
  // Runs are maximal and in address order: 0..1, 7, 14, 650..659, 2000..2099, n-1 (+5000 without WP_UNPOPULATED).
  for (size_t i = 1; i < c.runs.size(); ++i) CHECK(c.runs[i - 1].second < c.runs[i].first);
  CHECK(c.runs.front() == std::make_pair(size_t{0}, size_t{2}));
  CHECK(c.runs.back() == std::make_pair(n - 1, n));
  // A run is one run even where the re-protecting scan starts a new system call inside it (an aligned MiB,
  // dirty::kProtectChunkBytes; 2000..2099 straddles one if the mapping puts one there, and the next case's
  // 3000-page run always does).
  CHECK(std::count(c.runs.begin(), c.runs.end(), std::make_pair(size_t{2000}, size_t{2100})) == 1);

  // Nothing was written since: a second collect finds nothing (the first one re-protected what it reported).
  Collected again = Collect(t);
  CHECK(again.pages.empty());

  // The next set: pages reported before (re-protected), a dropped page, an untouched one, a page only read so far.
  std::set<size_t> next = {1, 7, 21, 100, 5000, 2050, n - 2};
  for (size_t p : next) t.Write(p, 3);
  CHECK(Collect(t).pages == next);
  CHECK(Collect(t).pages.empty());
  CHECK(t.Read(0) == 2);  // contents untouched by all this
  CHECK(t.Read(21) == 3);
}

TEST_CASE("ReportDirty reports the written pages and protects nothing again; Unprotect ends tracking", "[dirty]") {
  if (Unavailable()) return;
  Tracked t;
  for (size_t p = 0; p < 64; ++p) t.Write(p);  // populated
  REQUIRE(dirty::Protect(t.lo(), t.hi()) == 0);
  CHECK(Collect(t).pages.empty());
  t.Write(3);
  t.Write(40);
  auto report = [&] {
    Collected c;
    c.base = t.lo();
    REQUIRE(dirty::ReportDirty(t.lo(), t.hi(), Visit, &c) == 0);
    return c.pages;
  };
  CHECK(report() == std::set<size_t>{3, 40});
  CHECK(report() == std::set<size_t>{3, 40});  // not protected again: reported again
  CHECK(Collect(t).pages == std::set<size_t>{3, 40});  // reported, and now protected again
  CHECK(report().empty());
  // Unprotect: the pages carry no mark, so every page of the range is reported, written or not.
  REQUIRE(dirty::Unprotect(t.lo(), t.lo() + 8 * Page()) == 0);
  t.Write(2);
  t.Write(20);
  std::set<size_t> expected{20};
  for (size_t p = 0; p < 8; ++p) expected.insert(p);
  CHECK(report() == expected);
}

TEST_CASE("writes by the kernel on the program's behalf (read(2) into a protected page) are reported", "[dirty]") {
  if (Unavailable()) return;
  Tracked t;
  t.Write(50);
  REQUIRE(dirty::Protect(t.lo(), t.hi()) == 0);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const char text[] = "written by the kernel";
  REQUIRE(write(fds[1], text, sizeof text) == static_cast<ssize_t>(sizeof text));
  REQUIRE(write(fds[1], text, sizeof text) == static_cast<ssize_t>(sizeof text));
  // Into a populated protected page and into a never-populated one.
  CHECK(read(fds[0], t.base + 50 * Page(), sizeof text) == static_cast<ssize_t>(sizeof text));
  CHECK(read(fds[0], t.base + 51 * Page(), sizeof text) == static_cast<ssize_t>(sizeof text));
  close(fds[0]);
  close(fds[1]);
  CHECK(std::memcmp(t.base + 50 * Page(), text, sizeof text) == 0);
  CHECK(Collect(t).pages == std::set<size_t>{50, 51});
}

TEST_CASE("writes from other threads are seen, also while collecting", "[dirty]") {
  if (Unavailable()) return;
  Tracked t;
  REQUIRE(dirty::Protect(t.lo(), t.hi()) == 0);

  // Two threads write disjoint sets and finish; the collector then sees both.
  std::set<size_t> expected;
  for (size_t p = 10; p < 4000; p += 3) expected.insert(p);
  std::thread a([&] {
    for (size_t p = 10; p < 4000; p += 6) t.Write(p);
  });
  std::thread b([&] {
    for (size_t p = 13; p < 4000; p += 6) t.Write(p);
  });
  a.join();
  b.join();
  CHECK(Collect(t).pages == expected);

  // A writer writes each of 8000 pages once (in a scattered order) while this thread collects in a loop: the union
  // of what the collects report must be exactly the pages written (no write lost, nothing else reported). A page
  // may be reported twice for one write: a scan that meets the fault half-done (the kernel's mark removed, the
  // page not yet in place) reports it and marks it again, and the retried write is reported next time.
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (size_t i = 0; i < 8000; ++i) t.Write((i * 7919) % 8000 + 8000);
    done.store(true, std::memory_order_release);
  });
  std::set<size_t> seen;
  size_t reported = 0, collects = 0;
  for (bool last = false; !last;) {
    last = done.load(std::memory_order_acquire);  // one more collect after the writer finished
    Collected c = Collect(t);
    reported += c.pages.size();
    seen.insert(c.pages.begin(), c.pages.end());
    ++collects;
  }
  writer.join();
  CHECK(seen.size() == 8000);
  CHECK(*seen.begin() == 8000);
  CHECK(*seen.rbegin() == 15999);
  CHECK(reported >= 8000);
  std::fprintf(stderr, "dirty_test: %zu collects while a thread wrote 8000 pages: %zu reports\n", collects,
               reported);
}

TEST_CASE("a scan whose output buffer fills resumes where the kernel stopped, runs crossing the boundary whole",
          "[dirty]") {
  if (Unavailable()) return;
  Tracked t;
  REQUIRE(dirty::Protect(t.lo(), t.hi()) == 0);
  for (int capacity : {1, 4, 0}) {  // 0: the default, kScanRegions
    dirty::SetScanRegionsForTesting(capacity);
    std::vector<std::pair<size_t, size_t>> want;
    // 10 isolated pages, a run of 3000 pages (more than 512: longer than any page count a buffer holds in regions),
    // isolated pages again, and 600 isolated pages (more runs than the default buffer holds).
    for (size_t p = 0; p < 20; p += 2) want.emplace_back(p, p + 1);
    want.emplace_back(100, 3100);
    want.emplace_back(3101 + 1, 3101 + 2);
    for (size_t i = 0; i < 600; ++i) want.emplace_back(5000 + 2 * i, 5000 + 2 * i + 1);
    for (auto [first, end] : want) {
      for (size_t p = first; p < end; ++p) t.Write(p);
    }
    dirty::CollectStats stats;
    Collected c = Collect(t, &stats);
    CHECK(c.runs == want);
    const int cap = capacity == 0 ? dirty::kScanRegions : capacity;
    // One call per aligned MiB of the mapping (the re-protecting scan's chunks), and with a small buffer one more
    // per time it filled: resumes, not chunks, are what the small capacities must show.
    const uint64_t chunks = (t.hi() - (t.lo() & ~(dirty::kProtectChunkBytes - 1)) + dirty::kProtectChunkBytes - 1) /
                            dirty::kProtectChunkBytes;
    CHECK(stats.scans >= chunks);
    CHECK(stats.scans >= (want.size() + cap - 1) / cap);  // capacities 1 and 4: more than the chunks (65 at most)
    if (cap == 1) CHECK(stats.scans > want.size());       // a call per run at least: each run after a resume
    CHECK(Collect(t).pages.empty());  // every page reported was re-protected, across all the calls
  }
  dirty::SetScanRegionsForTesting(0);
}

TEST_CASE("an arena-like reservation: committed later, protected in part, dropped and recommitted", "[dirty]") {
  if (Unavailable()) return;
  const size_t bytes = kMappingBytes;
  char *base = static_cast<char *>(os::Reserve(bytes, bytes));
  REQUIRE(base != nullptr);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(base), hi = lo + bytes;
  REQUIRE(dirty::Register(lo, hi) == 0);  // PROT_NONE address space may be registered
  const size_t mib = 1u << 20, per_mib = mib / Page();
  REQUIRE(os::Commit(base, mib));
  for (size_t i = 0; i < per_mib; i += 2) base[i * Page()] = 1;
  REQUIRE(dirty::Protect(lo, lo + mib) == 0);  // only the committed part
  base[3 * Page()] = 2;
  REQUIRE(os::Commit(base + mib, mib));  // freshly committed after protection
  base[mib + 5 * Page()] = 2;
  REQUIRE(os::Release(base + 2 * Page(), Page()));  // the scavenger drops a page

  // Written: pages 3 and per_mib + 5. May also be reported: the dropped page 2, and every page never protected:
  // the second MiB, committed after protection, and the reservation beyond it (the kernel reports a page as not
  // written only while it holds a mark for it; Linux 6.18 reports all of them). Not the protected, unwritten pages.
  Collected c;
  c.base = lo;
  REQUIRE(dirty::CollectDirty(lo, hi, Visit, &c) == 0);
  CHECK(c.pages.count(3) == 1);
  CHECK(c.pages.count(per_mib + 5) == 1);
  size_t extra = 0;
  for (size_t p : c.pages) {
    if (p == 3 || p == per_mib + 5) continue;
    ++extra;
    CHECK((p == 2 || p >= per_mib));
  }
  std::fprintf(stderr, "dirty_test: %zu pages dropped or never protected reported as well\n", extra);
  // That collect marked every page it reported: from now on the arena's committed part is exact.
  c.pages.clear();
  REQUIRE(dirty::CollectDirty(lo, hi, Visit, &c) == 0);
  CHECK(c.pages.empty());
  base[2 * Page()] = 4;
  base[mib + 7 * Page()] = 4;
  base[mib + 8 * Page()] = 4;
  REQUIRE(dirty::CollectDirty(lo, hi, Visit, &c) == 0);
  CHECK(c.pages == std::set<size_t>{2, per_mib + 7, per_mib + 8});
  REQUIRE(dirty::Unregister(lo, hi) == 0);
  os::Unreserve(base, bytes);
}

TEST_CASE("unregister: writes stop being tracked, the range can be registered again", "[dirty]") {
  if (Unavailable()) return;
  int before = dirty::RegisteredRanges();
  char *base = static_cast<char *>(os::MapSparse(kMappingBytes));
  REQUIRE(base != nullptr);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(base), hi = lo + kMappingBytes;
  REQUIRE(dirty::Register(lo, hi) == 0);
  CHECK(dirty::RegisteredRanges() == before + 1);
  REQUIRE(dirty::ProtectAll() == 0);
  base[0] = 1;
  REQUIRE(dirty::Unregister(lo, hi) == 0);
  CHECK(dirty::RegisteredRanges() == before);
  for (size_t p = 0; p < 64; ++p) base[p * Page()] = 2;  // no longer protected: plain writes
  REQUIRE(dirty::Register(lo, hi) == 0);
  REQUIRE(dirty::Protect(lo, hi) == 0);
  Collected c;
  c.base = lo;
  REQUIRE(dirty::CollectDirty(lo, hi, Visit, &c) == 0);
  CHECK(c.pages.empty());
  base[9 * Page()] = 3;
  REQUIRE(dirty::CollectDirty(lo, hi, Visit, &c) == 0);
  CHECK(c.pages == std::set<size_t>{9});
  REQUIRE(dirty::Unregister(lo, hi) == 0);
  os::Unreserve(base, kMappingBytes);
}

TEST_CASE("a fork child does not use the parent's tracker; the parent's keeps working", "[dirty][fork]") {
  if (Unavailable()) return;
  Tracked t;
  REQUIRE(dirty::Protect(t.lo(), t.hi()) == 0);
  t.Write(3);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // No Catch2 in the child: the exit status says what failed.
    const dirty::Status &s = dirty::Detect();
    if (s.available) _exit(10);
    if (std::strstr(s.reason, "fork child") == nullptr) _exit(11);
    if (dirty::Register(t.lo(), t.hi()) != ENOTSUP) _exit(12);
    if (dirty::ProtectAll() != ENOTSUP) _exit(13);
    if (dirty::RegisteredRanges() != 0) _exit(14);
    t.Write(4);  // the child's copy: no fault handling needed, no effect on the parent's tracking
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  t.Write(5);
  CHECK(Collect(t).pages == std::set<size_t>{3, 5});  // the child's scan attempts re-protected nothing here
  CHECK(dirty::Detect().available);
}
