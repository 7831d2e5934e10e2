// tests/api/cpp_api_test.cc — the C++ API of pacegc.hpp: make / make_array (destructors as finalizers, exactly
// once; atomic memory for pointer-free types), pacegc::allocator in standard containers, ThreadScope, stats(), and
// std::bad_alloc on failure. Public API only.
#include <pacegc/pacegc.hpp>

#include <catch2/catch.hpp>

#include <cerrno>

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/structures.h"
#include "common/test_util.h"

using namespace pgc_test;

namespace {

// One log per test case: objects of an earlier test that die late must not count for a later one.
FinalizerLog g_dtors;         // Tracked (ids 0..99 from make<>, kMaxIds-1 from make_array's default constructor)
FinalizerLog g_throw_dtors;   // ThrowsInCtor
FinalizerLog g_opaque_log;    // targets held in pointer-free objects
std::atomic<int> g_ctors{0};
std::atomic<int> g_damaged{0};

struct Tracked {
  uint64_t id;
  uint64_t words[6];
  Tracked() : Tracked(FinalizerLog::kMaxIds - 1) {}
  explicit Tracked(uint64_t i) : id(i) {
    for (int k = 0; k < 6; ++k) words[k] = Mix(id * 8 + k);
    g_ctors.fetch_add(1);
  }
  ~Tracked() {
    for (int k = 0; k < 6; ++k) {
      if (words[k] != Mix(id * 8 + k)) g_damaged.fetch_add(1);
    }
    g_dtors.Hit(id);
  }
  bool Intact() const {
    for (int k = 0; k < 6; ++k) {
      if (words[k] != Mix(id * 8 + k)) return false;
    }
    return true;
  }
};

PGC_TEST_NOINLINE void MakeTracked(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    Tracked *t = pacegc::make<Tracked>(i);
    REQUIRE(t->id == i);
  }
}

}  // namespace

TEST_CASE("make<T> runs a non-trivial destructor exactly once as a finalizer", "[api][cpp]") {
  g_dtors.Reset();
  g_damaged = 0;
  const size_t n = 100;
  MakeTracked(n);
  bool all = CollectUntil([&] { return g_dtors.Ran(n) >= n; });
  CollectN(2);
  int max_count = 0;
  size_t ran = g_dtors.Ran(n, &max_count);
  INFO("destroyed " << ran << " of " << n);
  CHECK((all || ran >= n - 2));
  CHECK(max_count == 1);
  CHECK(g_damaged.load() == 0);
}

namespace {

struct ThrowsInCtor {
  uint64_t x = 0;
  explicit ThrowsInCtor(int) { throw std::runtime_error("ctor"); }
  ~ThrowsInCtor() { g_throw_dtors.Hit(0); }
};

struct Point {
  int x, y;
  Point(int a, int b) : x(a), y(b) {}
};

}  // namespace

TEST_CASE("make<T> constructs with arguments; a throwing constructor propagates and registers nothing",
          "[api][cpp]") {
  g_throw_dtors.Reset();
  Point *p = pacegc::make<Point>(3, 4);
  REQUIRE(p != nullptr);
  CHECK(p->x == 3);
  CHECK(p->y == 4);
  CHECK((reinterpret_cast<uintptr_t>(p) & 15) == 0);
  int *i = pacegc::make<int>(42);
  CHECK(*i == 42);
  CHECK_THROWS_AS(pacegc::make<ThrowsInCtor>(1), std::runtime_error);
  CollectN(3);
  CHECK(g_throw_dtors.Count(0) == 0);
  CHECK(p->x == 3);
}

namespace {

Tracked *volatile g_array_elems = nullptr;

PGC_TEST_NOINLINE void MakeTrackedArray(size_t n, bool keep) {
  Tracked *elems = pacegc::make_array<Tracked>(n);  // an interior pointer (after the hidden count)
  if (keep) g_array_elems = elems;
}

// Reads the array in its own frame, so the test's frame keeps no copy of the pointer (the array must die later).
PGC_TEST_NOINLINE bool TrackedArrayIntact(size_t n, uint64_t id) {
  bool intact = true;
  for (size_t k = 0; k < n; ++k) intact = intact && g_array_elems[k].Intact() && g_array_elems[k].id == id;
  return intact;
}

}  // namespace

