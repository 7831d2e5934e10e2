// metrics/log: the block format written once (to a pipe), and the periodic logger thread.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/clock.h"
#include "metrics/log.h"
#include "metrics/registry.h"

using namespace pacegc::metrics;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

// Writes one block of r into a pipe and reads it back.
std::string LogToString(const Registry &r) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  int rc = WriteLog(r, fds[1]);
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  REQUIRE(rc == 0);
  return out;
}

std::vector<std::string> Lines(const std::string &text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "metrics: <kind> <name> k=v k=v ..." → kind, name and the key/value pairs.
struct Line {
  std::string kind, name;
  std::map<std::string, std::string> values;
};
Line ParseLine(const std::string &line) {
  std::istringstream in(line);
  std::string prefix;
  Line l;
  in >> prefix >> l.kind >> l.name;
  CHECK(prefix == "metrics:");
  for (std::string kv; in >> kv;) {
    auto eq = kv.find('=');
    REQUIRE(eq != std::string::npos);
    l.values[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return l;
}
double Num(const Line &l, const std::string &key) {
  auto it = l.values.find(key);
  REQUIRE(it != l.values.end());
  return std::strtod(it->second.c_str(), nullptr);
}

}  // namespace

TEST_CASE("log block: a header, then one line per metric in name order with its values", "[metrics][log]") {
  ManualClock clock(100 * kSecond);
  Registry r(&clock, 1);
  r.GetCounter("a.count")->Inc(42);
  r.GetGauge("b.gauge")->Update(-7);
  r.GetGaugeFloat("c.float")->Update(0.75);
  r.GetMeter("d.meter")->Mark(3);
  Histogram *h = r.GetHistogram("e.hist");
  for (int i = 1; i <= 100; ++i) h->Update(i);
  Timer *t = r.GetTimer("f.timer");
  t->UpdateNs(1000);
  t->UpdateNs(3000);
  clock.Advance(5 * kSecond);

  std::vector<std::string> lines = Lines(LogToString(r));
  REQUIRE(lines.size() == 7);
  CHECK(lines[0] == "metrics: t=5.000s n=6");
  CHECK(lines[1] == "metrics: counter a.count count=42");
  CHECK(lines[2] == "metrics: gauge b.gauge value=-7");
  CHECK(lines[3] == "metrics: gauge_float c.float value=0.75");
  CHECK(lines[4] == "metrics: meter d.meter count=3 rate1=0.6 rate5=0.6 rate15=0.6 rate_mean=0.6");

  Line hist = ParseLine(lines[5]);
  CHECK(hist.kind == "histogram");
  CHECK(hist.name == "e.hist");
  CHECK(hist.values.size() == 10);
  CHECK(hist.values["count"] == "100");
  CHECK(hist.values["min"] == "1");
  CHECK(hist.values["max"] == "100");
  CHECK(Num(hist, "mean") == Approx(50.5));
  CHECK(Num(hist, "stddev") == Approx(std::sqrt(833.25)));
  CHECK(Num(hist, "p50") == Approx(50.5));
  CHECK(Num(hist, "p75") == Approx(75.75));
  CHECK(Num(hist, "p95") == Approx(95.95));
  CHECK(Num(hist, "p99") == Approx(99.99));
  CHECK(Num(hist, "p999") == Approx(100));

  Line timer = ParseLine(lines[6]);
  CHECK(timer.kind == "timer");
  CHECK(timer.name == "f.timer");
  CHECK(timer.values.size() == 14);
  CHECK(timer.values["count"] == "2");
  CHECK(timer.values["min_ns"] == "1000");
  CHECK(timer.values["max_ns"] == "3000");
  CHECK(Num(timer, "mean_ns") == Approx(2000));
  CHECK(Num(timer, "stddev_ns") == Approx(1000));
  CHECK(Num(timer, "p50_ns") == Approx(2000));  // pos 1.5 → 1000 + 0.5 × 2000
  CHECK(Num(timer, "rate1") == Approx(0.4));
  CHECK(Num(timer, "rate_mean") == Approx(0.4));
}

TEST_CASE("log block of an empty registry is its header", "[metrics][log]") {
  ManualClock clock;
  Registry r(&clock, 1);
  CHECK(LogToString(r) == "metrics: t=0.000s n=0\n");
}

TEST_CASE("log write to a bad fd returns the errno", "[metrics][log]") {
  ManualClock clock;
  Registry r(&clock, 1);
  CHECK(WriteLog(r, -1) == EBADF);
}

TEST_CASE("the periodic logger writes whole blocks until stopped", "[metrics][log]") {
  ManualClock clock;
  Registry r(&clock, 1);
  r.GetCounter("ticks")->Inc(9);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  CHECK(StartLogger(&r, 500'000, fds[1]) == EINVAL);  // below 1 ms
  CHECK(StartLogger(nullptr, 1'000'000, fds[1]) == EINVAL);
  REQUIRE(StartLogger(&r, 2'000'000, fds[1]) == 0);
  CHECK(LoggerIntervalNs() == 2'000'000);
  REQUIRE(StartLogger(&r, 1'000'000, fds[1]) == 0);  // restart with another interval: still one logger
  CHECK(LoggerIntervalNs() == 1'000'000);

  // Wait (without a time limit: a blocking read) for three blocks.
  std::string text;
  char buf[256];
  auto blocks = [&] {
    size_t n = 0;
    for (size_t p = 0; (p = text.find("metrics: counter ticks count=9\n", p)) != std::string::npos; ++p) ++n;
    return n;
  };
  while (blocks() < 3) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    REQUIRE(n > 0);
    text.append(buf, static_cast<size_t>(n));
  }
  StopLogger();
  CHECK(LoggerIntervalNs() == 0);
  close(fds[1]);  // safe: StopLogger waited for the last write
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);

  // Everything written is a sequence of complete two-line blocks.
  std::vector<std::string> lines = Lines(text);
  REQUIRE(text.back() == '\n');
  REQUIRE(lines.size() % 2 == 0);
  for (size_t i = 0; i < lines.size(); i += 2) {
    CHECK(lines[i] == "metrics: t=0.000s n=1");
    CHECK(lines[i + 1] == "metrics: counter ticks count=9");
  }
  StopLogger();  // stopping a stopped logger is harmless
}
