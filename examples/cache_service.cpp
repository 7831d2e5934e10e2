// cache_service.cpp — the shape of a long-running service on pacegc: a sharded LRU cache of response objects
// under a skewed request load, served by one or more threads.
//
// Every request looks its key up in the cache. A hit "sends" the cached response (reads and checksums it); a miss
// builds a new response in collected memory and inserts it, evicting the least recently used entry of that shard.
// Evicted entries are simply dropped: the collector reclaims them. Each worker also keeps its last responses in a
// small "write queue" (as if clients were slow to read them), so some objects stay alive after their eviction.
//
// How the program follows pacegc's rules (include/pacegc/pacegc.h, pacegc.hpp):
//   - Collected objects are found through the stacks of registered threads, globals, and other collected objects.
//     The Service lives on main's stack; its containers use pacegc::allocator, so their nodes and bucket arrays are
//     collected (and scanned) memory. A std::allocator container, or `new Service`, would hide the cache from the
//     collector: pointers kept only in malloc memory do not keep objects alive.
//   - Response, Header and Entry are trivially destructible, so pacegc::make registers no finalizer for them.
//   - Bodies and header values are char arrays: pacegc::make_array<char> puts them in atomic (never scanned) memory.
//   - Plain std::vector is fine for data holding no collected pointers (latency samples, per-thread counters).
//   - Worker threads hold collected pointers on their stacks; std::thread (pthread_create) registers them from their
//     start, so nothing needs to be called (pacegc::ThreadScope is for threads made by other means).
//
// Load shedding: the service asks pacegc for limit events (pacegc::set_event_callback). When the GC CPU limiter turns
// on — collections would take more than half the CPU, so pacegc lets the heap grow past its goal instead — the cache
// drops the least recently used half of every shard, which gives the collector less to mark and the heap room. The
// callback runs on pacegc's background thread with no pacegc lock held, so it takes the shard locks and lets go of
// entries like any worker. (Try it with a tight limit: GOMEMLIMIT=24MiB cache_service --capacity 200000.)
//
// Every cached or queued response read back is verified (key, headers, body checksum); a mismatch would mean a
// live object was reclaimed or overwritten, and makes the program exit 1.
//
// Usage: cache_service [--requests N] [--threads T] [--capacity C] [--keys K] [--seed S]
// The collector's environment applies as usual: GOGC=50, GOMEMLIMIT=256MiB, GODEBUG=gctrace=1.
#include <pacegc/pacegc.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// ---- Options --------------------------------------------------------------------------------------------------

struct Options {
  std::uint64_t requests = 600'000;    // total over all threads; ~1-2 s on one core
  unsigned threads = 1;                // 1 = served by the main thread; more = that many worker threads
  std::uint64_t capacity = 20'000;     // cached responses, over all shards
  std::uint64_t keys = 100'000;        // distinct keys; 80% of requests go to the first 20% of them
  std::uint64_t seed = 1;
};

void PrintUsage(std::FILE *out) {
  std::fprintf(out,
               "usage: cache_service [--requests N] [--threads T] [--capacity C] [--keys K] [--seed S]\n"
               "  --requests N   requests to serve in total (default 600000)\n"
               "  --threads T    serving threads, 1..256 (default 1: the main thread alone)\n"
               "  --capacity C   cached responses in total (default 20000)\n"
               "  --keys K       distinct request keys (default 100000)\n"
               "  --seed S       random seed (default 1)\n");
}

bool ParseUint(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *out) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) return false;
  *out = value;
  return true;
}

