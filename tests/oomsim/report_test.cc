// tests/oomsim/report_test.cc — the table, CSV, JSON and SVG writers on a synthetic experiment (a survivor, a run
// killed by the cap, an n/a row), and the figures computed from runs. The real files are also parsed by Python's
// csv/json/xml.dom.minidom in the oomsim_outputs test; here a small checker validates the SVG's XML structure.
#include "report.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "size.h"
#include "svg.h"

using namespace pacegc::oomsim;

namespace {

Line MakeLine(const std::string &text) {
  return *ParseLine(text);
}

RunResult Survivor() {
  RunResult r;
  r.end = EndKind::kSurvived;
  r.end_detail = "survived";
  r.exit_code = 0;
  r.elapsed_s = 4.7;
  r.peak_bytes = 404 * kMiB;
  r.phases = {{1, 64 * kMiB, kGiB, 0.01, 1.2, 1.0, 0.25}, {2, 128 * kMiB, kGiB, 1.2, 2.5, 1.0, std::nullopt}};
  for (int i = 0; i < 50; ++i) {
    WorkerSample s;
    s.t_s = i * 0.05;
    s.heap_alloc = (64 + i) * kMiB;
    s.heap_goal = i % 3 == 0 ? std::optional<uint64_t>() : std::optional<uint64_t>((200 + i) * kMiB);
    s.total = (100 + i) * kMiB;
    s.live = 64 * kMiB;
    s.gc = static_cast<uint64_t>(i / 2);
    s.limiter = 0;
    r.samples.push_back(s);
    r.usage.push_back({i * 0.05, (120 + i) * kMiB});
  }
  r.start = MakeLine("start runtime=pacegc pid=1 cpus=2 gogc=100 memory_limit=off");
  r.result = MakeLine(
      "result wall_s=4.6 gc_cycles=40 gc_cpu_fraction=0.16 pause_p50_ns=1000000 "
      "pause_p99_ns=3000000 pause_max_ns=4000000 churn_bytes=2147483648 limiter_on_ns=na "
      "peak_total=1 weird=<&\">");
  r.stderr_tail = {"a line with \"quotes\", a tab\tand a byte \x01 and UTF-8 \xc3\xa9"};
  return r;
}

RunResult Killed() {
  RunResult r;
  r.end = EndKind::kOomKilled;
  r.end_detail = "OOM-killed by the cgroup in phase 2 (live 128 MiB) at 2.10 s";
  r.term_signal = 9;
  r.elapsed_s = 2.1;
  r.peak_bytes = 512 * kMiB;
  r.oom_kills = 1;
  r.phases = {{1, 64 * kMiB, kGiB, 0.01, 1.2, 1.0, 0.25}, {2, 128 * kMiB, kGiB, 1.2, std::nullopt, std::nullopt, std::nullopt}};
  WorkerSample s;
  s.t_s = 2.0;
  s.gc = 30;
  s.gc_cpu = 0.11;
  s.total = 500 * kMiB;
  r.samples.push_back(s);
  r.usage.push_back({2.0, 510 * kMiB});
  return r;
}

Experiment Synthetic(int runs) {
  Experiment e;
  e.scenario = ResolveScenario("step", std::nullopt, {"phases=64MiB:1GiB,128MiB:1GiB"});
  e.command = "pacegc-oomsim --policy \"gogc\",limit";
  e.enforcement = Enforcement::kCgroup;
  for (const char *spec : {"gogc", "limit"}) {
    Group g;
    g.runtime = Runtime::kPacegc;
    g.policy = ResolvePolicy(ParsePolicy(spec), e.scenario);
    g.invocation = MakeInvocation(g.runtime, g.policy, e.scenario);
    for (int i = 0; i < runs; ++i) g.runs.push_back(std::string(spec) == "gogc" ? Killed() : Survivor());
    e.groups.push_back(g);
  }
  Group na;
  na.runtime = Runtime::kBdwgc;
  na.policy = ResolvePolicy(ParsePolicy("tuner"), e.scenario);
  na.invocation = MakeInvocation(na.runtime, na.policy, e.scenario);
  e.groups.push_back(na);
  e.notes.push_back("Skipped runtime go: oomsim-worker-go not found.");
  return e;
}

// Splits CSV text into rows of fields (RFC 4180 quoting).
std::vector<std::vector<std::string>> ParseCsv(const std::string &text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (c == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

// A small XML well-formedness check: balanced tags, quoted attributes, entities only from the XML five, no '<' or
// '&' loose in text. Returns "" or the first problem.
std::string CheckXml(const std::string &x) {
  std::vector<std::string> stack;
  size_t i = 0;
  auto entity_ok = [&](size_t at) {
    for (const char *e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) {
      if (x.compare(at, strlen(e), e) == 0) return true;
    }
    return false;
  };
  while (i < x.size()) {
    if (x[i] == '&' && !entity_ok(i)) return "bad entity at " + std::to_string(i);
    if (x[i] != '<') {
      ++i;
      continue;
    }
    if (x.compare(i, 5, "<?xml") == 0) {
      size_t end = x.find("?>", i);
      if (end == std::string::npos) return "unterminated declaration";
      i = end + 2;
      continue;
    }
    size_t end = i + 1;
    char quote = 0;
    while (end < x.size() && (quote != 0 || x[end] != '>')) {
      if (quote == 0 && (x[end] == '"' || x[end] == '\'')) {
        quote = x[end];
      } else if (quote != 0 && x[end] == quote) {
        quote = 0;
      } else if (x[end] == '<') {
        return "'<' inside a tag at " + std::to_string(end);
      } else if (quote != 0 && x[end] == '&' && !entity_ok(end)) {
        return "bad entity in an attribute at " + std::to_string(end);
      }
      ++end;
    }
    if (end >= x.size()) return "unterminated tag at " + std::to_string(i);
    std::string tag = x.substr(i + 1, end - i - 1);
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return "unbalanced </" + name + ">";
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
    i = end + 1;
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  return "";
}

}  // namespace

TEST_CASE("report: figures of a survivor and of a killed run", "[oomsim][report]") {
  RunMetrics s = ComputeMetrics(Survivor());
  CHECK(s.survived);
  CHECK(s.killed_phase == 0);
  CHECK(s.gc_cycles == Approx(40));
  CHECK(s.gc_cpu == Approx(0.16));
  CHECK(s.wall_s == Approx(4.6));  // the worker's own
  CHECK(s.churn_mib_s == Approx(1024.0));
  CHECK(s.pause_p99_ms == Approx(3.0));
  CHECK_FALSE(s.limiter_on_s.has_value());  // `na`
  CHECK(s.peak_mib == Approx(404));

  RunMetrics k = ComputeMetrics(Killed());
  CHECK_FALSE(k.survived);
  CHECK(k.killed_phase == 2);
  CHECK(k.end_short == "killed in phase 2 (live 128 MiB)");
  CHECK(k.gc_cycles == Approx(30));  // from the last sample
  CHECK(k.gc_cpu == Approx(0.11));
  CHECK(k.wall_s == Approx(2.1));          // fork to death
  CHECK(k.churn_mib_s == Approx(1024.0));  // phase 1 only
  CHECK_FALSE(k.pause_p50_ms.has_value());
}

TEST_CASE("report: a run whose runtime ran out of heap died of memory in its phase", "[oomsim][report]") {
  RunResult r = Killed();
  r.end = EndKind::kHeapExhausted;
  r.term_signal = 0;
  r.exit_code = 3;
  r.oom_kills = 0;
  r.end_detail = "out of memory (the runtime's allocation failed) in phase 2 (live 128 MiB) at 2.10 s";
  RunMetrics m = ComputeMetrics(r);
  CHECK_FALSE(m.survived);
  CHECK(m.end_kind == "heap-exhausted");
  CHECK(m.end_short == "out of memory in phase 2 (live 128 MiB)");
  CHECK(m.killed_phase == 2);

  Experiment e = Synthetic(1);
  e.groups[0].runs = {r};
  std::ostringstream table, svg;
  WriteTable(table, e);
  CHECK_THAT(table.str(), Catch::Contains("| no: out of memory in phase 2 (live 128 MiB) |") &&
                              Catch::Contains("30 before it died"));
  WriteSvg(svg, e);
  CHECK_THAT(svg.str(), Catch::Contains("out of memory in phase 2"));
}

TEST_CASE("report: a :limiter=off run whose limiter was on anyway gets a warning", "[oomsim][report]") {
  Experiment e = Synthetic(1);
  Group &g = e.groups[1];  // limit, survived
  g.policy = ResolvePolicy(ParsePolicy("limit:limiter=off"), e.scenario);
  g.invocation = MakeInvocation(g.runtime, g.policy, e.scenario);
  CHECK(LimiterNotes(e).empty());  // limiter_on_ns=na: nothing to warn about
  g.runs[0].result = MakeLine("result wall_s=4.6 gc_cycles=40 gc_cpu_fraction=0.5 limiter_on_ns=0");
  CHECK(LimiterNotes(e).empty());
  g.runs[0].result = MakeLine("result wall_s=4.6 gc_cycles=40 gc_cpu_fraction=0.5 limiter_on_ns=1500000000");
  std::vector<std::string> notes = LimiterNotes(e);
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("PACEGC_CPU_LIMITER=off") && Catch::Contains("1.50 s"));
  std::ostringstream table;
  WriteTable(table, e);
  CHECK_THAT(table.str(), Catch::Contains("does not honour"));
  // The same figure with the limiter on is no news.
  g.policy = ResolvePolicy(ParsePolicy("limit"), e.scenario);
  CHECK(LimiterNotes(e).empty());
}

TEST_CASE("report: median and range", "[oomsim][report]") {
  Summary odd = Summarize({3.0, 1.0, std::nullopt, 2.0});
  CHECK(odd.count == 3);
  CHECK(*odd.median == 2.0);
  CHECK(*odd.min == 1.0);
  CHECK(*odd.max == 3.0);
  Summary even = Summarize({4.0, 1.0, 2.0, 3.0});
  CHECK(*even.median == 2.5);
  CHECK_FALSE(Summarize({std::nullopt}).median.has_value());
}

TEST_CASE("report: escaping for CSV, JSON and XML", "[oomsim][report]") {
  CHECK(CsvField("plain") == "plain");
  CHECK(CsvField("a,b") == "\"a,b\"");
  CHECK(CsvField("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(JsonString("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
  CHECK(JsonString("\xc3\xa9") == "\"\\u00c3\\u00a9\"");  // the output stays ASCII
  CHECK(XmlEscape("<a & 'b'>\"") == "&lt;a &amp; &apos;b&apos;&gt;&quot;");
}

TEST_CASE("report: the table has one row per runtime x policy", "[oomsim][report]") {
  std::ostringstream out;
  WriteTable(out, Synthetic(1));
  std::string t = out.str();
  CHECK_THAT(t,
             Catch::Contains("| pacegc | GOGC=100 | no: killed in phase 2 (live 128 MiB) | 512 | 30 before the kill"));
  CHECK_THAT(t, Catch::Contains("| pacegc | GOGC=100, GOMEMLIMIT=") && Catch::Contains("| yes | 404 | 40 |"));
  CHECK_THAT(t, Catch::Contains("| bdwgc | tuner 70% of cap | n/a: bdwgc has no GOGC |"));
  CHECK_THAT(t, Catch::Contains("cgroup v1"));
  CHECK_THAT(t, Catch::Contains("Skipped runtime go"));
  std::ostringstream three;
  WriteTable(three, Synthetic(3));
  CHECK_THAT(three.str(),
             Catch::Contains("no (0/3); killed in phase 2 (live 128 MiB) ×3") && Catch::Contains("median [min–max]"));
}

TEST_CASE("report: CSV is rectangular with the required columns", "[oomsim][report]") {
  for (int runs : {1, 3}) {
    std::ostringstream out;
    WriteCsv(out, Synthetic(runs));
    auto rows = ParseCsv(out.str());
    REQUIRE(rows.size() == 4);  // header + 3 groups
    const std::vector<std::string> &h = rows[0];
    for (const char *col :
         {"runtime", "policy", "survived", "peak_mib", "gc_cycles", "gc_cpu", "wall_s", "churn_mib_s", "pause_p50_ms",
          "pause_p99_ms", "pause_max_ms", "limiter_on_s", "killed_phase", "enforcement"}) {
      CHECK(std::find(h.begin(), h.end(), col) != h.end());
    }
    auto col = [&](const char *name) { return std::find(h.begin(), h.end(), name) - h.begin(); };
    for (const auto &row : rows) CHECK(row.size() == h.size());
    CHECK(rows[1][col("policy")] == "gogc=100");
    CHECK(rows[1][col("survived")] == "no");
    CHECK(rows[1][col("killed_phase")] == "2");
    CHECK(rows[2][col("survived")] == "yes");
    CHECK(rows[2][col("peak_mib")] == "404.0");
    CHECK(rows[3][col("survived")] == "n/a");
    CHECK(rows[3][col("runtime")] == "bdwgc");
  }
}

TEST_CASE("report: JSON phases carry the per-phase GC CPU fraction where the worker gave one", "[oomsim][report]") {
  std::ostringstream out;
  WriteJson(out, Synthetic(2));
  const std::string j = out.str();
  CHECK(j.find("\"churn_s\":1,\"gc_cpu\":0.25}") != std::string::npos);
  CHECK(j.find("\"churn_s\":1,\"gc_cpu\":null}") != std::string::npos);
}

TEST_CASE("report: JSON has balanced structure and ASCII only", "[oomsim][report]") {
  std::ostringstream out;
  WriteJson(out, Synthetic(2));
  std::string j = out.str();
  int depth = 0;
  bool in_string = false, ascii = true;
  for (size_t i = 0; i < j.size(); ++i) {
    char c = j[i];
    ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      } else {
        CHECK(static_cast<unsigned char>(c) >= 0x20);
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
      REQUIRE(depth >= 0);
    }
  }
  CHECK(depth == 0);
  CHECK_FALSE(in_string);
  CHECK(ascii);
  CHECK_THAT(j, Catch::Contains("\"usage\":{\"source\":\"cgroup memory.usage_in_bytes\",\"t_s\":[0,0.05"));
  CHECK_THAT(j, Catch::Contains("\"heap_goal\":[null,"));
  CHECK_THAT(j, Catch::Contains("\"killed_phase\":2"));
  CHECK_THAT(j, Catch::Contains("\"limiter_on_ns\":null"));
}

TEST_CASE("report: the SVG is well-formed XML with a panel per run, cap, limit and kill", "[oomsim][report]") {
  std::ostringstream out;
  WriteSvg(out, Synthetic(1));
  std::string svg = out.str();
  CHECK(CheckXml(svg) == "");
  CHECK_THAT(svg, Catch::StartsWith("<?xml") && Catch::Contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK_THAT(svg, Catch::Contains("cap 512MiB"));
  CHECK_THAT(svg, Catch::Contains("soft limit 460MiB"));
  CHECK_THAT(svg, Catch::Contains("OOM kill in phase 2"));
  CHECK_THAT(svg, Catch::Contains("pacegc · GOGC=100 — killed in phase 2"));
  CHECK(svg.find("tuner") == std::string::npos);  // the n/a row has no panel
  // The checker itself catches breakage.
  CHECK(CheckXml("<svg><g></svg>") != "");
  CHECK(CheckXml("<svg><text>a & b</text></svg>") != "");
  CHECK(CheckXml("<svg a=\"1\"><text>a &amp; b</text></svg>") == "");
}

TEST_CASE("report: a CPU quota is named in the table, the CSV, the JSON and the SVG", "[oomsim][report][cpu]") {
  Experiment none = Synthetic(1);
  Experiment e = Synthetic(1);
  e.cpu_quota_us = 30000;
  e.groups[0].runs[0].cpu_cgroup_path = "/sys/fs/cgroup/cpu/pacegc-oomsim-1-1";
  e.groups[0].runs[0].cpu_stat = CpuStat{12, 11, 987654321};

  std::ostringstream table, table_none;
  WriteTable(table, e);
  WriteTable(table_none, none);
  CHECK_THAT(table.str(), Catch::StartsWith("## pacegc-oomsim: scenario step under a CPU quota of 30% of one CPU\n"));
  CHECK_THAT(table.str(), Catch::Contains("cpu.cfs_quota_us 30000 per cpu.cfs_period_us 100000"));
  CHECK_THAT(table_none.str(), Catch::Contains("- CPU: no quota") && !Catch::Contains("CPU quota"));

  for (const Experiment *x : {&e, &none}) {
    std::ostringstream csv;
    WriteCsv(csv, *x);
    auto rows = ParseCsv(csv.str());
    const std::vector<std::string> &h = rows[0];
    auto col = std::find(h.begin(), h.end(), "cpu_quota") - h.begin();
    REQUIRE(col < static_cast<long>(h.size()));
    for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i][col] == (x == &e ? "0.3" : ""));
  }

  std::ostringstream json, json_none;
  WriteJson(json, e);
  WriteJson(json_none, none);
  CHECK_THAT(json.str(), Catch::Contains("\"cpu_quota\":0.3,\"cpu_quota_us\":30000,\"cpu_period_us\":100000"));
  CHECK_THAT(json.str(), Catch::Contains("\"cpu_cgroup\":\"/sys/fs/cgroup/cpu/pacegc-oomsim-1-1\",\"cpu_stat\":"
                                         "{\"nr_periods\":12,\"nr_throttled\":11,\"throttled_time_ns\":987654321}"));
  CHECK_THAT(json.str(), Catch::Contains("\"cpu_cgroup\":null,\"cpu_stat\":null"));  // the other runs
  CHECK_THAT(json_none.str(), Catch::Contains("\"cpu_quota\":null,\"cpu_quota_us\":null,\"cpu_period_us\":null"));

  std::ostringstream svg;
  WriteSvg(svg, e);
  CHECK(CheckXml(svg.str()) == "");
  CHECK_THAT(svg.str(), Catch::Contains("<title>pacegc-oomsim: scenario step, cap 512MiB, CPU quota 30% of one CPU"));
}
