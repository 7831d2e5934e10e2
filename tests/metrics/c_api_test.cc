// Runs the C scenarios of c_api.c (the metrics C API used from a C translation unit), and checks pgc_metrics_log
// and the C++ wrapper of pacegc.hpp on the process-wide registry.
#include <catch2/catch.hpp>

#include <pacegc/pacegc.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>

extern "C" {
int c_api_counters_and_gauges(char *failure, size_t failure_size);
int c_api_misuse(char *failure, size_t failure_size);
int c_api_histogram_meter_timer(char *failure, size_t failure_size);
int c_api_each_and_unregister(char *failure, size_t failure_size);
}

namespace {
using Scenario = int (*)(char *, size_t);
void Run(Scenario s) {
  char failure[512] = "";
  int line = s(failure, sizeof(failure));
  INFO(failure);
  CHECK(line == 0);
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}
}  // namespace

TEST_CASE("C API: counters and gauges", "[metrics][c-api]") { Run(c_api_counters_and_gauges); }
TEST_CASE("C API: misuse returns NULL or an errno code", "[metrics][c-api]") { Run(c_api_misuse); }
TEST_CASE("C API: histogram, meter and timer snapshots", "[metrics][c-api]") { Run(c_api_histogram_meter_timer); }
TEST_CASE("C API: iteration in name order and unregister", "[metrics][c-api]") { Run(c_api_each_and_unregister); }

TEST_CASE("pgc_metrics_log writes the default registry's block", "[metrics][c-api]") {
  pgc_counter_inc(pgc_counter_get("c_api/log/count"), 5);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  CHECK(pgc_metrics_log(fds[1]) == 0);
  CHECK(pgc_metrics_log(-1) == EBADF);
  close(fds[1]);
  std::string text = ReadAll(fds[0]);
  close(fds[0]);
  CHECK(text.rfind("metrics: t=", 0) == 0);
  CHECK(text.find("\nmetrics: counter c_api/log/count count=5\n") != std::string::npos);
}

TEST_CASE("C++ wrapper: handles, kind clash throws, timer scope", "[metrics][cpp-api]") {
  pacegc::metrics::counter requests("cpp/requests");
  requests.inc();
  requests.inc(2);
  CHECK(pacegc::metrics::counter("cpp/requests").count() == 3);

  try {
    pacegc::metrics::meter clash("cpp/requests");
    FAIL("no exception for a kind clash");
  } catch (const std::system_error &e) {
    CHECK(e.code().value() == EEXIST);
    CHECK(std::string(e.what()).find("cpp/requests") != std::string::npos);
  }
  CHECK_THROWS_AS(pacegc::metrics::gauge("bad name"), std::system_error);

  pacegc::metrics::histogram sizes("cpp/sizes");
  for (int i = 1; i <= 100; ++i) sizes.update(i);
  pgc_histogram_values v = sizes.snapshot();
  CHECK(v.count == 100);
  CHECK(v.p95 == Approx(95.95));

  pacegc::metrics::timer latency("cpp/latency");
  { auto scope = latency.time(); }
  latency.update(std::chrono::microseconds(5));
  pgc_histogram_values d = latency.durations();
  CHECK(d.count == 2);
  CHECK(d.max >= 5000);
  CHECK(latency.rates().count == 2);

  pacegc::metrics::meter m("cpp/meter");
  m.mark(4);
  CHECK(m.snapshot().count == 4);
  pacegc::metrics::gauge_float gf("cpp/gf");
  gf.update(1.5);
  CHECK(gf.value() == 1.5);

  CHECK(pacegc::metrics::unregister("cpp/meter"));
  CHECK_FALSE(pacegc::metrics::unregister("cpp/meter"));
}