TEST_CASE("make_array of a non-trivial type: value-initialized, kept alive by the returned interior pointer, "
          "every element destroyed exactly once",
          "[api][cpp]") {
  g_dtors.Reset();
  g_damaged = 0;
  const size_t n = 10;
  const uint64_t last = FinalizerLog::kMaxIds - 1;  // the default constructor's id
  const int ctors_before = g_ctors.load();
  MakeTrackedArray(n, /*keep=*/true);
  CHECK(g_ctors.load() - ctors_before == static_cast<int>(n));
  Rng rng(3);
  for (int r = 0; r < 3; ++r) {
    MakeGarbage(rng, 8 * kMiB);
    CollectN(1);
  }
  CHECK(g_dtors.Count(last) == 0);
  CHECK(TrackedArrayIntact(n, last));
  g_array_elems = nullptr;
  bool done = CollectUntil([&] { return g_dtors.Count(last) >= static_cast<int>(n); });
  CollectN(2);
  CHECK(done);
  CHECK(g_dtors.Count(last) == static_cast<int>(n));
  CHECK(g_damaged.load() == 0);
}

TEST_CASE("make_array of trivial types is value-initialized and sized", "[api][cpp]") {
  int *ints = pacegc::make_array<int>(1000);
  double *ds = pacegc::make_array<double>(333);
  Node **ptrs = pacegc::make_array<Node *>(500);
  REQUIRE(ints != nullptr);
  REQUIRE(ds != nullptr);
  REQUIRE(ptrs != nullptr);
  bool zero = true;
  for (int k = 0; k < 1000; ++k) zero = zero && ints[k] == 0;
  for (int k = 0; k < 333; ++k) zero = zero && ds[k] == 0.0;
  for (int k = 0; k < 500; ++k) zero = zero && ptrs[k] == nullptr;
  CHECK(zero);
  for (int k = 0; k < 1000; ++k) ints[k] = k;  // the whole range is writable
  CHECK(ints[999] == 999);
  CHECK(pacegc::make_array<int>(0) != nullptr);
}

namespace {

Node **volatile g_node_array = nullptr;

PGC_TEST_NOINLINE void FillNodeArray(size_t n) {
  Node **arr = pacegc::make_array<Node *>(n);  // pointer elements: scanned memory
  g_node_array = arr;
  for (size_t k = 0; k < n; ++k) arr[k] = NewNode(Mix(k + 77) | 1);
}

}  // namespace

TEST_CASE("make_array<T*> is scanned: its elements keep their targets alive", "[api][cpp]") {
  const size_t n = 5000;
  FillNodeArray(n);
  Rng rng(4);
  for (int r = 0; r < 3; ++r) {
    MakeGarbage(rng, 16 * kMiB, 16, 512);
    CollectN(1);
  }
  bool intact = true;
  for (size_t k = 0; k < n; ++k) intact = intact && NodeIntact(g_node_array[k]) && g_node_array[k]->key == (Mix(k + 77) | 1);
  CHECK(intact);
  g_node_array = nullptr;
}

namespace {

// A user aggregate declared pointer-free: make<> puts it in atomic memory, so the words it holds keep nothing alive.
struct Opaque {
  uintptr_t words[8];
};

}  // namespace

template <>
struct pacegc::is_pointer_free<Opaque> : std::true_type {};

namespace {

Opaque *volatile g_opaque = nullptr;
unsigned long *volatile g_ulongs = nullptr;

void OpaqueTargetFinalizer(void *, void *data) { g_opaque_log.Hit(FinalizerLog::Id(data)); }

PGC_TEST_NOINLINE void MakePointerFreeHolders() {
  Opaque *o = pacegc::make<Opaque>();
  unsigned long *u = pacegc::make_array<unsigned long>(8);
  for (int k = 0; k < 8; ++k) {
    void *a = pgc_malloc(128);
    void *b = pgc_malloc(128);
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    pgc_register_finalizer(a, OpaqueTargetFinalizer, FinalizerLog::Data(k));
    pgc_register_finalizer(b, OpaqueTargetFinalizer, FinalizerLog::Data(8 + k));
    o->words[k] = reinterpret_cast<uintptr_t>(a);
    u[k] = reinterpret_cast<unsigned long>(b);
  }
  g_opaque = o;
  g_ulongs = u;
}

}  // namespace

TEST_CASE("pointer-free types (arithmetic arrays, is_pointer_free specializations) do not keep targets alive",
          "[api][cpp][atomic]") {
  g_opaque_log.Reset();
  MakePointerFreeHolders();
  bool all = CollectUntil([] { return g_opaque_log.Ran(16) >= 16; });
  size_t ran = g_opaque_log.Ran(16);
  INFO("finalized " << ran << " of 16 targets held only in pointer-free objects");
  CHECK((all || ran >= 15));
  CHECK(g_opaque->words[0] != 0);  // the holders themselves are alive and unchanged
  CHECK(g_ulongs[7] != 0);
  g_opaque = nullptr;
  g_ulongs = nullptr;
}