// Returns false (after printing why) on a malformed command line.
bool ParseOptions(int argc, char **argv, Options *opts) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      PrintUsage(stdout);
      std::exit(0);
    }
    struct Flag {
      std::string_view name;
      std::uint64_t min, max;
    };
    static constexpr Flag kFlags[] = {{"--requests", 1, 1'000'000'000'000},
                                      {"--threads", 1, 256},
                                      {"--capacity", 16, 100'000'000},
                                      {"--keys", 1, 1'000'000'000},
                                      {"--seed", 0, UINT64_MAX}};
    const Flag *flag = nullptr;
    for (const Flag &f : kFlags) {
      if (arg == f.name) flag = &f;
    }
    if (flag == nullptr) {
      std::fprintf(stderr, "cache_service: unknown argument '%s'\n", argv[i]);
      PrintUsage(stderr);
      return false;
    }
    std::uint64_t value = 0;
    if (i + 1 >= argc || !ParseUint(argv[i + 1], flag->min, flag->max, &value)) {
      std::fprintf(stderr, "cache_service: %s needs an integer in [%" PRIu64 ", %" PRIu64 "], got '%s'\n",
                   argv[i], flag->min, flag->max, i + 1 < argc ? argv[i + 1] : "");
      return false;
    }
    ++i;
    if (flag->name == "--requests") opts->requests = value;
    if (flag->name == "--threads") opts->threads = static_cast<unsigned>(value);
    if (flag->name == "--capacity") opts->capacity = value;
    if (flag->name == "--keys") opts->keys = value;
    if (flag->name == "--seed") opts->seed = value;
  }
  return true;
}

// ---- Responses ------------------------------------------------------------------------------------------------

struct Header {
  const char *name;  // a string literal: static storage, not collected (the scanner ignores it)
  char *value;       // collected, atomic
};

// A cached response. Trivially destructible: the collector frees it (and what only it references) whole.
struct Response {
  std::uint64_t key;
  std::uint64_t body_checksum;
  char *body;        // make_array<char>: atomic
  Header *headers;   // make_array<Header>: scanned, since Header holds pointers
  std::uint32_t body_bytes;
  std::uint32_t num_headers;
  std::uint32_t status;
};

constexpr std::uint32_t kMinBodyBytes = 32;
constexpr std::uint32_t kMaxBodyBytes = 1024;
constexpr std::uint32_t kNumHeaders = 3;

std::uint64_t Checksum(const char *data, std::uint32_t bytes) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (std::uint32_t i = 0; i < bytes; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 1099511628211ull;
  return h;
}

char *CopyString(std::string_view s) {
  char *copy = pacegc::make_array<char>(s.size() + 1);
  std::memcpy(copy, s.data(), s.size());
  copy[s.size()] = '\0';
  return copy;
}

// The "backend": what a miss costs. Everything it allocates is collected memory.
Response *BuildResponse(std::uint64_t key, std::uint32_t body_bytes) {
  Response *r = pacegc::make<Response>();
  r->key = key;
  r->status = 200;
  r->body_bytes = body_bytes;
  r->body = pacegc::make_array<char>(body_bytes);
  for (std::uint32_t i = 0; i < body_bytes; ++i) r->body[i] = static_cast<char>('a' + (key + i) % 26);
  r->body_checksum = Checksum(r->body, body_bytes);

  char buf[24];
  r->num_headers = kNumHeaders;
  r->headers = pacegc::make_array<Header>(kNumHeaders);
  r->headers[0] = {"content-type", CopyString("text/plain")};
  char *end = std::to_chars(buf, buf + sizeof buf, key).ptr;  // 24 bytes hold any uint64_t
  r->headers[1] = {"x-key", CopyString(std::string_view(buf, static_cast<std::size_t>(end - buf)))};
  end = std::to_chars(buf, buf + sizeof buf, body_bytes).ptr;
  r->headers[2] = {"content-length", CopyString(std::string_view(buf, static_cast<std::size_t>(end - buf)))};
  return r;
}

// "Sends" a response: reads all of it. Returns false if it is not the intact response for `key`.
bool SendResponse(const Response *r, std::uint64_t key) {
  if (r->key != key || r->status != 200 || r->num_headers != kNumHeaders) return false;
  if (Checksum(r->body, r->body_bytes) != r->body_checksum) return false;
  std::uint64_t header_key = 0, header_length = 0;
  std::string_view key_text = r->headers[1].value, length_text = r->headers[2].value;
  std::from_chars(key_text.data(), key_text.data() + key_text.size(), header_key);
  std::from_chars(length_text.data(), length_text.data() + length_text.size(), header_length);
  return std::strcmp(r->headers[0].value, "text/plain") == 0 && header_key == key && header_length == r->body_bytes;
}

// ---- The cache ------------------------------------------------------------------------------------------------

