// http_cache.cpp — pacegc-http-cache: an HTTP key-value cache whose values live in collected memory.
//
//   PUT    /cache/{key}   stores the request body under key: 201 Created, 204 when it replaced a value, 413 when
//                         key + body exceed --max-bytes
//   GET    /cache/{key}   200 with the body, 404 when absent or evicted
//   DELETE /cache/{key}   204, 404 when absent
//   GET    /healthz       200 "ok"
//   GET    /metrics       Prometheus text: pgc_write_metrics, i.e. the collector's runtime metrics and every metric
//                         of the go-metrics registry, among them this service's own (names "http_cache/...": request
//                         and response counters, hits, misses, evictions, cache bytes, a latency timer)
//
// Usage: pacegc-http-cache [--port N] [--bind ADDR] [--threads N] [--max-bytes SIZE] [--shed on|off]
//        (--help for details)
// It prints "pacegc-http-cache: listening on ADDR:PORT" on stdout once it accepts connections (--port 0 picks a
// free port: read it from that line). SIGTERM or SIGINT: stop accepting, finish the requests being served, exit 0
// (httplib's Server::stop: a request whose headers were read is completed and answered; idle keep-alive
// connections, and connections accepted but not yet picked up by a worker, are closed without a response).
// The collector's environment applies as usual: GOGC, GOMEMLIMIT, GODEBUG=gctrace=1 (docs/TUNING.md).
//
// The cache. One LRU list and one hash index behind one mutex (a sharded cache would split --max-bytes into
// per-shard budgets and evict early in a busy shard; on the few cores this serves from, one short critical section
// per request is not the bottleneck — parsing and copying are). Entries, keys and values are collected objects:
//   - Entry is trivially destructible and scanned (pacegc::make); keys and values are pgc_malloc_atomic bytes
//     (never scanned). The index is a std::unordered_map over pacegc::allocator, so its nodes and bucket array are
//     scanned collected memory that keeps every entry alive; the Cache object itself is on main's stack.
//   - Eviction and DELETE only unlink: the collector frees the bytes once no thread holds them. A GET copies the
//     value's pointer out under the lock and sends the bytes after releasing it, so a value evicted meanwhile is
//     still intact while it is sent: its pointer on the handler's stack keeps it alive.
//   - Everything that allocates (the key and value copies, the entry) happens before the lock is taken; under the
//     lock only the index may allocate a node, and that may run a collection. Threads waiting for the lock wait
//     in a blocking region (LockCache), so they never delay that collection (examples/cache_service.cpp does the
//     same per shard).
//   - --max-bytes bounds the key and value bytes held (the "cache_bytes" gauge); the index and list add about
//     100 bytes per entry on top. Under memory pressure (the GC CPU limiter turned on near the soft memory limit) the
//     cache sheds a quarter of what it holds: PressureMonitor::OnMemoryPressure.
//
// Threads (all registered by pacegc's pthread_create; none calls pgc_register_thread):
//   - main: parses options, binds, and runs httplib's accept loop in a blocking region (Listen): the loop touches
//     no collected object, so collections never signal it, never wait for it, and accept sees no EINTR. httplib
//     would retry it anyway (it restarts accept, recv, send and poll on EINTR); see docs/EXPERIMENTS.md for how
//     often the suspend signal interrupts the others under load.
//   - --threads workers: httplib::ThreadPool, made before the accept loop (not inside its blocking region, where
//     no pacegc call may happen: creating a thread registers it). They parse requests and run the handlers.
//   - "signals": waits for SIGTERM/SIGINT with sigwait (in a blocking region), then calls Server::stop(): no
//     httplib call from a signal handler. Both signals are blocked in every thread from the start of main.
//   - "pressure": samples pgc_stats every 100 ms for the GC CPU limiter (OnMemoryPressure).
#include <pacegc/pacegc.hpp>

