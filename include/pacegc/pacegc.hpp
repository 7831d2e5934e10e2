// pacegc — C++ API over the C API of pacegc.h.
//
//   auto* n = pacegc::make<Node>(1, nullptr);        // collected; ~Node runs as a finalizer if non-trivial
//   double* xs = pacegc::make_array<double>(1000);   // pointer-free element type: atomic (never scanned)
//   std::vector<Node*, pacegc::allocator<Node*>> v;  // the buffer is collected memory, so it is scanned
//   pacegc::ThreadScope scope;                       // registers a thread for its lifetime
//   { pacegc::BlockingRegion b;  epoll_wait(...); }  // never signalled by a collection in the scope
//
// Allocation failure throws std::bad_alloc. Nothing here adds state, except the one std::function held by
// set_event_callback: every other call maps to one C function.
#ifndef PACEGC_PACEGC_HPP
#define PACEGC_PACEGC_HPP

#include <pacegc/pacegc.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

namespace pacegc {

// True for types whose objects can hold no pointer to collected memory; make<T> and allocator<T> put them in
// atomic (never scanned) memory. Specialize it as std::true_type for your own pointer-free aggregates.
template <typename T>
struct is_pointer_free : std::bool_constant<std::is_arithmetic_v<T> || std::is_enum_v<T>> {};
template <typename T>
inline constexpr bool is_pointer_free_v = is_pointer_free<std::remove_cv_t<T>>::value;

namespace detail {
template <typename T>
inline void *allocate_bytes(std::size_t bytes) {
  void *p = is_pointer_free_v<T> ? pgc_malloc_atomic(bytes) : pgc_malloc(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
template <typename T>
void destroy_finalizer(void *obj, void * /*data*/) {
  static_cast<T *>(obj)->~T();
}
constexpr std::size_t array_header_bytes() { return 16; }  // keeps elements 16-byte aligned
template <typename T>
void destroy_array_finalizer(void *obj, void * /*data*/) {
  auto *header = static_cast<std::size_t *>(obj);
  T *elems = reinterpret_cast<T *>(static_cast<char *>(obj) + array_header_bytes());
  for (std::size_t i = *header; i > 0; --i) elems[i - 1].~T();
}
}  // namespace detail

// Constructs a T in collected memory. If T has a non-trivial destructor it is registered as a finalizer and runs
// once after the object becomes unreachable (never during a pause). If the constructor throws, the memory is
// released and the exception propagates.
template <typename T, typename... Args>
T *make(Args &&...args) {
  static_assert(alignof(T) <= 16, "pacegc objects are 16-byte aligned");
  void *mem = detail::allocate_bytes<T>(sizeof(T));
  T *obj;
  try {
    obj = ::new (mem) T(std::forward<Args>(args)...);
  } catch (...) {
    pgc_free(mem);
    throw;
  }
  if constexpr (!std::is_trivially_destructible_v<T>) {
    pgc_register_finalizer(obj, &detail::destroy_finalizer<T>, nullptr);
  }
  return obj;
}

// A weak reference to a collected object (pgc_register_weak_link): it does not keep the object alive, and lock()
// returns nullptr once the object became unreachable or was freed. The link is this object's own member, so copies
// and moves register their own; the destructor unregisters. A weak<T> inside a collected object whose destructor
// never runs (no finalizer) is dropped with that object by the collector. Points at the start of an object from
// pgc_malloc/make (make_array of a type with a destructor returns an interior pointer: not accepted).
template <typename T>
class weak {
 public:
  weak() noexcept = default;
  explicit weak(T *obj) { reset(obj); }
  weak(const weak &other) { reset(other.lock()); }
  weak &operator=(const weak &other) {
    if (this != &other) reset(other.lock());
    return *this;
  }
  ~weak() { reset(nullptr); }

  // The object, or nullptr once it was collected or freed. Hold the result (a strong pointer) while using it.
  T *lock() const noexcept { return static_cast<T *>(pgc_weak_get(&link_)); }
  bool expired() const noexcept { return lock() == nullptr; }
  // Points at obj (nullptr: empty). Throws std::bad_alloc if the link table cannot grow.
  void reset(T *obj = nullptr) {
    if (link_ != nullptr) pgc_unregister_weak_link(&link_);
    link_ = nullptr;
    if (obj != nullptr && pgc_register_weak_link(&link_, obj) != 0) {
      link_ = nullptr;
      throw std::bad_alloc();
    }
  }

 private:
  void *link_ = nullptr;  // hidden form while registered (never read directly)
};

// n value-initialized elements of T in collected memory. For trivially destructible T the result points at the
// start of the object; otherwise a hidden header holds the count so the finalizer can destroy every element, and
// the returned pointer is an interior pointer (which keeps the array alive like any other).
template <typename T>
T *make_array(std::size_t n) {
  static_assert(alignof(T) <= 16, "pacegc objects are 16-byte aligned");
  if (n > (std::numeric_limits<std::size_t>::max() - detail::array_header_bytes()) / sizeof(T)) {
    throw std::bad_alloc();
  }
  if constexpr (std::is_trivially_destructible_v<T>) {
    T *elems = static_cast<T *>(detail::allocate_bytes<T>(n * sizeof(T)));
    if constexpr (!std::is_trivially_default_constructible_v<T> || is_pointer_free_v<T>) {
      for (std::size_t i = 0; i < n; ++i) ::new (elems + i) T();
    }
    return elems;
  } else {
    void *mem = detail::allocate_bytes<T>(detail::array_header_bytes() + n * sizeof(T));
    auto *count = static_cast<std::size_t *>(mem);
    T *elems = reinterpret_cast<T *>(static_cast<char *>(mem) + detail::array_header_bytes());
    std::size_t built = 0;
    try {
      for (; built < n; ++built) ::new (elems + built) T();
    } catch (...) {
      while (built > 0) elems[--built].~T();
      pgc_free(mem);
      throw;
    }
    *count = n;
    pgc_register_finalizer(mem, &detail::destroy_array_finalizer<T>, nullptr);
    return elems;
  }
}

// A standard allocator over collected memory. Containers using it keep their elements reachable as long as the
// container itself is reachable (for example on a registered thread's stack or in a global). deallocate frees
// explicitly, which is optional but returns memory sooner.
template <typename T>
class allocator {
 public:
  using value_type = T;
  using is_always_equal = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;

  allocator() noexcept = default;
  template <typename U>
  allocator(const allocator<U> &) noexcept {}

  T *allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_alloc();
    return static_cast<T *>(detail::allocate_bytes<T>(n * sizeof(T)));
  }
  void deallocate(T *p, std::size_t) noexcept { pgc_free(p); }

  template <typename U>
  bool operator==(const allocator<U> &) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const allocator<U> &) const noexcept {
    return false;
  }
};

// Registers the current thread for the lifetime of the scope. Registration is counted, so a scope inside an
// already registered thread leaves it registered when it ends. Throws std::system_error if registration fails.
class ThreadScope {
 public:
  ThreadScope() {
    int rc = pgc_register_thread();
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pgc_register_thread");
  }
  ~ThreadScope() { pgc_unregister_thread(); }
  ThreadScope(const ThreadScope &) = delete;
  ThreadScope &operator=(const ThreadScope &) = delete;
};

// A blocking region for the lifetime of the scope (pgc_enter_blocking / pgc_leave_blocking): the thread is never
// signalled by a collection and never delays one, so poll, epoll_wait and friends see no EINTR from pacegc.
// The code in the scope must not touch collected objects or call pacegc (pgc_do_blocking's rules).
//   { pacegc::BlockingRegion blocked; n = epoll_wait(ep, events, 64, timeout_ms); }
class BlockingRegion {
 public:
  // Inlined even without optimisation: pgc_enter_blocking records its caller's frame, which must be the scope's
  // (a constructor's own frame dies at its return, and the region's code would run where the scan starts).
  [[gnu::always_inline]] BlockingRegion() noexcept { pgc_enter_blocking(); }
  ~BlockingRegion() { pgc_leave_blocking(); }
  BlockingRegion(const BlockingRegion &) = delete;
  BlockingRegion &operator=(const BlockingRegion &) = delete;
};

// Calls f() in a blocking region (pgc_do_blocking's rules) and returns its result.
template <typename F>
decltype(auto) do_blocking(F &&f) {
  BlockingRegion region;
  return std::forward<F>(f)();
}

// A standard allocator over manual (non-collected) memory, pgc_manual_malloc / pgc_manual_free: for containers
// whose memory the program manages itself but wants counted under the soft memory limit. Not scanned: collected
// objects pointed to only from such a container are not kept alive.
template <typename T>
class manual_allocator {
 public:
  using value_type = T;
  using is_always_equal = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;

