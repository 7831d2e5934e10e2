// Malformed environment settings stop the process at initialisation with exit status 2 and one clear line.
// Runs the probe program (a main() that allocates once) with each environment and checks status and message.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <pacegc/pacegc.h>

#include "../common/run_probe.h"
#include "settings/settings.h"

namespace {

using Outcome = pgc_test::ProbeOutcome;
Outcome RunProbe(const std::string &env) { return pgc_test::RunProbeWithEnv(env, PACEGC_ENV_PROBE); }

// Runs the probe with only `name` set among the settings table's variables (the others unset, whatever the
// caller's shell holds), to `value` (single-quoted for the shell; no value here contains a quote).
Outcome RunProbeWithOnly(const std::string &name, const std::string &value) {
  std::string env;
  for (const pacegc::settings::Entry &e : pacegc::settings::Table()) env += std::string("-u ") + e.name + " ";
  return RunProbe(env + name + "='" + value + "'");
}

// For every variable of the settings table: values a program may start with, and malformed ones, each of which
// must stop the program at start-up with exit status 2 and one line naming the variable.
struct Cases {
  std::vector<std::string> valid;
  std::vector<std::string> malformed;
};
const std::map<std::string, Cases> &CasesByVariable() {
  static const std::map<std::string, Cases> cases = {
      {"GOGC", {{"100", "off", "50", "-0", "-1", "+200"}, {"1OO", "", "100%", "2147483648", "0x10", "of"}}},
      {"GOMEMLIMIT", {{"off", "", "1GiB", "460MiB", "1048576", "4096B"}, {"1G", "1GB", "1024Mi", "-1", "1 GiB", "1gib"}}},
      {"PACEGC_AUTOMEMLIMIT", {{"off", "0.9", "1", ".5"}, {"0", "1.5", "90%", "on", "", "-0.5"}}},
      {"PACEGC_HARD_MEMLIMIT",
       {{"off", "1GiB", "64MiB", "268435456"}, {"", "64M", "1GB", "-1", "lots", "64 MiB", "9223372036854775808"}}},
      {"PACEGC_SUSPEND_SIGNAL", {{"", "10", "12", "39", "64"}, {"9", "2", "17", "32", "0", "65", "SIGUSR1", "x"}}},
      {"GODEBUG",
       {{"gctrace=0", "madvdontneed=1,gctrace=0", "x", "scavtrace=0,gcpacertrace=0"},
        {"gctrace=x", "gctrace=", "scavtrace=-1", "gcpacertrace=1e3", "x=1,gctrace=on"}}},
      {"PACEGC_TRACE", {{"/dev/null"}, {"", "/nonexistent-pacegc-dir/trace.json"}}},
      {"PACEGC_ABORT_ON_MISUSE",
       {{"on", "off", "yes", "no", "true", "false", "1", "0"}, {"", "maybe", "YES", "2", "enabled", " on"}}},
      {"PACEGC_CPU_LIMITER",
       {{"on", "off", "yes", "no", "true", "false", "1", "0"}, {"", "maybe", "Off", "2", "disabled"}}},
      {"PACEGC_CONCURRENT", {{"", "off", "on", "always"}, {"yes", "1", "On", "Always", " on", "concurrent"}}},
      {"PACEGC_FINALIZERS", {{"", "thread", "on-demand"}, {"threads", "ondemand", "On-demand", "x", " thread"}}},
      {"PACEGC_MALLOC", {{"", "manual", "collect", "find-leak"}, {"findleak", "Manual", "off", " manual", "collected"}}},
      {"PACEGC_LEAK_SAMPLE", {{"", "1", "512KiB", "4096", "1GiB"}, {"0", "off", "-1", "1.5MiB", "1 KiB", "1kb"}}},
      {"PACEGC_METRICS_LOG", {{"off", "", "1h"}, {"10", "fast", "500us", "-1s", "on"}}},
  };
  return cases;
}

}  // namespace

TEST_CASE("every variable of the settings table has start-up cases here, and nothing else does", "[env]") {
  std::set<std::string> table;
  for (const pacegc::settings::Entry &e : pacegc::settings::Table()) {
    INFO(e.name);
    table.insert(e.name);
    CHECK(CasesByVariable().count(e.name) == 1);  // a new setting needs valid and malformed cases below
  }
  for (const auto &[name, cases] : CasesByVariable()) {
    INFO(name);
    CHECK(table.count(name) == 1);
    CHECK_FALSE(cases.valid.empty());
    CHECK_FALSE(cases.malformed.empty());
  }
}