namespace {

using NodeVector = std::vector<Node *, pacegc::allocator<Node *>>;

PGC_TEST_NOINLINE void ChurnCollect(uint64_t seed, int rounds) {
  Rng rng(seed);
  for (int r = 0; r < rounds; ++r) {
    MakeGarbage(rng, 16 * kMiB, 16, 1024);
    ScrubStack();
    pgc_collect();
  }
}

}  // namespace

TEST_CASE("std::vector with pacegc::allocator keeps its elements alive across collections", "[api][cpp][alloc]") {
  NodeVector v;  // the vector object is on this stack; its buffer is collected memory, scanned
  const size_t n = 20000;
  for (size_t k = 0; k < n; ++k) v.push_back(NewNode(Mix(k + 1) | 1));  // growth frees old buffers explicitly
  ChurnCollect(10, 4);
  bool intact = v.size() == n;
  for (size_t k = 0; k < v.size(); ++k) intact = intact && NodeIntact(v[k]) && v[k]->key == (Mix(k + 1) | 1);
  CHECK(intact);

  // Nested: a vector of vectors, all buffers collected memory.
  std::vector<NodeVector, pacegc::allocator<NodeVector>> outer(50);
  for (size_t i = 0; i < outer.size(); ++i) {
    for (size_t k = 0; k < 100; ++k) outer[i].push_back(NewNode(Mix(i * 1000 + k) | 1));
  }
  ChurnCollect(11, 3);
  bool nested = true;
  for (size_t i = 0; i < outer.size(); ++i) {
    nested = nested && outer[i].size() == 100;
    for (size_t k = 0; k < outer[i].size(); ++k) {
      nested = nested && NodeIntact(outer[i][k]) && outer[i][k]->key == (Mix(i * 1000 + k) | 1);
    }
  }
  CHECK(nested);
}

TEST_CASE("std::map, std::list and std::basic_string with pacegc::allocator survive collections",
          "[api][cpp][alloc]") {
  using NodeMap = std::map<int, Node *, std::less<int>, pacegc::allocator<std::pair<const int, Node *>>>;
  using NodeList = std::list<Node *, pacegc::allocator<Node *>>;
  using GcString = std::basic_string<char, std::char_traits<char>, pacegc::allocator<char>>;
  NodeMap m;
  NodeList l;
  std::vector<GcString, pacegc::allocator<GcString>> strings;
  for (int k = 0; k < 5000; ++k) {
    m.emplace(k, NewNode(Mix(static_cast<uint64_t>(k) + 500000) | 1));
    l.push_back(NewNode(Mix(static_cast<uint64_t>(k) + 900000) | 1));
    if (k % 10 == 0) strings.emplace_back(static_cast<size_t>(100 + k % 300), static_cast<char>('a' + k % 26));
  }
  for (int k = 0; k < 5000; k += 2) m.erase(k);  // deallocate through the allocator
  ChurnCollect(12, 4);
  bool map_ok = m.size() == 2500;
  for (const auto &[k, node] : m) map_ok = map_ok && k % 2 == 1 && NodeIntact(node) && node->key == (Mix(static_cast<uint64_t>(k) + 500000) | 1);
  CHECK(map_ok);
  bool list_ok = l.size() == 5000;
  uint64_t k = 0;
  for (Node *node : l) list_ok = list_ok && NodeIntact(node) && node->key == (Mix(k++ + 900000) | 1);
  CHECK(list_ok);
  bool strings_ok = strings.size() == 500;
  for (size_t i = 0; i < strings.size(); ++i) {
    int key = static_cast<int>(i * 10);
    strings_ok = strings_ok && strings[i] == GcString(static_cast<size_t>(100 + key % 300), static_cast<char>('a' + key % 26));
  }
  CHECK(strings_ok);
}

