// settings/settings.h: how the table is read (order, defaults, the first malformed entry), and the README's
// environment table checked against it, row by row, so that the documentation cannot list a variable the library
// does not read, miss one it reads, or describe one differently. (The start-up behaviour of each variable, as a
// program meets it, is tested in env_test.cc.)
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "settings/settings.h"

namespace {

using pacegc::settings::Entry;
using pacegc::settings::Table;
using pacegc::settings::Values;

std::map<std::string, std::string> g_fake_env;  // the lookup's environment for Read()
const char *FakeLookup(const char *name) {
  auto it = g_fake_env.find(name);
  return it == g_fake_env.end() ? nullptr : it->second.c_str();
}

// The README's rendering of the table: a header, a separator, one row per entry.
std::vector<std::string> ExpectedReadmeRows() {
  std::vector<std::string> rows = {"| variable | accepted values | default | meaning |", "|---|---|---|---|"};
  for (const Entry &e : Table()) {
    rows.push_back(std::string("| `") + e.name + "` | " + e.accepted + " | " + e.default_text + " | " + e.meaning +
                   " |");
  }
  return rows;
}

// The table under "## Environment variables" in README.md: its lines that start with '|', up to the first that
// does not.
std::vector<std::string> ReadmeRows() {
  std::ifstream in(PACEGC_README);
  REQUIRE(in.good());
  std::vector<std::string> rows;
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      if (in_section) break;
      in_section = line == "## Environment variables";
      continue;
    }
    if (!in_section) continue;
    if (line.rfind("|", 0) == 0) {
      rows.push_back(line);
    } else if (!rows.empty()) {
      break;
    }
  }
  return rows;
}

// The variable named in a README row's first cell ("| `NAME` | ..."), or "".
std::string RowVariable(const std::string &row) {
  size_t a = row.find('`');
  size_t b = a == std::string::npos ? a : row.find('`', a + 1);
  size_t bar = row.find('|', 1);
  if (b == std::string::npos || b > bar) return "";
  return row.substr(a + 1, b - a - 1);
}

}  // namespace

TEST_CASE("settings table: an empty environment gives the documented defaults", "[settings]") {
  g_fake_env = {};
  Values v;
  std::string error;
  REQUIRE(pacegc::settings::Read(FakeLookup, &v, &error));
  CHECK(v.gc_percent == 100);
  CHECK(v.memory_limit_bytes == INT64_MAX);
  CHECK_FALSE(v.memory_limit_set);
  CHECK(v.auto_memory_limit_ratio == 0.9);
  CHECK(v.suspend_signal == SIGRTMIN + 5);
  CHECK(v.godebug.gctrace == 0);
  CHECK(v.trace_path == nullptr);
  CHECK_FALSE(v.abort_on_misuse);
  CHECK(v.cpu_limiter);
  CHECK(v.metrics_log_interval_ns == 0);
  CHECK(v.concurrent == Values::Concurrent::kOn);  // concurrent marking by default (README)
}

TEST_CASE("settings table: each value lands in its field", "[settings]") {
  g_fake_env = {{"GOGC", "off"},
                {"GOMEMLIMIT", "1GiB"},
                {"PACEGC_AUTOMEMLIMIT", "0.5"},
                {"PACEGC_SUSPEND_SIGNAL", "12"},
                {"GODEBUG", "gctrace=1,scavtrace=2"},
                {"PACEGC_TRACE", "/tmp/t.json"},
                {"PACEGC_ABORT_ON_MISUSE", "yes"},
                {"PACEGC_CPU_LIMITER", "false"},
                {"PACEGC_METRICS_LOG", "1m30s"}};
  Values v;
  std::string error;
  REQUIRE(pacegc::settings::Read(FakeLookup, &v, &error));
  CHECK(v.gc_percent == -1);
  CHECK(v.memory_limit_bytes == int64_t{1} << 30);
  CHECK(v.memory_limit_set);
  CHECK(v.auto_memory_limit_ratio == 0.5);
  CHECK(v.suspend_signal == 12);
  CHECK(v.godebug.gctrace == 1);
  CHECK(v.godebug.scavtrace == 2);
  CHECK(std::string(v.trace_path) == "/tmp/t.json");
  CHECK(v.abort_on_misuse);
  CHECK_FALSE(v.cpu_limiter);
  CHECK(v.metrics_log_interval_ns == 90'000'000'000);
}

TEST_CASE("settings table: GOMEMLIMIT empty is unset, as in Go; off is set (it wins over the cgroup)", "[settings]") {
  Values v;
  std::string error;
  g_fake_env = {{"GOMEMLIMIT", ""}};
  REQUIRE(pacegc::settings::Read(FakeLookup, &v, &error));
  CHECK_FALSE(v.memory_limit_set);
  g_fake_env = {{"GOMEMLIMIT", "off"}};
  REQUIRE(pacegc::settings::Read(FakeLookup, &v, &error));
  CHECK(v.memory_limit_set);
  CHECK(v.memory_limit_bytes == INT64_MAX);
}

TEST_CASE("settings table: reading stops at the first malformed entry in table order, with its message", "[settings]") {
  g_fake_env = {{"PACEGC_METRICS_LOG", "soon"}, {"PACEGC_CPU_LIMITER", "maybe"}};
  Values v;
  std::string error;
  CHECK_FALSE(pacegc::settings::Read(FakeLookup, &v, &error));
  CHECK(error.rfind("malformed PACEGC_CPU_LIMITER=\"maybe\": ", 0) == 0);
  CHECK(error.find('\n') == std::string::npos);
}

TEST_CASE("settings table: every entry is documented and names are unique", "[settings]") {
  std::set<std::string> names;
  for (const Entry &e : Table()) {
    INFO(e.name);
    CHECK(names.insert(e.name).second);
    CHECK(std::string(e.accepted).size() > 0);
    CHECK(std::string(e.default_text).size() > 0);
    CHECK(std::string(e.meaning).size() > 0);
    for (const char *text : {e.accepted, e.default_text, e.meaning}) {
      CHECK(std::string(text).find('|') == std::string::npos);  // would split the README's table cell
    }
  }
}

TEST_CASE("README's environment table is the settings table", "[settings][docs]") {
  std::vector<std::string> readme = ReadmeRows();
  std::vector<std::string> expected = ExpectedReadmeRows();

  // Names both ways first, for a clear message when a variable is added or removed on one side only.
  std::set<std::string> in_table, in_readme;
  for (const Entry &e : Table()) in_table.insert(e.name);
  for (size_t i = 2; i < readme.size(); ++i) in_readme.insert(RowVariable(readme[i]));
  for (const std::string &name : in_table) {
    INFO(name << " is read by the library (settings/settings.cc) but has no row in README.md");
    CHECK(in_readme.count(name) == 1);
  }
  for (const std::string &name : in_readme) {
    INFO(name << " has a row in README.md but the library does not read it (settings/settings.cc)");
    CHECK(in_table.count(name) == 1);
  }

  // Then every row as the table renders it, in table order. The rendering is also written to a file, to paste
  // into the README (Catch wraps long lines in its messages).
  {
    std::ofstream out(PACEGC_README_EXPECTED);
    for (const std::string &row : expected) out << row << "\n";
  }
  INFO("README.md's table under \"## Environment variables\" must be the table in " PACEGC_README_EXPECTED);
  REQUIRE(readme.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("row " << i);
    CHECK(readme[i] == expected[i]);
  }
}
