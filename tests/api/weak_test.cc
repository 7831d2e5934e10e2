// tests/api/weak_test.cc — weak links (pgc_register_weak_link, pgc_weak_get, pacegc::weak<T>), public API only.
//
// "X died" is observed through the link reading NULL after collections with a scrubbed stack (test_util.h); the
// objects are made in noinline helpers that return no pointer.
#include <pacegc/pacegc.h>
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "common/test_util.h"

using namespace pgc_test;

namespace {

void *g_link = nullptr;  // a weak link in data/bss
std::atomic<int> g_finalized{0};
std::atomic<int> g_link_null_in_finalizer{0};

struct Payload {
  uint64_t key;
  unsigned char bytes[48];
};

PGC_TEST_NOINLINE void RegisterFresh(void **link, uint64_t key) {
  auto *p = static_cast<Payload *>(pgc_malloc(sizeof(Payload)));
  REQUIRE(p != nullptr);
  p->key = key;
  FillPattern(p->bytes, sizeof(p->bytes), key);
  REQUIRE(pgc_register_weak_link(link, p) == 0);
}

void CheckFinalizer(void *, void *link) {
  g_finalized.fetch_add(1);
  if (pgc_weak_get(static_cast<void **>(link)) == nullptr) g_link_null_in_finalizer.fetch_add(1);
}

PGC_TEST_NOINLINE void RegisterFreshWithFinalizer(void **link) {
  void *p = pgc_malloc(64);
  REQUIRE(p != nullptr);
  REQUIRE(pgc_register_weak_link(link, p) == 0);
  pgc_register_finalizer(p, CheckFinalizer, link);
}

struct Holder {
  void *link;    // a weak link inside a collected object
  void *strong;  // keeps nothing in particular: the object is garbage as a whole
};

PGC_TEST_NOINLINE void MakeHolderLinkingTo(void *target) {
  auto *h = static_cast<Holder *>(pgc_malloc(sizeof(Holder)));
  REQUIRE(h != nullptr);
  REQUIRE(pgc_register_weak_link(&h->link, target) == 0);
}

}  // namespace

// Reads the link in a frame of its own, so no copy of the object's address stays in the test's frame.
PGC_TEST_NOINLINE bool LinkReadsKey(void **link, uint64_t key, bool *hidden) {
  auto *p = static_cast<Payload *>(pgc_weak_get(link));
  *hidden = p != nullptr && reinterpret_cast<uintptr_t>(*link) != reinterpret_cast<uintptr_t>(p);
  return p != nullptr && p->key == key && CheckPattern(p->bytes, sizeof(p->bytes), key);
}

TEST_CASE("a weak link does not keep its object alive and reads NULL once the object is collected",
          "[api][weak]") {
  RegisterFresh(&g_link, 42);
  bool hidden = false;
  CHECK(LinkReadsKey(&g_link, 42, &hidden));
  CHECK(hidden);  // what the link's word holds is not the address
  CollectN(4);
  CHECK(pgc_weak_get(&g_link) == nullptr);
  CHECK(g_link == nullptr);  // cleared, and no longer registered
  CHECK(pgc_unregister_weak_link(&g_link) == ENOENT);
}

TEST_CASE("a weak link to a reachable object keeps returning it across collections", "[api][weak]") {
  void *link = nullptr;  // on the stack
  auto *strong = static_cast<Payload *>(pgc_malloc(sizeof(Payload)));
  REQUIRE(strong != nullptr);
  strong->key = 7;
  FillPattern(strong->bytes, sizeof(strong->bytes), 7);
  REQUIRE(pgc_register_weak_link(&link, strong) == 0);
  CollectN(3);
  CHECK(pgc_weak_get(&link) == strong);
  CHECK(CheckPattern(strong->bytes, sizeof(strong->bytes), 7));
  CHECK(pgc_unregister_weak_link(&link) == 0);
  CHECK(pgc_unregister_weak_link(&link) == ENOENT);
  pgc_keep_alive(strong);
}

TEST_CASE("a weak link is cleared before its object's finalizer runs", "[api][weak][finalizer]") {
  static void *link = nullptr;
  g_finalized = 0;
  g_link_null_in_finalizer = 0;
  RegisterFreshWithFinalizer(&link);
  for (int i = 0; i < 6 && g_finalized.load() == 0; ++i) CollectN(1);
  REQUIRE(g_finalized.load() == 1);
  CHECK(g_link_null_in_finalizer.load() == 1);
}