// One LRU list entry. Trivially destructible; evicted entries are left to the collector.
struct Entry {
  Entry *prev;
  Entry *next;
  Response *response;
  std::uint64_t key;
};

// An LRU cache of at most capacity entries. Not thread-safe: Shard adds the lock.
class LruCache {
 public:
  void SetCapacity(std::size_t capacity) { capacity_ = capacity; }
  std::size_t size() const { return index_.size(); }
  std::uint64_t evictions() const { return evictions_; }

  // Drops the least recently used half of the entries (load shedding); returns how many.
  std::size_t ShedHalf() {
    std::size_t n = index_.size() / 2;
    for (std::size_t i = 0; i < n; ++i) {
      Entry *victim = tail_;
      Unlink(victim);
      index_.erase(victim->key);  // garbage now, as an eviction
    }
    return n;
  }

  // The cached response for key, now the most recently used; nullptr on a miss.
  Response *Get(std::uint64_t key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    Entry *e = it->second;
    Unlink(e);
    PushFront(e);
    return e->response;
  }

  // Caches response under key (replacing an older one), evicting the least recently used entry when full.
  void Put(std::uint64_t key, Response *response) {
    auto [it, inserted] = index_.try_emplace(key, nullptr);
    if (!inserted) {
      Entry *e = it->second;
      e->response = response;
      Unlink(e);
      PushFront(e);
      return;
    }
    Entry *e = pacegc::make<Entry>(Entry{nullptr, nullptr, response, key});
    it->second = e;
    PushFront(e);
    if (index_.size() > capacity_) {
      Entry *victim = tail_;
      Unlink(victim);
      index_.erase(victim->key);  // the map node goes back with pgc_free; victim is now garbage
      ++evictions_;
    }
  }

 private:
  void Unlink(Entry *e) {
    (e->prev ? e->prev->next : head_) = e->next;
    (e->next ? e->next->prev : tail_) = e->prev;
    e->prev = e->next = nullptr;
  }
  void PushFront(Entry *e) {
    e->next = head_;
    if (head_ != nullptr) head_->prev = e;
    head_ = e;
    if (tail_ == nullptr) tail_ = e;
  }

  using Index = std::unordered_map<std::uint64_t, Entry *, std::hash<std::uint64_t>, std::equal_to<std::uint64_t>,
                                   pacegc::allocator<std::pair<const std::uint64_t, Entry *>>>;
  Index index_;  // nodes and bucket array are collected memory, scanned, so they keep every Entry alive
  Entry *head_ = nullptr;  // most recently used
  Entry *tail_ = nullptr;  // least recently used
  std::size_t capacity_ = 0;
  std::uint64_t evictions_ = 0;
};

// Takes a shard's lock in a blocking region (pgc_do_blocking's rules: nothing collected is touched while waiting),
// so a worker waiting here for another that allocates under the same lock, and may be collecting, never delays
// the collection. Without the region the wait is interrupted by the suspend signal as usual, except under
// ThreadSanitizer, which holds that signal back while a thread waits in pthread_mutex_lock (README, "Limits").
std::unique_lock<std::mutex> LockShard(std::mutex &mu) {
  pacegc::BlockingRegion region;
  return std::unique_lock<std::mutex>(mu);
}

// The service state: shards of the cache, each behind its own lock. It must be reachable by the collector:
// main keeps it on its stack.
class Service {
 public:
  static constexpr std::size_t kShards = 16;

  explicit Service(std::uint64_t capacity) {
    for (Shard &s : shards_) s.cache.SetCapacity(std::max<std::uint64_t>(1, capacity / kShards));
  }

