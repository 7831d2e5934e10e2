// PACEGC_METRICS_LOG: the parser (pure, in pacer/config.h; the settings table uses it), and the start-up rule in a
// child process: malformed → one line naming the variable, the value and the accepted forms, exit status 2;
// valid → the logger runs at that interval and the process still exits normally.
#include <catch2/catch.hpp>

#include <string>

#include "../common/run_probe.h"

#include "pacer/config.h"

namespace {

using Outcome = pgc_test::ProbeOutcome;
Outcome RunProbe(const std::string &env) { return pgc_test::RunProbeWithEnv(env, PACEGC_METRICS_ENV_PROBE); }

}  // namespace

TEST_CASE("PACEGC_METRICS_LOG accepts Go durations of at least 1ms, and off", "[metrics][env]") {
  struct Case {
    const char *text;
    int64_t ns;
  };
  for (Case c : {Case{"500ms", 500'000'000}, Case{"10s", 10'000'000'000}, Case{"1m", 60'000'000'000},
                 Case{"1m30s", 90'000'000'000}, Case{"1.5h", 5'400'000'000'000}, Case{"1ms", 1'000'000},
                 Case{"0.001s", 1'000'000}, Case{"2500us", 2'500'000}, Case{"1000000ns", 1'000'000},
                 Case{"1.s", 1'000'000'000}, Case{".5s", 500'000'000}, Case{"off", 0}, Case{"", 0}}) {
    INFO(c.text);
    int64_t ns = -1;
    std::string error;
    CHECK(pacegc::pacer::ParseMetricsLogInterval(c.text, &ns, &error));
    CHECK(ns == c.ns);
  }
}

TEST_CASE("PACEGC_METRICS_LOG refuses anything else with one line naming it", "[metrics][env]") {
  struct Case {
    const char *text;
    const char *why;
  };
  for (Case c : {Case{"10", "missing unit"}, Case{"10x", "unknown unit"}, Case{"10 s", "unknown unit"},
                 Case{"-1s", "a sign is not accepted"}, Case{"+1s", "a sign is not accepted"},
                 Case{"s", "expected a number"}, Case{"1e3s", "unknown unit"}, Case{"500us", "shorter than 1ms"},
                 Case{"0s", "shorter than 1ms"}, Case{"9999999999h", "longer than 2^63-1 ns"},
                 Case{"OFF", "expected a number"}}) {
    INFO(c.text);
    int64_t ns = -1;
    std::string e;
    CHECK_FALSE(pacegc::pacer::ParseMetricsLogInterval(c.text, &ns, &e));
    CHECK(ns == -1);
    CHECK(e.find(std::string("malformed PACEGC_METRICS_LOG=\"") + c.text + "\"") == 0);
    CHECK(e.find(c.why) != std::string::npos);
    CHECK(e.find("PACEGC_METRICS_LOG=500ms") != std::string::npos);  // the accepted forms, with examples
    CHECK(e.find('\n') == std::string::npos);
  }
}

TEST_CASE("malformed PACEGC_METRICS_LOG exits 2 at start-up with the message", "[metrics][env]") {
  for (const char *bad : {"10", "1x", "fast"}) {
    INFO(bad);
    Outcome o = RunProbe(std::string("PACEGC_METRICS_LOG=") + bad);
    CHECK(o.status == 2);
    CHECK(o.stderr_text.find(std::string("pacegc: malformed PACEGC_METRICS_LOG=\"") + bad + "\"") !=
          std::string::npos);
    CHECK(o.stderr_text.find("probe ok") == std::string::npos);
  }
}

TEST_CASE("valid PACEGC_METRICS_LOG starts the logger; the process still exits normally", "[metrics][env]") {
  Outcome o = RunProbe("PACEGC_METRICS_LOG=250ms");
  CHECK(o.status == 0);
  CHECK(o.stderr_text.find("probe ok interval_ns=250000000") != std::string::npos);
  // 1ms: the detached logger is very likely mid-block when main returns.
  Outcome fast = RunProbe("PACEGC_METRICS_LOG=1ms");
  CHECK(fast.status == 0);
  CHECK(fast.stderr_text.find("probe ok interval_ns=1000000") != std::string::npos);
  Outcome off = RunProbe("PACEGC_METRICS_LOG=off");
  CHECK(off.status == 0);
  CHECK(off.stderr_text.find("probe ok interval_ns=0") != std::string::npos);
}
