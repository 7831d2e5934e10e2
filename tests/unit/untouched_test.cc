// Unit tests for gc/untouched: objects on pages the program never wrote are marked without being read (the
// collection faults none of their pages in), and a span written after a cycle is scanned by the next one.
#include <catch2/catch.hpp>

#include <pacegc/pacegc.h>
#include <sys/resource.h>

#include <cstdint>

#include "gc/collector.h"
#include "gc/heap.h"

using namespace pacegc::internal;

namespace {

constexpr int kObjects = 128 * 1024;  // 8 MiB of 64-byte objects: 2,048 OS pages
constexpr size_t kObjectBytes = 64;

uint64_t ThreadMinorFaults() {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<uint64_t>(ru.ru_minflt);
}

size_t UntouchedSpans() {
  LockHeap();
  const size_t n = g_heap.untouched_spans();
  UnlockHeap();
  return n;
}

uint64_t Pattern(int i) { return (static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull) | 1; }  // odd: not a pointer

}  // namespace

TEST_CASE("objects never written stay unread: the collection faults none of their pages in", "[untouched]") {
  pgc_collect();  // the mark stack and the rest of the first cycle's metadata are in place
  auto **holders = static_cast<void **>(pgc_malloc(kObjects * sizeof(void *)));
  REQUIRE(holders != nullptr);
  for (int i = 0; i < kObjects; ++i) holders[i] = pgc_malloc(kObjectBytes);  // never written
  const uint64_t before = ThreadMinorFaults();
  pgc_collect();  // the collection runs on this thread
  const uint64_t faults = ThreadMinorFaults() - before;
  CHECK(UntouchedSpans() > 0);
#if !defined(PACEGC_VERIFY_HEAP)  // the verifier reads every reachable object, which populates their pages
  // Reading the objects would fault 2,048 pages in; the rest of a collection faults far fewer than 512.
  CHECK(faults < 512);
#endif
  (void)faults;

  SECTION("a span written after a cycle is scanned by the next one") {
    // Each never-written object now gets a pointer to a new object holding a pattern; the new objects are reachable
    // only through the formerly untouched ones.
    for (int i = 0; i < kObjects; i += 64) {
      auto *payload = static_cast<uint64_t *>(pgc_malloc(kObjectBytes));
      REQUIRE(payload != nullptr);
      payload[0] = Pattern(i);
      *static_cast<void **>(holders[i]) = payload;
    }
    pgc_collect();
    // Churn: reclaimed payloads would be reused (and zeroed) by these allocations.
    for (int i = 0; i < kObjects; ++i) {
      volatile auto *junk = static_cast<uint64_t *>(pgc_malloc(kObjectBytes));
      junk[0] = 0;
    }
    pgc_collect();
    int bad = 0;
    for (int i = 0; i < kObjects; i += 64) {
      const auto *payload = *static_cast<uint64_t *const *>(holders[i]);
      if (payload == nullptr || payload[0] != Pattern(i)) ++bad;
    }
    CHECK(bad == 0);
  }
  holders[0] = nullptr;
}