#include <httplib.h>

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace {

constexpr const char *kProgram = "pacegc-http-cache";

// ---- Options --------------------------------------------------------------------------------------------------

struct Options {
  int port = 8080;
  std::string bind = "127.0.0.1";
  unsigned threads = 4;
  std::int64_t max_bytes = std::int64_t{64} << 20;
  bool shed = true;  // shed entries under memory pressure (off: for the experiment that shows why)
};

void PrintUsage(std::FILE *out) {
  std::fprintf(out,
               "usage: %s [--port N] [--bind ADDR] [--threads N] [--max-bytes SIZE] [--shed on|off]\n"
               "  --port N          TCP port, 0-65535; 0 picks a free one (default 8080)\n"
               "  --bind ADDR       address to listen on (default 127.0.0.1)\n"
               "  --threads N       request-serving threads, 1-256 (default 4)\n"
               "  --max-bytes SIZE  key + value bytes the cache holds at most, in GOMEMLIMIT's syntax: bytes, or a\n"
               "                    whole number with B, KiB, MiB, GiB, TiB (default 64MiB); the least recently used\n"
               "                    entries are evicted to stay under it\n"
               "  --shed on|off     shed a quarter of the cache when the GC CPU limiter turns on near the soft\n"
               "                    memory limit (default on; off only to see what happens without it)\n"
               "Prints \"%s: listening on ADDR:PORT\" on stdout when ready; SIGTERM drains and exits 0.\n"
               "Routes: PUT/GET/DELETE /cache/{key}, GET /healthz, GET /metrics (Prometheus text).\n",
               kProgram, kProgram);
}

[[noreturn]] void UsageError(const std::string &message) {
  std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
  std::exit(2);
}

std::uint64_t ParseUintOrDie(const char *flag, const char *text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t value = 0;
  const std::string_view s = text;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < min || value > max) {
    UsageError(std::string(flag) + " needs an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
               "], got '" + text + "'");
  }
  return value;
}

// Exits with status 2 and one line on stderr on a malformed command line.
Options ParseOptions(int argc, char **argv) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      PrintUsage(stdout);
      std::exit(0);
    }
    if (arg != "--port" && arg != "--bind" && arg != "--threads" && arg != "--max-bytes" && arg != "--shed") {
      UsageError("unknown argument '" + std::string(arg) + "' (see --help)");
    }
    if (i + 1 >= argc) UsageError(std::string(arg) + " needs a value (see --help)");
    const char *value = argv[++i];
    if (arg == "--port") {
      opts.port = static_cast<int>(ParseUintOrDie("--port", value, 0, 65535));
    } else if (arg == "--threads") {
      opts.threads = static_cast<unsigned>(ParseUintOrDie("--threads", value, 1, 256));
    } else if (arg == "--shed") {
      if (std::strcmp(value, "on") != 0 && std::strcmp(value, "off") != 0) {
        UsageError(std::string("--shed needs on or off, got '") + value + "'");
      }
      opts.shed = std::strcmp(value, "on") == 0;
    } else if (arg == "--bind") {
      if (*value == '\0') UsageError("--bind needs an address, got ''");
      opts.bind = value;
    } else {  // --max-bytes: the syntax of GOMEMLIMIT, through the library's own parser
      char error[512];
      std::int64_t bytes = 0;
      if (pgc_parse_memory_limit(value, &bytes, error, sizeof error) != 0) {
        UsageError(std::string("--max-bytes takes a size like GOMEMLIMIT: ") + error);
      }
      if (bytes <= 0 || bytes == INT64_MAX || *value == '\0') {
        UsageError(std::string("--max-bytes needs a size of at least 1 byte, got '") + value + "'");
      }
      opts.max_bytes = bytes;
    }
  }
  return opts;
}

// ---- Metrics (the go-metrics registry of pacegc.h, through pacegc.hpp) ----------------------------------------

