// The traces of gc/trace.h end to end: the trace probe (tests/unit/trace_probe.c: known forced and automatic
// cycles, finalizers, a memory peak, pgc_free_os_memory) runs as a child process with GODEBUG or PACEGC_TRACE set;
// its stderr lines are parsed with the documented formats and counted against the probe's pgc_read_stats, and the
// trace file is validated by trace_check.py (json, nesting per thread, every phase of every cycle).
#include <catch2/catch.hpp>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "base/dirty.h"

namespace {

struct Outcome {
  int status = -1;
  std::string out;                 // stdout
  std::vector<std::string> lines;  // stderr, line by line
  std::map<std::string, unsigned long long> stats;  // the probe's "key=value" stdout
};

std::string TempDir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/pacegc-trace-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    return std::string(tmpl);
  }();
  return dir;
}

std::string ReadFile(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs `program args` with exactly the given pacegc-related environment (the caller's GOGC, GODEBUG, ... unset).
Outcome Run(const std::string &env, const std::string &program, const std::string &args) {
  std::string out = TempDir() + "/stdout", err = TempDir() + "/stderr";
  std::string cmd = "env -u GOGC -u GOMEMLIMIT -u GODEBUG -u PACEGC_TRACE -u PACEGC_METRICS_LOG " + env + " " +
                    program + " " + args + " >" + out + " 2>" + err;
  int rc = system(cmd.c_str());
  Outcome o;
  o.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  o.out = ReadFile(out);
  std::istringstream lines(ReadFile(err));
  for (std::string line; std::getline(lines, line);) o.lines.push_back(line);
  std::istringstream fields(o.out);
  for (std::string field; fields >> field;) {
    size_t eq = field.find('=');
    if (eq != std::string::npos) o.stats[field.substr(0, eq)] = std::stoull(field.substr(eq + 1));
  }
  return o;
}

// 5 forced collections (+ 7 around the peak, + 1 from pgc_free_os_memory), 48 MiB of garbage from two threads.
// No limit from the cgroup the tests may run in: it would add a "pacegc: memory limit" line (cgroup_test checks
// that line).
Outcome RunProbe(const std::string &env, const char *args = "5 48 1 0") {
  Outcome o = Run("PACEGC_AUTOMEMLIMIT=off " + env, PACEGC_TRACE_PROBE, args);
  INFO(o.out);
  REQUIRE(o.status == 0);
  REQUIRE(o.stats.count("num_gc") == 1);
  return o;
}

std::vector<std::string> Matching(const std::vector<std::string> &lines, const std::string &prefix) {
  std::vector<std::string> m;
  for (const std::string &l : lines) {
    if (l.compare(0, prefix.size(), prefix) == 0) m.push_back(l);
  }
  return m;
}

const char *const kMs = R"((\d+(?:\.\d{1,3})?))";

}  // namespace

TEST_CASE("gctrace=1: one Go-format line per cycle, numbered, forced ones marked", "[trace]") {
  Outcome o = RunProbe("GODEBUG=gctrace=1");
  std::string ms = kMs;
  std::regex format("gc (\\d+) @(\\d+\\.\\d{3})s (\\d+)%: " + ms + "\\+" + ms + "\\+" + ms + " ms clock, " + ms +
                    "\\+" + ms + "/" + ms + "/" + ms + "\\+" + ms +
                    " ms cpu, (\\d+)->(\\d+)->(\\d+) MB, (\\d+) MB goal, (\\d+) MB stacks, (\\d+) MB globals, "
                    "(\\d+) P( \\(forced\\)| \\(periodic\\))?( \\(concurrent: pauses " + ms + "\\+" + ms +
                    " ms, mark thread \\d+ MB, pre-cleaned \\d+ pages \\d+ filled spans, final re-scan \\d+ pages \\d+ objects \\d+ filled spans\\))?");
  std::vector<std::string> lines = Matching(o.lines, "gc ");
  CHECK(lines.size() == o.lines.size());  // nothing else on stderr
  REQUIRE(lines.size() == o.stats["num_gc"]);
  unsigned long long forced = 0, automatic = 0, concurrent = 0;
  double last_t = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    INFO(lines[i]);
    std::smatch m;
    REQUIRE(std::regex_match(lines[i], m, format));
    CHECK(std::stoull(m[1]) == i + 1);
    double t = std::stod(m[2]);
    CHECK(t >= last_t);
    last_t = t;
    CHECK(std::stod(m[8]) == 0);   // e: no assists
    CHECK(std::stod(m[10]) == 0);  // g: no idle workers
    CHECK(std::stoull(m[14]) <= std::stoull(m[13]));  // H2 (marked) <= H1 (after sweep)
    CHECK(std::stoull(m[15]) >= 4);  // the goal is never below the 4 MiB heap minimum at GOGC=100
    CHECK(std::stoull(m[18]) >= 1);  // P
    if (m[19] == " (forced)") {
      ++forced;
    } else {
      CHECK(m[19] == "");
      ++automatic;
    }
    if (m[20].matched) ++concurrent;
  }
  CHECK(forced == o.stats["num_forced_gc"]);
  CHECK(concurrent == o.stats["num_concurrent_gc"]);  // (PACEGC_CONCURRENT=on in the environment: every cycle)
  CHECK(forced == 5 + 7 + 1);
  CHECK(automatic >= 5);  // 48 MiB of garbage against a 4 MiB goal
}