  manual_allocator() noexcept = default;
  template <typename U>
  manual_allocator(const manual_allocator<U> &) noexcept {}

  T *allocate(std::size_t n) {
    static_assert(alignof(T) <= 16, "pgc_manual_malloc aligns to 16 bytes");
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_alloc();
    void *p = pgc_manual_malloc(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T *>(p);
  }
  void deallocate(T *p, std::size_t) noexcept { pgc_manual_free(p); }

  template <typename U>
  bool operator==(const manual_allocator<U> &) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const manual_allocator<U> &) const noexcept {
    return false;
  }
};

inline void collect() { pgc_collect(); }
inline std::size_t run_finalizers() { return pgc_run_finalizers(); }
// pgc_keep_alive, pgc_base, pgc_size.
inline void keep_alive(const void *p) noexcept { pgc_keep_alive(p); }
template <typename T>
inline T *object_base(T *p) noexcept {
  return static_cast<T *>(pgc_base(p));
}
inline std::size_t object_size(const void *p) noexcept { return pgc_size(p); }
// A forced collection, then every free heap page back to the OS; returns the bytes released.
inline std::size_t free_os_memory() { return pgc_free_os_memory(); }

enum class metrics_format { prometheus = PGC_METRICS_PROMETHEUS, json = PGC_METRICS_JSON };
// pgc_write_metrics: 0 or an errno value.
inline int write_metrics(int fd, metrics_format format) noexcept {
  return pgc_write_metrics(fd, static_cast<int>(format));
}
inline int set_gc_percent(int percent) { return pgc_set_gc_percent(percent); }
inline std::int64_t set_memory_limit(std::int64_t bytes) { return pgc_set_memory_limit(bytes); }
inline std::int64_t memory_limit() { return pgc_set_memory_limit(-1); }
// The hard memory limit (pgc_set_hard_memory_limit): an allocation that cannot stay under it throws std::bad_alloc
// (through make, make_array, allocator). INT64_MAX = none; a negative value only queries.
inline std::int64_t set_hard_memory_limit(std::int64_t bytes) { return pgc_set_hard_memory_limit(bytes); }
inline std::int64_t hard_memory_limit() { return pgc_set_hard_memory_limit(-1); }

// ---- Limit events (pgc_set_event_callback) ----
enum class event_kind : std::uint32_t {
  limiter_on = PGC_EVENT_LIMITER_ON,
  limiter_off = PGC_EVENT_LIMITER_OFF,
  over_limit = PGC_EVENT_OVER_LIMIT,
  under_limit = PGC_EVENT_UNDER_LIMIT,
  hard_limit = PGC_EVENT_HARD_LIMIT,
};
inline event_kind kind_of(const pgc_event &ev) noexcept { return static_cast<event_kind>(ev.kind); }

namespace detail {
struct event_slot {
  std::mutex mutex;
  std::shared_ptr<std::function<void(const pgc_event &)>> fn;
};
inline event_slot &events() {
  static event_slot *slot = new event_slot;  // never destroyed: the background thread may call in at exit
  return *slot;
}
// noexcept: an exception thrown by the callback terminates the program (it cannot cross the C library).
inline void event_trampoline(const pgc_event *ev, void *) noexcept {
  std::shared_ptr<std::function<void(const pgc_event &)>> fn;
  {
    std::lock_guard<std::mutex> lock(events().mutex);
    fn = events().fn;
  }
  if (fn) (*fn)(*ev);
}
}  // namespace detail

// Calls fn(event) for every limit event (pgc_set_event_callback: on pacegc's background thread, no pacegc lock
// held, so fn may call anything in this header); an empty fn stops events. When it returns, the previous fn is not
// running (unless called from inside it). The std::function lives in ordinary memory, which is not scanned: a
// collected object captured only by fn is not kept alive by it.
inline void set_event_callback(std::function<void(const pgc_event &)> fn) {
  const bool on = static_cast<bool>(fn);
  std::shared_ptr<std::function<void(const pgc_event &)>> old;
  {
    std::lock_guard<std::mutex> lock(detail::events().mutex);
    old = std::move(detail::events().fn);
    if (on) detail::events().fn = std::make_shared<std::function<void(const pgc_event &)>>(std::move(fn));
  }
  pgc_set_event_callback(on ? detail::event_trampoline : nullptr, nullptr);
  // `old` is released here, after the C library stopped calling it (or by the call in flight that holds it).
}

inline void add_roots(void *begin, void *end) { pgc_add_roots(begin, end); }
inline void remove_roots(void *begin, void *end) { pgc_remove_roots(begin, end); }

inline pgc_stats stats() {
  pgc_stats s{};
  s.size = sizeof(s);
  pgc_read_stats(&s);
  return s;
}

}  // namespace pacegc