TEST_CASE("ThreadScope registers the thread for its lifetime, counted", "[api][cpp][threads]") {
  uint64_t at_start = 0, outside = 0, first = 0, nested = 0, after_nested = 0, after = 0;
  bool intact = false;
  std::thread t([&] {  // no Catch2 assertions off the main thread: record, check after join
    // A std::thread is registered from its start (pthread_create is interposed); drop that registration so the
    // scope below registers an unregistered thread.
    at_start = pacegc::stats().num_threads;
    pgc_unregister_thread();
    outside = pacegc::stats().num_threads;
    {
      pacegc::ThreadScope scope;
      first = pacegc::stats().num_threads;
      {
        pacegc::ThreadScope again;
        nested = pacegc::stats().num_threads;
      }
      after_nested = pacegc::stats().num_threads;
      Node *volatile n = NewNode(12345);
      pacegc::collect();
      intact = NodeIntact(n);
    }
    after = pacegc::stats().num_threads;
  });
  t.join();
  CHECK(intact);
  CHECK(at_start == outside + 1);
  CHECK(first == outside + 1);
  CHECK(nested == first);
  CHECK(after_nested == first);
  CHECK(after == outside);
}

TEST_CASE("pacegc::stats and the setting wrappers map to the C API", "[api][cpp]") {
  pgc_stats a = pacegc::stats();
  CHECK(a.size == sizeof(pgc_stats));
  CHECK(a.version == PGC_STATS_VERSION);
  pacegc::collect();
  pgc_stats b = pacegc::stats();
  CHECK(b.num_forced_gc == a.num_forced_gc + 1);
  const int old_percent = pacegc::set_gc_percent(150);
  CHECK(pacegc::set_gc_percent(old_percent) == 150);
  const int64_t limit = pacegc::memory_limit();
  CHECK(limit == pgc_set_memory_limit(-1));
  CHECK(pacegc::set_memory_limit(limit) == limit);
}

namespace {

struct Huge {
  unsigned char bytes[size_t{1} << 60];
};

}  // namespace

TEST_CASE("allocation failure throws std::bad_alloc from make, make_array and allocator", "[api][cpp][oom]") {
  CHECK_THROWS_AS(pacegc::make_array<char>(size_t{1} << 60), std::bad_alloc);
  CHECK_THROWS_AS(pacegc::make_array<Node *>(size_t{1} << 58), std::bad_alloc);
  CHECK_THROWS_AS(pacegc::make_array<Tracked>(SIZE_MAX / 8), std::bad_alloc);  // overflow check
  CHECK_THROWS_AS(pacegc::make<Huge>(), std::bad_alloc);
  CHECK_THROWS_AS(pacegc::allocator<int>().allocate(size_t{1} << 58), std::bad_alloc);
  std::vector<int, pacegc::allocator<int>> v;
  CHECK_THROWS_AS(v.reserve(size_t{1} << 58), std::bad_alloc);
  // Still usable afterwards.
  v.assign(100, 7);
  CHECK(v[99] == 7);
}

TEST_CASE("manual_allocator counts a container under the limit and throws bad_alloc", "[api][cpp][manual]") {
  const uint64_t before = pacegc::stats().manual_bytes;
  {
    std::vector<int, pacegc::manual_allocator<int>> v(10000, 3);
    CHECK(v[9999] == 3);
    CHECK(pacegc::stats().manual_bytes >= before + 10000 * sizeof(int));
    CHECK_THROWS_AS(pacegc::manual_allocator<int>().allocate(SIZE_MAX / 2), std::bad_alloc);
  }
  CHECK(pacegc::stats().manual_bytes == before);
}

TEST_CASE("free_os_memory and write_metrics wrap the C API", "[api][cpp]") {
  const uint64_t forced = pacegc::stats().num_forced_gc;
  pacegc::free_os_memory();
  const pgc_stats s = pacegc::stats();
  CHECK(s.num_forced_gc == forced + 1);
  CHECK(s.heap_free_bytes == 0);  // everything free went back to the OS
  CHECK(pacegc::write_metrics(-1, pacegc::metrics_format::json) == EINVAL);
}

namespace {

std::atomic<int> g_named_destroyed{0};

struct Named {
  explicit Named(int i) : name(std::to_string(i + 10)) {}  // short: the small-string buffer, inside the object
  ~Named() { g_named_destroyed.fetch_add(1); }
  std::string name;
};

PGC_TEST_NOINLINE void MakeNamed(int n) {
  for (int i = 0; i < n; ++i) REQUIRE(pacegc::make<Named>(i)->name.size() >= 2);
}

}  // namespace

TEST_CASE("make<T> with a short std::string member is destroyed once unreachable", "[api][cpp][finalizer]") {
  g_named_destroyed = 0;
  const int n = 100;
  MakeNamed(n);
  CHECK(CollectUntil([&] { return g_named_destroyed.load() >= n - 1; }));
  CHECK(g_named_destroyed.load() <= n);
}
