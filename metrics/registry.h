// metrics/registry.h — names → metrics, in the style of go-metrics' StandardRegistry.
//
//   GetCounter(name) … GetTimer(name)   get-or-register: the metric registered under name, created if absent.
//                                       A name registered with another kind is an error (EEXIST): nullptr and a
//                                       code, never a crash, never a second metric.
//   Unregister(name)                    the name stops being listed; see "Lifetime".
//   ForEach(fn)                         every registered metric, in name order (byte-wise).
//
// Names: 1 to kMaxNameBytes bytes, none of them a space, a control character or DEL, so that one log line per
// metric stays unambiguous (Go's runtime/metrics names like "/gc/heap/goal:bytes" fit; so does UTF-8).
//
// Lifetime. A handle returned by a getter stays valid as long as the registry exists (the default registry is
// never destroyed), even after Unregister: go-metrics relies on Go's collector for that, pacegc keeps every metric
// it ever created. Unregister hides the entry; registering the same name again with the same kind brings the same
// metric back, Reset to a fresh state (so old handles feed the new registration); with another kind, the old
// metric is retired (kept, unlisted) and a new one is created. Memory is therefore bounded by the number of
// distinct names ever registered (plus retired kind changes), not by the number of register/unregister calls.
//
// Thread safety: one mutex guards the map. Metrics are updated without it (each has its own synchronisation).
// ForEach copies the list under the lock and calls fn without it, so fn may use the registry.
//
// Memory: the map, the names and the metrics are collector metadata (gc/meta.h).
#ifndef PACEGC_METRICS_REGISTRY_H_
#define PACEGC_METRICS_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string_view>

#include "metrics/clock.h"
#include "metrics/containers.h"
#include "metrics/metric.h"

namespace pacegc::metrics {

inline constexpr size_t kMaxNameBytes = 255;

// True if name follows the naming rule above.
bool ValidName(std::string_view name);

class Registry {
 public:
  // clock must outlive the registry; histograms and timers draw from FastRngs seeded from `seed`, so sampling
  // is reproducible for a given seed.
  explicit Registry(const Clock *clock = MonotonicClock::Instance(), uint64_t seed = 0x5EED0F0ACE6Cull);
  ~Registry();  // frees every metric it created: handles die with the registry
  Registry(const Registry &) = delete;
  Registry &operator=(const Registry &) = delete;

  // The process-wide registry of the C and C++ APIs and of pacegc itself. Created on first use, never destroyed.
  // nullptr only if metadata memory is exhausted on first use.
  static Registry *Default();

  // Get-or-register. On failure: nullptr, and *error (if given) = EINVAL (name breaks the naming rule),
  // EEXIST (registered with another kind) or ENOMEM. Never throws.
  Counter *GetCounter(std::string_view name, int *error = nullptr) { return Get<Counter>(name, error); }
  Gauge *GetGauge(std::string_view name, int *error = nullptr) { return Get<Gauge>(name, error); }
  GaugeFloat *GetGaugeFloat(std::string_view name, int *error = nullptr) { return Get<GaugeFloat>(name, error); }
  Meter *GetMeter(std::string_view name, int *error = nullptr) { return Get<Meter>(name, error); }
  Histogram *GetHistogram(std::string_view name, int *error = nullptr) { return Get<Histogram>(name, error); }
  Timer *GetTimer(std::string_view name, int *error = nullptr) { return Get<Timer>(name, error); }

  // The same for a kind given as a type (T is one of the six metric classes).
  template <typename T>
  T *Get(std::string_view name, int *error = nullptr) {
    return static_cast<T *>(GetOrRegister(name, T::kKind, error));
  }

  // The registered metric of any kind, or nullptr.
  Metric *Find(std::string_view name) const;
  // The kind registered under name, via *kind; false if none.
  bool KindOf(std::string_view name, Kind *kind) const;

  // true if name was registered.
  bool Unregister(std::string_view name);
  void UnregisterAll();
  // Number of registered names.
  size_t Size() const;

  // fn(std::string_view name, Metric &metric) for every registered metric in name order. false (and no call) if
  // the list could not be copied (out of metadata memory).
  template <typename Fn>
  bool ForEach(Fn &&fn) const {
    MetaVector<Listed> list;
    if (!List(&list)) return false;
    for (const Listed &l : list) fn(std::string_view(l.name, l.name_bytes), *l.metric);
    return true;
  }

  const Clock *clock() const { return clock_; }
  // The clock's time when the registry was created (the log's t= origin).
  int64_t start_ns() const { return start_ns_; }

  // For tests: every metric object the registry owns, registered or not.
  size_t OwnedForTesting() const;

 private:
  struct Entry {
    Metric *metric;
    bool registered;
  };
  // Names live in map nodes, which are never erased before the registry dies: Listed may point into them.
  struct Listed {
    const char *name;
    size_t name_bytes;
    Metric *metric;
  };
  using Map = std::map<MetaString, Entry, std::less<>,
                       internal::meta::StlAllocator<std::pair<const MetaString, Entry>>>;

  Metric *GetOrRegister(std::string_view name, Kind kind, int *error);
  Metric *Create(Kind kind);  // mu_ held
  bool List(MetaVector<Listed> *out) const;

  const Clock *clock_;
  const int64_t start_ns_;
  mutable std::mutex mu_;      // guards everything below
  Map map_;                    // every name ever registered; Entry.registered false after Unregister
  MetaVector<Metric *> retired_;  // replaced by a metric of another kind: unlisted, kept for old handles
  uint64_t seed_state_;        // SplitMix64 state: the seed of the next histogram's FastRng
  size_t registered_ = 0;      // entries with registered == true
};

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_REGISTRY_H_
