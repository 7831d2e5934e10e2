// tests/common/structures.h — linked structures with checksums for survival tests: a balanced binary tree and a
// singly linked list of collected nodes, each node carrying an inline payload and (for most) a separate atomic
// "blob", all filled with patterns derived from the node's key. Verify() walks everything and checks node counts,
// key sums and every payload byte, so any reclaimed (zeroed on reuse) or overwritten node is detected.
//
// A Forest holds its roots in its own fields: put it on a registered thread's stack (or anywhere scanned).
// Uses only the public C API. Not thread-safe: one Forest per thread.
#ifndef PACEGC_TESTS_COMMON_STRUCTURES_H_
#define PACEGC_TESTS_COMMON_STRUCTURES_H_

#include <pacegc/pacegc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "common/test_util.h"

namespace pgc_test {

struct Node {
  Node *a;  // tree: left child; list: next
  Node *b;  // tree: right child; list: unused
  uint64_t key;
  uint64_t check;     // Mix(key ^ extra ^ blob_len << 32)
  uint8_t *blob;      // atomic object of blob_len bytes with PatternByte(key, i), or null
  uint32_t blob_len;
  uint32_t extra;     // inline payload bytes after the struct, PatternByte(~key, i)
  uint8_t *Inline() { return reinterpret_cast<uint8_t *>(this + 1); }
  const uint8_t *Inline() const { return reinterpret_cast<const uint8_t *>(this + 1); }
};

[[noreturn]] inline void DieOutOfMemory(size_t n) {
  std::fprintf(stderr, "pacegc test: allocation of %zu bytes failed unexpectedly\n", n);
  std::abort();
}

// A node for key (key != 0). Node sizes vary from 48 to 144 bytes so several size classes are involved.
inline Node *NewNode(uint64_t key) {
  uint32_t extra = static_cast<uint32_t>((key % 7) * 16);
  auto *n = static_cast<Node *>(pgc_malloc(sizeof(Node) + extra));
  if (n == nullptr) DieOutOfMemory(sizeof(Node) + extra);
  n->key = key;
  n->extra = extra;
  FillPattern(n->Inline(), extra, ~key);
  uint32_t blob_len = 0;
  if (key % 3 != 0) {
    blob_len = 8 + static_cast<uint32_t>((key >> 8) % 120);
    auto *blob = static_cast<uint8_t *>(pgc_malloc_atomic(blob_len));  // may collect: n is on our stack
    if (blob == nullptr) DieOutOfMemory(blob_len);
    FillPattern(blob, blob_len, key);
    n->blob = blob;
  }
  n->blob_len = blob_len;
  n->check = Mix(key ^ extra ^ (static_cast<uint64_t>(blob_len) << 32));
  return n;
}

inline bool NodeIntact(const Node *n) {
  if (n->key == 0) return false;
  if (n->check != Mix(n->key ^ n->extra ^ (static_cast<uint64_t>(n->blob_len) << 32))) return false;
  if (n->extra != (n->key % 7) * 16) return false;
  if (!CheckPattern(n->Inline(), n->extra, ~n->key)) return false;
  if ((n->blob == nullptr) != (n->blob_len == 0)) return false;
  if (n->blob != nullptr && !CheckPattern(n->blob, n->blob_len, n->key)) return false;
  return true;
}

// A balanced tree of exactly n nodes with keys from rng; adds the keys to *key_sum.
inline Node *BuildTree(size_t n, Rng &rng, uint64_t *key_sum) {
  if (n == 0) return nullptr;
  Node *t = NewNode(rng.Next() | 1);
  *key_sum += t->key;
  size_t left = (n - 1) / 2;
  t->a = BuildTree(left, rng, key_sum);
  t->b = BuildTree(n - 1 - left, rng, key_sum);
  return t;
}

// Counts and sums the subtree; false if any node is damaged.
inline bool WalkTree(const Node *t, size_t *count, uint64_t *key_sum) {
  if (t == nullptr) return true;
  if (!NodeIntact(t)) return false;
  ++*count;
  *key_sum += t->key;
  return WalkTree(t->a, count, key_sum) && WalkTree(t->b, count, key_sum);
}

class Forest {
 public:
  Forest(uint64_t seed, size_t tree_nodes, size_t list_nodes) : rng_(seed) {
    tree_ = BuildTree(tree_nodes, rng_, &tree_sum_);
    tree_count_ = tree_nodes;
    for (size_t i = 0; i < list_nodes; ++i) {
      Node *n = NewNode(rng_.Next() | 1);
      n->a = list_;
      list_ = n;
      list_sum_ += n->key;
    }
    list_count_ = list_nodes;
    int d = 0;
    while ((size_t{1} << (d + 1)) <= tree_nodes) ++d;
    tree_depth_ = d;
  }
  Forest(const Forest &) = delete;
  Forest &operator=(const Forest &) = delete;

  // Replaces a random subtree (up to ~2^8 nodes) by a freshly built one of the same size, or a random list node by
  // a fresh node. Returns false if a node seen on the way was damaged.
  bool Mutate() {
    if (list_count_ > 0 && rng_.Below(4) == 0) return MutateList();
    return MutateTree();
  }

  // Full verification: every node intact, counts and key sums as expected.
  bool Verify() const {
    size_t count = 0;
    uint64_t sum = 0;
    if (!WalkTree(tree_, &count, &sum) || count != tree_count_ || sum != tree_sum_) return false;
    count = 0;
    sum = 0;
    for (const Node *n = list_; n != nullptr; n = n->a) {
      if (!NodeIntact(n) || n->b != nullptr) return false;
      ++count;
      sum += n->key;
      if (count > list_count_) return false;
    }
    return count == list_count_ && sum == list_sum_;
  }

  size_t node_count() const { return tree_count_ + list_count_; }

 private:
  bool MutateTree() {
    if (tree_ == nullptr) return true;
    int lowest = tree_depth_ > 8 ? tree_depth_ - 8 : 0;
    int steps = lowest + static_cast<int>(rng_.Below(static_cast<uint64_t>(tree_depth_ - lowest) + 1));
    Node **slot = &tree_;
    for (int i = 0; i < steps; ++i) {
      Node *n = *slot;
      Node **next = (rng_.Next() & 1) ? &n->a : &n->b;
      if (*next == nullptr) break;
      slot = next;
    }
    size_t count = 0;
    uint64_t old_sum = 0;
    if (!WalkTree(*slot, &count, &old_sum)) return false;
    uint64_t new_sum = 0;
    Node *fresh = BuildTree(count, rng_, &new_sum);  // the old subtree stays reachable meanwhile
    *slot = fresh;
    tree_sum_ += new_sum - old_sum;
    return true;
  }

  bool MutateList() {
    uint64_t index = rng_.Below(list_count_);
    Node **slot = &list_;
    for (uint64_t i = 0; i < index; ++i) slot = &(*slot)->a;
    Node *old = *slot;
    if (!NodeIntact(old)) return false;
    Node *fresh = NewNode(rng_.Next() | 1);
    fresh->a = old->a;
    *slot = fresh;
    list_sum_ += fresh->key - old->key;
    return true;
  }

  Rng rng_;
  Node *tree_ = nullptr;
  Node *list_ = nullptr;
  size_t tree_count_ = 0;
  size_t list_count_ = 0;
  uint64_t tree_sum_ = 0;
  uint64_t list_sum_ = 0;
  int tree_depth_ = 0;
};

}  // namespace pgc_test

#endif  // PACEGC_TESTS_COMMON_STRUCTURES_H_