// Registered at first use (a function-local static: after pacegc's own load-time initialisation). Handles are one
// pointer each, valid for the life of the process; updates are lock-free except the timer's sample.
struct Metrics {
  pacegc::metrics::counter get{"http_cache/requests/get"};
  pacegc::metrics::counter put{"http_cache/requests/put"};
  pacegc::metrics::counter del{"http_cache/requests/delete"};
  pacegc::metrics::counter other{"http_cache/requests/other"};  // /healthz, /metrics, unknown routes
  pacegc::metrics::counter status_2xx{"http_cache/responses/2xx"};
  pacegc::metrics::counter status_4xx{"http_cache/responses/4xx"};
  pacegc::metrics::counter status_5xx{"http_cache/responses/5xx"};
  pacegc::metrics::counter hits{"http_cache/get/hits"};
  pacegc::metrics::counter misses{"http_cache/get/misses"};
  pacegc::metrics::counter evicted_lru{"http_cache/evictions/lru"};          // to stay under the budget
  pacegc::metrics::counter evicted_pressure{"http_cache/evictions/pressure"};  // by OnMemoryPressure
  pacegc::metrics::counter pressure_events{"http_cache/pressure/events"};    // the limiter turned on: shed
  pacegc::metrics::counter pressure_ignored{"http_cache/pressure/ignored"};  // turned on, not shed (see below)
  pacegc::metrics::gauge cache_bytes{"http_cache/cache_bytes"};        // key + value bytes held
  pacegc::metrics::gauge cache_entries{"http_cache/cache_entries"};
  pacegc::metrics::gauge max_bytes{"http_cache/max_bytes"};            // --max-bytes
  pacegc::metrics::gauge budget_bytes{"http_cache/budget_bytes"};      // the bound in force (lowered by pressure)
  pacegc::metrics::histogram put_bytes{"http_cache/put/value_bytes"};
  pacegc::metrics::timer latency{"http_cache/request/latency"};        // pre-routing to response written
};

Metrics &M() {
  static Metrics metrics;
  return metrics;
}

// ---- The cache ------------------------------------------------------------------------------------------------

// One cached value. Collected and scanned; trivially destructible, so no finalizer is registered for it.
struct Entry {
  Entry *prev;
  Entry *next;
  const char *key;          // pgc_malloc_atomic, key_bytes long (the index's string_view points here)
  const char *value;        // pgc_malloc_atomic, value_bytes long; never written after the entry is published
  std::size_t key_bytes;
  std::size_t value_bytes;
  std::size_t Bytes() const { return key_bytes + value_bytes; }
};

// A value as a GET hands it out: the pointer keeps the bytes alive while it is on the handler's stack.
struct Value {
  const char *data = nullptr;
  std::size_t bytes = 0;
};

char *CopyToCollected(std::string_view s) {
  char *p = static_cast<char *>(pgc_malloc_atomic(s.size()));
  if (p == nullptr) throw std::bad_alloc();
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p;
}

// Waits for the cache lock in a blocking region (pgc_do_blocking's rules: nothing collected is touched while
// waiting): the holder may allocate under the lock and so start a collection, which must not wait for us.
std::unique_lock<std::mutex> LockCache(std::mutex &mu) {
  pacegc::BlockingRegion region;
  return std::unique_lock<std::mutex>(mu);
}

class Cache {
 public:
  enum class PutResult { kCreated, kReplaced, kTooLarge };

  explicit Cache(std::size_t max_bytes) : max_bytes_(max_bytes), budget_bytes_(max_bytes) {
    M().max_bytes.update(static_cast<std::int64_t>(max_bytes));
    M().budget_bytes.update(static_cast<std::int64_t>(max_bytes));
  }