  Response *Get(std::uint64_t key) {
    Shard &s = ShardFor(key);
    auto lock = LockShard(s.mu);
    return s.cache.Get(key);
  }
  void Put(std::uint64_t key, Response *response) {
    Shard &s = ShardFor(key);
    auto lock = LockShard(s.mu);
    s.cache.Put(key, response);
  }
  std::size_t entries() {
    std::size_t n = 0;
    for (Shard &s : shards_) {
      auto lock = LockShard(s.mu);
      n += s.cache.size();
    }
    return n;
  }
  // The limit-event callback's action (pacegc's background thread): halves every shard.
  void ShedHalf() {
    std::uint64_t n = 0;
    for (Shard &s : shards_) {
      auto lock = LockShard(s.mu);
      n += s.cache.ShedHalf();
    }
    shed_events_.fetch_add(1, std::memory_order_relaxed);
    shed_entries_.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t shed_events() const { return shed_events_.load(std::memory_order_relaxed); }
  std::uint64_t shed_entries() const { return shed_entries_.load(std::memory_order_relaxed); }

  std::uint64_t evictions() {
    std::uint64_t n = 0;
    for (Shard &s : shards_) {
      auto lock = LockShard(s.mu);
      n += s.cache.evictions();
    }
    return n;
  }

 private:
  struct Shard {
    std::mutex mu;
    LruCache cache;
  };
  Shard &ShardFor(std::uint64_t key) { return shards_[(key * 0x9e3779b97f4a7c15ull) >> 60]; }  // top 4 bits

  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> shed_events_{0};
  std::atomic<std::uint64_t> shed_entries_{0};
};
static_assert(Service::kShards == 16, "ShardFor takes the top 4 bits of the hash");

// ---- Workers --------------------------------------------------------------------------------------------------

struct SplitMix64 {  // small, fast, deterministic per thread
  std::uint64_t state;
  std::uint64_t Next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

struct WorkerResult {  // pointer-free: lives in ordinary memory
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t corrupt = 0;              // responses that failed verification: must stay 0
  std::vector<std::uint32_t> latency_ns;  // one sample every kLatencySampleEvery requests
};

constexpr std::uint64_t kLatencySampleEvery = 16;
constexpr std::size_t kWriteQueueLength = 256;

void Serve(Service &service, const Options &opts, std::uint64_t requests, std::uint64_t seed, WorkerResult &out) {
  SplitMix64 rng{seed};
  // Responses "being written" to slow clients: kept alive here after the cache may have evicted them. The
  // vector object is on this thread's stack and its buffer is collected memory, so the collector sees them.
  std::vector<Response *, pacegc::allocator<Response *>> write_queue(kWriteQueueLength, nullptr);
  std::vector<std::uint64_t> write_queue_keys(kWriteQueueLength, 0);
  const std::uint64_t hot_keys = std::max<std::uint64_t>(1, opts.keys / 5);
  out.latency_ns.reserve(requests / kLatencySampleEvery + 1);

  for (std::uint64_t n = 0; n < requests; ++n) {
    const bool sample = n % kLatencySampleEvery == 0;
    const auto start = sample ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};

    const std::uint64_t r = rng.Next();
    const std::uint64_t key = (r % 100 < 80) ? (r >> 8) % hot_keys : (r >> 8) % opts.keys;
    Response *response = service.Get(key);
    if (response != nullptr) {
      ++out.hits;
    } else {
      ++out.misses;
      const auto body_bytes =
          static_cast<std::uint32_t>(kMinBodyBytes + rng.Next() % (kMaxBodyBytes - kMinBodyBytes + 1));
      response = BuildResponse(key, body_bytes);  // outside the shard lock: allocation may run a collection
      service.Put(key, response);
    }
    if (!SendResponse(response, key)) ++out.corrupt;

    // Finish the response that has waited longest in the write queue (it must still be intact), queue this one.
    const std::size_t slot = n % kWriteQueueLength;
    if (write_queue[slot] != nullptr && !SendResponse(write_queue[slot], write_queue_keys[slot])) ++out.corrupt;
    write_queue[slot] = response;
    write_queue_keys[slot] = key;

    if (sample) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
      out.latency_ns.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
    }
  }
  for (std::size_t slot = 0; slot < kWriteQueueLength; ++slot) {
    if (write_queue[slot] != nullptr && !SendResponse(write_queue[slot], write_queue_keys[slot])) ++out.corrupt;
  }
}

double Percentile(const std::vector<std::uint32_t> &sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

}  // namespace

