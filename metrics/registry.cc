// metrics/registry.cc — see registry.h.
#include "metrics/registry.h"

#include <cerrno>
#include <new>

#include "base/meta.h"
#include "metrics/log.h"

namespace pacegc::metrics {

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == 0x7f) return false;
  }
  return true;
}

namespace {

// PACEGC_METRICS_LOG at library start-up (before main, like GOGC). Why a constructor in this file: every program
// that links pacegc links this object (the collector records every pause in Registry::Default(), the metrics C
// API uses it), so the logger starts both in a program that only allocates (tests/unit/env_test.cc) and in one
// that only uses metrics functions (tests/metrics/env_test.cc), linked statically or not; a constructor in
// metrics/log.cc would be dropped by the static linker from the first kind, and the collector's constructor is
// not linked into the second. Order relative to the collector's constructor does not matter: both take the
// settings from settings::Get(), which reads the environment once, for whichever runs first.
__attribute__((constructor)) void MetricsLogFromSettingsAtLoad() { StartLoggerFromSettings(); }

}  // namespace

Registry::Registry(const Clock *clock, uint64_t seed) : clock_(clock), start_ns_(clock->NowNs()), seed_state_(seed) {
  internal::meta::Init();  // idempotent; the registry may be used before the collector initialises
}

Registry::~Registry() {
  for (auto &[name, entry] : map_) DeleteMetric(entry.metric);
  for (Metric *m : retired_) DeleteMetric(m);
}

Registry *Registry::Default() {
  // In metadata memory and never destroyed: handles stay valid during exit, and the detached logger thread may
  // still be reading it while static destructors run.
  static Registry *instance = [] () -> Registry * {
    internal::meta::Init();
    void *mem = internal::meta::Malloc(sizeof(Registry));
    if (mem == nullptr) return nullptr;
    MonotonicClock *clock = MonotonicClock::Instance();
    uint64_t seed = static_cast<uint64_t>(clock->NowNs());
    return new (mem) Registry(clock, SplitMix64(&seed));
  }();
  return instance;
}

Metric *Registry::Create(Kind kind) {
  switch (kind) {
    case Kind::kCounter: return NewMetric<Counter>();
    case Kind::kGauge: return NewMetric<Gauge>();
    case Kind::kGaugeFloat: return NewMetric<GaugeFloat>();
    case Kind::kMeter: return NewMetric<Meter>(clock_);
    case Kind::kHistogram: return NewMetric<Histogram>(clock_, SplitMix64(&seed_state_));
    case Kind::kTimer: return NewMetric<Timer>(clock_, SplitMix64(&seed_state_));
  }
  return nullptr;
}

Metric *Registry::GetOrRegister(std::string_view name, Kind kind, int *error) {
  auto fail = [error](int code) -> Metric * {
    if (error != nullptr) *error = code;
    return nullptr;
  };
  if (!ValidName(name)) return fail(EINVAL);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(name);
  if (it != map_.end()) {
    Entry &e = it->second;
    if (e.registered) return e.metric->kind() == kind ? e.metric : fail(EEXIST);
    // Registered before and unregistered since.
    if (e.metric->kind() == kind) {
      e.metric->Reset();
    } else {
      Metric *fresh = Create(kind);
      if (fresh == nullptr) return fail(ENOMEM);
      try {
        retired_.push_back(e.metric);
      } catch (const std::bad_alloc &) {
        DeleteMetric(fresh);
        return fail(ENOMEM);
      }
      e.metric = fresh;
    }
    e.registered = true;
    ++registered_;
    return e.metric;
  }
  Metric *m = Create(kind);
  if (m == nullptr) return fail(ENOMEM);
  try {
    map_.emplace(MetaString(name), Entry{m, true});
  } catch (const std::bad_alloc &) {
    DeleteMetric(m);
    return fail(ENOMEM);
  }
  ++registered_;
  return m;
}

Metric *Registry::Find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(name);
  return it != map_.end() && it->second.registered ? it->second.metric : nullptr;
}

bool Registry::KindOf(std::string_view name, Kind *kind) const {
  Metric *m = Find(name);
  if (m == nullptr) return false;
  *kind = m->kind();
  return true;
}

bool Registry::Unregister(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(name);
  if (it == map_.end() || !it->second.registered) return false;
  it->second.registered = false;
  --registered_;
  return true;
}

void Registry::UnregisterAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto &[name, entry] : map_) entry.registered = false;
  registered_ = 0;
}

size_t Registry::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registered_;
}

size_t Registry::OwnedForTesting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size() + retired_.size();
}

bool Registry::List(MetaVector<Listed> *out) const {
  std::lock_guard<std::mutex> lock(mu_);
  try {
    out->reserve(registered_);
  } catch (const std::bad_alloc &) {
    return false;
  }
  for (const auto &[name, entry] : map_) {
    if (entry.registered) out->push_back(Listed{name.data(), name.size(), entry.metric});  // no reallocation
  }
  return true;
}

}  // namespace pacegc::metrics