TEST_CASE("pgc_free clears the links to the object at once", "[api][weak][free]") {
  void *link = nullptr;
  void *p = pgc_malloc(32);
  REQUIRE(p != nullptr);
  REQUIRE(pgc_register_weak_link(&link, p) == 0);
  pgc_free(p);
  CHECK(pgc_weak_get(&link) == nullptr);
  CHECK(pgc_unregister_weak_link(&link) == ENOENT);
}

TEST_CASE("a weak link inside a collected object dies with it; its memory is not written afterwards",
          "[api][weak]") {
  void *target = pgc_malloc(16);
  REQUIRE(target != nullptr);
  for (int i = 0; i < 100; ++i) MakeHolderLinkingTo(target);
  CollectN(3);  // the holders die; the target lives (held here)
  // Reuse the holders' memory: fresh objects must read as zero (a stale link clearing would not write here now,
  // and a write after reuse would show up as a non-zero word at the next collection).
  constexpr int kFresh = 1000;
  auto **fresh = static_cast<Holder **>(pgc_malloc(sizeof(Holder *) * kFresh));  // scanned: keeps them alive
  REQUIRE(fresh != nullptr);
  for (int i = 0; i < kFresh; ++i) {
    auto *h = static_cast<Holder *>(pgc_malloc(sizeof(Holder)));
    REQUIRE(h != nullptr);
    h->link = reinterpret_cast<void *>(uintptr_t{0x1234});
    fresh[i] = h;
  }
  pgc_free(target);  // would clear every link still registered to it: writes into the holders if they were kept
  CollectN(2);
  int damaged = 0;
  for (int i = 0; i < kFresh; ++i) damaged += fresh[i]->link != reinterpret_cast<void *>(uintptr_t{0x1234});
  CHECK(damaged == 0);
  pgc_keep_alive(fresh);
}

TEST_CASE("pgc_weak_get from several threads while others collect returns live objects or NULL", "[api][weak]") {
  constexpr int kLinks = 64;
  static void *links[kLinks];
  // Only the even links' objects are held, through this scanned block (its address is on this stack).
  void **held = static_cast<void **>(pgc_malloc(sizeof(void *) * kLinks));
  REQUIRE(held != nullptr);
  for (int i = 0; i < kLinks; ++i) {
    auto *p = static_cast<Payload *>(pgc_malloc(sizeof(Payload)));
    REQUIRE(p != nullptr);
    p->key = static_cast<uint64_t>(i) + 1;
    FillPattern(p->bytes, sizeof(p->bytes), p->key);
    REQUIRE(pgc_register_weak_link(&links[i], p) == 0);
    if (i % 2 == 0) held[i] = p;
  }
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < kLinks; ++i) {
          auto *p = static_cast<Payload *>(pgc_weak_get(&links[i]));
          if (p != nullptr && (p->key != static_cast<uint64_t>(i) + 1 ||
                               !CheckPattern(p->bytes, sizeof(p->bytes), p->key))) {
            bad.fetch_add(1);
          }
          if (p == nullptr && i % 2 == 0) bad.fetch_add(1);  // held objects never lose their link
          reads.fetch_add(1, std::memory_order_relaxed);
        }
        Rng rng(reads.load());
        MakeGarbage(rng, 64 * kKiB);
      }
    });
  }
  for (int i = 0; i < 30; ++i) pgc_collect();
  stop = true;
  for (auto &t : readers) t.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
  for (int i = 0; i < kLinks; i += 2) CHECK(pgc_weak_get(&links[i]) == held[i]);
  for (int i = 0; i < kLinks; ++i) pgc_unregister_weak_link(&links[i]);
  pgc_keep_alive(held);
}

TEST_CASE("pacegc::weak<T>: lock() while alive, nullptr after the object is collected; copies are independent",
          "[api][weak][cpp]") {
  struct Node {
    int value;
  };
  auto *n = pacegc::make<Node>(Node{5});
  pacegc::weak<Node> w(n);
  pacegc::weak<Node> copy = w;
  CHECK(w.lock() == n);
  CHECK(copy.lock() == n);
  copy.reset();
  CHECK(copy.expired());
  CHECK(w.lock() == n);
  pgc_free(n);
  CHECK(w.expired());
}