TEST_CASE("every setting: each malformed value stops the program with one line naming the variable, exit 2",
          "[env]") {
  for (const pacegc::settings::Entry &e : pacegc::settings::Table()) {
    auto it = CasesByVariable().find(e.name);
    if (it == CasesByVariable().end()) continue;  // reported by the test case above
    for (const std::string &bad : it->second.malformed) {
      INFO(e.name << "='" << bad << "'");
      Outcome o = RunProbeWithOnly(e.name, bad);
      INFO(o.stderr_text);
      CHECK(o.status == 2);
      CHECK(std::count(o.stderr_text.begin(), o.stderr_text.end(), '\n') == 1);
      CHECK(o.stderr_text.rfind("pacegc: ", 0) == 0);
      CHECK(o.stderr_text.find(e.name) != std::string::npos);
      CHECK(o.stderr_text.find("probe ok") == std::string::npos);
    }
  }
}

TEST_CASE("every setting: each valid value starts the program normally", "[env]") {
  for (const pacegc::settings::Entry &e : pacegc::settings::Table()) {
    auto it = CasesByVariable().find(e.name);
    if (it == CasesByVariable().end()) continue;  // reported by the first test case
    for (const std::string &good : it->second.valid) {
      INFO(e.name << "='" << good << "'");
      Outcome o = RunProbeWithOnly(e.name, good);
      INFO(o.stderr_text);
      CHECK(o.status == 0);
      CHECK(o.stderr_text.find("probe ok 1 ") != std::string::npos);
      CHECK(o.stderr_text.find("pacegc: ") == std::string::npos);
    }
  }
}

TEST_CASE("with several malformed settings, the first in table order is the one line reported", "[env]") {
  // The settings are read at one point, in table order: one line, never one per variable.
  Outcome o = RunProbe("GOGC=x PACEGC_CPU_LIMITER=y PACEGC_METRICS_LOG=z");
  INFO(o.stderr_text);
  CHECK(o.status == 2);
  CHECK(std::count(o.stderr_text.begin(), o.stderr_text.end(), '\n') == 1);
  CHECK(o.stderr_text.find("pacegc: malformed GOGC=\"x\"") == 0);
}

TEST_CASE("valid GOGC and GOMEMLIMIT start normally", "[env]") {
  for (const char *env : {"GOGC=100", "GOGC=off", "GOGC=50 GOMEMLIMIT=460MiB", "GOMEMLIMIT=off", "GOMEMLIMIT=1GiB"}) {
    INFO(env);
    Outcome o = RunProbe(env);
    CHECK(o.status == 0);
    CHECK(o.stderr_text.find("probe ok") != std::string::npos);
  }
}

TEST_CASE("malformed GOGC exits 2 naming the variable and value", "[env]") {
  Outcome o = RunProbe("GOGC=1OO");
  CHECK(o.status == 2);
  CHECK(o.stderr_text.find("malformed GOGC=\"1OO\"") != std::string::npos);
  CHECK(o.stderr_text.find("probe ok") == std::string::npos);
}

TEST_CASE("malformed GOMEMLIMIT exits 2 naming the variable and value", "[env]") {
  for (const char *bad : {"1G", "1GB", "1024Mi"}) {
    Outcome o = RunProbe(std::string("GOMEMLIMIT=") + bad);
    INFO(bad);
    CHECK(o.status == 2);
    CHECK(o.stderr_text.find(std::string("malformed GOMEMLIMIT=\"") + bad + "\"") != std::string::npos);
  }
}

TEST_CASE("malformed PACEGC_AUTOMEMLIMIT exits 2 naming the variable and value", "[env]") {
  for (const char *bad : {"0", "1.5", "90%", "on", ""}) {
    Outcome o = RunProbe(std::string("PACEGC_AUTOMEMLIMIT='") + bad + "'");
    INFO(bad);
    CHECK(o.status == 2);
    CHECK(o.stderr_text.find(std::string("pacegc: malformed PACEGC_AUTOMEMLIMIT=\"") + bad + "\"") !=
          std::string::npos);
    CHECK(o.stderr_text.find("probe ok") == std::string::npos);
  }
  for (const char *good : {"off", "0.9", "1", "0.25"}) {
    INFO(good);
    Outcome o = RunProbe(std::string("PACEGC_AUTOMEMLIMIT=") + good);
    CHECK(o.status == 0);
    CHECK(o.stderr_text.find("probe ok") != std::string::npos);
  }
}