  PutResult Put(std::string_view key, std::string_view value) {
    if (key.size() + value.size() > max_bytes_) return PutResult::kTooLarge;
    // Allocate before locking: any of these may run a collection.
    Entry *e = pacegc::make<Entry>();
    e->key = CopyToCollected(key);
    e->key_bytes = key.size();
    e->value = CopyToCollected(value);
    e->value_bytes = value.size();
    const std::string_view stored_key(e->key, e->key_bytes);

    auto lock = LockCache(mu_);
    auto [it, inserted] = index_.try_emplace(stored_key, e);
    if (!inserted) {
      Entry *old = it->second;
      Unlink(old);
      bytes_ -= old->Bytes();
      // Re-key the node to the new entry's copy of the key (equal bytes), so it no longer holds the old one.
      auto node = index_.extract(it);
      node.key() = stored_key;
      node.mapped() = e;
      index_.insert(std::move(node));
    }
    PushFront(e);
    bytes_ += e->Bytes();
    M().evicted_lru.inc(static_cast<std::int64_t>(EvictLocked(budget_bytes_)));
    PublishLocked();
    return inserted ? PutResult::kCreated : PutResult::kReplaced;
  }

  // The value under key, now the most recently used; data == nullptr when absent.
  Value Get(std::string_view key) {
    auto lock = LockCache(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return {};
    Entry *e = it->second;
    Unlink(e);
    PushFront(e);
    return {e->value, e->value_bytes};
  }

  bool Delete(std::string_view key) {
    auto lock = LockCache(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    Entry *e = it->second;
    index_.erase(it);
    Unlink(e);
    bytes_ -= e->Bytes();
    PublishLocked();
    return true;
  }

  // Memory pressure: lowers the budget to 3/4 of what the cache holds and evicts down to it. The budget returns
  // to --max-bytes when RelievePressure is called (after a quiet period: see PressureMonitor).
  void Shed() {
    auto lock = LockCache(mu_);
    budget_bytes_ = std::min(budget_bytes_, bytes_ / 4 * 3);
    M().evicted_pressure.inc(static_cast<std::int64_t>(EvictLocked(budget_bytes_)));
    PublishLocked();
  }
  void RelievePressure() {
    auto lock = LockCache(mu_);
    budget_bytes_ = max_bytes_;
    PublishLocked();
  }

 private:
  // Drops least recently used entries until bytes_ <= target; returns how many.
  std::size_t EvictLocked(std::size_t target) {
    std::size_t evicted = 0;
    while (bytes_ > target && tail_ != nullptr) {
      Entry *victim = tail_;
      Unlink(victim);
      index_.erase(std::string_view(victim->key, victim->key_bytes));  // victim is garbage from here on
      bytes_ -= victim->Bytes();
      ++evicted;
    }
    return evicted;
  }
  void PublishLocked() {
    M().cache_bytes.update(static_cast<std::int64_t>(bytes_));
    M().cache_entries.update(static_cast<std::int64_t>(index_.size()));
    M().budget_bytes.update(static_cast<std::int64_t>(budget_bytes_));
  }
  void Unlink(Entry *e) {
    (e->prev != nullptr ? e->prev->next : head_) = e->next;
    (e->next != nullptr ? e->next->prev : tail_) = e->prev;
    e->prev = e->next = nullptr;
  }
  void PushFront(Entry *e) {
    e->next = head_;
    if (head_ != nullptr) head_->prev = e;
    head_ = e;
    if (tail_ == nullptr) tail_ = e;
  }

  using Index = std::unordered_map<std::string_view, Entry *, std::hash<std::string_view>,
                                   std::equal_to<std::string_view>,
                                   pacegc::allocator<std::pair<const std::string_view, Entry *>>>;

  std::mutex mu_;                // guards everything below; taken with LockCache only
  Index index_;                  // key (pointing into its entry's key bytes) -> entry; collected, scanned
  Entry *head_ = nullptr;        // most recently used
  Entry *tail_ = nullptr;        // least recently used
  std::size_t bytes_ = 0;        // sum of Bytes() over the index; invariant: bytes_ <= budget_bytes_ after Put
  const std::size_t max_bytes_;  // --max-bytes
  std::size_t budget_bytes_;     // max_bytes_, or less while under memory pressure
};

// ---- Memory pressure ------------------------------------------------------------------------------------------

// Watches the GC CPU limiter. When it turns on, collections are being postponed because they would take more than
// half the CPU. If the memory pacegc holds is also near the soft limit (at least 90% of it), that is memory
// pressure: the live heap is at the limit, and the cache is most of that live heap, so the cache sheds a quarter
// of what it holds (Cache::Shed) and keeps that lower budget until the limiter has stayed off for kCooldown.
// Not shed:
//   - when the limiter turned on far from the limit (or with no limit): collections are costly for another reason
//     (a slow sanitizer build, a small CPU quota), and a smaller cache would not make them cheaper. Measured under
//     TSan with no limit: shedding at every turn-on emptied the cache (94 turn-ons in 15 s) for nothing;
//   - twice in one collection cycle: what was shed is freed only by the next collection, so a second turn-on
//     before it says nothing new.
//
// The turn-on is found by sampling pgc_stats every 100 ms: limiter_last_enabled_cycle moved (it turned on since
// the last sample, even if it is off again), or limiter_enabled went from 0 to 1. This was written before
// pgc_set_event_callback existed; now that it does (PGC_EVENT_LIMITER_ON, delivered on pacegc-bg, registered for
// the call, no pacegc lock held: reading pgc_stats and Shed()'s lock and frees are allowed there), the sampling
// can be replaced by a callback that calls OnMemoryPressure() (pacegc::set_event_callback, as cache_service does),
// with the cooldown started by PGC_EVENT_LIMITER_OFF. Not done here: the figures in docs/EXPERIMENTS.md were
// measured with the sampling.
class PressureMonitor {
 public:
  static constexpr auto kInterval = std::chrono::milliseconds(100);
  static constexpr auto kCooldown = std::chrono::seconds(10);  // limiter off this long: the budget comes back

  explicit PressureMonitor(Cache &cache) : cache_(cache) {}

  // The one entry point for "the GC CPU limiter turned on": sheds cache entries if memory is what is tight.
  void OnMemoryPressure() {
    const pgc_stats st = pacegc::stats();
    const bool near_limit = st.memory_limit_bytes != INT64_MAX &&
                            st.total_bytes >= static_cast<std::uint64_t>(st.memory_limit_bytes) / 10 * 9;
    if (!near_limit || st.num_gc == last_shed_cycle_.load()) {
      M().pressure_ignored.inc();
      return;
    }
    last_shed_cycle_.store(st.num_gc);
    M().pressure_events.inc();
    cache_.Shed();
    shed_.store(true);
  }

  void Run() {
    pgc_stats last = pacegc::stats();
    auto last_on = std::chrono::steady_clock::now();
    for (;;) {
      {
        // Waiting touches nothing collected: in a blocking region, never signalled by a collection.
        pacegc::BlockingRegion region;
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, kInterval, [this] { return stop_; })) return;
      }
      const pgc_stats now = pacegc::stats();
      const auto t = std::chrono::steady_clock::now();
      if (now.limiter_last_enabled_cycle != last.limiter_last_enabled_cycle ||
          (now.limiter_enabled != 0 && last.limiter_enabled == 0)) {
        OnMemoryPressure();
      }
      if (now.limiter_enabled != 0) last_on = t;
      if (shed_.load() && now.limiter_enabled == 0 && t - last_on >= kCooldown) {
        shed_.store(false);
        cache_.RelievePressure();
      }
      last = now;
    }
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  Cache &cache_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                   // guarded by mu_
  std::atomic<bool> shed_{false};                   // the cache's budget is lowered
  std::atomic<std::uint64_t> last_shed_cycle_{~0ull};  // num_gc at the last shed
};

// ---- HTTP -----------------------------------------------------------------------------------------------------

// The Prometheus text of pgc_write_metrics, which writes to a file descriptor: an anonymous memory file.
bool MetricsText(std::string *out) {
  const int fd = memfd_create("pacegc-metrics", MFD_CLOEXEC);
  if (fd < 0) return false;
  bool ok = pacegc::write_metrics(fd, pacegc::metrics_format::prometheus) == 0;
  const off_t size = ok ? lseek(fd, 0, SEEK_CUR) : -1;
  ok = size >= 0;
  if (ok) {
    out->resize(static_cast<std::size_t>(size));
    std::size_t done = 0;
    while (ok && done < out->size()) {
      const ssize_t n = pread(fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) done += static_cast<std::size_t>(n);
    }
  }
  close(fd);
  return ok;
}

thread_local std::chrono::steady_clock::time_point t_request_start;

void InstallRoutes(httplib::Server &server, Cache &cache) {
  // Timing and counting span the whole request: the pre-routing handler runs once the request is parsed, the
  // logger once the response is written, both on the worker thread that serves it.
  server.set_pre_routing_handler([](const httplib::Request &req, httplib::Response &) {
    t_request_start = std::chrono::steady_clock::now();
    const bool cache_route = req.path.rfind("/cache/", 0) == 0;
    if (cache_route && req.method == "GET") {
      M().get.inc();
    } else if (cache_route && req.method == "PUT") {
      M().put.inc();
    } else if (cache_route && req.method == "DELETE") {
      M().del.inc();
    } else {
      M().other.inc();
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_logger([](const httplib::Request &, const httplib::Response &res) {
    M().latency.update(std::chrono::steady_clock::now() - t_request_start);
    if (res.status >= 500) {
      M().status_5xx.inc();
    } else if (res.status >= 400) {
      M().status_4xx.inc();
    } else {
      M().status_2xx.inc();
    }
  });

  const char *kKeyPattern = R"(/cache/(.+))";
  server.Put(kKeyPattern, [&cache](const httplib::Request &req, httplib::Response &res) {
    M().put_bytes.update(static_cast<std::int64_t>(req.body.size()));
    switch (cache.Put(req.matches[1].str(), req.body)) {
      case Cache::PutResult::kCreated: res.status = 201; break;
      case Cache::PutResult::kReplaced: res.status = 204; break;
      case Cache::PutResult::kTooLarge:
        res.status = 413;
        res.set_content("key + value exceed --max-bytes\n", "text/plain");
        break;
    }
  });
  server.Get(kKeyPattern, [&cache](const httplib::Request &req, httplib::Response &res) {
    const Value v = cache.Get(req.matches[1].str());
    if (v.data == nullptr) {
      M().misses.inc();
      res.status = 404;
      res.set_content("not found\n", "text/plain");
      return;
    }
    M().hits.inc();
    res.set_content(v.data, v.bytes, "application/octet-stream");  // copies the bytes out
    pacegc::keep_alive(v.data);
  });
  server.Delete(kKeyPattern, [&cache](const httplib::Request &req, httplib::Response &res) {
    if (cache.Delete(req.matches[1].str())) {
      res.status = 204;
    } else {
      res.status = 404;
      res.set_content("not found\n", "text/plain");
    }
  });
  server.Get("/healthz", [](const httplib::Request &, httplib::Response &res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/metrics", [](const httplib::Request &, httplib::Response &res) {
    std::string text;
    if (!MetricsText(&text)) {
      res.status = 500;
      res.set_content("pgc_write_metrics failed\n", "text/plain");
      return;
    }
    res.set_content(std::move(text), "text/plain; version=0.0.4; charset=utf-8");
  });
}

// httplib's accept loop asks for a task queue when it starts and shuts it down when it ends. It gets this view of
// a pool made beforehand, so that no thread is created inside the loop's blocking region, and the pool is shut
// down (draining the connections already accepted) by main after the region.
class BorrowedQueue : public httplib::TaskQueue {
 public:
  explicit BorrowedQueue(httplib::TaskQueue &pool) : pool_(pool) {}
  void enqueue(std::function<void()> fn) override { pool_.enqueue(std::move(fn)); }
  void shutdown() override {}

 private:
  httplib::TaskQueue &pool_;
};

// Runs the accept loop in a blocking region: it accepts connections and hands them to the pool (std::function
// and std::list on the system heap), touching no collected object and calling no pacegc function.
bool Listen(httplib::Server &server) {
  return pgc_do_blocking(
             [](void *arg) -> void * {
               return static_cast<httplib::Server *>(arg)->listen_after_bind() ? arg : nullptr;
             },
             &server) != nullptr;
}

}  // namespace

int main(int argc, char **argv) {
  const Options opts = ParseOptions(argc, argv);

  // SIGTERM and SIGINT are taken by sigwait on one thread: block them here, before any thread exists, so every
  // thread inherits the mask. A client that goes away mid-response must not kill the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Cache cache(static_cast<std::size_t>(opts.max_bytes));  // on main's stack: scanned while main runs
  httplib::Server server;
  InstallRoutes(server, cache);
  server.set_payload_max_length(static_cast<std::size_t>(opts.max_bytes));  // larger bodies: 413 from httplib
  // httplib writes a response's headers and body with separate send calls: without TCP_NODELAY, Nagle's algorithm
  // holds the body back until the client's delayed ACK, ~40 ms per response on Linux loopback (measured: 125
  // requests/s with 44 ms median latency, against thousands with it on).
  server.set_tcp_nodelay(true);
  // httplib closes a keep-alive connection after 5 requests by default, so a client reconnects every 5 requests
  // (2080 accepts for 10k requests on 4 connections, measured); a cache serves many requests per connection.
  server.set_keep_alive_max_count(1000);

  int port = opts.port;
  if (port == 0) {
    port = server.bind_to_any_port(opts.bind);
    if (port < 0) port = 0;
  } else if (!server.bind_to_port(opts.bind, port)) {
    port = 0;
  }
  if (port == 0) {
    std::fprintf(stderr, "%s: cannot listen on %s port %d: %s\n", kProgram, opts.bind.c_str(), opts.port,
                 std::strerror(errno));
    return 1;
  }

  httplib::ThreadPool pool(opts.threads);
  server.new_task_queue = [&pool] { return new BorrowedQueue(pool); };

  PressureMonitor monitor(cache);
  std::thread monitor_thread;
  if (opts.shed) monitor_thread = std::thread([&monitor] { monitor.Run(); });

  std::atomic<bool> listen_done{false};
  std::atomic<int> stop_signal{0};
  std::thread signal_thread([&] {
    int sig = 0;
    {
      pacegc::BlockingRegion region;
      while (sigwait(&stop_signals, &sig) != 0) {
      }
    }
    stop_signal.store(sig);
    // stop() does nothing until the accept loop runs; retry until it does, or has ended by itself.
    while (!listen_done.load()) {
      if (server.is_running()) {
        server.stop();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });

  const bool v6 = opts.bind.find(':') != std::string::npos;
  std::printf("%s: listening on %s%s%s:%d\n", kProgram, v6 ? "[" : "", opts.bind.c_str(), v6 ? "]" : "", port);
  std::fflush(stdout);

  const bool listened = Listen(server);
  listen_done.store(true);
  pool.shutdown();  // finishes the connections already handed to the workers, then joins them
  monitor.Stop();
  if (monitor_thread.joinable()) monitor_thread.join();
  if (stop_signal.load() == 0) pthread_kill(signal_thread.native_handle(), SIGTERM);  // wake it to end it
  signal_thread.join();

  const pgc_stats st = pacegc::stats();
  std::fprintf(stderr,
               "%s: stopped (%s); %" PRId64 " requests, %" PRIu64 " collections, pauses %.2f ms total, %.2f ms max\n",
               kProgram, stop_signal.load() != 0 ? strsignal(stop_signal.load()) : "accept loop ended",
               M().latency.rates().count, st.num_gc, static_cast<double>(st.pause_total_ns) / 1e6,
               static_cast<double>(st.pause_max_ns) / 1e6);
  if (!listened && stop_signal.load() == 0) return 1;
  return 0;
}
