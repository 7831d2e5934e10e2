// metrics/registry: get-or-register, kinds, names, order, unregister and re-register, memory in metadata.
#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <vector>

#include "base/meta.h"
#include "metrics/clock.h"
#include "metrics/registry.h"

using namespace pacegc::metrics;

TEST_CASE("get-or-register returns the same metric for the same name and kind", "[metrics][registry]") {
  ManualClock clock;
  Registry r(&clock, 1);
  Counter *a = r.GetCounter("requests");
  REQUIRE(a != nullptr);
  a->Inc(3);
  CHECK(r.GetCounter("requests") == a);
  CHECK(r.GetCounter("requests")->Count() == 3);
  CHECK(r.Size() == 1);
  CHECK(r.Find("requests") == a);
  CHECK(r.Find("other") == nullptr);
}

TEST_CASE("a name registered with another kind is an error, and the first metric is untouched",
          "[metrics][registry]") {
  ManualClock clock;
  Registry r(&clock, 1);
  Meter *m = r.GetMeter("allocs");
  REQUIRE(m != nullptr);
  m->Mark(2);
  int error = 0;
  CHECK(r.GetCounter("allocs", &error) == nullptr);
  CHECK(error == EEXIST);
  error = 0;
  CHECK(r.GetHistogram("allocs", &error) == nullptr);
  CHECK(error == EEXIST);
  CHECK(r.GetTimer("allocs") == nullptr);  // error pointer optional
  Kind kind;
  REQUIRE(r.KindOf("allocs", &kind));
  CHECK(kind == Kind::kMeter);
  CHECK(r.GetMeter("allocs") == m);
  CHECK(m->Count() == 2);
  CHECK(r.Size() == 1);
}

TEST_CASE("names: 1 to 255 bytes without spaces or control characters", "[metrics][registry]") {
  ManualClock clock;
  Registry r(&clock, 1);
  for (std::string bad : {std::string(""), std::string("two words"), std::string("tab\there"),
                          std::string("new\nline"), std::string("del\x7f"), std::string(256, 'x')}) {
    INFO(bad);
    int error = 0;
    CHECK(r.GetGauge(bad, &error) == nullptr);
    CHECK(error == EINVAL);
  }
  for (std::string good : {std::string("/gc/heap/goal:bytes"), std::string("lat\xC3\xAAncia"),
                           std::string(255, 'y'), std::string("a")}) {
    INFO(good);
    CHECK(r.GetGauge(good) != nullptr);
  }
  CHECK(r.Size() == 4);
}

TEST_CASE("iteration is in byte-wise name order", "[metrics][registry]") {
  ManualClock clock;
  Registry r(&clock, 1);
  r.GetCounter("b");
  r.GetGauge("a");
  r.GetHistogram("c/x");
  r.GetTimer("A");
  r.GetMeter("a.b");
  std::vector<std::string> names;
  std::vector<Kind> kinds;
  REQUIRE(r.ForEach([&](std::string_view name, Metric &m) {
    names.emplace_back(name);
    kinds.push_back(m.kind());
  }));
  CHECK(names == std::vector<std::string>{"A", "a", "a.b", "b", "c/x"});
  CHECK(kinds == std::vector<Kind>{Kind::kTimer, Kind::kGauge, Kind::kMeter, Kind::kCounter, Kind::kHistogram});
}

TEST_CASE("the iteration callback may use the registry", "[metrics][registry]") {
  ManualClock clock;
  Registry r(&clock, 1);
  r.GetCounter("x");
  r.GetCounter("y");
  int seen = 0;
  REQUIRE(r.ForEach([&](std::string_view name, Metric &) {
    ++seen;
    r.GetCounter(std::string(name) + ".copy");  // would deadlock if fn ran under the registry lock
  }));
  CHECK(seen == 2);
  CHECK(r.Size() == 4);
}

TEST_CASE("unregister hides a name; handles stay valid; re-registering reuses or retires", "[metrics][registry]") {
  ManualClock clock;
  Registry r(&clock, 1);
  Counter *c = r.GetCounter("jobs");
  c->Inc(5);
  CHECK(r.Unregister("jobs"));
  CHECK_FALSE(r.Unregister("jobs"));
  CHECK(r.Size() == 0);
  CHECK(r.Find("jobs") == nullptr);
  int listed = 0;
  r.ForEach([&](std::string_view, Metric &) { ++listed; });
  CHECK(listed == 0);
  c->Inc(1);  // still valid after unregister

  // Same kind: the same object, reset.
  CHECK(r.GetCounter("jobs") == c);
  CHECK(c->Count() == 0);

  // Another kind after unregister: a new metric; the old handle still works.
  REQUIRE(r.Unregister("jobs"));
  Histogram *h = r.GetHistogram("jobs");
  REQUIRE(h != nullptr);
  CHECK(static_cast<void *>(h) != static_cast<void *>(c));
  c->Inc(2);
  CHECK(c->Count() == 2);
  CHECK(r.OwnedForTesting() == 2);
}

TEST_CASE("register/unregister cycles do not grow the registry", "[metrics][registry]") {
  ManualClock clock;
  Registry r(&clock, 1);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(r.GetTimer("cycle") != nullptr);
    REQUIRE(r.Unregister("cycle"));
  }
  CHECK(r.OwnedForTesting() == 1);
  r.GetCounter("p");
  r.GetCounter("q");
  r.UnregisterAll();
  CHECK(r.Size() == 0);
  CHECK(r.GetCounter("p") != nullptr);
  CHECK(r.Size() == 1);
}

TEST_CASE("registry memory is collector metadata and is returned when the registry dies", "[metrics][registry]") {
  pacegc::internal::meta::Init();
  uint64_t before = pacegc::internal::meta::AllocatedBytes();
  {
    ManualClock clock;
    Registry r(&clock, 1);
    for (int i = 0; i < 8; ++i) {
      std::string name = "h";
      name += std::to_string(i);  // (not "h" + ...: GCC 12 warns falsely, -Wrestrict)
      Histogram *h = r.GetHistogram(name);
      for (int v = 0; v < 2000; ++v) h->Update(v);
    }
    // Eight full reservoirs of 1028 (priority, value) pairs at least.
    CHECK(pacegc::internal::meta::AllocatedBytes() >= before + 8 * 1028 * 16);
  }
  CHECK(pacegc::internal::meta::AllocatedBytes() == before);
}

TEST_CASE("the default registry exists and is one instance", "[metrics][registry]") {
  Registry *d = Registry::Default();
  REQUIRE(d != nullptr);
  CHECK(Registry::Default() == d);
}