TEST_CASE("malformed PACEGC_SUSPEND_SIGNAL exits 2", "[env]") {
  Outcome o = RunProbe("PACEGC_SUSPEND_SIGNAL=9");
  CHECK(o.status == 2);
  CHECK(o.stderr_text.find("PACEGC_SUSPEND_SIGNAL") != std::string::npos);
  Outcome ok = RunProbe("PACEGC_SUSPEND_SIGNAL=40");
  CHECK(ok.status == 0);
}

TEST_CASE("PACEGC_SUSPEND_SIGNAL: signals with a meaning of their own are refused, naming the variable", "[env]") {
  // SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGWINCH, SIGPWR; 32 and 33 (glibc's own); out of range.
  for (const char *bad : {"2", "3", "13", "14", "15", "17", "28", "30", "32", "33", "0", "65", "SIGUSR1"}) {
    INFO(bad);
    Outcome o = RunProbe(std::string("PACEGC_SUSPEND_SIGNAL=") + bad);
    CHECK(o.status == 2);
    CHECK(o.stderr_text.find(std::string("pacegc: malformed PACEGC_SUSPEND_SIGNAL=\"") + bad + "\"") !=
          std::string::npos);
    CHECK(o.stderr_text.find("probe ok") == std::string::npos);
  }
  for (const char *good : {"10", "12", "34", "39", "64"}) {  // SIGUSR1, SIGUSR2, SIGRTMIN, the default, SIGRTMAX
    INFO(good);
    Outcome o = RunProbe(std::string("PACEGC_SUSPEND_SIGNAL=") + good);
    CHECK(o.status == 0);
    CHECK(o.stderr_text.find("probe ok") != std::string::npos);
  }
}

TEST_CASE("a newline in a malformed value is escaped: the message stays one line", "[env]") {
  // The shell builds the value with printf, so it really holds a newline.
  for (const char *var : {"GOGC", "GOMEMLIMIT", "PACEGC_SUSPEND_SIGNAL", "PACEGC_CPU_LIMITER", "PACEGC_METRICS_LOG",
                          "PACEGC_AUTOMEMLIMIT", "PACEGC_HARD_MEMLIMIT"}) {
    INFO(var);
    Outcome o = RunProbe(std::string(var) + "=\"$(printf '1\\npacegc: forged line')\"");
    CHECK(o.status == 2);
    CHECK(o.stderr_text.find(std::string(var) + "=\"1\\npacegc: forged line\"") != std::string::npos);
    CHECK(o.stderr_text.find("\npacegc: forged line") == std::string::npos);
    CHECK(std::count(o.stderr_text.begin(), o.stderr_text.end(), '\n') == 1);
  }
}

TEST_CASE("GOGC=-0 is 0 (collect at every opportunity), as in Go, not off", "[env]") {
  Outcome o = RunProbe("GOGC=-0");
  INFO(o.stderr_text);
  CHECK(o.status == 0);
  CHECK(o.stderr_text.find("probe ok 1 gc_percent=0\n") != std::string::npos);
  int percent = -5;
  CHECK(pgc_parse_gc_percent("-0", &percent, nullptr, 0) == 0);
  CHECK(percent == 0);
}

TEST_CASE("PACEGC_METRICS_LOG is read at start-up by a program that uses no metrics function", "[env][metrics]") {
  // Issue 16: nothing in the library read it. A program that only allocates and collects must get the logger...
  Outcome o = RunProbe("PACEGC_METRICS_LOG=5ms ENV_PROBE_SLEEP_MS=300");
  INFO(o.stderr_text);
  CHECK(o.status == 0);
  CHECK(o.stderr_text.find("metrics: t=") != std::string::npos);
  // One collection: one pause, or two when it marked concurrently (PACEGC_CONCURRENT=on in the environment).
  CHECK((o.stderr_text.find("metrics: timer /pacegc/gc/pause:seconds count=1 ") != std::string::npos ||
         o.stderr_text.find("metrics: timer /pacegc/gc/pause:seconds count=2 ") != std::string::npos));
  // ...and be refused at start-up for a malformed value, like GOGC.
  Outcome bad = RunProbe("PACEGC_METRICS_LOG=fast");
  CHECK(bad.status == 2);
  CHECK(bad.stderr_text.find("pacegc: malformed PACEGC_METRICS_LOG=\"fast\"") != std::string::npos);
  CHECK(bad.stderr_text.find("probe ok") == std::string::npos);
}
