// tests/malloc/drop_in_roots.cc — under the drop-in allocator (linked against pacegc::malloc), a collected object
// whose only pointer lives in malloc'd memory, in a std::vector with the default allocator, in thread-local
// storage, or in an anonymous mapping the program made itself stays alive through many collections; and scanning
// the process's mappings does not keep everything alive: an object nothing points to is still finalized, and its
// weak link cleared (pacegc's own finalizer and weak-link tables are left out of the scan).
//
// Exit 0 when every check holds; one line per failed check on stderr and exit 1 otherwise.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <atomic>
#include <thread>
#include <vector>

#include "pacegc/pacegc.h"
#include "check.h"

namespace {

constexpr int kObjects = 2000;
constexpr size_t kBytes = 48;
std::atomic<int> g_finalized{0};

void CountFinalized(void *, void *) { g_finalized.fetch_add(1); }

// A collected object holding its own index, with a finalizer that counts (so a freed object shows).
void *Tagged(int i) {
  auto *p = static_cast<uint64_t *>(pgc_malloc(kBytes));
  for (size_t w = 0; w < kBytes / 8; ++w) p[w] = 0x5eed000000000000ull + static_cast<uint64_t>(i);
  pgc_register_finalizer(p, CountFinalized, nullptr);
  return p;
}

bool Intact(const void *obj, int i) {
  const auto *p = static_cast<const uint64_t *>(obj);
  for (size_t w = 0; w < kBytes / 8; ++w) {
    if (p[w] != 0x5eed000000000000ull + static_cast<uint64_t>(i)) return false;
  }
  return true;
}

// Short-lived collected garbage, so that collections have something to free and run often.
void Churn() {
  for (int i = 0; i < 200000; ++i) {
    void *volatile junk = pgc_malloc(64);
    (void)junk;
  }
}

thread_local void *t_only_here = nullptr;

// Hides a pointer from the conservative scan of this frame (the test must not pass because a stale copy sits on
// the stack).
uintptr_t Hide(void *p) { return ~reinterpret_cast<uintptr_t>(p); }
void *Unhide(uintptr_t h) { return reinterpret_cast<void *>(~h); }

// Garbage made in a frame of its own (a local of main's frame would keep the last one alive): finalized objects
// nothing points to, one of them with a weak link.
__attribute__((noinline)) void MakeGarbage(void **weak_link) {
  void *doomed = Tagged(-2);
  CHECK(pgc_register_weak_link(weak_link, doomed) == 0);
  for (int i = 0; i < 100; ++i) {
    void *volatile g = Tagged(-3);
    (void)g;
  }
}

__attribute__((noinline)) void ScrubStack() {
  volatile char buf[16384];
  memset(const_cast<char *>(buf), 0, sizeof buf);
}

}  // namespace

int main() {
  // 1. malloc'd array of pointers; 2. std::vector with the default allocator; 3. an anonymous mapping of our own.
  auto **in_malloc = static_cast<void **>(malloc(kObjects * sizeof(void *)));
  auto *in_vector = new std::vector<void *>();
  auto **in_mmap = static_cast<void **>(
      mmap(nullptr, kObjects * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHECK(in_malloc != nullptr && in_mmap != MAP_FAILED);
  // 4. A pointer only in a thread-local variable of a thread that waits.
  std::atomic<int> phase{0};
  std::atomic<uintptr_t> tls_hidden{0};
  std::thread holder([&] {
    t_only_here = Tagged(-1);
    tls_hidden = Hide(t_only_here);
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
    CHECK(Intact(t_only_here, -1));
  });
  while (phase.load() != 1) std::this_thread::yield();

  for (int i = 0; i < kObjects; ++i) {
    in_malloc[i] = Tagged(i);
    in_vector->push_back(Tagged(kObjects + i));
    in_mmap[i] = Tagged(2 * kObjects + i);
  }
  // 5. Garbage: finalized objects nothing points to (their only pointer is overwritten), one with a weak link.
  static void *weak_link = nullptr;
  MakeGarbage(&weak_link);
  ScrubStack();

  pgc_stats before;
  memset(&before, 0, sizeof before);
  before.size = sizeof before;
  pgc_read_stats(&before);
  for (int round = 0; round < 10; ++round) {
    Churn();
    pgc_collect();
  }
  pgc_stats after;
  memset(&after, 0, sizeof after);
  after.size = sizeof after;
  pgc_read_stats(&after);
  CHECK(after.num_gc >= before.num_gc + 10);

  bool intact = true;
  for (int i = 0; i < kObjects; ++i) {
    intact = intact && Intact(in_malloc[i], i) && Intact((*in_vector)[i], kObjects + i) &&
             Intact(in_mmap[i], 2 * kObjects + i);
  }
  CHECK(intact);
  CHECK(Unhide(tls_hidden.load()) != nullptr);
  // Only the garbage was finalized (some perhaps by collections before these): 101 objects, the doomed one and the
  // 100, none of the 6001 held ones.
  CHECK(g_finalized.load() == 101);
  if (g_finalized.load() != 101) {
    fprintf(stderr, "drop_in_roots: %d objects finalized (want 101: the garbage, none of the held ones)\n",
            g_finalized.load());
  }
  CHECK(pgc_weak_get(&weak_link) == nullptr);

  phase = 2;
  holder.join();
  munmap(in_mmap, kObjects * sizeof(void *));
  delete in_vector;
  free(in_malloc);
  if (Failures() == 0) printf("drop_in_roots: all checks passed\n");
  return Failures() == 0 ? 0 : 1;
}