// ==== Metrics registry (go-metrics style) ========================================================================
// Thin handles over the C API of the "Metrics registry" section of pacegc.h. Constructing a handle gets the metric
// registered under the name, registering it if needed; a handle is one pointer, cheap to copy, valid for the life
// of the process. An invalid name, or a name registered as another kind, throws std::system_error (EINVAL, EEXIST).
//
//   pacegc::metrics::counter requests("requests");
//   requests.inc();
//   pacegc::metrics::timer latency("latency");
//   { auto t = latency.time(); serve(); }                  // records the scope's duration in nanoseconds
//   pgc_histogram_values v = latency.durations();          // count, min, max, mean, stddev, p50 ... p999
//   pacegc::metrics::write_log(2);                         // one log block on stderr
#include <cerrno>
#include <chrono>
#include <string>

namespace pacegc::metrics {

namespace detail {
[[noreturn]] inline void throw_error(int error, const char *call, const char *name) {
  throw std::system_error(error != 0 ? error : EINVAL, std::generic_category(),
                          std::string(call) + "(\"" + (name != nullptr ? name : "(null)") + "\")");
}
template <typename Handle>
Handle *check_get(Handle *h, const char *call, const char *name) {
  if (h == nullptr) throw_error(errno, call, name);
  return h;
}
template <typename Values>
Values sized_values() {
  Values v{};
  v.size = sizeof(v);
  return v;
}
}  // namespace detail

class counter {
 public:
  explicit counter(const char *name) : c_(detail::check_get(pgc_counter_get(name), "pgc_counter_get", name)) {}
  void inc(std::int64_t n = 1) const noexcept { pgc_counter_inc(c_, n); }
  void dec(std::int64_t n = 1) const noexcept { pgc_counter_dec(c_, n); }
  std::int64_t count() const noexcept { return pgc_counter_count(c_); }
  void clear() const noexcept { pgc_counter_clear(c_); }
  pgc_counter *get() const noexcept { return c_; }