int main(int argc, char **argv) {
  Options opts;
  if (!ParseOptions(argc, argv, &opts)) return 2;

  Service service(opts.capacity);  // on main's stack: scanned for as long as main runs
  std::vector<WorkerResult> results(opts.threads);
  // Shed load when the GC CPU limiter turns on (see the top of this file). `service` outlives the callback: it is
  // removed before main returns, and set_event_callback returns only once no call of it is running.
  pacegc::set_event_callback([&service](const pgc_event &ev) {
    if (pacegc::kind_of(ev) == pacegc::event_kind::limiter_on) service.ShedHalf();
  });

  const auto start = std::chrono::steady_clock::now();
  if (opts.threads == 1) {
    Serve(service, opts, opts.requests, opts.seed, results[0]);  // the main thread is registered automatically
  } else {
    std::vector<std::thread> workers;
    workers.reserve(opts.threads);
    for (unsigned t = 0; t < opts.threads; ++t) {
      const std::uint64_t share = opts.requests / opts.threads + (t < opts.requests % opts.threads ? 1 : 0);
      workers.emplace_back([&service, &opts, &results, share, t] {
        Serve(service, opts, share, opts.seed + 0x1000 * (t + 1), results[t]);
      });
    }
    for (std::thread &w : workers) w.join();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  pacegc::set_event_callback(nullptr);  // no shedding from here on
  const pgc_stats st = pacegc::stats();

  std::uint64_t hits = 0, misses = 0, corrupt = 0;
  std::vector<std::uint32_t> latency;
  for (WorkerResult &r : results) {
    hits += r.hits;
    misses += r.misses;
    corrupt += r.corrupt;
    latency.insert(latency.end(), r.latency_ns.begin(), r.latency_ns.end());
  }
  std::sort(latency.begin(), latency.end());
  const double mib = 1024.0 * 1024.0;

  std::printf("cache_service: %" PRIu64 " requests on %u thread%s in %.2f s: %.0f requests/s\n", opts.requests,
              opts.threads, opts.threads == 1 ? "" : "s", seconds, static_cast<double>(opts.requests) / seconds);
  std::printf("  cache    hit rate %.1f%%, %zu entries in %zu shards, %" PRIu64 " evictions, %" PRIu64 " keys\n",
              100.0 * static_cast<double>(hits) / static_cast<double>(hits + misses), service.entries(),
              Service::kShards, service.evictions(), opts.keys);
  std::printf("  shedding %" PRIu64 " limiter-on events, %" PRIu64 " entries shed\n", service.shed_events(),
              service.shed_entries());
  std::printf("  latency  p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us (1 in %" PRIu64 " sampled)\n",
              Percentile(latency, 0.50) / 1e3, Percentile(latency, 0.99) / 1e3, Percentile(latency, 0.999) / 1e3,
              Percentile(latency, 1.0) / 1e3, kLatencySampleEvery);
  std::printf("  gc       %" PRIu64 " collections, pauses %.2f ms total, %.2f ms max, %.3f ms mean; "
              "GC CPU %.1f%%\n",
              st.num_gc, static_cast<double>(st.pause_total_ns) / 1e6, static_cast<double>(st.pause_max_ns) / 1e6,
              st.num_gc ? static_cast<double>(st.pause_total_ns) / 1e6 / static_cast<double>(st.num_gc) : 0.0,
              100.0 * st.gc_cpu_fraction);
  std::printf("  heap     live %.1f MiB / goal %.1f MiB, in use %.1f MiB, allocated %.1f MiB in total; "
              "counted by the limit %.1f MiB\n",
              static_cast<double>(st.heap_live_bytes) / mib, static_cast<double>(st.heap_goal_bytes) / mib,
              static_cast<double>(st.heap_alloc_bytes) / mib, static_cast<double>(st.total_alloc_bytes) / mib,
              static_cast<double>(st.total_bytes) / mib);
  if (st.memory_limit_bytes == INT64_MAX) {
    std::printf("  settings GOGC=%" PRId64 ", no memory limit\n", st.gc_percent);
  } else {
    std::printf("  settings GOGC=%" PRId64 ", memory limit %.1f MiB\n", st.gc_percent,
                static_cast<double>(st.memory_limit_bytes) / mib);
  }

  if (corrupt != 0) {
    std::fprintf(stderr, "cache_service: FAILED: %" PRIu64 " responses read back damaged\n", corrupt);
    return 1;
  }
  return 0;
}
