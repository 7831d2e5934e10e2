// http_load.cpp — http_cache_load: a bounded load generator for pacegc-http-cache, on loopback only.
//
// C keep-alive connections (one thread each, cpp-httplib's client) send GET and PUT /cache/{key} requests with an
// 80/20 key skew (80% of requests go to the first 20% of the keys) until --requests have been sent or --seconds
// have passed, whichever comes first. Every request's latency is recorded (send to last byte received).
// It does not link pacegc: the client's own memory management stays out of the measurement.
//
// Prints one line of key=value figures on stdout (requests, errors, seconds, rps, p50_us, p99_us, p999_us, max_us,
// gets, puts, hits, misses), and with --timeline FILE a CSV of the same per second of the run.
// Refuses any host but loopback (127.0.0.0/8, ::1, localhost): this is a test tool, not a traffic generator.
//
// Usage: http_cache_load --port N [--host H] [--connections C] [--seconds S] [--requests N] [--keys K]
//                        [--min-bytes B] [--max-bytes B] [--put-percent P] [--seed S] [--timeline FILE]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  unsigned connections = 4;
  std::uint64_t seconds = 30;
  std::uint64_t requests = 1'000'000;
  std::uint64_t keys = 20'000;
  std::uint64_t min_bytes = 1024;
  std::uint64_t max_bytes = 16384;
  std::uint64_t put_percent = 30;
  std::uint64_t seed = 1;
  std::string timeline;
};

[[noreturn]] void Die(const std::string &message) {
  std::fprintf(stderr, "http_cache_load: %s\n", message.c_str());
  std::exit(2);
}

std::uint64_t ParseUint(const char *flag, const char *text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t v = 0;
  const std::string_view s = text;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < min || v > max) {
    Die(std::string(flag) + " needs an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
        "], got '" + text + "'");
  }
  return v;
}

Options ParseOptions(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) Die(std::string(a) + ": unknown or missing value");
    const char *v = argv[++i];
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = static_cast<int>(ParseUint("--port", v, 1, 65535));
    else if (a == "--connections") o.connections = static_cast<unsigned>(ParseUint("--connections", v, 1, 64));
    else if (a == "--seconds") o.seconds = ParseUint("--seconds", v, 1, 600);
    else if (a == "--requests") o.requests = ParseUint("--requests", v, 1, 100'000'000);
    else if (a == "--keys") o.keys = ParseUint("--keys", v, 1, 100'000'000);
    else if (a == "--min-bytes") o.min_bytes = ParseUint("--min-bytes", v, 0, 64 << 20);
    else if (a == "--max-bytes") o.max_bytes = ParseUint("--max-bytes", v, 0, 64 << 20);
    else if (a == "--put-percent") o.put_percent = ParseUint("--put-percent", v, 0, 100);
    else if (a == "--seed") o.seed = ParseUint("--seed", v, 0, UINT64_MAX);
    else if (a == "--timeline") o.timeline = v;
    else Die("unknown argument '" + std::string(a) + "'");
  }
  if (o.port == 0) Die("--port is required");
  if (o.min_bytes > o.max_bytes) Die("--min-bytes exceeds --max-bytes");
  if (o.host != "localhost" && o.host != "::1" && o.host.rfind("127.", 0) != 0) {
    Die("refusing host '" + o.host + "': loopback only (127.0.0.0/8, ::1, localhost)");
  }
  return o;
}

struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t Next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

struct Sample {
  std::uint32_t at_ms;       // since the start of the run
  std::uint32_t latency_us;  // at least 1
};

struct Result {
  std::vector<Sample> samples;
  std::uint64_t errors = 0, gets = 0, puts = 0, hits = 0, misses = 0;
  std::vector<std::uint32_t> error_at_ms;
};

double Percentile(const std::vector<std::uint32_t> &sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1))];
}

}  // namespace