 private:
  pgc_counter *c_;
};

class gauge {
 public:
  explicit gauge(const char *name) : g_(detail::check_get(pgc_gauge_get(name), "pgc_gauge_get", name)) {}
  void update(std::int64_t value) const noexcept { pgc_gauge_update(g_, value); }
  std::int64_t value() const noexcept { return pgc_gauge_value(g_); }
  pgc_gauge *get() const noexcept { return g_; }

 private:
  pgc_gauge *g_;
};

class gauge_float {
 public:
  explicit gauge_float(const char *name)
      : g_(detail::check_get(pgc_gauge_float_get(name), "pgc_gauge_float_get", name)) {}
  void update(double value) const noexcept { pgc_gauge_float_update(g_, value); }
  double value() const noexcept { return pgc_gauge_float_value(g_); }
  pgc_gauge_float *get() const noexcept { return g_; }

 private:
  pgc_gauge_float *g_;
};

class meter {
 public:
  explicit meter(const char *name) : m_(detail::check_get(pgc_meter_get(name), "pgc_meter_get", name)) {}
  void mark(std::int64_t n = 1) const noexcept { pgc_meter_mark(m_, n); }
  // count, rate1, rate5, rate15 and rate_mean (events per second).
  pgc_meter_values snapshot() const {
    auto v = detail::sized_values<pgc_meter_values>();
    if (int rc = pgc_meter_snapshot(m_, &v); rc != 0) detail::throw_error(rc, "pgc_meter_snapshot", nullptr);
    return v;
  }
  pgc_meter *get() const noexcept { return m_; }