TEST_CASE("gctrace=1 with concurrent cycles: the clock is Go's, start pause + concurrent work + final pause",
          "[trace]") {
  if (!pacegc::internal::dirty::Available()) {
    WARN("no write tracker here: no concurrent cycle to trace");
    return;
  }
  Outcome o = RunProbe("GODEBUG=gctrace=1 PACEGC_CONCURRENT=always");
  std::string ms = kMs;
  std::regex format("gc \\d+ @\\d+\\.\\d{3}s \\d+%: " + ms + "\\+" + ms + "\\+" + ms + " ms clock, " + ms +
                    "\\+" + ms + "/" + ms + "/" + ms + "\\+" + ms + " ms cpu, .* \\(concurrent: pauses " + ms +
                    "\\+" + ms +
                    " ms, mark thread \\d+ MB, pre-cleaned \\d+ pages \\d+ filled spans, final re-scan \\d+ pages \\d+ objects \\d+ filled spans\\)"
                    "( \\(runway: started at \\d+ MB, assist ratio \\d+\\.\\d{3}, \\d+ assists scanned \\d+ MB\\))?");
  std::vector<std::string> lines = Matching(o.lines, "gc ");
  REQUIRE(lines.size() == o.stats["num_gc"]);
  CHECK(o.stats["num_concurrent_gc"] == lines.size());
  for (const std::string &line : lines) {
    INFO(line);
    std::smatch m;
    REQUIRE(std::regex_match(line, m, format));
    CHECK(m[1].str() == m[9].str());  // a: the start pause
    CHECK(m[3].str() == m[10].str());  // c: the final pause
    if (line.find("(runway:") == std::string::npos) CHECK(std::stod(m[5]) == 0);  // e: assists, runway cycles only
    CHECK(std::stod(m[7]) == 0);   // g: no idle workers
  }
}

TEST_CASE("gcpacertrace=1: one pacer line per cycle with both goals and the limiter", "[trace]") {
  std::regex format(
      "pacer: gc (\\d+) gogc=(\\d+|off) gogc_goal_bytes=(\\d+|none) limit_bytes=(\\d+|none) "
      "limit_goal_bytes=(\\d+|none) goal_bytes=(\\d+|none) regime=(gogc|limit|none) marked_bytes=(\\d+) "
      "limiter=(on|off|disabled) limiter_fill_ns=(\\d+) limiter_capacity_ns=(\\d+) postponed=(\\d+) "
      "postponed_total=(\\d+) limit_source=(none|env|api|cgroup) hard_limit_bytes=(\\d+|none) "
      "cons_mark=(\\d+\\.\\d{4}) last_cons_mark=(\\d+\\.\\d{4}) trigger_bytes=(\\d+) runway_bytes=(\\d+) "
      "runway=(fits|none) started=(runway|goal) assist_ratio=(\\d+\\.\\d{4}) assists=(\\d+) "
      "assist_scan_bytes=(\\d+)");
  SECTION("GOGC alone") {
    Outcome o = RunProbe("GODEBUG=gcpacertrace=1");
    std::vector<std::string> lines = Matching(o.lines, "pacer: ");
    CHECK(lines.size() == o.lines.size());
    REQUIRE(lines.size() == o.stats["num_gc"]);
    for (size_t i = 0; i < lines.size(); ++i) {
      INFO(lines[i]);
      std::smatch m;
      REQUIRE(std::regex_match(lines[i], m, format));
      CHECK(std::stoull(m[1]) == i + 1);
      CHECK(m[2] == "100");
      CHECK(m[4] == "none");
      CHECK(m[5] == "none");
      CHECK(m[6] == m[3]);  // the goal in force is the GOGC goal
      CHECK(m[7] == "gogc");
      CHECK(std::stoull(m[10]) <= std::stoull(m[11]));  // fill <= capacity
      CHECK(m[14] == "none");  // no GOMEMLIMIT, and no limit from a cgroup
      // The concurrent trigger (pacer/trigger.h): at or below the goal, the goal itself unless a runway fits; a
      // stop-the-world program's cycles all start at the goal, unassisted.
      CHECK(std::stoull(m[18]) <= std::stoull(m[6]));
      if (m[20] == "none") CHECK(m[18] == m[6]);
      CHECK(m[21] == "goal");
      CHECK(m[23] == "0");
    }
  }
  SECTION("GOGC=off with a limit: the limit regime") {
    Outcome o = RunProbe("GOGC=off GOMEMLIMIT=24MiB GODEBUG=gcpacertrace=1");
    std::vector<std::string> lines = Matching(o.lines, "pacer: ");
    REQUIRE(lines.size() == o.stats["num_gc"]);
    for (const std::string &l : lines) {
      INFO(l);
      std::smatch m;
      REQUIRE(std::regex_match(l, m, format));
      CHECK(m[2] == "off");
      CHECK(m[3] == "none");
      CHECK(m[4] == std::to_string(24ull << 20));
      CHECK(m[5] != "none");
      CHECK(m[6] == m[5]);
      CHECK(m[7] == "limit");
      CHECK(m[14] == "env");
    }
  }
  SECTION("PACEGC_CPU_LIMITER=off shows as disabled") {
    Outcome o = RunProbe("PACEGC_CPU_LIMITER=off GODEBUG=gcpacertrace=1");
    std::vector<std::string> lines = Matching(o.lines, "pacer: ");
    REQUIRE(!lines.empty());
    for (const std::string &l : lines) CHECK(l.find(" limiter=disabled ") != std::string::npos);
  }
}

