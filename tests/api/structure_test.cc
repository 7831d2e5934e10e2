// tests/api/structure_test.cc — a large linked structure survives heavy churn and many forced collections.
// Public API only.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include "common/structures.h"
#include "common/test_util.h"

using namespace pgc_test;

TEST_CASE("a 200k-node tree and a 50k-node list survive churn and collections intact", "[api][survive]") {
  Forest forest(/*seed=*/42, /*tree_nodes=*/200000, /*list_nodes=*/50000);
  REQUIRE(forest.Verify());
  const uint64_t forced_before = Stats().num_forced_gc;

  Rng rng(7);
  const int rounds = 12;
  bool mutations_ok = true;
  int rounds_verified = 0;
  for (int round = 0; round < rounds; ++round) {
    MakeGarbage(rng, 32 * kMiB);        // mixed sizes 16 B .. 64 KiB
    for (int i = 0; i < 200; ++i) mutations_ok = forest.Mutate() && mutations_ok;
    pgc_collect();
    MakeGarbage(rng, 8 * kMiB, 16, 256);  // many small objects reuse freed slots of the node size classes
    if (forest.Verify()) ++rounds_verified;
  }
  CHECK(mutations_ok);
  CHECK(rounds_verified == rounds);
  pgc_collect();
  REQUIRE(forest.Verify());
  CHECK(Stats().num_forced_gc - forced_before >= static_cast<uint64_t>(rounds));
}

TEST_CASE("a structure reachable only from a global survives", "[api][survive][roots]") {
  // The global holds the only pointer to the head; the list is built in a noinline helper.
  struct Holder {
    static PGC_TEST_NOINLINE void Build(Node *volatile *out, size_t n) {
      Node *head = nullptr;
      for (size_t i = 0; i < n; ++i) {
        Node *node = NewNode(Mix(i + 1) | 1);
        node->a = head;
        head = node;
      }
      *out = head;
    }
    static PGC_TEST_NOINLINE bool Check(Node *head, size_t n) {
      size_t count = 0;
      for (Node *p = head; p != nullptr; p = p->a) {
        if (!NodeIntact(p) || p->key != (Mix(n - count) | 1)) return false;
        ++count;
      }
      return count == n;
    }
  };
  static Node *volatile g_head = nullptr;
  const size_t n = 20000;
  Holder::Build(&g_head, n);
  Rng rng(11);
  for (int i = 0; i < 4; ++i) {
    ScrubStack();
    MakeGarbage(rng, 16 * kMiB);
    pgc_collect();
  }
  CHECK(Holder::Check(g_head, n));
  g_head = nullptr;
}
