// pacegc — C++ API over the C API of pacegc.h.
//
//   auto* n = pacegc::make<Node>(1, nullptr);        // collected; ~Node runs as a finalizer if non-trivial
//   double* xs = pacegc::make_array<double>(1000);   // pointer-free element type: atomic (never scanned)
//   std::vector<Node*, pacegc::allocator<Node*>> v;  // the buffer is collected memory, so it is scanned
//   pacegc::ThreadScope scope;                       // registers a thread for its lifetime
//
// Allocation failure throws std::bad_alloc. Nothing here adds state: every call maps to one C function.
#ifndef PACEGC_PACEGC_HPP
#define PACEGC_PACEGC_HPP

#include <pacegc/pacegc.h>

#include <cstddef>
#include <cstdint>
#include <limits>
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

inline void collect() { pgc_collect(); }
inline int set_gc_percent(int percent) { return pgc_set_gc_percent(percent); }
inline std::int64_t set_memory_limit(std::int64_t bytes) { return pgc_set_memory_limit(bytes); }
inline std::int64_t memory_limit() { return pgc_set_memory_limit(-1); }
inline void add_roots(void *begin, void *end) { pgc_add_roots(begin, end); }
inline void remove_roots(void *begin, void *end) { pgc_remove_roots(begin, end); }

inline pgc_stats stats() {
  pgc_stats s{};
  s.size = sizeof(s);
  pgc_read_stats(&s);
  return s;
}

}  // namespace pacegc

#endif  // PACEGC_PACEGC_HPP