TEST_CASE("scavtrace=1: one line per cycle and one forced line per pgc_free_os_memory", "[trace]") {
  std::regex format(
      "scav (\\d+) KiB work \\(bg\\), (\\d+) KiB work \\(eager\\), (\\d+) KiB now, (\\d+) KiB retained, "
      "(\\d+)% util( \\(forced\\))?");
  Outcome o = RunProbe("GODEBUG=scavtrace=1", "5 48 2 0");
  std::vector<std::string> lines = Matching(o.lines, "scav ");
  CHECK(lines.size() == o.lines.size());
  unsigned long long per_cycle = 0, forced = 0;
  for (const std::string &l : lines) {
    INFO(l);
    std::smatch m;
    REQUIRE(std::regex_match(l, m, format));
    CHECK(std::stoull(m[5]) <= 100);
    if (m[6].matched) {
      ++forced;
      CHECK(m[1] == "0");  // the forced line reports only pgc_free_os_memory's release, as eager work (Go)
      CHECK(per_cycle > 0);
    } else {
      ++per_cycle;
    }
  }
  CHECK(per_cycle == o.stats["num_gc"]);
  CHECK(forced == 2);
  // The first pgc_free_os_memory follows 48 MiB of garbage and the 16 MiB peak: it releases something.
  std::smatch first;
  for (const std::string &l : lines) {
    if (l.find("(forced)") != std::string::npos) {
      REQUIRE(std::regex_match(l, first, format));
      break;
    }
  }
  CHECK(std::stoull(first[2]) > 0);
  CHECK(std::stoull(first[3]) >= std::stoull(first[2]));
}

TEST_CASE("all three GODEBUG traces together, in gc, pacer, scav order; none by default", "[trace]") {
  Outcome o = RunProbe("GODEBUG=madvdontneed=1,gctrace=1,gcpacertrace=1,scavtrace=1", "2 8 0 0");
  unsigned long long n = o.stats["num_gc"];
  REQUIRE(o.lines.size() == 3 * n);
  for (size_t i = 0; i < n; ++i) {
    CHECK(o.lines[3 * i].rfind("gc " + std::to_string(i + 1) + " @", 0) == 0);
    CHECK(o.lines[3 * i + 1].rfind("pacer: gc " + std::to_string(i + 1) + " ", 0) == 0);
    CHECK(o.lines[3 * i + 2].rfind("scav ", 0) == 0);
  }
  Outcome quiet = RunProbe("GODEBUG=gctrace=0,madvdontneed=1", "2 8 0 0");
  CHECK(quiet.lines.empty());
  Outcome unset = RunProbe("", "2 8 0 0");
  CHECK(unset.lines.empty());
}

TEST_CASE("malformed GODEBUG trace values exit 2 with one line naming key and value", "[trace][env]") {
  for (const char *bad : {"gctrace=yes", "gctrace=", "scavtrace=-1", "madvdontneed=1,gcpacertrace=on"}) {
    INFO(bad);
    Outcome o = Run(std::string("GODEBUG=") + bad, PACEGC_TRACE_PROBE, "1 1 0 0");
    CHECK(o.status == 2);
    REQUIRE(o.lines.size() == 1);
    CHECK(o.lines[0].find("GODEBUG") != std::string::npos);
    std::string kv = bad;
    kv = kv.substr(kv.rfind(',') == std::string::npos ? 0 : kv.rfind(',') + 1);
    std::string key = kv.substr(0, kv.find('='));
    CHECK(o.lines[0].find(key + "=\"" + kv.substr(kv.find('=') + 1) + "\"") != std::string::npos);
    CHECK(o.out.empty());  // main never ran
  }
}