 private:
  pgc_meter *m_;
};

class histogram {
 public:
  explicit histogram(const char *name)
      : h_(detail::check_get(pgc_histogram_get(name), "pgc_histogram_get", name)) {}
  void update(std::int64_t value) const noexcept { pgc_histogram_update(h_, value); }
  void clear() const noexcept { pgc_histogram_clear(h_); }
  pgc_histogram_values snapshot() const {
    auto v = detail::sized_values<pgc_histogram_values>();
    if (int rc = pgc_histogram_snapshot(h_, &v); rc != 0) detail::throw_error(rc, "pgc_histogram_snapshot", nullptr);
    return v;
  }
  pgc_histogram *get() const noexcept { return h_; }

 private:
  pgc_histogram *h_;
};

class timer {
 public:
  // Records the time from its construction to its destruction (std::chrono::steady_clock).
  class scope {
   public:
    explicit scope(pgc_timer *t) noexcept : t_(t), start_(std::chrono::steady_clock::now()) {}
    ~scope() {
      pgc_timer_update_ns(t_, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - start_).count());
    }
    scope(const scope &) = delete;
    scope &operator=(const scope &) = delete;

   private:
    pgc_timer *t_;
    std::chrono::steady_clock::time_point start_;
  };

  explicit timer(const char *name) : t_(detail::check_get(pgc_timer_get(name), "pgc_timer_get", name)) {}
  void update(std::chrono::nanoseconds d) const noexcept { pgc_timer_update_ns(t_, d.count()); }
  void update_ns(std::int64_t ns) const noexcept { pgc_timer_update_ns(t_, ns); }
  [[nodiscard]] scope time() const noexcept { return scope(t_); }
  // Statistics of the recorded durations, in nanoseconds.
  pgc_histogram_values durations() const {
    auto v = detail::sized_values<pgc_histogram_values>();
    if (int rc = pgc_timer_snapshot(t_, &v, nullptr); rc != 0) detail::throw_error(rc, "pgc_timer_snapshot", nullptr);
    return v;
  }
  // How many durations were recorded, and at what rate.
  pgc_meter_values rates() const {
    auto v = detail::sized_values<pgc_meter_values>();
    if (int rc = pgc_timer_snapshot(t_, nullptr, &v); rc != 0) detail::throw_error(rc, "pgc_timer_snapshot", nullptr);
    return v;
  }
  pgc_timer *get() const noexcept { return t_; }

 private:
  pgc_timer *t_;
};

// true if name was registered.
inline bool unregister(const char *name) noexcept { return pgc_metrics_unregister(name) == 0; }
// One log block to fd; 0 or an errno value.
inline int write_log(int fd) noexcept { return pgc_metrics_log(fd); }
// The background logger (see pgc_metrics_log_start); 0 or an errno value.
inline int start_logger(std::chrono::nanoseconds interval, int fd = 2) noexcept {
  return pgc_metrics_log_start(interval.count(), fd);
}
inline void stop_logger() noexcept { pgc_metrics_log_stop(); }

}  // namespace pacegc::metrics
// ==== End of metrics registry ====================================================================================

#endif  // PACEGC_PACEGC_HPP