int main(int argc, char **argv) {
  const Options o = ParseOptions(argc, argv);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(o.seconds);
  std::atomic<std::uint64_t> issued{0};
  std::vector<Result> results(o.connections);
  std::vector<std::thread> threads;
  const std::string payload(o.max_bytes, 'v');

  for (unsigned c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      SplitMix64 rng{o.seed * 0x1000 + c};
      httplib::Client client(o.host, o.port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);  // headers and body go out in separate sends (see the service)
      client.set_read_timeout(60, 0);
      client.set_write_timeout(60, 0);
      Result &r = results[c];
      const std::uint64_t hot = std::max<std::uint64_t>(1, o.keys / 5);
      while (issued.fetch_add(1) < o.requests) {
        const auto t0 = std::chrono::steady_clock::now();
        if (t0 >= deadline) break;
        const std::uint64_t x = rng.Next();
        const std::uint64_t key = (x % 100 < 80) ? (x >> 8) % hot : (x >> 8) % o.keys;
        const std::string path = "/cache/k" + std::to_string(key);
        bool ok = false;
        if (rng.Next() % 100 < o.put_percent) {
          ++r.puts;
          const std::uint64_t bytes = o.min_bytes + rng.Next() % (o.max_bytes - o.min_bytes + 1);
          auto res = client.Put(path, payload.data(), bytes, "application/octet-stream");
          ok = res && (res->status == 201 || res->status == 204);
        } else {
          ++r.gets;
          auto res = client.Get(path);
          ok = res && (res->status == 200 || res->status == 404);
          if (ok) (res->status == 200 ? r.hits : r.misses)++;
        }
        const auto t1 = std::chrono::steady_clock::now();
        const auto at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(t1 - start).count();
        if (!ok) {
          ++r.errors;
          r.error_at_ms.push_back(static_cast<std::uint32_t>(at_ms));
          continue;
        }
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
        r.samples.push_back({static_cast<std::uint32_t>(at_ms), static_cast<std::uint32_t>(std::max<long>(1, us))});
      }
    });
  }
  for (auto &t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  Result all;
  std::vector<std::uint32_t> latencies;
  for (Result &r : results) {
    all.errors += r.errors, all.gets += r.gets, all.puts += r.puts, all.hits += r.hits, all.misses += r.misses;
    all.samples.insert(all.samples.end(), r.samples.begin(), r.samples.end());
    all.error_at_ms.insert(all.error_at_ms.end(), r.error_at_ms.begin(), r.error_at_ms.end());
  }
  for (const Sample &s : all.samples) latencies.push_back(s.latency_us);
  std::sort(latencies.begin(), latencies.end());
  std::printf("requests=%zu errors=%" PRIu64 " seconds=%.2f rps=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f "
              "max_us=%.0f gets=%" PRIu64 " puts=%" PRIu64 " hits=%" PRIu64 " misses=%" PRIu64 "\n",
              all.samples.size(), all.errors, seconds, static_cast<double>(all.samples.size()) / seconds,
              Percentile(latencies, 0.5), Percentile(latencies, 0.99), Percentile(latencies, 0.999),
              Percentile(latencies, 1.0), all.gets, all.puts, all.hits, all.misses);

  if (!o.timeline.empty()) {
    std::FILE *f = std::fopen(o.timeline.c_str(), "w");
    if (f == nullptr) Die("cannot write " + o.timeline);
    const std::size_t n = static_cast<std::size_t>(seconds) + 1;
    std::vector<std::vector<std::uint32_t>> by_second(n);
    std::vector<std::uint64_t> errors(n);
    for (const Sample &s : all.samples) by_second[std::min<std::size_t>(n - 1, s.at_ms / 1000)].push_back(s.latency_us);
    for (std::uint32_t at : all.error_at_ms) ++errors[std::min<std::size_t>(n - 1, at / 1000)];
    std::fprintf(f, "second,requests,errors,p50_us,p99_us,max_us\n");
    for (std::size_t i = 0; i < n; ++i) {
      std::sort(by_second[i].begin(), by_second[i].end());
      std::fprintf(f, "%zu,%zu,%" PRIu64 ",%.0f,%.0f,%.0f\n", i, by_second[i].size(), errors[i],
                   Percentile(by_second[i], 0.5), Percentile(by_second[i], 0.99), Percentile(by_second[i], 1.0));
    }
    std::fclose(f);
  }
  return all.errors == 0 ? 0 : 1;
}