TEST_CASE("PACEGC_TRACE: valid Chrome trace JSON with every phase of every cycle", "[trace]") {
  std::string file = TempDir() + "/trace.json";
  // No pgc_free_os_memory and a pause at the end: the background scavenger releases the peak's pages.
  Outcome o = RunProbe("PACEGC_TRACE=" + file, "5 48 0 300");
  CHECK(o.lines.empty());
  std::string cmd = std::string(PACEGC_PYTHON3) + " " PACEGC_TRACE_CHECK " " + file + " " +
                    std::to_string(o.stats["num_gc"]) + " finalizers scavenge";
  CHECK(system(cmd.c_str()) == 0);
  std::string text = ReadFile(file);
  CHECK(text.rfind("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", 0) == 0);
  CHECK(text.size() > 4);
  CHECK(text.substr(text.size() - 4) == "\n]}\n");
  CHECK(text.find("\"name\":\"pacegc-bg\"") != std::string::npos);  // the background thread is named
}

TEST_CASE("PACEGC_TRACE and the gctrace line agree on the cycle count with all traces on", "[trace]") {
  std::string file = TempDir() + "/trace-all.json";
  Outcome o = RunProbe("PACEGC_TRACE=" + file + " GODEBUG=gctrace=1,scavtrace=1,gcpacertrace=1", "3 16 1 0");
  CHECK(Matching(o.lines, "gc ").size() == o.stats["num_gc"]);
  std::string cmd = std::string(PACEGC_PYTHON3) + " " PACEGC_TRACE_CHECK " " + file + " " +
                    std::to_string(o.stats["num_gc"]) + " finalizers";
  CHECK(system(cmd.c_str()) == 0);
}

TEST_CASE("trace_check.py refuses broken traces", "[trace]") {
  std::string file = TempDir() + "/broken.json";
  auto check = [&](const std::string &json, int num_gc) {
    std::ofstream(file) << json;
    std::string cmd = std::string(PACEGC_PYTHON3) + " " PACEGC_TRACE_CHECK " " + file + " " +
                      std::to_string(num_gc) + " >/dev/null 2>&1";
    int rc = system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  auto ev = [](const std::string &name, double ts, double dur) {
    char buf[256];
    snprintf(buf, sizeof(buf), R"({"name":"%s","ph":"X","pid":1,"tid":1,"ts":%g,"dur":%g,"args":{"cycle":1%s}})",
             name.c_str(), ts, dur, name == "gc" ? R"(,"reason":"forced")" : "");
    return std::string(buf);
  };
  const char *phases[] = {"stop the world", "mark roots", "mark heap", "finalizer discovery",
                          "start the world", "sweep"};
  std::string good = ev("gc", 0, 60);
  for (int i = 0; i < 6; ++i) good.append(",").append(ev(phases[i], 10.0 * i, 10));
  CHECK(check("{\"traceEvents\":[" + good + "]}", 1) == 0);  // the checker accepts a well-formed trace
  CHECK(check("{\"traceEvents\":[" + good + "]", 1) != 0);   // truncated: not JSON
  CHECK(check("{\"traceEvents\":[" + good + "]}", 2) != 0);  // a cycle missing
  std::string missing = ev("gc", 0, 60);
  for (int i = 0; i < 5; ++i) missing.append(",").append(ev(phases[i], 10.0 * i, 10));
  CHECK(check("{\"traceEvents\":[" + missing + "]}", 1) != 0);  // no "sweep"
  CHECK(check("{\"traceEvents\":[" + good + "," + ev("run finalizers", 55, 10) + "]}", 1) != 0);  // overlap
  CHECK(check("{\"traceEvents\":[" + good + "," + ev("run finalizers", 70, -1) + "]}", 1) != 0);  // dur < 0
}

TEST_CASE("PACEGC_TRACE that cannot be opened exits 2 naming the path", "[trace][env]") {
  Outcome o = Run("PACEGC_TRACE=/nonexistent-dir/trace.json", PACEGC_TRACE_PROBE, "1 1 0 0");
  CHECK(o.status == 2);
  REQUIRE(o.lines.size() == 1);
  CHECK(o.lines[0].find("PACEGC_TRACE=\"/nonexistent-dir/trace.json\"") != std::string::npos);
  CHECK(o.lines[0].find("No such file or directory") != std::string::npos);
  Outcome empty = Run("PACEGC_TRACE=", PACEGC_TRACE_PROBE, "1 1 0 0");
  CHECK(empty.status == 2);
  REQUIRE(empty.lines.size() == 1);
  CHECK(empty.lines[0].find("PACEGC_TRACE is empty") != std::string::npos);
}
